"""`miniai.training` (lesson 04's `Dataset`, `accuracy`, `fit`, `get_dls`) and what `miniai.scratch` does beyond the
checks of `miniai.check` (which hold each scratch piece to PyTorch's in tests/test_check.py): tied parameters, flags,
bad input. The scratch `DataLoader`'s workers are tested in tests/test_workers.py."""
import re, subprocess, sys, textwrap
import numpy as np, pytest, torch
import torch.utils.data as tud
import torch.nn.functional as F
from torch import nn, optim
from miniai.training import Dataset, accuracy, fit, get_dls
from miniai.scratch import BatchSampler, DataLoader, Module, Optimizer, Sampler
from helpers import run_as_notebook

def tensor_ds(n=100, d=3):
    x = torch.arange(n*d, dtype=torch.float32).reshape(n, d)
    return Dataset(x, torch.arange(n))

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

@pytest.mark.parametrize('lr,exc', [(0, ValueError), (-0.1, ValueError), (float('nan'), ValueError), (True, TypeError),
                                    ('0.1', TypeError), (None, TypeError)])
def test_optimizer_rejects_bad_lr(lr, exc):
    with pytest.raises(exc, match=re.escape(f'lr should be a positive number, but got lr={lr!r}')):
        Optimizer([torch.zeros(1, requires_grad=True)], lr=lr)

@pytest.mark.parametrize('lr', [1, 0.1, np.float32(0.1), np.int64(1)])
def test_optimizer_takes_any_real_lr(lr):
    p = torch.ones(1, requires_grad=True)
    p.grad = torch.ones(1)
    Optimizer([p], lr=lr).step()
    assert p.item() == pytest.approx(1-float(lr))

# Dataset, samplers and the in-process DataLoader

def test_dataset_lengths_must_match():
    with pytest.raises(ValueError, match=r'len\(x\)=3 and len\(y\)=2'): Dataset(torch.zeros(3), torch.zeros(2))

def test_dataset_empty_list_gives_an_empty_batch():
    x, y = tensor_ds()[[]]   # as PyTorch's TensorDataset gives
    assert x.shape == (0, 3) and y.shape == (0,)

@pytest.mark.parametrize('make', [lambda v: Sampler(range(4), shuffle=v), lambda v: BatchSampler(Sampler(range(4)), 2, drop_last=v)])
@pytest.mark.parametrize('v', ['no', 'False', 0, 1, None])
def test_flags_take_a_bool(make, v):
    with pytest.raises(TypeError, match=re.escape(f'should be True or False, but got') + r' \w+=' + re.escape(repr(v))): make(v)

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
    with pytest.raises(ValueError, match=re.escape(f'yb should hold one class index per row of out, shape (4,), but got shape {tuple(yb.shape)}')):
        accuracy(out, yb)

# fit

def fit_parts(n=64):
    torch.manual_seed(0)
    ds = Dataset(torch.randn(n, 4), torch.randint(0, 2, (n,)))
    model = nn.Sequential(nn.Linear(4, 2))
    return model, F.cross_entropy, optim.SGD(model.parameters(), lr=0.1), ds

def test_fit_reports_whole_validation_set(capsys):
    model, loss_func, opt, ds = fit_parts()
    train_dl, valid_dl = get_dls(ds, ds, 10)
    loss, acc = fit(2, model, loss_func, opt, train_dl, valid_dl)
    with torch.no_grad(): pred = model(ds.x)
    assert loss == pytest.approx(loss_func(pred, ds.y).item(), rel=1e-5)
    assert acc == pytest.approx(accuracy(pred, ds.y).item(), rel=1e-5)
    assert len(capsys.readouterr().out.splitlines()) == 2

def test_fit_empty_validation_loader():
    model, loss_func, opt, ds = fit_parts()
    empty = tud.DataLoader(Dataset(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long)), batch_size=4)
    with pytest.raises(ValueError, match='valid_dl should yield at least one batch'):
        fit(1, model, loss_func, opt, get_dls(ds, ds, 8)[0], empty)

def test_fit_zero_epochs_is_a_no_op():
    model, loss_func, opt, ds = fit_parts()
    before = [p.clone() for p in model.parameters()]
    assert fit(0, model, loss_func, opt, *get_dls(ds, ds, 8)) is None
    assert all(torch.equal(a, b) for a,b in zip(before, model.parameters()))

@pytest.mark.parametrize('which', ['train_dl', 'valid_dl'])
@pytest.mark.parametrize('bad', [None, 3])
def test_fit_needs_loaders(which, bad):
    model, loss_func, opt, ds = fit_parts()
    dls = dict(zip(['train_dl', 'valid_dl'], get_dls(ds, ds, 8))) | {which: bad}
    with pytest.raises(TypeError, match=re.escape(f'{which} should be an iterable of batches (xb, yb), such as a DataLoader, but got {which}={bad!r}')):
        fit(1, model, loss_func, opt, **dls)

# get_dls checks what worker processes would receive (miniai.validate.check_workers, tested there in full)

def test_get_dls_refuses_a_notebook_class_for_spawned_workers():
    code = '''
        import torch
        from miniai.training import Dataset, get_dls
        class Local(Dataset): pass
        ds, ok = Local(torch.zeros(8, 2), torch.arange(8)), Dataset(torch.zeros(8, 2), torch.arange(8))
        for kw in (dict(train_ds=ds, valid_ds=ok), dict(train_ds=ok, valid_ds=ds), dict(train_ds=ok, valid_ds=ok, collate_fn=lambda b: b)):
            try: get_dls(bs=4, num_workers=1, multiprocessing_context='spawn', **kw); print('built')
            except ValueError as e: print(str(e).split(' needs')[0].split(" can't")[0])
        get_dls(ds, ds, 4, num_workers=1, multiprocessing_context='fork'); get_dls(ds, ds, 4); print('fine')
    '''
    res = run_as_notebook(code)
    assert res.stdout.splitlines() == ['train_ds (a Local)', 'valid_ds (a Local)', 'collate_fn (<lambda>)', 'fine'], res.stdout + res.stderr

# each integer argument follows miniai.validate's rule (tested there in full): the wrong kind is a TypeError, a value
# below the smallest allowed a ValueError, any integral type is taken

def fit_with(epochs):
    model, loss_func, opt, ds = fit_parts()
    return fit(epochs, model, loss_func, opt, *get_dls(ds, ds, 16))

INT_ARGS = {  # where: (argument, smallest value allowed, a call that uses the value)
    'BatchSampler': ('bs', 1, lambda v: list(BatchSampler(Sampler(range(10)), v))),
    'DataLoader': ('n_workers', 0, lambda v: list(DataLoader(tensor_ds(8), [[0, 1], [2, 3]], n_workers=v))),
    'fit': ('epochs', 0, fit_with),
    'get_dls': ('bs', 1, lambda v: [next(iter(dl)) for dl in get_dls(tensor_ds(), tensor_ds(), v)]),
}

@pytest.mark.parametrize('where', INT_ARGS)
@pytest.mark.parametrize('v,exc', [('lo-1', ValueError), (2.5, TypeError), (True, TypeError), ('4', TypeError)])
def test_integer_arguments_follow_the_rule(where, v, exc):
    name, lo, call = INT_ARGS[where]
    v = lo-1 if v == 'lo-1' else v
    with pytest.raises(exc, match=re.escape(f'{name} should be a ') + '.*' + re.escape(f'but got {name}={v!r}')): call(v)

@pytest.mark.parametrize('where', INT_ARGS)
def test_integer_arguments_take_any_integral_type(where, capsys):
    name, lo, call = INT_ARGS[where]
    for v in (lo, lo+1): call(np.int64(v))
