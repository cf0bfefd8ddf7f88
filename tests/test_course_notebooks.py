"""The course's own notebooks run to the end against our `miniai` (see `course_nb.py` for what runs instead of the
course's data loading and epochs, and why); and, always, what those notebooks do with our modules, on tiny synthetic
data, in the style of `test_course_compat.py`.

    MINIAI_COURSE=/path/to/course22p2 pytest tests/test_course_notebooks.py"""
from functools import partial
import pytest
import torch
import torch.nn.functional as F
import fastcore.all as fc
import matplotlib.pyplot as plt
from torch import nn
from course_nb import SUBS, course_dir, errors, run_course_nb
from miniai.training import Dataset, get_dls
from miniai.datasets import DataLoaders
from miniai.conv import *
from miniai.learner import *
from miniai.activations import *
from miniai.init import *
try: from torcheval.metrics import MulticlassAccuracy
except ImportError: MulticlassAccuracy = Accuracy

@pytest.mark.slow
@pytest.mark.data('fashion_mnist')
@pytest.mark.parametrize('name', list(SUBS))
def test_course_notebook_runs(name, tmp_path):
    if course_dir() is None: pytest.skip("set MINIAI_COURSE to a checkout of fastai/course22p2 to run the course's notebooks")
    nb = run_course_nb(name, tmp_path)
    assert not errors(nb)
    assert all(c.execution_count for c in nb.cells if c.cell_type == 'code' and c.source.strip())   # every cell ran

# The same calls, always, on tiny synthetic data: 28×28 images in 10 classes, set by a bright square's place

@pytest.fixture(autouse=True)
def _one_thread_and_no_figures_left():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
    plt.close('all')

def image_dls(n=48, bs=16):
    g = torch.Generator().manual_seed(0)
    def ds(n):
        y = torch.randint(0, 10, (n,), generator=g)
        x = torch.rand(n, 1, 28, 28, generator=g)*0.3
        for i,c in enumerate(y.tolist()): x[i, 0, 2*c:2*c+6, 2*c:2*c+6] += 1
        return Dataset(x, y)
    return DataLoaders(*get_dls(ds(n), ds(n//2), bs))

dls = image_dls()

def test_course_calls_10_11_12_13_14():
    "What the course's notebooks 11 to 14 do with `miniai.activations` and `miniai.init`"
    set_seed(42)
    xb,yb = next(iter(dls.train))
    metrics = MetricsCB(accuracy=MulticlassAccuracy())
    astats = ActivationStats(fc.risinstance(nn.ReLU))                                                  # 11
    cbs = [DeviceCB(), metrics, ProgressCB(plot=True), astats]
    learn = MomentumLearner(get_model(), dls, F.cross_entropy, lr=0.2, cbs=cbs)
    learn.fit(1)
    astats.color_dim(); astats.plot_stats(); astats.dead_chart()
    assert len(astats) == 4 and len(astats.hooks[0].stats[0]) == len(dls.train)
    clean_mem()
    xmean,xstd = xb.mean(),xb.std()
    norm = BatchTransformCB(lambda b: ((b[0]-xmean)/xstd, b[1]))
    act_gr = partial(GeneralRelu, leak=0.1, sub=0.4)
    astats = ActivationStats(fc.risinstance(GeneralRelu))
    cbs = [DeviceCB(), metrics, ProgressCB(plot=True), astats]
    iw = partial(init_weights, leaky=0.1)
    plot_func(act_gr())
    model = get_model(act_gr).apply(iw)
    relus = [o for o in model.modules() if isinstance(o, GeneralRelu)]
    convs = [o for o in model.modules() if isinstance(o, nn.Conv2d)]
    for ms in zip(relus,convs): lsuv_init(model, *ms, xb.to(def_device))
    MomentumLearner(model, dls, F.cross_entropy, lr=0.2, cbs=cbs+[norm]).fit(1)
    model = get_model(act_gr, norm=nn.BatchNorm2d).apply(iw)                                            # 12
    learn = MomentumLearner(model, dls, F.cross_entropy, lr=0.2, cbs=cbs)
    learn.fit(1)
    assert metrics.log[-1]['accuracy'] > 0.2   # chance: 0.1
    def _print_shape(hook, mod, inp, outp): hook.shape = tuple(outp.shape)                             # 13
    with Hooks(model, _print_shape) as hooks: learn.fit(1, train=False)
    n = len(dls.valid.dataset)   # one validation batch: the last shapes the hooks saw
    assert [h.shape for h in hooks][:2] == [(n, 8, 14, 14), (n, 16, 7, 7)]
    layers = [conv(1, 8, stride=1, act=act_gr, norm=nn.BatchNorm2d), conv(8, 10, act=None, norm=nn.BatchNorm2d, bias=True)]
    assert layers[0][0].bias is None and layers[1][0].bias is not None
    augcb = BatchTransformCB(lambda b: (torch.flip(b[0], (-1,)), b[1]), on_val=False)                 # 14
    MomentumLearner(get_model(act_gr, norm=nn.BatchNorm2d).apply(iw), dls, F.cross_entropy, lr=0.2, cbs=[DeviceCB(), augcb]).fit(1)
