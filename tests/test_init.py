"""Lesson 11's `miniai.init`: memory helpers, the batch transform, `GeneralRelu`, `plot_func`, Kaiming init, LSUV and
`conv` with a norm, each against a hand computation or PyTorch's own. Each defect fixed from the course's module has
a test run on ours and on the course's own lines (written out below), where it is expected to fail
(`xfail(strict=True)`: should the course's version pass, the test fails). CPU, tiny synthetic data."""
import gc, inspect, math, sys, traceback, weakref
from functools import partial
import pytest
import torch
import torch.nn.functional as F
import fastcore.all as fc
import matplotlib.pyplot as plt
from torch import nn
from torch.nn import init
from miniai.training import Dataset, get_dls
from miniai.datasets import DataLoaders
from miniai.learner import Callback, DeviceCB, Learner, TrainCB
from miniai.activations import Hook
import miniai.init as I
from miniai.init import *
from helpers import run_as_notebook

@pytest.fixture(autouse=True)
def _no_figures_left():
    yield
    plt.close('all')

# The course's own lines, for the defects (fastai/course22p2, miniai/init.py)
COURSE_HIST = '''
def clean_ipython_hist():
    # Code in this function mainly copied from IPython source
    if not 'get_ipython' in globals(): return
    ip = get_ipython()
    user_ns = ip.user_ns
    ip.displayhook.flush()
    pc = ip.displayhook.prompt_count + 1
    for n in range(1, pc): user_ns.pop('_i'+repr(n),None)
    user_ns.update(dict(_i='',_ii='',_iii=''))
    hm = ip.history_manager
    hm.input_hist_parsed[:] = [''] * pc
    hm.input_hist_raw[:] = [''] * pc
    hm._i = hm._ii = hm._iii = hm._i00 =  ''
'''

def course_clean_tb():
    if hasattr(sys, 'last_traceback'):
        traceback.clear_frames(sys.last_traceback)
        delattr(sys, 'last_traceback')
    if hasattr(sys, 'last_type'): delattr(sys, 'last_type')
    if hasattr(sys, 'last_value'): delattr(sys, 'last_value')

class CourseGeneralRelu(GeneralRelu):
    def forward(self, x):
        x = F.leaky_relu(x,self.leak) if self.leak is not None else F.relu(x)
        if self.sub is not None: x -= self.sub
        if self.maxv is not None: x.clamp_max_(self.maxv)
        return x

def course_plot_func(f, start=-5., end=5., steps=100):
    x = torch.linspace(start, end, steps)
    plt.plot(x, f(x))

def _lsuv_stats(hook, mod, inp, outp):
    hook.mean,hook.std = outp.detach().mean(),outp.detach().std()

def course_lsuv_init(model, m, m_in, xb):
    h = Hook(m, _lsuv_stats)
    with torch.no_grad():
        while model(xb) is not None and (abs(h.std-1)>1e-3 or abs(h.mean)>1e-3):
            m_in.bias -= h.mean
            m_in.weight.data /= h.std
    h.remove()

def course_conv(ni, nf, ks=3, stride=2, act=nn.ReLU, norm=None, bias=None):
    if bias is None: bias = not isinstance(norm, (nn.BatchNorm1d,nn.BatchNorm2d,nn.BatchNorm3d))
    layers = [nn.Conv2d(ni, nf, stride=stride, kernel_size=ks, padding=ks//2, bias=bias)]
    if norm: layers.append(norm(nf))
    if act: layers.append(act())
    return nn.Sequential(*layers)

course = partial(pytest.param, marks=pytest.mark.xfail(strict=True, reason="the course's defect"))
act_gr = partial(GeneralRelu, leak=0.1, sub=0.4)

# The API

def test_course_signatures():
    sig = lambda f: list(inspect.signature(f).parameters)
    assert I.__all__ == ['clean_ipython_hist', 'clean_tb', 'clean_mem', 'BatchTransformCB', 'GeneralRelu', 'plot_func',
                         'init_weights', 'lsuv_init', 'conv', 'get_model']
    assert sig(BatchTransformCB) == ['tfm', 'on_train', 'on_val'] and sig(GeneralRelu) == ['leak', 'sub', 'maxv']
    assert sig(plot_func) == ['f', 'start', 'end', 'steps'] and sig(init_weights) == ['m', 'leaky']
    assert sig(lsuv_init)[:4] == ['model', 'm', 'm_in', 'xb'] and sig(get_model) == ['act', 'nfs', 'norm']
    assert sig(conv) == ['ni', 'nf', 'ks', 'stride', 'act', 'norm', 'bias']


# Memory helpers

IPY = '''
from IPython.core.interactiveshell import InteractiveShell
ip = InteractiveShell.instance(history_length=0)
for src in ("big = list(range(10))", "big", "big[:3]"): ip.run_cell(src, store_history=True)
before = (len(ip.user_ns['Out']), ip.user_ns['_i2'])
clean = {}
exec(CODE, clean)
clean['clean_ipython_hist']()
print(before, len(ip.user_ns['Out']), repr(ip.user_ns.get('_i2')), repr(ip.user_ns['_']))
'''

@pytest.mark.parametrize('code', ['from miniai.init import clean_ipython_hist', course(COURSE_HIST)])
def test_clean_ipython_hist_forgets_outputs_and_inputs(code):
    "Defined in a module, the course's looks for `get_ipython` in the module's globals, and does nothing."
    r = run_as_notebook(f'CODE = {code!r}\n' + IPY)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == "(2, 'big') 0 None ''"   # two outputs and `_i2`, then none

def test_clean_ipython_hist_outside_ipython(): clean_ipython_hist()   # nothing to clean: no error

class Big: pass

def failing():
    big = Big()
    raise ZeroDivisionError(weakref.ref(big))

@pytest.mark.parametrize('f', [clean_tb, course(course_clean_tb)])
def test_clean_tb_forgets_the_last_error(f):
    "IPython keeps an error's traceback in `sys.last_*` and, from Python 3.12, `sys.last_exc`: the course's leaves that."
    try: failing()
    except ZeroDivisionError as e:
        sys.last_type,sys.last_value,sys.last_traceback,sys.last_exc = type(e),e,e.__traceback__,e
        ref = e.args[0]
    try:
        f()
        gc.collect()
        assert not any(hasattr(sys, k) for k in ('last_type', 'last_value', 'last_traceback', 'last_exc'))
        assert ref() is None   # the frame's local `big` is gone
    finally:
        for k in ('last_type', 'last_value', 'last_traceback', 'last_exc'): vars(sys).pop(k, None)

def test_clean_mem_frees_the_last_error():
    try: failing()
    except ZeroDivisionError as e: sys.last_type,sys.last_value,sys.last_traceback,ref = type(e),e,e.__traceback__,e.args[0]
    clean_mem()
    assert ref() is None and not hasattr(sys, 'last_value')

# BatchTransformCB

class Look(Callback):
    "Writes down the batches it sees in `before_batch`, at the default order 0, and whether training"
    def __init__(self): self.seen = []
    def before_batch(self, learn): self.seen.append((learn.training, learn.batch[0].clone()))

def lin_dls():
    x = torch.arange(12.).view(6, 2)
    ds = Dataset(x, x.sum(1, keepdim=True))
    return DataLoaders(*get_dls(ds, ds, 3))

@pytest.mark.parametrize('on_train,on_val', [(True, True), (True, False), (False, True)])
def test_batch_transform(on_train, on_val):
    "Each batch transformed (100 added) where asked, before the callbacks at the default order see it."
    look = Look()
    learn = Learner(nn.Linear(2, 1), lin_dls(), F.mse_loss, lr=1e-3,
                    cbs=[TrainCB(), look, BatchTransformCB(lambda b: (b[0]+100, b[1]), on_train, on_val), DeviceCB()])
    learn.fit(1)
    assert [t for t,_ in look.seen] == [True, True, False]
    assert [xb.min().item()>=100 for _,xb in look.seen] == [on_train, on_train, on_val]
    assert DeviceCB.order < BatchTransformCB.order < Callback.order

# GeneralRelu and plot_func

def general_relu(x, leak, sub, maxv):
    "By hand, with `torch.where`"
    y = torch.where(x>0, x, x*(leak or 0.))
    if sub is not None: y = y-sub
    return y if maxv is None else torch.where(y>maxv, torch.full_like(y, maxv), y)

ARGS = [(None, None, None), (0.1, 0.4, None), (0.1, 0.4, 2.), (None, None, 2.), (None, 0.4, None), (None, 0.4, 2.)]

@pytest.mark.parametrize('leak,sub,maxv', ARGS)
def test_general_relu_forward(leak, sub, maxv):
    x = torch.linspace(-4, 4, 17)
    assert torch.allclose(GeneralRelu(leak, sub, maxv)(x), general_relu(x, leak, sub, maxv))
    assert torch.allclose(GeneralRelu(leak, sub, maxv)(x), F.relu(x) if leak is None and sub is None and maxv is None else general_relu(x, leak, sub, maxv))

@pytest.mark.parametrize('cls', [GeneralRelu, course(CourseGeneralRelu)])
@pytest.mark.parametrize('leak,sub,maxv', [(None, 0.4, None), (None, None, 2.), (None, 0.4, 2.)])
def test_general_relu_backward_without_leak(cls, leak, sub, maxv):
    "After a plain ReLU the course's in-place `-=` and `clamp_max_` break the backward pass."
    x = (torch.linspace(-4, 4, 17)+0.1).requires_grad_()   # no input at a kink, where PyTorch versions differ
    cls(leak, sub, maxv)(x).sum().backward()
    xh = x.detach().clone().requires_grad_()
    general_relu(xh, leak, sub, maxv).sum().backward()
    assert torch.equal(x.grad, xh.grad)

def test_general_relu_backward_with_leak():
    x = torch.linspace(-4, 4, 17).requires_grad_()
    GeneralRelu(0.1, 0.4, 2.)(x).sum().backward()
    assert torch.allclose(x.grad, torch.where(x>0, 1., 0.1) * (general_relu(x, 0.1, 0.4, None)<2.).float())

@pytest.mark.parametrize('pf', [plot_func, course(course_plot_func)])
def test_plot_func_plots_a_module_with_parameters(pf):
    "`nn.PReLU` learns its slope: its output needs a gradient, which the course's version hands to matplotlib."
    pf(nn.PReLU(init=0.25), -2., 2., 5)
    l = plt.gca().get_lines()[0]
    assert list(l.get_xdata()) == [-2., -1., 0., 1., 2.] and list(l.get_ydata()) == [-0.5, -0.25, 0., 1., 2.]

def test_plot_func_draws_the_axes():
    plot_func(GeneralRelu(leak=0.1, sub=0.4))
    assert len(plt.gca().get_lines()) == 3 and len(plt.gca().get_lines()[0].get_xdata()) == 100

# init_weights

@pytest.mark.parametrize('leaky', [0., 0.1])
@pytest.mark.parametrize('m', [nn.Conv1d(16, 32, 3), nn.Conv2d(16, 32, 3), nn.Conv3d(16, 32, 3)])
def test_init_weights_is_kaiming_normal(m, leaky):
    torch.manual_seed(0); init_weights(m, leaky)
    w = m.weight.detach().clone()
    torch.manual_seed(0); init.kaiming_normal_(m.weight, a=leaky)
    assert torch.equal(w, m.weight)
    fan_in = m.weight[0].numel()
    assert w.std().item() == pytest.approx(math.sqrt(2/(1+leaky**2)/fan_in), rel=0.1)   # the hand formula

def test_init_weights_leaves_other_layers():
    lin = nn.Linear(4, 4); w = lin.weight.detach().clone()
    init_weights(lin)
    assert torch.equal(lin.weight, w)

# lsuv_init

def gr_model(): torch.manual_seed(0); return get_model(act_gr)
def pairs(model, cls): return list(zip([o for o in model.modules() if isinstance(o, cls)], [o for o in model.modules() if isinstance(o, nn.Conv2d)]))
xb = torch.randn(16, 1, 28, 28, generator=torch.Generator().manual_seed(0))

def test_lsuv_init_gives_mean_0_and_std_1():
    model = gr_model()
    for m,m_in in pairs(model, GeneralRelu):
        lsuv_init(model, m, m_in, xb)
        out = []
        h = Hook(m, lambda h,mod,i,o: out.append(o))
        with torch.no_grad(): model(xb)
        h.remove()
        assert abs(out[0].mean().item()) <= 1e-3 and abs(out[0].std().item()-1) <= 1e-3
    assert sum(len(m._forward_hooks) for m in model.modules()) == 0

def capped(model, n=200):
    "`model`, which raises a `RuntimeError` once it has run `n` times (the course's loop would run for ever)"
    calls = iter(range(n))
    def f(x):
        if next(calls, None) is None: raise RuntimeError(f'still looping after {n} rounds')
        return model(x)
    return f

@pytest.mark.parametrize('f', [lsuv_init, course(course_lsuv_init)])
@pytest.mark.parametrize('case', ['zero input', 'capped activation'])
def test_lsuv_init_stops_when_std_cant_reach_1(f, case):
    "Inputs of zeros, or an activation whose outputs lie in [-0.4, 0.1]: the course's loops for ever."
    torch.manual_seed(0)
    model = get_model(act_gr if case=='zero input' else partial(GeneralRelu, sub=0.4, maxv=0.5))
    m, m_in = pairs(model, GeneralRelu)[0]
    w = m_in.weight.detach().clone()
    with pytest.raises(ValueError, match='lsuv_init'): f(capped(model), m, m_in, torch.zeros_like(xb) if case=='zero input' else xb)
    assert torch.equal(m_in.weight, w)

@pytest.mark.parametrize('f', [lsuv_init, course(course_lsuv_init)])
def test_lsuv_init_after_a_plain_relu_keeps_weights_finite(f):
    "A ReLU's mean can't reach 0: the course's keeps lowering the bias until every unit is dead, then divides by 0."
    torch.manual_seed(0)
    model = get_model()
    m, m_in = pairs(model, nn.ReLU)[0]
    w = m_in.weight.detach().clone()
    with pytest.raises(ValueError, match='std'): f(capped(model), m, m_in, xb)
    assert torch.equal(m_in.weight, w)

@pytest.mark.parametrize('f', [lsuv_init, course(course_lsuv_init)])
def test_lsuv_init_on_a_layer_without_bias(f):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, bias=False), act_gr(), nn.Conv2d(8, 8, 3, bias=False), act_gr())
    m_in, m = model[2], model[3]
    f(capped(model), m, m_in, xb)
    with torch.no_grad(): y = model(xb)
    assert abs(y.std().item()-1) < 1e-3   # without a bias only the std can be set; the mean follows

# conv and get_model

@pytest.mark.parametrize('f,norm,bias', [(conv, None, True), (conv, nn.BatchNorm2d, False), (conv, nn.BatchNorm1d, False),
                                         (conv, partial(nn.BatchNorm2d, momentum=0.2), False), (conv, nn.InstanceNorm2d, True),
                                         course(course_conv, nn.BatchNorm2d, False)])
def test_conv_bias_follows_the_norm(f, norm, bias):
    "A batch norm cancels the convolution's bias; the course's `isinstance` on the class is always false."
    assert (f(1, 8, norm=norm)[0].bias is not None) == bias

def test_conv_layers_and_output():
    torch.manual_seed(0)
    c = conv(3, 8, ks=5, stride=1, act=act_gr, norm=nn.BatchNorm2d)
    assert [type(o) for o in c] == [nn.Conv2d, nn.BatchNorm2d, GeneralRelu] and c[0].padding == (2, 2)
    x = torch.randn(4, 3, 9, 9)
    y = F.conv2d(x, c[0].weight, padding=2)
    y = F.batch_norm(y, None, None, c[1].weight, c[1].bias, training=True)
    assert torch.allclose(c(x), F.leaky_relu(y, 0.1)-0.4, atol=1e-5)
    assert [type(o) for o in conv(3, 8, act=None)] == [nn.Conv2d] and conv(3, 8, bias=False)[0].bias is None

@pytest.mark.parametrize('norm', [None, nn.BatchNorm2d])
def test_get_model(norm):
    torch.manual_seed(0)
    model = get_model(act_gr, nfs=[1, 4, 8, 16, 16], norm=norm)
    assert model(xb[:2]).shape == (2, 10)
    convs = [o for o in model.modules() if isinstance(o, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [4, 8, 16, 16, 10] and convs[-1].bias is not None
    assert sum(isinstance(o, nn.BatchNorm2d) for o in model.modules()) == (4 if norm else 0)
    assert [type(o) for o in model[-2]] == [nn.Conv2d] and isinstance(model[-1], nn.Flatten)
