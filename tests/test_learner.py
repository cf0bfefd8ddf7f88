"The Learner of lesson 07 (`miniai.learner`): events, callbacks, cancelling, metrics, the LR finder, progress and bad input, all on CPU with small synthetic data."
import collections, math, subprocess, sys
from functools import partial
import pytest
import torch
import torch.nn.functional as F
from torch import nn, optim
from miniai.training import Dataset, DataLoader, accuracy, get_dls
from miniai.datasets import DataLoaders
from miniai.learner import *
from miniai.learner import _events, _steps

class Recorder(Callback):
    "Writes down every event it gets, except the training steps (which `TrainCB` handles)."
    def __init__(self, order=0): self.order, self.evts = order, []
    def __getattr__(self, nm):
        if nm in _events and nm not in _steps: return partial(self.evts.append, nm)
        return super().__getattr__(nm)

def lin_dls(n=10, bs=4, n_valid=None):
    "A linear regression: `y = x @ w`, `n` items, shuffled training loader of `bs`, validation loader of `2*bs`."
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, generator=g)
    ds = Dataset(x, x @ torch.tensor([[1.], [-2.], [0.5]]))
    vds = ds if n_valid is None else Dataset(ds.x[:n_valid], ds.y[:n_valid])
    return DataLoaders(*get_dls(ds, vds, bs))

def learner(cbs=(), dls=None, **kwargs):
    torch.manual_seed(0)
    return Learner(nn.Linear(3, 1), lin_dls() if dls is None else dls, F.mse_loss, cbs=[TrainCB(), *cbs], **kwargs)

train_batch = ['before_batch', 'after_predict', 'after_loss', 'after_backward', 'after_step', 'after_batch', 'cleanup_batch']
valid_batch = ['before_batch', 'after_predict', 'after_loss', 'after_batch', 'cleanup_batch']

def test_event_order_full_fit():
    rec = Recorder()
    learner([rec]).fit(2)   # 10 items: 3 training batches of 4, 4, 2; 2 validation batches of 8, 2
    epoch = ['before_epoch', *train_batch*3, 'after_epoch', 'cleanup_epoch', 'before_epoch', *valid_batch*2, 'after_epoch', 'cleanup_epoch']
    assert rec.evts == ['before_fit', *epoch*2, 'after_fit', 'cleanup_fit']

def test_steps_are_events_and_training_learns():
    calls = collections.Counter()
    class Count(Callback):
        def step(self): calls['step'] += 1
        def zero_grad(self): calls['zero_grad'] += 1
    learn = learner([Count()], lr=0.1)
    learn.fit(1, valid=False)
    assert calls == {'step': 3, 'zero_grad': 3}   # the Count callback runs beside TrainCB's own steps
    with pytest.raises(AttributeError, match='no attribute'): learn.not_a_step

def test_callbacks_sorted_by_order():
    seen = []
    class Note(Callback):
        def __init__(self, order): self.order = order
        def before_fit(self): seen.append(self.order)
    learner([Note(5), Note(-3), Note(0)]).fit(1, train=False, valid=False)
    assert seen == [-3, 0, 5]

def test_callback_without_events_is_valid():
    class Nothing: pass
    learn = learner([Callback(), Nothing()])
    learn.fit(1)
    assert learn.loss.ndim == 0

def test_callbacks_reach_learner_through_getattr():
    class Peek(Callback):
        def after_loss(self): self.seen = (self.epoch, self.iter, self.loss, self.model, self.training)
    cb = Peek()
    learn = learner([cb])
    learn.fit(1, valid=False)
    assert cb.seen[3] is learn.model and cb.seen[:2] == (0, 2) and cb.seen[4]
    with pytest.raises(AttributeError, match='no_such_thing'): cb.no_such_thing
    with pytest.raises(AttributeError, match='model'): Peek().model   # not attached to a learner yet

def _raise_at(exc, event, when=lambda cb: True):
    class Raise(Callback):
        order = 5
        def __getattr__(self, nm):
            if nm==event: return lambda: (_ for _ in ()).throw(exc()) if when(self) else None
            return super().__getattr__(nm)
    return Raise()

def test_cancel_batch():
    rec = Recorder(order=10)
    learn = learner([_raise_at(CancelBatchException, 'after_predict', lambda cb: cb.training and cb.iter==1), rec])
    learn.fit(1)
    i = rec.evts.index('after_cancel_batch')
    # Recorder runs after the raising callback, so it never sees batch 1's after_predict
    assert rec.evts[i-3:i+3] == ['after_batch', 'cleanup_batch', 'before_batch', 'after_cancel_batch', 'cleanup_batch', 'before_batch']
    assert rec.evts.count('after_cancel_batch') == 1
    assert rec.evts.count('after_backward') == 2   # batch 1's backward and step were skipped, batches 0 and 2 trained
    assert rec.evts[-2:] == ['after_fit', 'cleanup_fit'] and 'after_cancel_epoch' not in rec.evts

def test_cancel_epoch():
    rec = Recorder(order=10)
    learner([_raise_at(CancelEpochException, 'after_batch', lambda cb: cb.training), rec]).fit(2)
    # Each training epoch stops after one batch; the validation epochs run in full; the fit ends normally.
    assert rec.evts.count('after_cancel_epoch') == 2
    assert rec.evts.count('after_backward') == 2
    assert rec.evts.count('after_epoch') == 2   # the validation epochs
    assert rec.evts[-2:] == ['after_fit', 'cleanup_fit']

def test_cancel_fit():
    rec = Recorder(order=10)
    learner([_raise_at(CancelFitException, 'before_epoch', lambda cb: cb.epoch==1), rec]).fit(3)
    assert rec.evts[-2:] == ['after_cancel_fit', 'cleanup_fit']
    assert 'after_fit' not in rec.evts
    assert rec.evts.count('cleanup_epoch') == 3   # epoch 0's training and validation, then epoch 1's, cancelled at its start

def test_fit_cbs_removed_even_on_error():
    learn = learner()
    class Boom(Callback):
        def after_loss(self): raise RuntimeError('boom')
    boom, rec = Boom(), Recorder()
    with pytest.raises(RuntimeError, match='boom'): learn.fit(1, cbs=[boom, rec])
    assert boom not in learn.cbs and rec not in learn.cbs and len(learn.cbs) == 1
    assert rec.evts[-3:] == ['cleanup_batch', 'cleanup_epoch', 'cleanup_fit']   # no after_* events, but every cleanup_*
    learn.fit(1, cbs=SingleBatchCB())
    assert len(learn.cbs) == 1

def test_zero_epochs_is_a_noop():
    rec = Recorder()
    learn = learner([rec])
    w = learn.model.weight.clone()
    learn.fit(0)
    assert rec.evts == [] and torch.equal(w, learn.model.weight)

class Fixed(nn.Module):
    "Ignores the input's values: returns the rows of `out` given by the item indices in `x`."
    def __init__(self, out): super().__init__(); self.out, self.w = out, nn.Parameter(torch.zeros(()))
    def forward(self, x): return self.out[x.long().squeeze(1)] + self.w

class CountCorrect:
    "A torcheval-like metric (reset/update/compute), by duck typing."
    def reset(self): self.right, self.n = 0, 0
    def update(self, preds, y): self.right, self.n = self.right+(preds.argmax(1)==y).sum(), self.n+len(y)
    def compute(self): return self.right/self.n

def test_metrics_equal_hand_computation_uneven_last_batch():
    torch.manual_seed(0)
    out, y = torch.randn(7, 4), torch.tensor([0, 1, 2, 3, 0, 3, 3])
    ds = Dataset(torch.arange(7.)[:, None], y)
    dls = DataLoaders(DataLoader(ds, batch_size=5), DataLoader(ds, batch_size=5))   # batches of 5 and 2
    def top_score(preds, y): return preds.max(1).values.mean()
    mcb = MetricsCB(accuracy, top_score, counted=CountCorrect())
    Learner(Fixed(out), dls, F.cross_entropy, cbs=[TrainCB(), mcb]).fit(1, train=False)
    log = mcb.log[0]
    assert list(log) == ['epoch', 'train', 'loss', 'accuracy', 'top_score', 'counted']
    assert log['epoch'] == 0 and log['train'] == 'eval'
    assert log['loss'] == pytest.approx(F.cross_entropy(out, y).item(), rel=1e-6)   # the mean over all 7 items
    acc = (out.argmax(1)==y).float().mean().item()
    assert log['accuracy'] == pytest.approx(acc) and log['counted'] == pytest.approx(acc)
    assert log['top_score'] == pytest.approx(out.max(1).values.mean().item(), rel=1e-6)
    # an unweighted mean of the two batch means would differ
    unweighted = (F.cross_entropy(out[:5], y[:5]) + F.cross_entropy(out[5:], y[5:])).item()/2
    assert abs(unweighted - log['loss']) > 1e-3

def test_metrics_per_epoch_train_and_valid(capsys):
    mcb = MetricsCB()
    learner([mcb]).fit(2)
    assert [(d['epoch'], d['train']) for d in mcb.log] == [(0, 'train'), (0, 'eval'), (1, 'train'), (1, 'eval')]
    assert capsys.readouterr().out.count('loss: ') == 4   # printed without a ProgressCB
    with pytest.raises(ValueError, match="'loss'"): MetricsCB(loss=accuracy)

def test_to_device_nested():
    Point = collections.namedtuple('Point', 'x y')
    b = {'a': [torch.ones(2), (torch.zeros(1), 'text')], 'p': Point(torch.ones(1), 3), 'n': None}
    r = to_device(b, 'cpu')
    assert type(r) is dict and type(r['a']) is list and type(r['a'][1]) is tuple and type(r['p']) is Point
    assert torch.equal(r['a'][0], torch.ones(2)) and r['a'][1][1] == 'text' and r['p'].y == 3 and r['n'] is None
    r = to_device(b, 'meta')   # a real move to another device, with no GPU
    assert r['a'][0].device.type == 'meta' and r['p'].x.device.type == 'meta' and r['a'][1][1] == 'text'

def test_device_cb_trains_on_cpu():
    learn = learner([DeviceCB('cpu'), MetricsCB()])
    learn.fit(1)
    assert def_device in ('cuda', 'cpu') and learn.batch[0].device.type == 'cpu'

def test_lr_finder_stops_on_divergence_and_restores():
    dls = lin_dls(n=64, bs=4)   # 16 batches an epoch; from 1e-4 growing 1.5x each batch, SGD diverges within ~25 batches
    learn = learner(dls=dls, lr=0.01)
    learn.model.train(False)
    w = {k: v.clone() for k,v in learn.model.state_dict().items()}
    rng = torch.get_rng_state()
    cb = learn.lr_find(start_lr=1e-4, end_lr=1e6, gamma=1.5, plot=False)
    assert len(cb.lrs) == len(cb.losses) and cb.lrs[0] == pytest.approx(1e-4) and cb.lrs[1] == pytest.approx(1.5e-4)
    assert cb.losses[-1] > 3*min(cb.losses) or not math.isfinite(cb.losses[-1])   # stopped by divergence ...
    assert cb.lrs[-1] < 1e6 and len(cb.lrs) < 40                                   # ... long before the end of the range
    assert all(torch.equal(v, w[k]) for k,v in learn.model.state_dict().items())
    assert not learn.model.training and torch.equal(torch.get_rng_state(), rng)
    assert cb not in learn.cbs and learn.lr == 0.01
    mcb = MetricsCB()
    learn.fit(2, cbs=mcb)   # still usable: trains to a lower loss
    assert mcb.log[-1]['loss'] < mcb.log[0]['loss']

def test_lr_finder_stops_at_end_of_range():
    ds = Dataset(torch.ones(8, 3), torch.zeros(8, 1))   # every batch alike, so the loss only falls at these tiny rates
    learn = learner(dls=DataLoaders(*get_dls(ds, ds, 4)))   # 2 batches an epoch, so the finder needs several epochs
    cb = learn.lr_find(start_lr=1e-6, end_lr=1e-5, gamma=1.3, plot=False)
    assert cb.lrs[-1] >= 1e-5 and cb.lrs[-2] < 1e-5 and len(cb.lrs) == 10
    ax = cb.plot()
    assert ax.get_xscale() == 'log' and len(ax.lines[0].get_xdata()) == 10

def test_single_batch_cb():
    rec = Recorder()
    learn = learner()
    learn.fit(3, cbs=[SingleBatchCB(), rec])
    assert rec.evts.count('before_batch') == 1 and rec.evts[-2:] == ['after_cancel_fit', 'cleanup_fit']
    assert learn.preds.shape == (4, 1)

def test_progress_headless():
    code = """
import torch, torch.nn.functional as F
from torch import nn
from miniai.training import Dataset, get_dls
from miniai.datasets import DataLoaders
from miniai.learner import *
x = torch.randn(40, 3)
dls = DataLoaders(*get_dls(Dataset(x, x.sum(1, keepdim=True)), Dataset(x, x.sum(1, keepdim=True)), 8))
mcb, pcb = MetricsCB(), ProgressCB(plot=True)
learn = Learner(nn.Linear(3, 1), dls, F.mse_loss, cbs=[TrainCB(), DeviceCB(), mcb, pcb])
learn.fit(2)
print('FIT1')
assert len(pcb.losses) == 10 and len(pcb.val_losses) == 2 and len(mcb.log) == 4
learn.fit(1, cbs=SingleBatchCB())
learn.lr_find(plot=True)
print('DONE')
"""
    env = {'MPLBACKEND': 'Agg', 'PATH': '/usr/bin:/bin', 'HOME': '/tmp'}   # no DISPLAY, no notebook
    res = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.rstrip().endswith('DONE')
    out = res.stdout.split('FIT1')[0]
    lines = [l.split('\r')[-1].split() for l in out.splitlines()]
    table = [l for l in lines if l and l[-2:-1] and l[0] in ('epoch', '0', '1')]
    assert ['epoch', 'train', 'loss'] in [l[-3:] for l in table]
    assert [l[-3:-1] for l in table if l[-3] in ('0', '1')] == [['0', 'train'], ['0', 'eval'], ['1', 'train'], ['1', 'eval']]

def test_bad_inputs():
    learn = learner()
    with pytest.raises(ValueError, match=r'n_epochs=-1'): learn.fit(-1)
    with pytest.raises(ValueError, match=r'n_epochs=1\.5'): learn.fit(1.5)
    for lr in (0, -0.1, float('nan')):
        with pytest.raises(ValueError, match=rf'lr={lr!r}'): Learner(nn.Linear(3, 1), lin_dls(), lr=lr)
        with pytest.raises(ValueError, match=rf'lr={lr!r}'): learn.fit(1, lr=lr)
    with pytest.raises(TypeError, match=r'tuple without train or valid'): Learner(nn.Linear(3, 1), (0,))
    with pytest.raises(TypeError, match=r'without valid'):
        Learner(nn.Linear(3, 1), type('OnlyTrain', (), {'train': []})())
    with pytest.raises(TypeError, match=r'class TrainCB: pass TrainCB\(\) instead'): Learner(nn.Linear(3, 1), lin_dls(), cbs=[TrainCB])
    with pytest.raises(TypeError, match=r'class SingleBatchCB'): learn.fit(1, cbs=SingleBatchCB)
    assert len(learn.cbs) == 1
    with pytest.raises(ValueError, match=r'end_lr=1e-06'): learn.lr_find(start_lr=1e-5, end_lr=1e-6)
    with pytest.raises(ValueError, match=r'gamma=1'): learn.lr_find(gamma=1)

def test_docments_on_exports():
    import inspect
    import miniai.learner as m
    from fastcore.docments import docments
    for nm in m.__all__:
        o = getattr(m, nm)
        if isinstance(o, type) and issubclass(o, Exception): assert o.__doc__ != Exception.__doc__, nm
        if not callable(o) or isinstance(o, type) and issubclass(o, Exception): continue
        assert inspect.getdoc(o), nm
        f = o.__init__ if isinstance(o, type) else o
        if f is object.__init__: continue
        d = docments(f, full=True, args_kwargs=True)
        missing = [k for k,v in d.items() if k not in ('self', 'return') and not v['docment']]
        assert not missing, (nm, missing)
    for f in (m.Learner.fit, m.Learner.one_epoch, m.Learner.callback, m.Learner.lr_find):
        d = docments(f, full=True, args_kwargs=True)
        assert inspect.getdoc(f) and not [k for k,v in d.items() if k not in ('self', 'return') and not v['docment']], f
    assert docments(m.to_device, full=True)['return']['docment'] and docments(m.Learner.lr_find, full=True)['return']['docment']
