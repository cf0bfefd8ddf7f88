"""Lesson 13: `act_gr` and `ResBlock` against a hand computation, their shapes, the identity path (its norm included:
the course's version, written inline below, fails that test), and the course notebook's calls on tiny data."""
from functools import partial
import pytest
import torch
import torch.nn.functional as F
import fastcore.all as fc
import matplotlib.pyplot as plt
from torch import nn, optim
from torch.optim import lr_scheduler
from torch.testing import assert_close
from miniai.training import Dataset, get_dls
from miniai.datasets import DataLoaders
from miniai.learner import TrainLearner, MomentumLearner, MetricsCB, ProgressCB, DeviceCB, SingleBatchCB
from miniai.activations import Hooks, ActivationStats, set_seed
from miniai.init import GeneralRelu, conv, init_weights
from miniai.sgd import BatchSchedCB
from miniai.resnet import *
from miniai.resnet import _conv_block

@pytest.fixture(autouse=True)
def _one_thread_and_no_figures_left():
    "One thread: tiny convolutions on two busy cores run many times slower with two."
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
    plt.close('all')

def test_act_gr_is_the_leaky_general_relu():
    x = torch.linspace(-3, 3, 13)
    assert isinstance(act_gr(), GeneralRelu)
    assert_close(act_gr()(x), F.leaky_relu(x, 0.1) - 0.4)

@pytest.mark.parametrize('ni,nf,stride,size,out', [(8, 8, 1, 12, 12), (1, 8, 1, 12, 12), (8, 16, 2, 12, 6),
                                                   (16, 16, 2, 7, 4), (16, 32, 2, 7, 4), (32, 64, 2, 1, 1)])
def test_res_block_shapes_match_the_conv_path(ni, nf, stride, size, out):
    "Odd sizes included: the pool rounds up (`ceil_mode`) as the stride-2 conv with padding does"
    blk = ResBlock(ni, nf, stride=stride, norm=nn.BatchNorm2d)
    assert blk(torch.randn(2, ni, size, size)).shape == (2, nf, out, out)

@pytest.mark.parametrize('ni,nf,stride', [(8, 8, 1), (8, 16, 1), (8, 8, 2), (8, 16, 2)])
def test_res_block_by_hand(ni, nf, stride):
    blk = ResBlock(ni, nf, stride=stride, norm=nn.BatchNorm2d).eval()
    x = torch.randn(3, ni, 6, 6)
    idx = F.avg_pool2d(x, 2, ceil_mode=True) if stride == 2 else x
    if ni != nf: idx = blk.idconv[1](F.conv2d(idx, blk.idconv[0].weight))
    c1, bn1, a1 = blk.convs[0]
    c2, bn2 = blk.convs[1]
    res = bn2(F.conv2d(a1(bn1(F.conv2d(x, c1.weight, padding=1))), c2.weight, stride=stride, padding=1))
    assert_close(blk(x), F.leaky_relu(res + idx, 0.1) - 0.4)
    assert (blk.idconv is fc.noop) == (ni == nf) and (blk.pool is fc.noop) == (stride == 1)

def test_res_block_with_zero_residual_is_the_identity_then_act():
    blk = ResBlock(4, 4, norm=nn.BatchNorm2d).eval()
    with torch.no_grad(): blk.convs[1][1].weight.zero_()   # the last norm's scale: the residual is then 0
    x = torch.randn(2, 4, 5, 5)
    assert_close(blk(x), act_gr()(x))

def test_conv_block_has_norm_after_each_conv_and_act_only_after_the_first():
    blk = _conv_block(4, 8, 2, norm=nn.BatchNorm2d)
    assert [type(o).__name__ for o in blk[0]] == ['Conv2d', 'BatchNorm2d', 'GeneralRelu']
    assert [type(o).__name__ for o in blk[1]] == ['Conv2d', 'BatchNorm2d'] and blk[1][0].stride == (2, 2)

# The course's defects: each test fails on the course's version, written inline

def course_res_block(ni, nf, stride=1, ks=3, act=act_gr, norm=None, inner_norm=True):
    "The course's `ResBlock`; `inner_norm=False` is the lesson's first, which didn't pass `norm` to `_conv_block`"
    blk = nn.Module.__new__(ResBlock); nn.Module.__init__(blk)
    blk.convs = _conv_block(ni, nf, stride, act=act, ks=ks, norm=norm if inner_norm else None)
    blk.idconv = fc.noop if ni==nf else conv(ni, nf, ks=1, stride=1, act=None)
    blk.pool = fc.noop if stride==1 else nn.AvgPool2d(2, ceil_mode=True)
    blk.act = act()
    return blk

xfail = partial(pytest.param, marks=pytest.mark.xfail(strict=True))

@pytest.mark.parametrize('make', [ResBlock, xfail(course_res_block), xfail(partial(course_res_block, inner_norm=False))])
def test_every_conv_of_the_block_is_normalised_the_identity_path_too(make):
    blk = make(8, 16, stride=2, norm=nn.BatchNorm2d)
    convs = [m for m in blk.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 3 and all(c.bias is None for c in convs)   # each followed by a batch norm, which makes a bias useless
    assert sum(isinstance(m, nn.BatchNorm2d) for m in blk.modules()) == 3
    out = blk.idconv(torch.randn(64, 8, 5, 5)*10 + 3)   # training mode: normalised per channel whatever the input's scale
    assert_close(out.mean((0, 2, 3)), torch.zeros(16), atol=1e-4, rtol=0)
    assert_close(out.std((0, 2, 3)), torch.ones(16), atol=1e-2, rtol=0)

# The course's notebook 13, its calls on tiny data

def tiny_dls(n=64, bs=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    def ds(n):
        x = torch.randn(n, 1, 28, 28, generator=g)
        return Dataset(x, (x[:, 0, :14].mean((1, 2))>0).long() + 2*(x[:, 0, :, :14].mean((1, 2))>0).long())
    return DataLoaders(*get_dls(ds(n), ds(n//2), bs))

def get_model(act=nn.ReLU, nfs=(8,16,32,64,128,256), norm=nn.BatchNorm2d):
    layers = [ResBlock(1, 8, stride=1, act=act, norm=norm)]
    layers += [ResBlock(nfs[i], nfs[i+1], act=act, norm=norm, stride=2) for i in range(len(nfs)-1)]
    layers += [nn.Flatten(), nn.Linear(nfs[-1], 10, bias=False), nn.BatchNorm1d(10)]
    return nn.Sequential(*layers)

def test_course_13_calls(capsys):
    set_seed(42)
    dls = tiny_dls(n=32)
    iw = partial(init_weights, leaky=0.1)
    metrics = MetricsCB(accuracy=lambda p,y: (p.argmax(1)==y).float().mean())
    cbs = [DeviceCB(), metrics, ProgressCB(plot=True), ActivationStats(fc.risinstance(GeneralRelu))]
    def _print_shape(hook, mod, inp, outp): print(type(mod).__name__, inp[0].shape, outp.shape)
    model = get_model()
    learn = TrainLearner(model, dls, F.cross_entropy, cbs=[DeviceCB(), SingleBatchCB()])
    with Hooks(model, _print_shape) as hooks: learn.fit(1, train=False)
    shapes = capsys.readouterr().out.splitlines()
    assert shapes[0] == 'ResBlock torch.Size([16, 1, 28, 28]) torch.Size([16, 8, 28, 28])'   # the 16 validation items
    assert shapes[5] == 'ResBlock torch.Size([16, 128, 2, 2]) torch.Size([16, 256, 1, 1])' and len(shapes) == 9
    model = get_model(act_gr, norm=nn.BatchNorm2d).apply(iw)
    MomentumLearner(model, dls, F.cross_entropy, cbs=DeviceCB()).lr_find(max_epochs=1)
    lr, epochs = 2e-2, 2
    sched = partial(lr_scheduler.OneCycleLR, max_lr=lr, total_steps=epochs * len(dls.train))
    model = get_model(act_gr, norm=nn.BatchNorm2d).apply(iw)
    learn = TrainLearner(model, dls, F.cross_entropy, lr=lr, cbs=cbs+[BatchSchedCB(sched)], opt_func=optim.AdamW)
    learn.fit(epochs)
    assert [(d['epoch'], d['train']) for d in metrics.log] == [(0, 'train'), (0, 'eval'), (1, 'train'), (1, 'eval')]
