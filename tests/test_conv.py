"""Tests of `miniai.conv` (lesson 07) on synthetic tensors; the `meta` device stands in for a GPU.
Nothing here needs data or is timed."""
import importlib
from collections import OrderedDict, namedtuple
from collections.abc import Mapping
from dataclasses import dataclass, field
import numpy as np, pytest, torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from torch import nn
from torch.utils.data import DataLoader, default_collate
import miniai.conv
from miniai.conv import conv, def_device, to_device, collate_device
from miniai.training import Dataset

Pair = namedtuple('Pair', 'x y')

# conv

@settings(max_examples=15)
@given(ni=st.integers(1, 3), nf=st.integers(1, 4), ks=st.sampled_from([1, 3, 5]), stride=st.integers(1, 3),
       n=st.integers(1, 12), act=st.booleans())
def test_conv_matches_conv2d_with_half_padding(ni, nf, ks, stride, n, act):
    "Same output as PyTorch's `Conv2d` with padding `ks//2` (then a ReLU when `act`); the size is `ceil(n/stride)`"
    torch.manual_seed(0)
    m = conv(ni, nf, ks=ks, stride=stride, act=act)
    c = m[0] if act else m
    ref = nn.Conv2d(ni, nf, ks, stride=stride, padding=ks//2)
    ref.load_state_dict(c.state_dict())
    x = torch.randn(2, ni, n, n)
    out = m(x)
    assert out.shape==(2, nf, -(-n//stride), -(-n//stride))
    torch.testing.assert_close(out, F.relu(ref(x)) if act else ref(x))

def test_conv_layers_and_defaults():
    m = conv(3, 8)
    assert isinstance(m, nn.Sequential) and [type(o) for o in m]==[nn.Conv2d, nn.ReLU]
    c = m[0]
    assert (c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding)==(3, 8, (3, 3), (2, 2), (1, 1))
    c = conv(3, 8, ks=5, stride=1, act=False)
    assert type(c) is nn.Conv2d and (c.kernel_size, c.stride, c.padding)==((5, 5), (1, 1), (2, 2))

def test_conv_act():
    x = torch.randn(4, 2, 8, 8)
    torch.manual_seed(0)
    with_relu = conv(2, 6)(x)
    torch.manual_seed(0)
    without = conv(2, 6, act=False)(x)
    assert (with_relu>=0).all() and (without<0).any()
    torch.testing.assert_close(with_relu, without.clamp_min(0))

def test_conv_shapes_down_to_one_pixel():
    "The lesson's CNN: five stride-2 layers take 28×28 to 1×1"
    cnn = nn.Sequential(conv(1, 8), conv(8, 16), conv(16, 32), conv(32, 32), conv(32, 10, act=False), nn.Flatten())
    sizes, x = [], torch.zeros(3, 1, 28, 28)
    for l in list(cnn)[:5]: x = l(x); sizes.append(x.shape[-1])
    assert sizes==[14, 7, 4, 2, 1] and cnn(torch.zeros(3, 1, 28, 28)).shape==(3, 10)

@pytest.mark.parametrize('ks', [4, 2, 0, -2, np.int64(4)])
def test_conv_refuses_even_kernel_sizes(ks):
    "With padding `ks//2`, an even kernel would make the output one pixel larger; PyTorch doesn't say so, `conv` does"
    with pytest.raises(ValueError, match=f'ks should be odd, but got ks={ks}: with padding ks//2 an even kernel makes the output one pixel larger'):
        conv(1, 4, ks=ks)

def test_conv_accepts_numpy_integers():
    assert conv(np.int64(1), np.int32(4), ks=np.int64(3))(torch.zeros(1, 1, 6, 6)).shape==(1, 4, 3, 3)

# def_device, to_device, collate_device

def test_def_device_prefers_mps_then_cuda(monkeypatch):
    found = {}
    for mps, cuda in [(True, True), (False, True), (False, False)]:
        monkeypatch.setattr(torch.backends.mps, 'is_available', lambda mps=mps: mps)
        monkeypatch.setattr(torch.cuda, 'is_available', lambda cuda=cuda: cuda)
        found[mps, cuda] = importlib.reload(miniai.conv).def_device
    monkeypatch.undo()
    importlib.reload(miniai.conv)
    assert found=={(True, True): 'mps', (False, True): 'cuda', (False, False): 'cpu'}

@dataclass(frozen=True)
class Batch:
    "A dataclass batch: two fields set by `__init__`, one that `__init__` doesn't take"
    x: object
    y: object = None
    tag: str = field(init=False, default='batch')

leaves = st.one_of(st.integers(), st.text(max_size=3), st.none(), st.integers(1, 3).map(np.zeros),
                   st.lists(st.floats(-1, 1), min_size=1, max_size=3).map(torch.tensor))
nested = st.recursive(leaves, lambda c: st.one_of(
    st.lists(c, max_size=3), st.lists(c, max_size=3).map(tuple), st.builds(Pair, c, c), st.builds(Batch, c, c),
    st.dictionaries(st.text(max_size=2), c, max_size=3), st.dictionaries(st.text(max_size=2), c, max_size=3).map(OrderedDict)),
    max_leaves=10)

def _moved(a, b):
    "`b` is `a` with every tensor on the meta device (`a`'s left on the CPU); mappings became dicts, other containers kept their type; anything else is the same object"
    if isinstance(a, torch.Tensor): return a.device.type=='cpu' and b.device.type=='meta' and b.shape==a.shape and b.dtype==a.dtype
    if isinstance(a, Mapping): return type(b) is dict and list(a)==list(b) and all(_moved(a[k], b[k]) for k in a)
    if isinstance(a, Batch): return type(b) is Batch and b.tag==a.tag and _moved(a.x, b.x) and _moved(a.y, b.y)
    if isinstance(a, (list, tuple)): return type(b) is type(a) and len(b)==len(a) and all(map(_moved, a, b))
    return b is a

@settings(max_examples=40)
@given(nested)
def test_to_device(x):
    "Every tensor moves, however deeply nested in dicts, lists, tuples, namedtuples and dataclasses; the rest stays as it is"
    assert _moved(x, to_device(x, 'meta'))

def test_to_device_default_is_def_device_when_called(monkeypatch):
    monkeypatch.setattr(miniai.conv, 'def_device', 'meta')   # read when called, so this moves the batch
    b = to_device(Batch(torch.zeros(2), {'y': torch.ones(1)}))
    assert b.x.device.type=='meta' and b.y['y'].device.type=='meta'
    assert to_device(torch.zeros(1), torch.device('meta')).device.type=='meta'   # a torch.device does as well as a name

@pytest.mark.parametrize('device,exc,msg', [
    (1.5, TypeError, r'got \(float\)'),          # `t.to(1.5)` would give a float64 copy on the CPU
    (True, TypeError, r'got \(bool\)'),
    (torch.float16, TypeError, r'got \(torch.dtype\)'),   # a dtype is not a device
    ([0], TypeError, r'got \(list'),
    ('gpu', RuntimeError, 'Expected one of cpu, cuda'),
])
def test_to_device_refuses_what_is_not_a_device(device, exc, msg):
    with pytest.raises(exc, match=msg): to_device({'x': torch.zeros(2)}, device)
    with pytest.raises(exc, match=msg): to_device([1, 'no tensor'], device)   # refused even with nothing to move

def test_collate_device_is_default_collate_then_to_device(monkeypatch):
    items = [(torch.full((2,), float(i)), i) for i in range(3)]
    xb, yb = collate_device(items)
    ref = default_collate(items)
    assert torch.equal(xb.cpu(), ref[0]) and torch.equal(yb.cpu(), ref[1]) and xb.device.type==def_device
    monkeypatch.setattr(miniai.conv, 'def_device', 'meta')   # read when called, so this moves the batch
    xb, yb = collate_device(items)
    assert xb.device.type=='meta' and yb.device.type=='meta' and xb.shape==(3, 2)
    d = collate_device([{'x': torch.zeros(2), 'y': 1}, {'x': torch.ones(2), 'y': 0}])
    assert set(d)=={'x', 'y'} and d['x'].device.type=='meta' and d['x'].shape==(2, 2)

def test_collate_device_in_a_dataloader(monkeypatch):
    monkeypatch.setattr(miniai.conv, 'def_device', 'meta')
    ds = Dataset(torch.randn(10, 1, 4, 4), torch.arange(10))
    batches = list(DataLoader(ds, batch_size=4, collate_fn=collate_device))
    assert [len(xb) for xb,_ in batches]==[4, 4, 2]
    assert all(xb.device.type=='meta' and yb.device.type=='meta' and xb.shape[1:]==(1, 4, 4) for xb,yb in batches)
