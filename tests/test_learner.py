"""The Learner of lesson 09 (`miniai.learner`), row by row against the course's final API: signatures, attributes,
events, callbacks, cancelling, metrics, the device, progress, the LR finder and bad input. CPU, small synthetic data."""
import collections, inspect, math, re, warnings
from contextlib import contextmanager
from copy import deepcopy
from functools import partial
from pathlib import Path
import pytest
import torch
import torch.nn.functional as F
import fastcore.all as fc
from hypothesis import given, settings, strategies as st
from torch import nn, optim
from miniai.training import Dataset, DataLoader, accuracy, get_dls
from miniai.datasets import DataLoaders
from miniai.learner import *
try: import torcheval.metrics as tm
except ImportError: tm = None
needs_torcheval = pytest.mark.skipif(tm is None, reason="torcheval is not installed (pip install torcheval)")

root = Path(__file__).resolve().parent.parent

@pytest.fixture(autouse=True)
def _one_thread():
    "One thread: tiny models on two busy cores run many times slower with two."
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
EVENTS = [f'{p}_{s}' for p in ('before', 'after', 'cleanup') for s in ('fit', 'epoch', 'batch')]
EVENTS += ['after_predict', 'after_loss', 'after_backward', 'after_step']

class Recorder(Callback):
    "Writes down every event it gets, with the learner it was given."
    def __init__(self, order=0): self.order,self.evts,self.learns = order,[],set()
    def __getattr__(self, nm):
        if nm not in EVENTS: raise AttributeError(nm)
        def _f(learn):
            self.evts.append(nm)
            self.learns.add(id(learn))
        return _f

def lin_dls(n=10, bs=4, seed=0):
    "A linear regression `y = x @ w`: `n` items, a shuffled training loader of `bs`, a validation loader of `2*bs`."
    x = torch.randn(n, 3, generator=torch.Generator().manual_seed(seed))
    ds = Dataset(x, x @ torch.tensor([[1.], [-2.], [0.5]]))
    return DataLoaders(*get_dls(ds, ds, bs))

def learner(cbs=(), dls=None, cls=Learner, **kwargs):
    torch.manual_seed(0)
    cbs = list(cbs) if cls is not Learner else [TrainCB(), *cbs]
    return cls(nn.Linear(3, 1), lin_dls() if dls is None else dls, F.mse_loss, cbs=cbs, **kwargs)

def raiser(exc, event, when=lambda learn: True, order=5):
    "A callback that raises `exc` at `event` when `when(learn)`."
    def _f(self, learn):
        if when(learn): raise exc()
    return type('Raise', (Callback,), {'order': order, event: _f})()

valid_batch = ['before_batch', 'after_predict', 'after_loss', 'after_batch', 'cleanup_batch']
train_batch = [*valid_batch[:3], 'after_backward', 'after_step', *valid_batch[3:]]

# The API table, row by row

def _sig(f): return {k: p.default for k,p in inspect.signature(f).parameters.items() if k!='self'}
E = inspect.Parameter.empty

def test_signatures_match_the_course():
    assert _sig(Learner) == dict(model=E, dls=(0,), loss_func=F.mse_loss, lr=0.1, cbs=None, opt_func=optim.SGD)
    assert _sig(Learner.fit) == dict(n_epochs=1, train=True, valid=True, cbs=None, lr=None)
    assert _sig(MomentumLearner) == dict(model=E, dls=E, loss_func=E, lr=None, cbs=None, opt_func=optim.SGD, mom=0.85)
    assert _sig(TrainLearner) == _sig(Learner)
    assert _sig(TrainCB) == dict(n_inp=1) and _sig(DeviceCB) == dict(device=None)
    assert list(_sig(MetricsCB)) == ['ms', 'metrics'] and _sig(ProgressCB) == dict(plot=False)
    assert _sig(LRFinderCB) == dict(gamma=1.3, max_mult=3)
    assert _sig(Learner.lr_find) == dict(gamma=1.3, max_mult=3, start_lr=1e-5, max_epochs=10)
    assert _sig(run_cbs) == dict(cbs=E, method_nm=E, learn=None) and list(_sig(with_cbs)) == ['nm']
    assert list(_sig(to_cpu)) == ['x'] and Callback.order == 0 and SingleBatchCB.order == 1
    assert ProgressCB.order == MetricsCB.order+1 and DeviceCB.order < TrainCB.order < ProgressCB.order < LRFinderCB.order
    assert isinstance(Learner.training, property)

def test_learner_attributes_after_fit():
    opt_func = lambda params, lr: optim.SGD(params, lr)
    cb = TrainCB()
    learn = Learner(nn.Linear(3, 1), lin_dls(), F.l1_loss, lr=0.3, cbs=cb, opt_func=opt_func)
    assert (learn.loss_func, learn.lr, learn.opt_func) == (F.l1_loss, 0.3, opt_func)
    assert isinstance(learn.cbs, fc.L) and list(learn.cbs) == [cb]
    learn.fit(2)
    assert isinstance(learn.opt, optim.SGD) and learn.opt.param_groups[0]['lr'] == 0.3
    assert learn.n_epochs == 2 and learn.epochs == range(2) and learn.epoch == 1
    assert learn.iter == 1 and learn.dl is learn.dls.valid   # the last batch: validation, batches of 8 and 2
    assert learn.batch[0].shape == (2, 3) and learn.preds.shape == (2, 1) and learn.loss.ndim == 0
    learn.model.train(); assert learn.training
    learn.model.eval(); assert not learn.training

def test_event_order_and_every_method_gets_the_learner():
    rec = Recorder()
    learn = learner([rec])
    learn.fit(2)   # 10 items: training batches of 4, 4, 2; validation batches of 8, 2
    end = ['after_epoch', 'cleanup_epoch']
    epoch = ['before_epoch', *train_batch*3, *end, 'before_epoch', *valid_batch*2, *end]
    assert rec.evts == ['before_fit', *epoch*2, 'after_fit', 'cleanup_fit']
    assert rec.learns == {id(learn)}

def test_run_cbs_sorts_by_order_and_skips_missing_methods():
    seen = []
    class Note(Callback):
        def __init__(self, order): self.order = order
        def before_fit(self, learn): seen.append((self.order, learn))
    run_cbs([Note(5), Note(-3), Callback(), Note(0)], 'before_fit', 'L')
    assert seen == [(-3, 'L'), (0, 'L'), (5, 'L')]
    run_cbs([Note(1)], 'before_fit')
    assert seen[-1] == (1, None)

def test_fit_flags_and_validation_without_grad():
    seen = []
    class Probe(Callback):
        def after_loss(self, learn):
            seen.append((learn.training, learn.model.training, torch.is_grad_enabled(), learn.dl is learn.dls.train))
    learner([Probe()]).fit(1)
    assert seen == [(True, True, True, True)]*3 + [(False, False, False, False)]*2
    seen.clear(); learner([Probe()]).fit(2, train=False)
    assert seen == [(False, False, False, False)]*4
    seen.clear(); learner([Probe()]).fit(1, valid=False)
    assert len(seen) == 3 and all(s[0] for s in seen)

def test_fit_builds_the_optimizer_from_opt_func_and_lr():
    lrs = []
    def opt_func(params, lr): lrs.append(lr); return optim.SGD(params, lr)
    learn = learner(lr=0.2, opt_func=opt_func)
    learn.fit(1); learn.fit(1, lr=0.05); learn.fit(1)
    assert lrs == [0.2, 0.05, 0.2]   # fit's lr is for that fit only
    learn = learner(lr=None, opt_func=opt_func)
    learn.fit(1, lr=0.3)
    assert lrs[-1] == 0.3
    learn.fit(1, train=False)   # no lr, no training: no optimizer built, nothing fails
    assert lrs[-1] == 0.3
    learn = learner(opt_func=None)
    w = learn.model.weight.clone()
    learn.opt = optim.SGD(learn.model.parameters(), 0.1)   # an optimizer kept across fits
    opt = learn.opt
    learn.fit(1)
    assert learn.opt is opt and not torch.equal(learn.model.weight, w)

def test_fit_cbs_added_for_the_fit_and_removed_even_on_error():
    learn = learner()
    class Boom(Callback):
        def after_loss(self, learn): raise RuntimeError('boom')
    boom, rec = Boom(), Recorder()
    with pytest.raises(RuntimeError, match='boom'): learn.fit(1, cbs=[boom, rec])
    assert len(learn.cbs) == 1 and isinstance(learn.cbs[0], TrainCB)
    assert rec.evts[-3:] == ['cleanup_batch', 'cleanup_epoch', 'cleanup_fit']   # no after_* events, but every cleanup_*
    learn.fit(1, cbs=SingleBatchCB())
    assert len(learn.cbs) == 1

def test_zero_epochs_runs_only_the_fit_events():
    rec = Recorder()
    learn = learner([rec])
    w = learn.model.weight.clone()
    learn.fit(0)
    assert rec.evts == ['before_fit', 'after_fit', 'cleanup_fit'] and torch.equal(w, learn.model.weight)

# Cancelling

def test_cancel_batch_ends_only_that_batch():
    rec = Recorder(order=10)
    learner([raiser(CancelBatchException, 'after_predict', lambda l: l.training and l.iter==1), rec]).fit(1)
    i = rec.evts.index('before_batch', rec.evts.index('cleanup_batch'))   # batch 1
    assert rec.evts[i:i+3] == ['before_batch', 'cleanup_batch', 'before_batch']   # its other events skipped
    assert rec.evts.count('after_backward') == 2 and rec.evts.count('after_batch') == 4
    assert rec.evts[-2:] == ['after_fit', 'cleanup_fit'] and rec.evts.count('after_epoch') == 2

def test_cancel_epoch_ends_only_that_epoch():
    rec = Recorder(order=10)
    learner([raiser(CancelEpochException, 'after_batch', lambda l: l.training), rec]).fit(2)
    # Each training epoch stops after one batch; the validation epochs run in full; the fit ends normally.
    assert rec.evts.count('after_backward') == 2 and rec.evts.count('cleanup_epoch') == 4
    assert rec.evts.count('after_epoch') == 2 and rec.evts[-2:] == ['after_fit', 'cleanup_fit']

def test_cancel_fit_ends_the_fit():
    rec = Recorder(order=10)
    learner([raiser(CancelFitException, 'before_epoch', lambda l: l.epoch==1), rec]).fit(3)
    assert rec.evts[-1] == 'cleanup_fit' and 'after_fit' not in rec.evts
    assert rec.evts.count('cleanup_epoch') == 3   # epoch 0's training and validation, then epoch 1's, cancelled

def test_single_batch_cb():
    rec = Recorder()
    learn = learner()
    learn.fit(3, cbs=[SingleBatchCB(), rec])
    assert rec.evts.count('before_batch') == 1 and rec.evts.count('after_batch') == 1   # order 1: others see the batch
    assert rec.evts[-2:] == ['cleanup_epoch', 'cleanup_fit'] and learn.preds.shape == (4, 1)

class Stage:
    "A stand-in for a learner: callbacks, `callback`, and one stage, a batch."
    def __init__(self, *cbs): self.cbs = [Recorder(), *cbs]
    def callback(self, nm): run_cbs(self.cbs, nm, self)
    @with_cbs('batch')
    def run(self, exc=None):
        "Docstring kept"
        if exc: raise exc()

def test_with_cbs_catches_only_its_level():
    o = Stage(); o.run(); assert o.cbs[0].evts == ['before_batch', 'after_batch', 'cleanup_batch']
    o = Stage(); o.run(CancelBatchException); assert o.cbs[0].evts == ['before_batch', 'cleanup_batch']
    for exc in (CancelEpochException, CancelFitException, KeyError, KeyboardInterrupt):
        o = Stage()
        with pytest.raises(exc): o.run(exc)
        assert o.cbs[0].evts == ['before_batch', 'cleanup_batch']
    assert Stage.run.__doc__ == 'Docstring kept'

# Cleanup: every cleanup runs, and the error you see is the first real one

def cleaner(nm, order, exc=RuntimeError):
    "A callback whose `cleanup_{nm}` raises `exc(nm)` and then writes down that it ran."
    def _f(self, learn): self.ran = True; raise exc(f'{nm} {order}')
    return type(f'Clean{order}', (Callback,), {'order': order, 'ran': False, f'cleanup_{nm}': _f})()

@contextmanager
def raises(exc):
    "`pytest.raises(exc)`, also collecting what the cleanups reported: notes on the error, or warnings before Python 3.11."
    with warnings.catch_warnings(record=True) as ws, pytest.raises(exc) as e:
        warnings.simplefilter('always'); yield e
    e.notes = '\n'.join([*getattr(e.value, '__notes__', []), *(str(w.message) for w in ws if w.category is RuntimeWarning)])

def test_every_cleanup_runs_and_the_first_error_goes_up_with_the_others_as_notes():
    rec = Recorder(order=10)
    a, b = cleaner('fit', -5), cleaner('fit', 5)
    learn = learner([rec])
    with raises(RuntimeError) as e: learn.fit(1, cbs=[a, b])
    assert str(e.value) == 'fit -5' and a.ran and b.ran and rec.evts[-1] == 'cleanup_fit'   # b and the recorder still cleaned up after a failed
    assert 'Clean5.cleanup_fit raised too' in e.notes and 'RuntimeError: fit 5' in e.notes
    assert len(learn.cbs) == 2   # the fit's callbacks removed

def test_the_stage_error_stays_the_one_you_see():
    "An error in the fit goes on up as it is; the cleanups' failures ride on it as notes, for every stage on the way."
    a, b = cleaner('batch', -5), cleaner('fit', 5)
    learn = learner([a, b, raiser(ZeroDivisionError, 'after_loss')])
    with raises(ZeroDivisionError) as e: learn.fit(1)
    assert e.value.__context__ is None and a.ran and b.ran
    assert 'Clean-5.cleanup_batch raised too' in e.notes and 'Clean5.cleanup_fit raised too' in e.notes
    with raises(KeyboardInterrupt) as e: learner([cleaner('fit', 0), raiser(KeyboardInterrupt, 'before_epoch')]).fit(1)
    assert 'RuntimeError: fit 0' in e.notes   # Ctrl-C stays Ctrl-C

def test_a_cleanup_error_during_a_cancel_is_raised():
    "A cancel exception is control flow: a cleanup error on its way is raised, not hidden on it and then swallowed by `fit`."
    for nm in ('batch', 'epoch'):
        with pytest.raises(RuntimeError) as e: learner([cleaner(nm, 0), SingleBatchCB()]).fit(1)
        assert str(e.value) == f'{nm} 0' and isinstance(e.value.__context__, CancelFitException)

def test_cleanup_errors_become_warnings_without_notes():
    "Before Python 3.11 exceptions have no `add_note`: the later cleanup errors are reported as warnings instead."
    class NoNotes(Exception): add_note = property()   # `hasattr` says no, as on Python 3.10
    with pytest.warns(RuntimeWarning, match=r'Clean5.cleanup_fit raised too:\n(.|\n)*RuntimeError: fit 5'):
        with pytest.raises(NoNotes): learner([cleaner('fit', 5), raiser(NoNotes, 'before_fit')]).fit(1)

def test_progress_cb_cleans_up_after_an_earlier_before_fit_raises():
    "The course's `ProgressCB` then failed with `AttributeError: ... 'done'`, hiding the real exception."
    for exc in (RuntimeError, KeyboardInterrupt):
        mcb, pcb = MetricsCB(), ProgressCB()
        with raises(exc) as e: learner([raiser(exc, 'before_fit', order=-5), mcb, pcb]).fit(1)
        assert not e.notes and '_log' not in vars(mcb)
    mcb, pcb = MetricsCB(), ProgressCB()
    learn = learner([mcb, pcb])
    learn.fit(1, cbs=raiser(CancelFitException, 'before_fit', order=-5))   # cancelled before the bars: nothing to close
    learn.fit(1)
    with pytest.raises(RuntimeError, match='again'):   # after a fit of its own, ProgressCB doesn't close that one's bars twice
        learn.fit(1, cbs=raiser(lambda: RuntimeError('again'), 'before_fit', order=-5))
    assert len(mcb.log) == 2 and '_log' not in vars(mcb)

def test_a_cleanup_failure_leaves_the_finder_and_the_progress_bar_cleaned_up():
    mcb, pcb, lrf = MetricsCB(), ProgressCB(), LRFinderCB(gamma=2)
    learn = learner([cleaner('fit', -5), mcb, pcb], dls=lin_dls(n=64, bs=4))
    w = deepcopy(learn.model.state_dict())
    with pytest.raises(RuntimeError, match='fit -5'): learn.fit(3, lr=1e-3, cbs=lrf)
    assert all(torch.equal(v, w[k]) for k,v in learn.model.state_dict().items()) and lrf.lrs
    assert '_log' not in vars(mcb)

@pytest.mark.parametrize('exc,event', [(CancelEpochException, 'before_fit'), (CancelBatchException, 'before_epoch'),
                                       (CancelBatchException, 'after_fit'), (CancelFitException, 'cleanup_fit'),
                                       (CancelEpochException, 'cleanup_epoch'), (CancelBatchException, 'cleanup_batch')])
def test_a_cancel_exception_outside_its_stage_is_named(exc, event):
    "Raised where there is nothing of its level to cancel, it leaves `fit` as a RuntimeError that names it."
    nm = exc.__name__[6:-9].lower()
    rec = Recorder(order=10)
    with pytest.raises(RuntimeError, match=rf'^{exc.__name__} was raised outside any {nm}: raise it between before_{nm} and after_{nm}$') as e:
        learner([raiser(exc, event), rec]).fit(1)
    assert isinstance(e.value.__cause__, exc) and rec.evts[-1] == 'cleanup_fit'

# The training steps

def test_steps_come_from_callbacks_and_run_in_order():
    calls = []
    class Count(Callback):
        def step(self, learn): calls.append('step')
        def zero_grad(self, learn): calls.append('zero_grad')
    learner([Count()]).fit(1, valid=False)
    assert calls == ['step', 'zero_grad']*3   # beside TrainCB's own steps
    with pytest.raises(AttributeError, match="'Learner' object has no attribute 'not_a_step'"): learner().not_a_step

def _fit_weights(cls, cbs=(), **kwargs):
    learn = learner(cbs, cls=cls, **kwargs)
    learn.fit(2)
    return [p.detach().clone() for p in learn.model.parameters()]

def test_train_learner_equals_learner_with_train_cb():
    assert all(torch.equal(a, b) for a,b in zip(_fit_weights(Learner), _fit_weights(TrainLearner)))

def test_train_cb_n_inp():
    class Add(nn.Module):
        def __init__(self): super().__init__(); self.lin = nn.Linear(3, 1)
        def forward(self, a, b): return self.lin(a+b)
    seen = []
    def loss_func(preds, y, w): seen.append(w.shape); return (w*(preds-y)**2).mean()
    x = torch.randn(8, 3)
    dl = DataLoader(list(zip(x, x*0, x[:, :1], torch.ones(8, 1))), batch_size=4)
    learn = Learner(Add(), DataLoaders(dl, dl), loss_func, cbs=TrainCB(n_inp=2))
    learn.fit(1)
    assert seen == [(4, 1)]*4 and learn.preds.shape == (4, 1)

def test_momentum_learner_keeps_mom_of_the_gradients():
    learn = MomentumLearner(nn.Linear(3, 1), lin_dls(), F.mse_loss, mom=0.5)
    assert learn.lr is None and learn.mom == 0.5 and learn.opt_func is optim.SGD
    g = torch.randn(1, 3)
    learn.model.weight.grad = g.clone()
    learn.model.bias.grad = None   # a parameter without a gradient is left alone
    learn.zero_grad()
    assert torch.equal(learn.model.weight.grad, g*0.5) and learn.model.bias.grad is None
    torch.manual_seed(0)
    learn.fit(1, lr=0.01, valid=False)   # trains: weights move, gradients stay nonzero between steps
    assert learn.model.weight.grad.abs().sum() > 0

def test_momentum_learner_is_sgd_with_momentum():
    "Keeping `mom` of each gradient is PyTorch's SGD momentum without dampening: buf = mom*buf + grad; p -= lr*buf."
    ml = _fit_weights(MomentumLearner, lr=0.05, mom=0.85)
    sgd = _fit_weights(TrainLearner, lr=0.05, opt_func=partial(optim.SGD, momentum=0.85))
    plain = _fit_weights(TrainLearner, lr=0.05)
    assert all(torch.allclose(a, b, atol=1e-6) for a,b in zip(ml, sgd))
    assert not all(torch.allclose(a, b, atol=1e-3) for a,b in zip(ml, plain))

# Metrics

class Fixed(nn.Module):
    "Ignores the input's values: returns the rows of `out` given by the item indices in `x`."
    def __init__(self, out): super().__init__(); self.out,self.w = out,nn.Parameter(torch.zeros(()))
    def forward(self, x): return self.out[x.long().squeeze(1)] + self.w

class CountCorrect:
    "A torcheval-like metric (reset/update/compute), by duck typing."
    def reset(self): self.right,self.n = 0,0
    def update(self, preds, y): self.right,self.n = self.right+(preds.argmax(1)==y).sum(),self.n+len(y)
    def compute(self): return self.right/self.n

def test_metrics_cb_equals_hand_computation_with_uneven_batches():
    torch.manual_seed(0)
    out, y = torch.randn(7, 4), torch.tensor([0, 1, 2, 3, 0, 3, 3])
    ds = Dataset(torch.arange(7.)[:, None], y)
    dls = DataLoaders(DataLoader(ds, batch_size=5), DataLoader(ds, batch_size=5))   # batches of 5 and 2
    def top_score(preds, y): return preds.max(1).values.mean()
    mcb = MetricsCB(accuracy, top_score, Accuracy(), counted=CountCorrect())
    logged = []
    mcb._log = logged.append
    learn = Learner(Fixed(out), dls, F.cross_entropy, cbs=[TrainCB(), mcb])
    learn.fit(1, train=False)
    assert learn.metrics is mcb and logged == mcb.log and len(mcb.log) == 1
    log = mcb.log[0]
    assert list(log) == ['epoch', 'train', 'loss', 'accuracy', 'top_score', 'Accuracy', 'counted']
    assert list(mcb.metrics) == ['accuracy', 'top_score', 'Accuracy', 'counted']
    assert list(mcb.all_metrics) == ['loss', *mcb.metrics]
    assert mcb.all_metrics['loss'] is mcb.loss and isinstance(mcb.metrics['counted'], CountCorrect)
    assert log['epoch'] == 0 and log['train'] == 'eval'
    assert log['loss'] == pytest.approx(F.cross_entropy(out, y).item(), rel=1e-6)   # the mean over all 7 items
    acc = (out.argmax(1)==y).float().mean().item()
    assert [log[k] for k in ('accuracy', 'Accuracy', 'counted')] == pytest.approx([acc]*3)
    assert log['top_score'] == pytest.approx(out.max(1).values.mean().item(), rel=1e-6)
    unweighted = (F.cross_entropy(out[:5], y[:5]) + F.cross_entropy(out[5:], y[5:])).item()/2   # equal batch weights
    assert abs(unweighted - log['loss']) > 1e-3

def test_metrics_cb_per_epoch_and_phase_and_prints_without_progress(capsys):
    mcb = MetricsCB()
    learner([mcb]).fit(2)
    assert [(d['epoch'], d['train']) for d in mcb.log] == [(0, 'train'), (0, 'eval'), (1, 'train'), (1, 'eval')]
    assert capsys.readouterr().out.count('loss: ') == 4
    learner([mcb]).fit(1)
    assert len(mcb.log) == 2   # the log of the latest fit

def test_metrics_cb_targets_follow_n_inp():
    "With `TrainCB(n_inp=2)` the targets are the batch's items after the first two, for metrics as for the loss."
    seen = []
    def targ_mean(preds, y): seen.append(y.shape); return y.float().mean()
    class Add(nn.Module):
        def __init__(self): super().__init__(); self.w = nn.Parameter(torch.zeros(()))
        def forward(self, a, b): return a+b+self.w
    a, b, y = torch.ones(6, 1), torch.full((6, 1), 2.), torch.full((6, 1), 5.)
    dl = DataLoader(list(zip(a, b, y)), batch_size=3)
    mcb = MetricsCB(targ_mean)
    Learner(Add(), DataLoaders(dl, dl), F.mse_loss, cbs=[mcb, TrainCB(n_inp=2)]).fit(1, train=False)
    assert seen == [(3, 1)]*2 and mcb.log[0]['targ_mean'] == 5. and mcb.log[0]['loss'] == pytest.approx(4.)

def test_metrics_cb_weights_the_loss_by_the_number_of_targets():
    "Inputs nested in a tuple (as a diffusion model's `(x, t)`): each batch's loss weighs its number of targets."
    class Pair(nn.Module):
        def __init__(self): super().__init__(); self.lin = nn.Linear(3, 1)
        def forward(self, xt): return self.lin(xt[0]) + xt[1]
    x, t, y = torch.randn(7, 3), torch.randn(7, 1), torch.randn(7, 1)
    batches = [((x[:5], t[:5]), y[:5]), ((x[5:], t[5:]), y[5:])]
    mcb = MetricsCB()
    learn = Learner(Pair(), DataLoaders(batches, batches), F.mse_loss, cbs=[TrainCB(), mcb])
    learn.fit(1, train=False)
    with torch.no_grad(): expected = F.mse_loss(learn.model((x, t)), y).item()
    assert mcb.log[0]['loss'] == pytest.approx(expected, rel=1e-5)

def test_metric_and_accuracy_by_hand():
    acc = Accuracy()
    acc.update(torch.tensor([0, 1, 2, 0, 1, 2]), torch.tensor([0, 1, 1, 2, 1, 0]))
    assert acc.update(torch.tensor([1, 1, 2, 0, 1]), torch.tensor([0, 1, 1, 2, 1])) is acc
    assert acc.compute().item() == pytest.approx(5/11)   # weighted by items, not the course's 0.45
    assert Accuracy().update(torch.eye(3)[[0, 2, 1]], torch.tensor([0, 1, 1])).compute().item() == pytest.approx(2/3)
    m = Metric()
    assert math.isnan(m.compute())
    m.update(torch.tensor(0.6), weight=32); m.update(0.9, weight=2)
    assert m.compute().item() == pytest.approx((0.6*32+0.9*2)/34)
    m.reset(); m.update(torch.tensor(2.)); m.update(torch.tensor(4.))
    assert m.compute().item() == 3.   # a single value weighs 1
    m = Metric(lambda p, y: (p-y).abs().mean())
    m.update(torch.zeros(4), torch.ones(4)); m.update(torch.zeros(1), torch.full((1,), 6.))
    assert m.compute().item() == pytest.approx(2.)   # (4*1 + 1*6)/5
    t = torch.ones((), requires_grad=True)
    assert not Metric().update(t*2).compute().requires_grad

@needs_torcheval
@settings(max_examples=10, deadline=None)
@given(st.lists(st.integers(1, 9), min_size=1, max_size=5), st.integers(0, 2**16))
def test_metric_and_accuracy_match_torcheval(sizes, seed):
    g = torch.Generator().manual_seed(seed)
    ours, theirs, loss, tmean = Accuracy(), tm.MulticlassAccuracy(), Metric(), tm.Mean()
    for n in sizes:
        preds, y = torch.randn(n, 4, generator=g), torch.randint(0, 4, (n,), generator=g)
        l = torch.rand((), generator=g)
        ours.update(preds, y); theirs.update(preds, y)
        loss.update(l, weight=n); tmean.update(l, weight=n)
    assert ours.compute().item() == pytest.approx(theirs.compute().item(), abs=1e-6)
    assert loss.compute().item() == pytest.approx(tmean.compute().item(), rel=1e-5)

def test_metrics_cb_subclass_that_replaces_before_fit():
    "As the course's lesson-21 `WandBCB(MetricsCB)` does: `before_fit` overridden without calling `super()`."
    class Quiet(MetricsCB):
        def before_fit(self, learn): pass
    q, mcb = Quiet(), MetricsCB()
    learn = learner([q, mcb])
    learn.fit(2)
    assert [d['loss'] for d in q.log] == [d['loss'] for d in mcb.log] and len(q.log) == 4

@needs_torcheval
def test_metrics_cb_takes_torcheval_metrics():
    mcb = MetricsCB(tm.MulticlassAccuracy(), mine=Accuracy())
    torch.manual_seed(0)
    x = torch.randn(30, 5); y = x[:, :3].argmax(1)
    dls = DataLoaders(*get_dls(Dataset(x, y), Dataset(x, y), 8))
    Learner(nn.Linear(5, 3), dls, F.cross_entropy, cbs=[TrainCB(), mcb]).fit(2)
    assert [d['MulticlassAccuracy'] for d in mcb.log] == pytest.approx([d['mine'] for d in mcb.log])

# The device

def test_device_cb_moves_model_and_batch():
    "On the `meta` device (no GPU needed): a probe after DeviceCB sees the model and the batch there."
    seen = {}
    class Probe(Callback):
        def before_fit(self, learn): seen['model'] = [p.device.type for p in getattr(learn.model, 'parameters', list)()]
        def before_batch(self, learn):
            seen['batch'] = [t.device.type for t in learn.batch]
            raise CancelFitException()   # nothing to compute on meta tensors
    learn = Learner(nn.Linear(3, 1), lin_dls(), cbs=[Probe(), TrainCB(), DeviceCB('meta')])   # listed last, runs first
    learn.fit(1)
    assert seen == {'model': ['meta', 'meta'], 'batch': ['meta', 'meta']}
    class NoTo:   # a model of the Learner's own kind: it can train, but has no `to`
        training = True
        def train(self, mode=True): self.training = mode
        def __call__(self, x): return x
    Learner(NoTo(), lin_dls(), cbs=[Probe(), TrainCB(), DeviceCB('meta')], opt_func=None).fit(1, train=False)
    assert seen == {'model': [], 'batch': ['meta', 'meta']}

def test_metrics_follow_the_model_device():
    "On the `meta` device, where nothing can be computed: the fit stops once the metrics were moved."
    class Spy(CountCorrect):
        def to(self, device): self.device = device; return self
    class Stop(Callback):
        order = MetricsCB.order+1
        def before_epoch(self, learn): raise CancelFitException()
    spy = Spy()
    learner([MetricsCB(spy=spy), Stop()]).fit(1, cbs=DeviceCB('meta'))
    assert spy.device == torch.device('meta')

def test_device_cb_default_is_looked_up_when_the_fit_runs(monkeypatch):
    "`DeviceCB()` shows no machine's device in its signature, and trains on `def_device` as it is when the fit runs."
    import miniai.conv, miniai.learner
    seen = {}
    class Probe(Callback):
        def before_batch(self, learn):
            seen['model'], seen['batch'] = learn.model.weight.device.type, [t.device.type for t in learn.batch]
            raise CancelFitException()
    cb = DeviceCB()
    for m in (miniai.conv, miniai.learner): monkeypatch.setattr(m, 'def_device', 'meta')
    learner([Probe(), cb]).fit(1)
    assert cb.device is None and seen == {'model': 'meta', 'batch': ['meta', 'meta']}

def test_to_cpu_nested_half_and_detached():
    Point = collections.namedtuple('Point', 'x y')
    t = torch.ones(2, requires_grad=True)*3
    half, bf16 = torch.ones(1, dtype=torch.float16), torch.ones(1, dtype=torch.bfloat16)
    b = {'a': [t, (half, 'text')], 'p': Point(bf16, 3), 'n': None}
    r = to_cpu(b)
    assert type(r) is dict and type(r['a']) is list and type(r['a'][1]) is tuple and type(r['p']) is Point
    assert not r['a'][0].requires_grad and torch.equal(r['a'][0], torch.full((2,), 3.))
    assert r['a'][1][0].dtype == torch.float32 and r['p'].x.dtype == torch.float32 and r['a'][1][1] == 'text'
    assert r['p'].y == 3 and r['n'] is None and to_cpu(torch.arange(3)).dtype == torch.int64

# Progress and the LR finder

def test_progress_headless(capsys):
    "Outside a notebook fastprogress prints plain text: the metrics table's lines among the bars' ones."
    x = torch.randn(40, 3)
    ds = Dataset(x, x.sum(1, keepdim=True))
    mcb, pcb = MetricsCB(), ProgressCB(plot=True)
    learn = Learner(nn.Linear(3, 1), DataLoaders(*get_dls(ds, ds, 8)), F.mse_loss, cbs=[TrainCB(), DeviceCB(), mcb, pcb])
    learn.fit(2)
    lines = [l.split() for l in capsys.readouterr().out.splitlines()]
    lines = [l for l in lines if l and (l[0]=='epoch' or l[0].isdigit())]
    assert lines[0] == ['epoch', 'train', 'loss']
    assert [l[:2] for l in lines[1:]] == [['0', 'train'], ['0', 'eval'], ['1', 'train'], ['1', 'eval']]
    assert len(pcb.losses) == 10 and pcb.val_losses == [d['loss'] for d in mcb.log if d['train'] == 'eval']
    learn.fit(1, cbs=SingleBatchCB())
    learn.lr_find()

def test_progress_cb_in_a_notebook_closes_bars_and_plot_however_the_fit_ends(monkeypatch, capsys):
    "With fastprogress's notebook bars: the table, the plot, and a cancelled fit's bar closed once, by `cleanup_fit`."
    import IPython.display, matplotlib.pyplot as plt, miniai.learner
    from fastprogress.fastprogress import NBMasterBar, NBProgressBar
    class Handle:   # what `display(..., display_id=True)` returns in a notebook
        def update(self, obj): pass
    monkeypatch.setattr(IPython.display, 'display', lambda *args, **kwargs: Handle())
    ends = []
    class Bar(NBMasterBar):
        def on_iter_end(self): ends.append(1); super().on_iter_end()
    monkeypatch.setattr(miniai.learner, 'master_bar', Bar)
    monkeypatch.setattr(miniai.learner, 'progress_bar', NBProgressBar)
    plt.close('all')
    mcb, pcb = MetricsCB(), ProgressCB(plot=True)
    learn = learner([mcb, pcb])
    learn.fit(2)
    assert ends == [1] and len(pcb.mbar.lines) == 5 and pcb.mbar.lines[0] == ['epoch', 'train', 'loss']
    assert len(pcb.mbar.graph_ax.lines[0].get_xdata()) == 6 and list(pcb.mbar.graph_ax.lines[1].get_xdata()) == [3, 6]
    assert not plt.get_fignums() and '_log' not in vars(mcb)
    learn.fit(2, cbs=SingleBatchCB())   # cancelled: nobody else ends the bar
    assert ends == [1, 1] and not plt.get_fignums() and '_log' not in vars(mcb)
    class Draw(Callback):   # another figure is the current one when the fit is cancelled
        order = 5
        def after_batch(self, learn): plt.figure(); raise CancelFitException()
    learn.fit(1, cbs=Draw())
    assert ends == [1, 1, 1] and not plt.fignum_exists(pcb.mbar.graph_fig.number)
    plt.close('all')
    learn.lr_find()   # the finder's plot comes after the bars are closed, and stays
    assert len(plt.get_fignums()) == 1 and plt.gca().get_xscale() == 'log'

def test_lr_finder_stops_on_divergence_restores_and_plots():
    import matplotlib.pyplot as plt
    dls = lin_dls(n=64, bs=4)   # 16 batches an epoch; SGD from 1e-4 growing 1.5x each batch diverges within ~25 batches
    learn = learner(dls=dls, lr=0.01)
    learn.model.train(False)
    w = {k: v.clone() for k,v in learn.model.state_dict().items()}
    rng = torch.get_rng_state()
    plt.close('all')
    cb = LRFinderCB(gamma=1.5)
    learn.fit(10, lr=1e-4, cbs=cb)
    assert len(cb.lrs) == len(cb.losses) and cb.lrs[0] == pytest.approx(1e-4) and cb.lrs[1] == pytest.approx(1.5e-4)
    assert cb.losses[-1] > 3*min(cb.losses) or not math.isfinite(cb.losses[-1])   # stopped by divergence ...
    assert len(cb.lrs) < 40                           # ... long before 10 epochs
    assert all(torch.equal(v, w[k]) for k,v in learn.model.state_dict().items())
    assert not learn.model.training and torch.equal(torch.get_rng_state(), rng)
    assert cb not in learn.cbs and learn.lr == 0.01
    ax = plt.gca()
    assert ax.get_xscale() == 'log' and list(ax.lines[0].get_xdata()) == cb.lrs
    mcb = MetricsCB()
    learn.fit(2, cbs=mcb)   # still usable: trains to a lower loss
    assert mcb.log[-1]['loss'] < mcb.log[0]['loss']

def test_a_fit_after_lr_find_is_the_fit_without_it():
    "MomentumLearner keeps `mom` of the last gradient between fits: after `lr_find`, that must not be the finder's last one."
    def run(find, cls=MomentumLearner, **kwargs):
        learn = learner(cls=cls, lr=0.05, dls=lin_dls(n=64, bs=4), **kwargs)
        learn.fit(1)
        if find: learn.lr_find(gamma=2)
        learn.fit(1)
        return [p.detach().clone() for p in learn.model.parameters()]
    assert all(torch.equal(a, b) for a,b in zip(run(True), run(False)))
    adam = partial(optim.AdamW, eps=1e-5)
    assert all(torch.equal(a, b) for a,b in zip(run(True, TrainLearner, opt_func=adam), run(False, TrainLearner, opt_func=adam)))

def test_lr_finder_gives_back_the_optimizer_state_gradients_and_each_layer_mode():
    "An optimizer kept across fits (`opt_func=None`), a batch-norm layer in eval mode in a training model: all as before."
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))
    learn = TrainLearner(model, lin_dls(n=64, bs=4), F.mse_loss, opt_func=None)
    learn.opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    learn.fit(1, valid=False)   # momentum buffers
    for p in model.parameters(): p.grad = torch.randn_like(p)
    model[1].eval()
    opt, modes = deepcopy(learn.opt.state_dict()), [m.training for m in model.modules()]
    sd, grads = deepcopy(model.state_dict()), [p.grad.clone() for p in model.parameters()]
    cb = LRFinderCB()
    learn.fit(10, valid=False, cbs=cb)
    assert len(cb.lrs) >= 2 and cb.lrs[-1] > 0.01   # it ran, on the kept optimizer, with a growing lr
    now = learn.opt.state_dict()
    assert now['param_groups'] == opt['param_groups'] and learn.opt.param_groups[0]['lr'] == 0.01
    assert all(torch.equal(now['state'][k]['momentum_buffer'], v['momentum_buffer']) for k,v in opt['state'].items())
    assert [m.training for m in model.modules()] == modes == [True, True, False, True]
    assert all(torch.equal(v, sd[k]) for k,v in model.state_dict().items())
    assert all(torch.equal(p.grad, g) for p,g in zip(model.parameters(), grads))

def test_lr_finder_cleanup_leaves_an_earlier_error_alone():
    class Fail(Callback):
        def before_fit(self, learn): raise RuntimeError('before the finder')
    learn = learner()
    cb = LRFinderCB()
    with pytest.raises(RuntimeError, match='before the finder') as e: learn.fit(1, lr=1e-3, cbs=[Fail(), cb])
    assert e.value.__context__ is None   # no second error raised while cleaning up

def test_lr_find_on_a_learner_without_lr():
    import matplotlib.pyplot as plt
    learn = learner(cls=MomentumLearner, lr=None, dls=lin_dls(n=64, bs=4))
    w = {k: v.clone() for k,v in learn.model.state_dict().items()}
    plt.close('all')
    learn.lr_find(gamma=2, start_lr=1e-3)
    assert all(torch.equal(v, w[k]) for k,v in learn.model.state_dict().items()) and len(learn.cbs) == 0
    assert plt.gca().get_xscale() == 'log' and plt.gca().lines[0].get_xdata()[0] == pytest.approx(1e-3)
    lrs = []
    learn.opt_func = lambda p, lr: lrs.append(lr) or optim.SGD(p, lr)
    learn.lr_find(max_epochs=1)
    assert lrs == [1e-5]

def test_lr_finder_runs_out_of_epochs_and_skips_validation():
    ds = Dataset(torch.ones(8, 3), torch.zeros(8, 1))   # every batch alike, so the loss only falls at these rates
    learn = learner(dls=DataLoaders(*get_dls(ds, ds, 4)))
    cb, rec = LRFinderCB(), Recorder()
    learn.fit(3, lr=1e-6, cbs=[cb, rec])
    assert len(cb.lrs) == 6 and cb.lrs[-1] == pytest.approx(1e-6*1.3**5)   # the training batches only
    assert rec.evts.count('cleanup_epoch') == 6 and rec.evts.count('after_epoch') == 3   # validation epochs cancelled

# The forms of `cbs`, and bad input

def _gen(cbs): yield from cbs

@pytest.mark.parametrize('form', ['one', 'list', 'tuple', 'L', 'generator', 'none'])
def test_every_form_of_cbs(form):
    rec = Recorder()
    cbs = {'one': rec, 'list': [rec], 'tuple': (rec,), 'L': fc.L([rec]), 'generator': _gen([rec]), 'none': None}[form]
    learn = Learner(nn.Linear(3, 1), lin_dls(), cbs=cbs if form!='none' else None)
    learn.fit(1, cbs=[TrainCB()])
    assert isinstance(learn.cbs, fc.L) and list(learn.cbs) == ([] if form=='none' else [rec])
    assert rec.evts.count('after_batch') == (0 if form=='none' else 5)
    learn = Learner(nn.Linear(3, 1), lin_dls(), cbs=TrainCB())
    learn.fit(1, cbs=cbs if form!='generator' else _gen([rec]))
    assert len(learn.cbs) == 1

def test_an_iterable_callback_counts_as_one():
    class Hooks(Callback):   # like the course's HooksCallback: iterates over its hooks
        def __init__(self): self.seen = 0
        def __iter__(self): return iter(self.hooks)
        def __len__(self): return len(self.hooks)
        def after_batch(self, learn): self.seen += 1
    h = Hooks()
    learn = learner()
    learn.fit(1, cbs=h)
    assert h.seen == 5 and len(Learner(nn.Linear(3, 1), lin_dls(), cbs=h).cbs) == 1

def test_a_callback_given_twice_runs_once():
    mcb = MetricsCB()
    learn = learner([mcb, mcb])
    assert len(learn.cbs) == 2   # TrainCB and mcb
    learn.fit(1, cbs=[mcb, SingleBatchCB(), mcb])   # also the learner's: not added again, and still there after
    learn.fit(1, cbs=mcb)
    assert len(mcb.log) == 2 and len(learn.cbs) == 2 and learn.cbs[1] is mcb   # one epoch logs 2 rows, not 4

def fails(exc, msg, f, *args, **kwargs):
    with pytest.raises(exc, match=msg): f(*args, **kwargs)

def lin(): return nn.Linear(3, 1)
class Eval(Callback):   # evaluation steps only
    def predict(self, learn): pass
    def get_loss(self, learn): pass

@pytest.mark.parametrize('kwargs,exc,msg', [
    (dict(lr=0), ValueError, r'lr should be a positive number, but got lr=0$'),
    (dict(lr=-0.1), ValueError, r'lr should be a positive number, but got lr=-0\.1'),
    (dict(lr=float('nan')), ValueError, r'lr=nan'),
    (dict(lr='0.1'), TypeError, r"lr should be a positive number, but got lr='0\.1'"),
    (dict(lr=True), TypeError, r'lr=True'),
    (dict(cbs=[TrainCB]), TypeError, r"cbs should hold callbacks .*but got <class '.*TrainCB'>"),
    (dict(cbs={'a': TrainCB()}), TypeError, r"cbs should hold callbacks.*\{'a'"),
])
def test_bad_learner_arguments(kwargs, exc, msg): fails(exc, msg, Learner, lin(), lin_dls(), **kwargs)

@pytest.mark.parametrize('args,kwargs,exc,msg', [
    ((-1,), {}, ValueError, r'n_epochs should be a non-negative integer value, but got n_epochs=-1'),
    ((1.5,), {}, TypeError, r'n_epochs=1\.5'),
    ((True,), {}, TypeError, r'n_epochs=True'),
    ((1,), dict(train='no'), TypeError, r"train should be True or False, but got train='no'"),   # 'no' is not False
    ((1,), dict(valid=None), TypeError, r"valid should be True or False, but got valid=None"),
    ((1,), dict(lr=0), ValueError, r'lr should be a positive number, but got lr=0'),
    ((1,), dict(lr='a'), TypeError, r"lr should be a positive number, but got lr='a'"),
    ((1,), dict(cbs=SingleBatchCB), TypeError, r"<class '.*SingleBatchCB'>"),
    ((1,), dict(cbs='text'), TypeError, r"cbs should hold callbacks.*'text'"),
    ((1,), dict(cbs=[None]), TypeError, r"cbs should hold callbacks.*None"),
])
def test_bad_fit_arguments(args, kwargs, exc, msg):
    learn = learner()
    fails(exc, msg, learn.fit, *args, **kwargs)
    assert len(learn.cbs) == 1

@pytest.mark.parametrize('make,kwargs,exc,msg', [
    (lambda: learner(lr=None), {}, ValueError, r'fit needs a learning rate for opt_func, but got lr=None from fit and the Learner'),
    (lambda: Learner(lin(), lin_dls()), {}, ValueError,
     r'nothing does the training steps predict, get_loss, backward, step, zero_grad: .*TrainCB\(\)'),
    (lambda: Learner(lin(), lin_dls(), cbs=Eval()), {}, ValueError, r'training steps backward, step, zero_grad:'),
    (lambda: Learner(lin(), cbs=TrainCB()), {}, AttributeError, r"'tuple' object has no attribute 'train'"),
    (lambda: Learner(lin(), type('OnlyTrain', (), {'train': [(torch.ones(1, 3), torch.ones(1, 1))]})(), cbs=TrainCB()),
     {}, AttributeError, r"has no attribute 'valid'"),
])
def test_fit_without_what_it_needs(make, kwargs, exc, msg): fails(exc, msg, make().fit, 1, **kwargs)

def test_fit_with_what_the_stages_asked_for_need():
    Learner(lin(), lin_dls(), cbs=Eval()).fit(1, train=False)   # evaluating needs only the first two steps
    Learner(lin(), type('OnlyTrain', (), {'train': lin_dls().train})(), cbs=TrainCB()).fit(1, valid=False)
    learner(lr=None).fit(1, train=False)   # no lr, no training: fine

def test_lr_none_and_a_wrong_lr_say_different_things():
    "`lr=None` is a missing value, `lr='a'` a wrong type: each its own exception and message."
    with pytest.raises(ValueError) as none: learner(lr=None).fit(1)
    with pytest.raises(TypeError) as wrong: learner(lr=None).fit(1, lr='a')
    assert 'lr=None' in str(none.value) and 'should be a positive number' not in str(none.value)
    assert str(wrong.value) == "lr should be a positive number, but got lr='a'"

@pytest.mark.parametrize('f,args,kwargs,exc,msg', [
    (MomentumLearner, (lin(), lin_dls(), F.mse_loss), dict(mom=1), ValueError,
     r'mom should be a number at least 0 and less than 1, but got mom=1$'),
    (MomentumLearner, (lin(), lin_dls(), F.mse_loss), dict(mom=-0.1), ValueError, r'mom=-0\.1'),
    (MomentumLearner, (lin(), lin_dls(), F.mse_loss), dict(mom='0.9'), TypeError, r"mom='0\.9'"),
    (with_cbs, ('batches',), {}, ValueError, r"nm should be 'fit', 'epoch' or 'batch', but got nm='batches'"),
    (LRFinderCB, (), dict(gamma=1), ValueError, r'gamma should be a number larger than 1, but got gamma=1'),
    (LRFinderCB, (), dict(max_mult=0.5), ValueError, r'max_mult=0\.5'),
    (LRFinderCB, (), dict(gamma='2'), TypeError, r"gamma='2'"),
    (MetricsCB, (), dict(loss=accuracy), ValueError, r"metric names should be unique and not 'loss', but got \['loss'\]"),
    (MetricsCB, (accuracy,), dict(accuracy=Accuracy()), ValueError, r"\['accuracy', 'accuracy'\]"),
    (MetricsCB, (Accuracy(), Accuracy()), {}, ValueError, r"\['Accuracy', 'Accuracy'\]"),
    (MetricsCB, (), dict(acc='oops'), TypeError,
     r"metric 'acc' should be an object with reset, update and compute, or a function.*'oops'"),
    (MetricsCB, (), dict(acc=Accuracy), TypeError, r"metric 'acc' should be .*but got acc=<class.*Accuracy'>"),
    (MetricsCB, (Accuracy,), {}, TypeError, r"metric 'Accuracy' .*but got Accuracy=<class"),
])
def test_bad_callback_arguments(f, args, kwargs, exc, msg): fails(exc, msg, f, *args, **kwargs)

@pytest.mark.parametrize('kwargs,exc,msg', [
    (dict(gamma=0.9), ValueError, r'gamma should be a number larger than 1, but got gamma=0\.9'),
    (dict(start_lr=0), ValueError, r'start_lr should be a positive number, but got start_lr=0'),
    (dict(start_lr='1e-3'), TypeError, r"start_lr='1e-3'"),
    (dict(max_epochs=0), ValueError, r'max_epochs should be a positive integer value, but got max_epochs=0'),
])
def test_bad_lr_find_arguments(kwargs, exc, msg):
    learn = learner()
    w = deepcopy(learn.model.state_dict())
    fails(exc, msg, learn.lr_find, **kwargs)
    assert len(learn.cbs) == 1 and all(torch.equal(v, w[k]) for k,v in learn.model.state_dict().items())

def test_lr_find_without_an_optimizer_to_build():
    fails(ValueError, r"opt_func should build an optimizer for lr_find, but got opt_func=None: set one",
          learner(opt_func=None).lr_find)

@pytest.mark.parametrize('y', [torch.tensor([[0], [1], [2], [3]]), torch.tensor([0])])
def test_accuracy_refuses_targets_that_are_not_one_per_prediction(y):
    "Compared with `==`, class predictions of shape (N,) against targets (N, 1) would broadcast to N*N pairs: 0.25 for 4 right."
    preds = torch.tensor([0, 1, 2, 3])
    fails(ValueError, rf'targs should hold one class per prediction, of shape \(4,\), but got shape {re.escape(str(tuple(y.shape)))}',
          Accuracy().update, preds, y)
    assert Accuracy().update(preds, preds).compute() == 1

# Round 3 of the fault cases (issue 29): each of these failed, or passed silently, before its fix

def test_ctrl_c_in_a_cleanup_runs_every_later_cleanup_then_goes_up():
    "A KeyboardInterrupt in one callback's cleanup_fit: the later cleanups still run (the finder puts the weights back)."
    later = cleaner('fit', 5)
    learn = learner([cleaner('fit', -5, KeyboardInterrupt), later], dls=lin_dls(n=64, bs=4))
    w = deepcopy(learn.model.state_dict())
    with raises(KeyboardInterrupt) as e: learn.lr_find(gamma=2)
    assert str(e.value) == 'fit -5' and later.ran and 'RuntimeError: fit 5' in e.notes
    assert all(torch.equal(v, w[k]) for k,v in learn.model.state_dict().items()) and len(learn.cbs) == 3

def test_ctrl_c_in_a_cleanup_wins_over_the_stage_error():
    later = cleaner('fit', 5)
    with raises(KeyboardInterrupt) as e:
        learner([cleaner('fit', 0, KeyboardInterrupt), later, raiser(ZeroDivisionError, 'after_loss')]).fit(1)
    assert later.ran and isinstance(e.value.__context__, ZeroDivisionError)

def test_ctrl_c_part_way_through_lr_find_puts_the_weights_back():
    learn = learner([raiser(KeyboardInterrupt, 'after_step', lambda l: l.iter==3)], dls=lin_dls(n=64, bs=4))
    w = deepcopy(learn.model.state_dict())
    with pytest.raises(KeyboardInterrupt): learn.lr_find(start_lr=1e-3)
    assert all(torch.equal(v, w[k]) for k,v in learn.model.state_dict().items())

class Gen:
    "Loaders that are one-shot generators: batches in the first epoch, none after."
    def __init__(self, dls): self.train,self.valid = (b for b in list(dls.train)),(b for b in list(dls.valid))

def test_a_training_loader_that_gives_no_batches_is_an_error():
    "A one-shot generator trains in the first epoch only: the second epoch says so, instead of logging a loss of nan."
    mcb = MetricsCB()
    with pytest.raises(ValueError, match=r'dls.train gave no batches in this epoch: .*a generator gives them once'):
        learner([mcb], dls=Gen(lin_dls())).fit(2)
    assert len(mcb.log) == 2   # the first epoch, trained and validated
    fails(ValueError, r'dls.train gave no batches', learner(dls=DataLoaders([], [])).fit, 1)

def test_lr_find_on_an_empty_training_loader_is_an_error():
    learn = learner(dls=DataLoaders([], lin_dls().valid))
    fails(ValueError, r'dls.train gave no batches', learn.lr_find)
    assert len(learn.cbs) == 1

def test_an_empty_validation_loader_warns():
    mcb = MetricsCB()
    with pytest.warns(RuntimeWarning, match=r'dls.valid gave no batches in this epoch: the validation loss and metrics are nan'):
        learner([mcb], dls=DataLoaders(lin_dls().train, [])).fit(1)
    assert math.isnan(mcb.log[1]['loss']) and not math.isnan(mcb.log[0]['loss'])

@pytest.mark.parametrize('cls', [Learner, TrainLearner])
def test_dict_batches_say_what_a_batch_should_be(cls):
    x = torch.randn(8, 3)
    dl = DataLoader([dict(x=a, y=a[:1]) for a in x], batch_size=4)   # default_collate makes a dict of each batch
    learn = learner(cls=cls, dls=DataLoaders(dl, dl))
    fails(TypeError, r"a batch should be a tuple, but got a dict \(keys \['x', 'y'\]\): use collate_fn=collate_dict\(ds\)", learn.fit, 1)

@pytest.mark.parametrize('f,exc,msg', [
    (lambda preds, y: None, TypeError, r'metric .*<lambda> should give one number for a batch, but got None'),
    (lambda preds, y: (preds.argmax(1)==y).float(), ValueError, r'metric .*<lambda> should give one number for a batch, but got shape \(5,\)'),
])
def test_a_metric_that_gives_no_single_number_is_named(f, exc, msg):
    torch.manual_seed(0)
    x = torch.randn(10, 5); y = x[:, :3].argmax(1)
    dls = DataLoaders(*get_dls(Dataset(x, y), Dataset(x, y), 5))
    fails(exc, msg, Learner(nn.Linear(5, 3), dls, F.cross_entropy, cbs=[TrainCB(), MetricsCB(acc=f)]).fit, 1)

# The module itself, and the benchmark

def test_bench_09_smoke():
    "The benchmark's hand loop does the Learner's training: the same final weights, on random images, no timing."
    import importlib.util
    spec = importlib.util.spec_from_file_location('bench_09', root/'bench'/'bench_09.py')
    b = importlib.util.module_from_spec(spec); spec.loader.exec_module(b)
    for get_model,flat in ((b.mlp, True), (b.cnn, False)):
        times, same = b.compare('smoke', get_model, b.random_dls(32, flat, n=128), 0.1, 2)
        assert same and len(times['learn', 'wall']) == 2
