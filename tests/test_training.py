"""`miniai.training` (lesson 04's `Dataset`, `accuracy`, `fit`, `get_dls`) and what `miniai.scratch` does beyond the
checks of `miniai.check` (which hold each scratch piece to PyTorch's in tests/test_check.py): tied parameters, flags,
bad input. Argument tests are one table per function: each row is a call and the error it must raise. The scratch
`DataLoader`'s workers are tested in tests/test_workers.py."""
import re, sys, types
import numpy as np, pytest, torch
import torch.utils.data as tud
import torch.nn.functional as F
from torch import nn, optim
from miniai.training import Dataset, accuracy, fit, get_dls
from miniai.scratch import BatchSampler, DataLoader, Module, Optimizer, Sampler

def tensor_ds(n=100, d=3):
    x = torch.arange(n*d, dtype=torch.float32).reshape(n, d)
    return Dataset(x, torch.arange(n))

def raises(exc, msg): return pytest.raises(exc, match=re.escape(msg))

# Module and Optimizer

class Tied(Module):
    "An autoencoder whose decoder is its encoder: one layer under two names"
    def __init__(self):
        super().__init__()
        self.enc = nn.Linear(3, 3)
        self.dec = self.enc
    def forward(self, x): return self.dec(self.enc(x))

def test_tied_parameters_are_yielded_and_stepped_once():
    m, ref = Tied(), nn.Module()
    ref.enc = ref.dec = m.enc
    assert [p is q for p,q in zip(m.parameters(), ref.parameters())] == [True, True] and len(list(m.parameters())) == 2
    before = [p.detach().clone() for p in m.parameters()]
    for p in m.parameters(): p.grad = torch.ones_like(p)
    Optimizer(m.parameters(), lr=0.1).step()
    for a,p in zip(before, m.parameters()): assert torch.allclose(p, a-0.1)   # one step of 0.1, not two

def one_param(): return [torch.zeros(1, requires_grad=True)]

@pytest.mark.parametrize('params,lr,exc,msg', [
    *[(one_param(), lr, exc, f'lr should be a positive number, but got lr={lr!r}') for lr,exc in
      [(0, ValueError), (-0.1, ValueError), (float('nan'), ValueError), (True, TypeError), ('0.1', TypeError), (None, TypeError)]],
    ([], 0.1, ValueError, 'optimizer got an empty parameter list'),                # as torch.optim.SGD says it
    (nn.ReLU().parameters(), 0.1, ValueError, 'optimizer got an empty parameter list'),
])
def test_optimizer_refuses(params, lr, exc, msg):
    with raises(exc, msg): Optimizer(params, lr=lr)

@pytest.mark.parametrize('lr', [1, 0.1, np.float32(0.1), np.int64(1)])
def test_optimizer_takes_any_real_lr(lr):
    p = torch.ones(1, requires_grad=True)
    p.grad = torch.ones(1)
    Optimizer([p], lr=lr).step()
    assert p.item() == pytest.approx(1-float(lr))

# Dataset, samplers and the in-process DataLoader

def test_dataset_lengths_must_match():
    with raises(ValueError, 'x and y should have the same length, but got len(x)=3 and len(y)=2'): Dataset(torch.zeros(3), torch.zeros(2))

def test_dataset_empty_list_gives_an_empty_batch():
    x, y = tensor_ds()[[]]   # as PyTorch's TensorDataset gives
    assert x.shape == (0, 3) and y.shape == (0,)

def test_batch_sampler_batches():
    assert list(BatchSampler(Sampler(range(10)), 4)) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert list(BatchSampler(Sampler(range(10)), 4, drop_last=True)) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert len(BatchSampler(Sampler(range(10)), 4)) == 3 and len(BatchSampler(Sampler(range(10)), 4, drop_last=True)) == 2

# each integer argument follows miniai.validate's rule (tested there in full): the wrong kind is a TypeError, a value
# below the smallest allowed a ValueError; flags take only True or False
BAD_INT = [(-1, ValueError), (2.5, TypeError), (True, TypeError), ('4', TypeError)]

@pytest.mark.parametrize('make,name,v,exc,what', [
    *[(lambda v: BatchSampler(Sampler(range(10)), v), 'bs', v, exc, 'a positive integer value') for v,exc in [(0, ValueError), *BAD_INT]],
    *[(lambda v: BatchSampler(Sampler(range(4)), 2, drop_last=v), 'drop_last', v, TypeError, 'True or False') for v in ['no', 0, 1, None]],
    *[(lambda v: Sampler(range(4), shuffle=v), 'shuffle', v, TypeError, 'True or False') for v in ['False', 0, None]],
    *[(lambda v: DataLoader(tensor_ds(8), [[0, 1]], n_workers=v), 'n_workers', v, exc, 'a non-negative integer value') for v,exc in BAD_INT],
])
def test_scratch_pieces_refuse(make, name, v, exc, what):
    with raises(exc, f'{name} should be {what}, but got {name}={v!r}'): make(v)

def test_loader_len_and_per_item_equals_precollated():
    ds = tensor_ds(50)
    batchs = BatchSampler(Sampler(ds), 8)
    dl = DataLoader(ds, batchs)
    assert len(dl) == 7
    for (xa,ya),(xb,yb) in zip(dl, DataLoader(ds, batchs, collate_fn=None)):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)

# accuracy

def test_accuracy():
    out = torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    assert accuracy(out, torch.tensor([1, 0, 1, 1])).item() == 0.75

@pytest.mark.parametrize('yb', [torch.tensor([[1], [0], [1], [0]]), torch.tensor([1]), torch.tensor([1, 0]), torch.tensor(1)])
def test_accuracy_refuses_targets_that_are_not_one_class_per_row(yb):
    out = torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])   # all right for targets [1, 0, 1, 0]
    with raises(ValueError, f'yb should be one class index per row of out, shape (4,), but got shape {tuple(yb.shape)}'): accuracy(out, yb)

# fit

def fit_parts(n=64):
    torch.manual_seed(0)
    ds = Dataset(torch.randn(n, 4), torch.randint(0, 2, (n,)))
    model = nn.Sequential(nn.Linear(4, 2))
    return model, F.cross_entropy, optim.SGD(model.parameters(), lr=0.1), ds

def fit_with(epochs=1, train_dl=None, valid_dl=None):
    "`fit` on small data; each argument not given is a good one"
    model, loss_func, opt, ds = fit_parts()
    dls = get_dls(ds, ds, 16)
    return fit(epochs, model, loss_func, opt, dls[0] if train_dl is None else train_dl, dls[1] if valid_dl is None else valid_dl)

def batches(n=4): return [(torch.randn(8, 4), torch.randint(0, 2, (8,))) for _ in range(n)]
def one_shot(): return (b for b in batches())
loader_msg = 'should be an iterable of batches (xb, yb) to go over each epoch, such as a DataLoader or a list, not an iterator that one epoch uses up, but got '
empty = tud.DataLoader(Dataset(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long)), batch_size=4)

@pytest.mark.parametrize('kw,exc,msg', [
    *[(dict(epochs=v), exc, f'epochs should be a non-negative integer value, but got epochs={v!r}') for v,exc in BAD_INT],
    *[(dict(train_dl=v), TypeError, f'train_dl {loader_msg}train_dl={v!r}') for v in [3, object()]],
    *[(dict(valid_dl=v), TypeError, f'valid_dl {loader_msg}valid_dl={v!r}') for v in [3, object()]],
    (dict(train_dl=iter(batches())), TypeError, f'train_dl {loader_msg}train_dl=<list_iterator'),
    (dict(train_dl=one_shot()), TypeError, f'train_dl {loader_msg}train_dl=<generator'),   # it trained once, then on nothing
    (dict(valid_dl=one_shot()), TypeError, f'valid_dl {loader_msg}valid_dl=<generator'),
    (dict(valid_dl=empty), ValueError, f'valid_dl should yield at least one batch, but got none from {empty!r}'),
])
def test_fit_refuses(kw, exc, msg):
    with raises(exc, msg): fit_with(**kw)

def test_fit_reports_whole_validation_set(capsys):
    model, loss_func, opt, ds = fit_parts()
    train_dl, valid_dl = get_dls(ds, ds, 10)
    loss, acc = fit(2, model, loss_func, opt, train_dl, valid_dl)
    with torch.no_grad(): pred = model(ds.x)
    assert loss == pytest.approx(loss_func(pred, ds.y).item(), rel=1e-5)
    assert acc == pytest.approx(accuracy(pred, ds.y).item(), rel=1e-5)
    assert [l.split()[0] for l in capsys.readouterr().out.splitlines()] == ['0', '1']

def test_fit_trains_on_a_list_of_batches_every_epoch():
    model, loss_func, opt, _ = fit_parts()
    train, seen = batches(), []
    model.register_forward_hook(lambda m, i, o: seen.append(m.training))
    fit(3, model, loss_func, opt, train, batches(1))
    assert seen == ([True]*4 + [False])*3

def test_fit_zero_epochs_is_a_no_op():
    model, loss_func, opt, ds = fit_parts()
    before = [p.clone() for p in model.parameters()]
    assert fit(0, model, loss_func, opt, *get_dls(ds, ds, 8)) is None
    assert all(torch.equal(a, b) for a,b in zip(before, model.parameters()))

# get_dls

@pytest.mark.parametrize('v,exc', [(0, ValueError), *BAD_INT])
def test_get_dls_refuses_bs(v, exc):
    with raises(exc, f'bs should be a positive integer value, but got bs={v!r}'): get_dls(tensor_ds(), tensor_ds(), v)

@pytest.fixture
def notebook(monkeypatch):
    "A `__main__` without a file, as a notebook's: what is defined there (`exec(code, vars(nb))`) spawned workers can't import"
    nb = types.ModuleType('__main__')
    monkeypatch.setitem(sys.modules, '__main__', nb)
    return nb

def test_get_dls_refuses_a_notebook_class_for_spawned_workers(notebook):
    exec('from miniai.training import Dataset\nclass Local(Dataset): pass\ncollate = lambda b: b', vars(notebook))
    ds, ok = notebook.Local(torch.zeros(8, 2), torch.arange(8)), tensor_ds(8)
    for kw,what in ((dict(train_ds=ds, valid_ds=ok), 'train_ds (a Local) needs Local'), (dict(train_ds=ok, valid_ds=ds), 'valid_ds (a Local)'),
                    (dict(train_ds=ok, valid_ds=ok, collate_fn=notebook.collate), "collate_fn (<lambda>) can't be sent")):
        with raises(ValueError, what): get_dls(bs=4, num_workers=1, multiprocessing_context='spawn', **kw)
    for kw in (dict(num_workers=1, multiprocessing_context='fork'), {}): get_dls(ds, ds, 4, **kw)   # a forked worker has it; no worker needs it

def test_get_dls_and_fit_take_any_integral_type(capsys):
    "PyTorch's loaders take only a Python `int`: numpy's integers are converted"
    dls = get_dls(tensor_ds(), tensor_ds(), np.int64(4))
    assert type(dls[0].batch_size) is int and dls[1].batch_size == 8 and len(next(iter(dls[1]))[1]) == 8
    assert fit_with(np.int64(2)) == fit_with(2) and list(BatchSampler(Sampler(range(5)), np.int64(2))) == [[0, 1], [2, 3], [4]]
    assert [yb.tolist() for _,yb in DataLoader(tensor_ds(8), [[0, 1]], n_workers=np.int64(0))] == [[0, 1]]
