"miniai.scratch held to PyTorch's behaviour, and the bad inputs of miniai.training and miniai.scratch."
import multiprocessing, os, re, pytest, torch
import numpy as np
from concurrent.futures.process import BrokenProcessPool
from hypothesis import given, settings, strategies as st
from torch import nn, optim
import torch.utils.data as tud
import torch.nn.functional as F
from miniai.training import Dataset, fit, get_dls, accuracy
from miniai.scratch import Module, SequentialModel, Optimizer, Sampler, BatchSampler, collate, DataLoader
from miniai.scratch import log_softmax, nll

def tensor_ds(n=100, d=3):
    x = torch.arange(n*d, dtype=torch.float32).reshape(n, d)
    return Dataset(x, torch.arange(n))

# samplers and batch samplers against PyTorch's

@given(n=st.integers(0, 300))
def test_sampler_in_order_like_sequential(n):
    assert list(Sampler(range(n))) == list(tud.SequentialSampler(range(n)))
    assert len(Sampler(range(n))) == n

@given(n=st.integers(1, 300))
@settings(max_examples=30)
def test_shuffled_sampler_every_index_once(n):
    assert sorted(Sampler(range(n), shuffle=True)) == list(range(n))

def test_shuffled_sampler_new_order_each_epoch_and_seeded():
    s = Sampler(range(1000), shuffle=True)
    torch.manual_seed(0); a,b = list(s),list(s)
    assert a != b and sorted(a) == sorted(b) == list(range(1000))
    torch.manual_seed(0)
    assert list(s) == a

@given(n=st.integers(0, 200), bs=st.integers(1, 50), drop_last=st.booleans(), shuffle=st.booleans())
def test_batch_sampler_like_pytorch(n, bs, drop_last, shuffle):
    ours = BatchSampler(Sampler(range(n), shuffle), bs, drop_last)
    theirs = tud.BatchSampler(tud.SequentialSampler(range(n)), bs, drop_last)
    batches = list(ours)
    assert len(ours) == len(theirs) == len(batches)
    if not shuffle: assert batches == list(theirs)
    assert [len(b) for b in batches] == [len(b) for b in theirs]  # full batches, then the short one unless dropped
    flat = [i for b in batches for i in b]
    assert len(set(flat)) == len(flat)
    if not drop_last: assert sorted(flat) == list(range(n))

# collate, Module, Optimizer

def test_collate_equals_default_collate():
    ds = tensor_ds()
    items = [ds[i] for i in (5, 1, 7)]
    ours, theirs = collate(items), tud.default_collate(items)
    assert isinstance(ours, tuple) and len(ours) == len(theirs) == 2
    for a,b in zip(ours, theirs): assert torch.equal(a, b)
    x3 = [(torch.ones(2), torch.tensor(1), torch.zeros(3)) for _ in range(4)]
    assert all(torch.equal(a, b) for a,b in zip(collate(x3), tud.default_collate(x3)))

def test_module_registers_same_parameters_as_nn_module():
    class Ours(Module):
        def __init__(self):
            super().__init__()
            self.l1, self.l2, self.n, self._hidden = nn.Linear(4, 3), nn.Linear(3, 2), 5, nn.Linear(2, 2)
        def forward(self, x): return self.l2(F.relu(self.l1(x)))
    class Theirs(nn.Module):
        def __init__(self, o):
            super().__init__()
            self.l1, self.l2 = o.l1, o.l2
        def forward(self, x): return self.l2(F.relu(self.l1(x)))
    o = Ours()
    t = Theirs(o)
    assert [p is q for p,q in zip(o.parameters(), t.parameters())] == [True]*4
    assert len(list(o.parameters())) == len(list(t.parameters())) == 4
    assert list(o._modules) == ['l1', 'l2']
    x = torch.randn(5, 4)
    assert torch.equal(o(x), t(x))
    assert 'l1' in repr(o) and 'Linear(in_features=4' in repr(o)

def test_nested_module_parameters():
    class Inner(Module):
        def __init__(self): super().__init__(); self.lin = nn.Linear(2, 2)
    class Outer(Module):
        def __init__(self): super().__init__(); self.inner, self.head = Inner(), nn.Linear(2, 1)
    assert len(list(Outer().parameters())) == 4
    assert '(inner): Inner(' in repr(Outer())

def test_sequential_model_matches_nn_sequential():
    layers = [nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)]
    x = torch.randn(6, 4)
    assert torch.equal(SequentialModel(*layers)(x), nn.Sequential(*layers)(x))

def test_optimizer_step_equals_sgd():
    torch.manual_seed(0)
    a = [torch.randn(3, 4, requires_grad=True), torch.randn(4, requires_grad=True)]
    b = [p.detach().clone().requires_grad_() for p in a]
    for pa,pb in zip(a, b): pa.grad = pb.grad = torch.randn_like(pa)
    opt, sgd = Optimizer(a, lr=0.1), optim.SGD(b, lr=0.1)
    opt.step(); sgd.step()
    for pa,pb in zip(a, b): assert torch.allclose(pa, pb)
    opt.zero_grad(); sgd.zero_grad()
    assert all(p.grad is None for p in a + b)

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

def test_loss_pieces_match_pytorch():
    x, y = torch.randn(8, 5)*50, torch.randint(0, 5, (8,))
    assert torch.allclose(log_softmax(x), F.log_softmax(x, -1), atol=1e-5)
    assert torch.allclose(nll(log_softmax(x), y), F.cross_entropy(x, y))

# Dataset and the DataLoaders

def test_dataset_lengths_must_match():
    with pytest.raises(ValueError, match=r'len\(x\)=3 and len\(y\)=2'): Dataset(torch.zeros(3), torch.zeros(2))

def test_dataset_indexing():
    ds = tensor_ds()
    x, y = ds[[3, 6, 8]]
    assert x.shape == (3, 3) and y.tolist() == [3, 6, 8] and len(ds) == 100
    x, y = ds[[]]   # an empty batch, as PyTorch's TensorDataset gives
    assert x.shape == (0, 3) and y.shape == (0,)

@pytest.mark.parametrize('collate_fn', [collate, None])
def test_multiprocessing_loader_same_batches(collate_fn):
    ds = tensor_ds(203)
    batchs = list(BatchSampler(Sampler(ds, shuffle=True), 16))
    one = list(DataLoader(ds, batchs, collate_fn=collate_fn))
    two = list(DataLoader(ds, batchs, n_workers=2, collate_fn=collate_fn))
    assert len(one) == len(two) == 13
    for (xa,ya),(xb,yb) in zip(one, two): assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert not multiprocessing.active_children()

def test_loader_len_and_per_item_equals_precollated():
    ds = tensor_ds(50)
    batchs = BatchSampler(Sampler(ds), 8)
    dl = DataLoader(ds, batchs)
    assert len(dl) == 7
    for (xa,ya),(xb,yb) in zip(dl, DataLoader(ds, batchs, collate_fn=None)):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)

class Failing(Dataset):
    def __getitem__(self, i):
        if 13 in (i if isinstance(i, list) else [i]): raise KeyError(f'item 13 is broken')
        return super().__getitem__(i)

@pytest.mark.timeout(60)
@pytest.mark.parametrize('collate_fn', [collate, None])
def test_worker_exception_reaches_caller_and_workers_end(collate_fn):
    ds = Failing(torch.zeros(40, 2), torch.zeros(40))
    dl = DataLoader(ds, BatchSampler(Sampler(ds), 4), n_workers=2, collate_fn=collate_fn)
    with pytest.raises(KeyError, match='item 13 is broken'): list(dl)
    assert not multiprocessing.active_children()

def test_stopping_early_ends_workers():
    ds = tensor_ds(100)
    it = iter(DataLoader(ds, BatchSampler(Sampler(ds), 4), n_workers=2))
    next(it)
    assert multiprocessing.active_children()
    it.close()
    assert not multiprocessing.active_children()

class Counted(list):
    "Batches of indices that count how many of them have been handed out so far."
    def __iter__(self):
        self.handed = 0
        for b in super().__iter__():
            self.handed += 1
            yield b

@pytest.mark.parametrize('n_workers', [1, 2])
def test_loader_keeps_at_most_2_n_workers_batches_in_flight(n_workers):
    ds = tensor_ds(200)
    batchs = Counted([[i, i+1] for i in range(0, 200, 2)])
    for k,(xb,yb) in enumerate(DataLoader(ds, batchs, n_workers=n_workers), 1):
        assert batchs.handed <= k-1 + 2*n_workers, f"{batchs.handed} batches handed out when batch {k} was yielded"
        assert yb.tolist() == [2*k-2, 2*k-1]
    assert k == 100

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

class Dying(Dataset):
    def __getitem__(self, i):
        if 13 in (i if isinstance(i, list) else [i]): os._exit(1)  # a worker killed, e.g. for memory
        return super().__getitem__(i)

@pytest.mark.timeout(60)
def test_dead_worker_raises_instead_of_hanging():
    ds = Dying(torch.zeros(40, 2), torch.zeros(40))
    with pytest.raises(BrokenProcessPool): list(DataLoader(ds, BatchSampler(Sampler(ds), 4), n_workers=2))
    assert not multiprocessing.active_children()

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
