"""The course's later lessons run against our `miniai`. Each test reproduces what one course notebook does with the
Learner (its callbacks, patches and calls, written as the course writes them), on tiny synthetic images, on the CPU:
CUDA's float16 autocast becomes the CPU's bfloat16, torchvision's flip becomes `torch.flip`, and torcheval's
`MulticlassAccuracy` is ours when torcheval is not installed. No data files."""
import math
from copy import deepcopy
from functools import partial
from types import SimpleNamespace
import pytest
import torch
import torch.nn.functional as F
import fastcore.all as fc
import matplotlib.pyplot as plt
from torch import nn, optim
from torch.optim import lr_scheduler
from miniai.training import Dataset, get_dls
from miniai.datasets import DataLoaders, show_image, get_grid
from miniai.conv import *
from miniai.learner import *
try: from torcheval.metrics import MulticlassAccuracy
except ImportError: MulticlassAccuracy = Accuracy

def set_seed(seed): torch.manual_seed(seed)

def image_dls(n=96, bs=16, seed=0):
    "28×28 one-channel images in 4 classes, set by the signs of the means of the top half and the left half."
    g = torch.Generator().manual_seed(seed)
    def ds(n):
        x = torch.randn(n, 1, 28, 28, generator=g)
        y = (x[:, 0, :14].mean((1, 2))>0).long() + 2*(x[:, 0, :, :14].mean((1, 2))>0).long()
        return Dataset(x, y)
    return DataLoaders(*get_dls(ds(n), ds(n//2), bs))

dls = image_dls()

@pytest.fixture(autouse=True)
def _one_thread_and_no_figures_left():
    "One thread: tiny convolutions on two busy cores run hundreds of times slower with two."
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
    plt.close('all')

def cnn_layers():
    return [conv(1 ,8, ks=5), conv(8 ,16), conv(16,32), conv(32,64), conv(64,4, act=False), nn.Flatten()]

# 09_learner: the lesson itself, as the course writes its last part

def test_09_learner():
    metrics = MetricsCB(accuracy=MulticlassAccuracy())
    cbs = [TrainCB(), DeviceCB(), metrics, ProgressCB(plot=True)]
    learn = Learner(nn.Sequential(*cnn_layers()), dls, F.cross_entropy, lr=0.2, cbs=cbs)
    learn.fit(1)
    assert learn.metrics is metrics and set(metrics.all_metrics) == {'accuracy', 'loss'}
    metrics = MetricsCB(accuracy=MulticlassAccuracy())
    cbs = [DeviceCB(), metrics, ProgressCB(plot=True)]
    learn = MomentumLearner(nn.Sequential(*cnn_layers()), dls, F.cross_entropy, lr=0.1, cbs=cbs)
    learn.fit(1)
    assert [d['train'] for d in metrics.log] == ['train', 'eval'] and metrics.log[1]['accuracy'] > 0.25   # chance: 0.25
    lrfind = LRFinderCB()
    cbs = [DeviceCB(), lrfind]
    learn = MomentumLearner(nn.Sequential(*cnn_layers()), dls, F.cross_entropy, lr=1e-4, cbs=cbs)
    w = deepcopy(learn.model.state_dict())
    learn.fit(1)
    plt.plot(lrfind.lrs, lrfind.losses)
    plt.xscale('log')
    assert lrfind.lrs == pytest.approx([1e-4*1.3**i for i in range(len(lrfind.lrs))]) and len(lrfind.lrs) == len(lrfind.losses)
    assert all(torch.equal(v, w[k]) for k,v in learn.model.state_dict().items())   # the course's finder left them changed
    cbs = [DeviceCB()]
    learn = MomentumLearner(nn.Sequential(*cnn_layers()), dls, F.cross_entropy, lr=1e-5, cbs=cbs)
    learn.fit(3, cbs=LRFinderCB())
    assert len(learn.cbs) == 1
    learn = MomentumLearner(nn.Sequential(*cnn_layers()), dls, F.cross_entropy, cbs=cbs)
    w = deepcopy(learn.model.state_dict())
    learn.lr_find()
    assert all(torch.equal(v, w[k]) for k,v in learn.model.state_dict().items()) and plt.gca().get_xscale() == 'log'
    cbs = [TrainCB(), DeviceCB(), SingleBatchCB()]
    learn = Learner(nn.Sequential(*cnn_layers()), dls, F.cross_entropy, lr=0.2, cbs=cbs)
    learn.fit(1)
    assert learn.iter == 0 and learn.preds.shape == (16, 4)

# 10_activations: hooks, as a callback

class Hook():
    def __init__(self, m, f): self.hook = m.register_forward_hook(partial(f, self))
    def remove(self): self.hook.remove()
    def __del__(self): self.remove()

class Hooks(list):
    def __init__(self, ms, f): super().__init__([Hook(m, f) for m in ms])
    def __enter__(self, *args): return self
    def __exit__ (self, *args): self.remove()
    def __del__(self): self.remove()
    def __delitem__(self, i):
        self[i].remove()
        super().__delitem__(i)
    def remove(self):
        for h in self: h.remove()

class HooksCallback(Callback):
    def __init__(self, hookfunc, mod_filter=fc.noop, on_train=True, on_valid=False, mods=None):
        fc.store_attr()
        super().__init__()
    def before_fit(self, learn):
        if self.mods: mods=self.mods
        else: mods = fc.filter_ex(learn.model.modules(), self.mod_filter)
        self.hooks = Hooks(mods, partial(self._hookfunc, learn))
    def _hookfunc(self, learn, *args, **kwargs):
        if (self.on_train and learn.training) or (self.on_valid and not learn.training): self.hookfunc(*args, **kwargs)
    def after_fit(self, learn): self.hooks.remove()
    def __iter__(self): return iter(self.hooks)
    def __len__(self): return len(self.hooks)

def append_stats(hook, mod, inp, outp):
    if not hasattr(hook,'stats'): hook.stats = ([],[],[])
    acts = to_cpu(outp)
    hook.stats[0].append(acts.mean())
    hook.stats[1].append(acts.std())
    hook.stats[2].append(acts.abs().histc(40,0,10))

def get_hist(h): return torch.stack(h.stats[2]).t().float().log1p()
def get_min(h):
    h1 = torch.stack(h.stats[2]).t().float()
    return h1[0]/h1.sum(0)

class ActivationStats(HooksCallback):
    def __init__(self, mod_filter=fc.noop): super().__init__(append_stats, mod_filter)
    def color_dim(self, figsize=(11,5)):
        fig,axes = get_grid(len(self), figsize=figsize)
        for ax,h in zip(axes.flat, self): show_image(get_hist(h), ax, origin='lower')
    def dead_chart(self, figsize=(11,5)):
        fig,axes = get_grid(len(self), figsize=figsize)
        for ax,h in zip(axes.flatten(), self):
            ax.plot(get_min(h))
            ax.set_ylim(0,1)
    def plot_stats(self, figsize=(10,4)):
        fig,axs = plt.subplots(1,2, figsize=figsize)
        for h in self:
            for i in 0,1: axs[i].plot(h.stats[i])
        axs[0].set_title('Means')
        axs[1].set_title('Stdevs')
        plt.legend(fc.L.range(self))

metrics = MetricsCB(accuracy=MulticlassAccuracy())
cbs = [TrainCB(), DeviceCB(), metrics, ProgressCB(plot=True)]

def fit(model, epochs=1, xtra_cbs=None):
    learn = Learner(model, dls, loss_func=F.cross_entropy, lr=0.6, cbs=cbs+fc.L(xtra_cbs))
    learn.fit(epochs)
    return learn

def test_10_activations():
    set_seed(1)
    learn = fit(nn.Sequential(*cnn_layers()))
    assert len(metrics.log) == 2
    hc = HooksCallback(append_stats, mod_filter=fc.risinstance(nn.Conv2d))
    set_seed(1)
    model = nn.Sequential(*cnn_layers())
    fit(model, xtra_cbs=[hc])
    assert len(hc) == 5 and all(len(h.stats[0]) == len(dls.train) for h in hc)   # training batches only
    for h in hc:
        plt.plot(h.stats[0])
        h.remove()
    astats = ActivationStats(fc.risinstance(nn.Conv2d))
    fit(model, xtra_cbs=[astats])
    astats.color_dim()
    astats.dead_chart()
    astats.plot_stats()
    assert [len(h.stats[2]) for h in astats] == [len(dls.train)]*5 and not model[0][0]._forward_hooks

# 11_initializing: a batch transform, placed right after DeviceCB

class BatchTransformCB(Callback):
    order = DeviceCB.order+1
    def __init__(self, tfm, on_train=True, on_val=True): fc.store_attr()
    def before_batch(self, learn):
        if (self.on_train and learn.training) or (self.on_val and not learn.training):
            learn.batch = self.tfm(learn.batch)

class GeneralRelu(nn.Module):
    def __init__(self, leak=None, sub=None, maxv=None):
        super().__init__()
        self.leak,self.sub,self.maxv = leak,sub,maxv
    def forward(self, x):
        x = F.leaky_relu(x,self.leak) if self.leak is not None else F.relu(x)
        if self.sub is not None: x -= self.sub
        if self.maxv is not None: x.clamp_max_(self.maxv)
        return x

def init_weights(m, leaky=0.):
    if isinstance(m, (nn.Conv1d,nn.Conv2d,nn.Conv3d)): nn.init.kaiming_normal_(m.weight, a=leaky)

def test_11_initializing():
    xmean,xstd = 0.,1.5
    def _norm(b): return (b[0]-xmean)/xstd, b[1]
    norm = BatchTransformCB(_norm)
    seen = []
    class Look(Callback):   # at the default order 0: after the transform
        def before_batch(self, learn): seen.append(learn.batch[0].std().item())
    act_gr = partial(GeneralRelu, leak=0.1, sub=0.4)
    def conv_gr(ni, nf, ks=3, stride=2, act=True):
        res = nn.Conv2d(ni, nf, stride=stride, kernel_size=ks, padding=ks//2)
        return nn.Sequential(res, act_gr()) if act else res
    def get_model():
        layers = [conv_gr(1, 8), conv_gr(8, 16), conv_gr(16, 32), conv_gr(32, 64), conv_gr(64, 4, act=False)]
        return nn.Sequential(*layers, nn.Flatten())
    iw = partial(init_weights, leaky=0.1)
    metrics = MetricsCB(accuracy=MulticlassAccuracy())
    astats = ActivationStats(fc.risinstance(GeneralRelu))
    cbs = [DeviceCB(), metrics, ProgressCB(plot=True), astats, norm, Look()]
    learn = MomentumLearner(get_model().apply(iw), dls, F.cross_entropy, lr=0.2, cbs=cbs)
    learn.fit(1)
    assert seen and all(s < 0.75 for s in seen)   # every batch normalised before other callbacks saw it
    astats.plot_stats()
    MomentumLearner(get_model().apply(iw), dls, F.cross_entropy, cbs=[DeviceCB()]).lr_find()

# 12_accel_sgd: an optimizer of our own, schedulers and a recorder as callbacks

class SGD:
    def __init__(self, params, lr, wd=0.):
        params = list(params)
        fc.store_attr()
        self.i = 0
    def step(self):
        with torch.no_grad():
            for p in self.params:
                self.reg_step(p)
                self.opt_step(p)
        self.i +=1
    def opt_step(self, p): p -= p.grad * self.lr
    def reg_step(self, p):
        if self.wd != 0: p *= 1 - self.lr*self.wd
    def zero_grad(self):
        for p in self.params: p.grad.data.zero_()

class Momentum(SGD):
    def __init__(self, params, lr, wd=0., mom=0.9):
        super().__init__(params, lr=lr, wd=wd)
        self.mom=mom
    def opt_step(self, p):
        if not hasattr(p, 'grad_avg'): p.grad_avg = torch.zeros_like(p.grad)
        p.grad_avg = p.grad_avg*self.mom + p.grad*(1-self.mom)
        p -= self.lr * p.grad_avg

class BaseSchedCB(Callback):
    def __init__(self, sched): self.sched = sched
    def before_fit(self, learn): self.schedo = self.sched(learn.opt)
    def _step(self, learn):
        if learn.training: self.schedo.step()

class BatchSchedCB(BaseSchedCB):
    def after_batch(self, learn): self._step(learn)

class EpochSchedCB(BaseSchedCB):
    def after_epoch(self, learn): self._step(learn)

class RecorderCB(Callback):
    def __init__(self, **d): self.d = d
    def before_fit(self, learn):
        self.recs = {k:[] for k in self.d}
        self.pg = learn.opt.param_groups[0]
    def after_batch(self, learn):
        if not learn.training: return
        for k,v in self.d.items(): self.recs[k].append(v(self))
    def plot(self):
        for k,v in self.recs.items():
            plt.plot(v, label=k)
            plt.legend()

def _lr(cb): return cb.pg['lr']
def _beta1(cb): return cb.pg['betas'][0]

def test_12_accel_sgd():
    def get_model(): return nn.Sequential(*cnn_layers())
    metrics = MetricsCB(accuracy=MulticlassAccuracy())
    cbs = [DeviceCB(), metrics, ProgressCB(plot=True)]
    learn = TrainLearner(get_model(), dls, F.cross_entropy, lr=0.4, cbs=cbs, opt_func=SGD)
    learn.fit(1)
    assert learn.opt.i == len(dls.train)
    learn = TrainLearner(get_model(), dls, F.cross_entropy, lr=0.1, cbs=cbs, opt_func=partial(Momentum, mom=0.8))
    learn.fit(1)
    set_seed(42)
    sched = partial(lr_scheduler.CosineAnnealingLR, T_max=3*len(dls.train))
    xtra = [BatchSchedCB(sched), RecorderCB(lr=_lr)]
    learn = TrainLearner(get_model(), dls, F.cross_entropy, lr=6e-2, cbs=cbs+xtra, opt_func=optim.AdamW)
    learn.fit(3)
    rec = xtra[1]
    lrs = rec.recs['lr']   # recorded after each step
    assert len(lrs) == 3*len(dls.train) and 5e-2 < lrs[0] < 6e-2 and lrs[-1] < 1e-3
    xtra = [EpochSchedCB(partial(lr_scheduler.StepLR, step_size=1, gamma=0.5))]
    learn = TrainLearner(get_model(), dls, F.cross_entropy, lr=6e-2, cbs=cbs+fc.L(xtra), opt_func=optim.AdamW)
    learn.fit(2)
    assert learn.opt.param_groups[0]['lr'] == pytest.approx(6e-2/4)
    tmax = 3 * len(dls.train)
    sched = partial(lr_scheduler.OneCycleLR, max_lr=6e-2, total_steps=tmax)
    rec = RecorderCB(lr=_lr, mom=_beta1)
    xtra = [BatchSchedCB(sched), rec]
    learn = TrainLearner(get_model(), dls, F.cross_entropy, lr=6e-2, cbs=cbs+xtra, opt_func=optim.AdamW)
    learn.fit(3)   # OneCycleLR fails if stepped once too often: only training batches step it
    rec.plot()
    assert len(rec.recs['mom']) == tmax and max(rec.recs['lr']) == pytest.approx(6e-2, rel=0.01)

# 13_resnet: a summary as the course first patched it onto Learner, with hooks and a one-batch fit (a plain function
# here: patched, it would replace miniai.augment's `Learner.summary` for every test after this file is imported)

def summary(self:Learner):
    res = '|Module|Input|Output|Num params|\n|--|--|--|--|\n'
    tot = 0
    def _f(hook, mod, inp, outp):
        nonlocal res,tot
        nparms = sum(o.numel() for o in mod.parameters())
        tot += nparms
        res += f'|{type(mod).__name__}|{tuple(inp[0].shape)}|{tuple(outp.shape)}|{nparms}|\n'
    with Hooks(self.model, _f) as hooks: self.fit(1, lr=1, train=False, cbs=SingleBatchCB())
    print("Tot params: ", tot)
    return res

def test_13_resnet(capsys):
    model = nn.Sequential(*cnn_layers())
    res = summary(TrainLearner(model, dls, F.cross_entropy))
    assert res.count('\n') == 2+6 and '|Flatten|(32, 4, 1, 1)|(32, 4)|0|' in res   # a validation batch
    assert f'Tot params:  {sum(p.numel() for p in model.parameters())}' in capsys.readouterr().out
    summary_lr1 = lambda self: self.fit(1, lr=1, cbs=SingleBatchCB())   # the older form: trains one batch at lr=1
    learn = TrainLearner(nn.Sequential(*cnn_layers()), dls, F.cross_entropy, cbs=[DeviceCB()])
    summary_lr1(learn)
    assert learn.opt.param_groups[0]['lr'] == 1 and len(learn.cbs) == 1
    metrics = MetricsCB(accuracy=MulticlassAccuracy())
    cbs = [DeviceCB(), metrics, ProgressCB(plot=True)]
    def fitted(find):
        "The course's `lr_find` then `fit`; the fit must be the one it would have been without the finder."
        set_seed(1)
        learn = TrainLearner(nn.Sequential(*cnn_layers()), dls, F.cross_entropy, lr=2e-3, cbs=cbs, opt_func=optim.AdamW)
        if find: learn.lr_find()
        learn.fit(1)
        return learn.model.state_dict(), metrics.log
    (w1,log1), (w2,log2) = fitted(True), fitted(False)
    assert all(torch.equal(v, w2[k]) for k,v in w1.items()) and log1 == log2 and len(log1) == 2

# 14_augment: capturing predictions, test-time augmentation, mixed precision

class CapturePreds(Callback):
    def before_fit(self, learn): self.all_inps,self.all_preds,self.all_targs = [],[],[]
    def after_batch(self, learn):
        self.all_inps. append(to_cpu(learn.batch[0]))
        self.all_preds.append(to_cpu(learn.preds))
        self.all_targs.append(to_cpu(learn.batch[1]))
    def after_fit(self, learn):
        self.all_preds,self.all_targs,self.all_inps = map(torch.cat, [self.all_preds,self.all_targs,self.all_inps])

def capture_preds(self: Learner, cbs=None, inps=False):   # the course's, as a function (see `summary` above)
    cp = CapturePreds()
    self.fit(1, train=False, cbs=[cp]+fc.L(cbs))
    res = cp.all_preds,cp.all_targs
    if inps: res = res+(cp.all_inps,)
    return res

class MixedPrecision(TrainCB):
    order = DeviceCB.order+10
    def before_fit(self, learn): self.scaler = torch.amp.GradScaler('cpu')
    def before_batch(self, learn):
        self.autocast = torch.autocast('cpu', dtype=torch.bfloat16)
        self.autocast.__enter__()
    def after_loss(self, learn): self.autocast.__exit__(None, None, None)
    def backward(self, learn): self.scaler.scale(learn.loss).backward()
    def step(self, learn):
        self.scaler.step(learn.opt)
        self.scaler.update()

def tfm_batch(b, tfm_x=fc.noop, tfm_y = fc.noop): return tfm_x(b[0]),tfm_y(b[1])

def test_14_augment():
    set_seed(1)
    metrics = MetricsCB(accuracy=MulticlassAccuracy())
    cbs = [DeviceCB(), metrics, ProgressCB(plot=True)]
    epochs,lr = 2,1e-2
    tmax = epochs * len(dls.train)
    sched = partial(lr_scheduler.OneCycleLR, max_lr=lr, total_steps=tmax)
    xtra = [BatchSchedCB(sched), MixedPrecision()]
    learn = Learner(nn.Sequential(*cnn_layers()), dls, F.cross_entropy, lr=lr, cbs=cbs+xtra, opt_func=optim.AdamW)
    learn.fit(epochs)
    assert learn.preds.dtype == torch.bfloat16 and learn.loss.dtype == torch.float32
    assert not torch.is_autocast_enabled('cpu')
    assert all(math.isfinite(d['loss']) for d in metrics.log)
    ap1, at = capture_preds(learn)
    ttacb = BatchTransformCB(partial(tfm_batch, tfm_x=partial(torch.flip, dims=(-1,))), on_val=True)
    ap2, at2 = capture_preds(learn, cbs=[ttacb])
    assert ap1.shape == ap2.shape == (len(dls.valid.dataset), 4) and torch.equal(at, at2) and ap1.dtype == torch.float32
    assert not torch.equal(ap1, ap2) and len(learn.cbs) == 5
    ap = torch.stack([ap1,ap2]).mean(0).argmax(1)
    tta = (ap==at).float().mean().item()
    p, t, i = capture_preds(learn, inps=True)
    assert i.shape == (len(dls.valid.dataset), 1, 28, 28) and torch.equal(i, dls.valid.dataset.x) and torch.equal(p, ap1)
    _, _, i2 = capture_preds(learn, cbs=[ttacb], inps=True)
    assert torch.equal(i2, i.flip(-1))   # what the model saw was flipped, and the predictions were of those images
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16): direct = [learn.model(o).float() for o in (i, i2)]
    assert all(torch.allclose(a, b, atol=0.05) for a,b in zip((ap1, ap2), direct))
    assert tta == pytest.approx((torch.stack(direct).mean(0).argmax(1)==at).float().mean().item(), abs=1/len(at))

# 21_cifar10_and_wandb: a MetricsCB subclass that replaces before_fit without calling super()

def test_21_wandb_cb():
    "Weights & Biases replaced by a list; the course's `sample_figure`, which samples a diffusion model, left out."
    logged = []
    wandb = SimpleNamespace(init=lambda **kw: logged.append(('init', kw)), log=logged.append, finish=lambda: logged.append('finish'))
    class WandBCB(MetricsCB):
        order=100
        def __init__(self, config, *ms, project='ddpm_cifar10', **metrics):
            fc.store_attr()
            super().__init__(*ms, **metrics)
        def before_fit(self, learn): wandb.init(project=self.project, config=self.config)
        def after_fit(self, learn): wandb.finish()
        def _log(self, d):
            if d['train']=='train':   # the course reads `self.train` here, which nothing sets
                wandb.log({'train_'+m:float(d[m]) for m in self.all_metrics})
            else:
                wandb.log({'val_'+m:float(d[m]) for m in self.all_metrics})
            print(d)
        def after_batch(self, learn):
            super().after_batch(learn)
            wandb.log({'loss':learn.loss})
    metrics = MetricsCB(accuracy=MulticlassAccuracy())
    wandbcb = WandBCB(config={'lr': 1e-2, 'epochs': 2}, accuracy=MulticlassAccuracy())
    cbs = [DeviceCB(), metrics, ProgressCB(plot=True), wandbcb]
    learn = Learner(nn.Sequential(*cnn_layers()), dls, F.cross_entropy, lr=1e-2, cbs=cbs+[TrainCB()], opt_func=optim.AdamW)
    learn.fit(2)
    epochs = [d for d in logged if isinstance(d, dict) and 'loss' not in d]
    assert logged[0] == ('init', {'project': 'ddpm_cifar10', 'config': {'lr': 1e-2, 'epochs': 2}}) and logged[-1] == 'finish'
    assert sum(isinstance(d, dict) and 'loss' in d for d in logged) == 2*(len(dls.train)+len(dls.valid))
    assert epochs == [{f"{'train' if d['train']=='train' else 'val'}_{k}": d[k] for k in ('loss', 'accuracy')} for d in metrics.log]

# Later lessons (diffusion): a TrainCB subclass that rebuilds the batch and changes `predict`

def test_ddpm_style_train_cb():
    class Out:
        def __init__(self, sample): self.sample = sample
    class Unet(nn.Module):   # a stand-in returning an object with `.sample`, as diffusers' models do
        def __init__(self): super().__init__(); self.c = nn.Conv2d(1, 1, 3, padding=1)
        def forward(self, x, t): return Out(self.c(x) + t[:, None, None, None]*0)
    class DDPMCB(TrainCB):
        order = DeviceCB.order+1
        def __init__(self, n_steps=10): super().__init__(); self.n_steps = n_steps
        def before_batch(self, learn):
            x0 = learn.batch[0]
            t = torch.randint(0, self.n_steps, (len(x0),))
            eps = torch.randn_like(x0)
            learn.batch = ((x0+eps*t[:, None, None, None]/self.n_steps, t), eps)
        def predict(self, learn): learn.preds = learn.model(*learn.batch[0]).sample
    cbs = [DDPMCB(), DeviceCB(), MetricsCB(), ProgressCB()]
    learn = Learner(Unet(), dls, nn.MSELoss(), lr=1e-3, cbs=cbs, opt_func=optim.Adam)
    learn.fit(1)
    assert learn.preds.shape == (16, 1, 28, 28) and len(learn.metrics.log) == 2
