"""Tests of `miniai.datasets` (lesson 05), on synthetic data or small slices of Fashion-MNIST (the `fashion_dd`
fixture); nothing here is timed."""
import inspect, pickle, re
from pathlib import Path
import numpy as np, pytest, torch
import matplotlib.pyplot as plt
from PIL import Image
from datasets import Dataset as HFDataset, DatasetDict
from torch.utils.data import DataLoader, default_collate
from miniai.datasets import *
from helpers import u8, image_dd
from test_training import notebook   # a fixture: a notebook's `__main__`

@pytest.fixture(scope='module')
def small(fashion_dd):
    return DatasetDict(train=fashion_dd['train'].select(range(300)), test=fashion_dd['test'].select(range(100)))

@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close('all')

@inplace
def transformi(b): b['image'] = [to_tensor(o) for o in b['image']]

def same_batches(a, b):
    "Whether two lists of `(xb, yb)` batches hold the same pixels and the same labels, in the same order."
    return len(a)==len(b) and all(torch.equal(xa, xb) and torch.equal(ya, yb) for (xa,ya),(xb,yb) in zip(a, b))

def test_to_tensor():
    a = u8(28, 28)
    t = to_tensor(Image.fromarray(a))
    assert t.shape==(1, 28, 28) and t.dtype==torch.float32
    assert torch.equal(t[0], torch.from_numpy(a).float()/255)
    rgb = u8(4, 5, 3)
    assert torch.equal(to_tensor(rgb), torch.from_numpy(rgb).permute(2, 0, 1).float()/255)
    assert torch.equal(to_tensor(np.full((2, 2), 0.5)), torch.full((1, 2, 2), 0.5))  # only bytes are scaled
    with pytest.raises(ValueError, match=r'\(2, 1, 28, 28\)'): to_tensor(u8(2, 1, 28, 28))

def test_collate_dict_feature_order_and_values():
    ds = HFDataset.from_dict({'b': [1, 2, 3], 'a': [10., 20., 30.]})
    items = [ds[2], ds[0]]
    res = collate_dict(ds)(items)
    ref = default_collate(items)
    assert isinstance(res, tuple) and len(res)==2
    assert torch.equal(res[0], ref['b']) and torch.equal(res[1], ref['a'])
    assert res[0].tolist()==[3, 1] and res[1].tolist()==[30., 10.]

def test_collate_dict_on_fashion_mnist(small):
    tds = small['train'].with_transform(transformi)
    xb, yb = collate_dict(tds)([tds[i] for i in range(4)])
    assert xb.shape==(4, 1, 28, 28) and yb.tolist()==small['train'][:4]['label']
    xb2, yb2 = next(iter(DataLoader(tds, batch_size=4, collate_fn=collate_dict(tds))))
    assert torch.equal(xb, xb2) and torch.equal(yb, yb2)

def test_collate_dict_single_feature_and_pickle():
    ds = HFDataset.from_dict({'v': [1, 2]})
    f = pickle.loads(pickle.dumps(collate_dict(ds)))  # worker processes may need to pickle it
    res = f([ds[0], ds[1]])
    assert isinstance(res, tuple) and len(res)==1 and res[0].tolist()==[1, 2]

@pytest.mark.parametrize('ds,exc,msg', [
    ([{'a': 1}], AttributeError, "'list' object has no attribute 'features'"),
    (image_dd(), AttributeError, "'DatasetDict' object has no attribute 'features'"),   # a split is needed, not the dict of them
    (image_dd()['train'], TypeError, "collate_dict needs items of tensors, but ds's feature 'image' holds PIL images: give ds a "
                                     r"transform that makes them tensors, e.g. ds.with_transform\(f\) with f using to_tensor"),
])
def test_collate_dict_refuses(ds, exc, msg):
    with pytest.raises(exc, match=msg): collate_dict(ds)

def test_collate_dict_refuses_pil_images_with_what_to_do():
    dd = image_dd()
    with pytest.raises(TypeError, match=r"feature 'image' holds PIL images.*with_transform.*to_tensor"): DataLoaders.from_dd(dd, 4)
    xb, yb = collate_dict(dd['train'].with_transform(transformi))([dd['train'].with_transform(transformi)[0]])
    assert xb.shape==(1, 1, 4, 4)
    collate_dict(HFDataset.from_dict({'a': []}))  # no item to look at: nothing to refuse

def test_inplace():
    def add_one(b): b['x'] = [o+1 for o in b['x']]
    f = inplace(add_one)
    b = {'x': [1, 2]}
    assert f(b) is b and b=={'x': [2, 3]}
    assert f.__name__=='add_one'

def drawn(ax): return ax.images[0].get_array()

t3 = torch.rand(3, 5, 7)
@pytest.mark.parametrize('im,shape', [
    (Image.fromarray(u8(5, 7)), (5, 7)),
    (Image.fromarray(u8(5, 7, 3)), (5, 7, 3)),
    (u8(5, 7), (5, 7)),
    (u8(5, 7, 3), (5, 7, 3)),
    (u8(5, 7, 1), (5, 7)),
    (torch.rand(1, 5, 7), (5, 7)),
    (t3, (5, 7, 3)),
    (torch.rand(5, 7), (5, 7)),
    (torch.rand(5, 7, 3), (5, 7, 3)),
    (torch.rand(1, 5, 7, requires_grad=True)*2, (5, 7)),
    (torch.rand(3, 5, 7, dtype=torch.bfloat16), (5, 7, 3)),
], ids=['PIL L', 'PIL RGB', 'numpy HW', 'numpy HWC', 'numpy HW1', 'tensor 1HW', 'tensor 3HW', 'tensor HW', 'tensor HWC',
        'tensor with grad', 'tensor bfloat16'])
def test_show_image_inputs(im, shape):
    ax = show_image(im)
    assert drawn(ax).shape==shape
    assert list(ax.get_xticks())==[] and list(ax.get_yticks())==[] and not ax.axison

def test_show_image_values_channels_last():
    ax = show_image(t3)
    np.testing.assert_array_equal(np.asarray(drawn(ax)), t3.permute(1, 2, 0).numpy())

@pytest.mark.skipif(not torch.cuda.is_available(), reason='no GPU')
def test_show_image_gpu():
    t = torch.rand(1, 5, 7, device='cuda', requires_grad=True)
    np.testing.assert_array_equal(np.asarray(drawn(show_image(t))), t[0].detach().cpu().numpy())

def test_show_image_options():
    fig, ax = plt.subplots()
    res = show_image(u8(5, 7), ax=ax, title='a title', noframe=False, cmap='viridis')
    assert res is ax and ax.get_title()=='a title' and ax.axison
    assert list(ax.get_xticks())==[] and ax.images[0].get_cmap().name=='viridis'
    assert tuple(show_image(u8(5, 7), figsize=(2, 3)).figure.get_size_inches())==(2, 3)

@pytest.mark.parametrize('im,shape', [(u8(2, 1, 28, 28), '(2, 1, 28, 28)'), (u8(5, 7, 5), '(5, 7, 5)'),
                                      (np.array(3), '()'), (torch.rand(2, 3, 5, 7), '(2, 3, 5, 7)'), (torch.rand(16, 1, 28, 28), '(16, 1, 28, 28)')])
def test_show_image_leaves_non_images_to_matplotlib(im, shape):
    "What isn't an image (a whole batch, say) gets matplotlib's own error, which names the shape"
    with pytest.raises(TypeError, match=re.escape(f'Invalid shape {shape} for image data')): show_image(im)

@pytest.mark.parametrize('path', ['cat.png', Path('imgs')/'cat.png'])
def test_show_image_says_to_open_a_path(path):
    with pytest.raises(TypeError, match=re.escape(f"got the path {str(path)!r}: open the file first, e.g. "
                                                  f"show_image(Image.open({str(path)!r}))")):
        show_image(path)
    assert plt.get_fignums()==[]

@pytest.mark.parametrize('f,passes_on', [(show_image, 'cmap'), (subplots, 'sharex'), (get_grid, 'imsize'), (show_images, 'imsize')])
def test_signatures_list_what_they_pass_on(f, passes_on):
    "`delegates` puts the keyword arguments a helper passes on into its signature, so that `help` and tab completion show them"
    assert passes_on in inspect.signature(f).parameters

def test_subplots():
    fig, axs = subplots()
    assert isinstance(axs, np.ndarray) and axs.shape==(1,) and tuple(fig.get_size_inches())==(3, 3)
    fig, axs = subplots(2, 3, imsize=2, suptitle='hi', sharex=True)
    assert axs.shape==(2, 3) and tuple(fig.get_size_inches())==(6, 4) and fig.get_suptitle()=='hi'
    assert tuple(subplots(2, 2, figsize=(5, 1))[0].get_size_inches())==(5, 1)
    assert 'sharex' in inspect.signature(subplots).parameters

@pytest.mark.parametrize('n,shape', [(1, (1,)), (7, (2, 4)), (9, (3, 3)), (10, (3, 4))])
def test_get_grid_visible_axes(n, shape):
    fig, axs = get_grid(n, title='t')
    assert axs.shape==shape
    visible = [ax.axison for ax in axs.flat]
    assert visible==[True]*n + [False]*(axs.size-n)
    assert fig.get_suptitle()=='t' and next(t for t in fig.texts if t.get_text()=='t').get_weight()=='bold'

def test_get_grid_rows_and_cols():
    assert get_grid(10, ncols=5)[1].shape==(2, 5)
    assert get_grid(10, nrows=4)[1].shape==(4, 3)
    assert get_grid(6, 2, 3)[1].shape==(2, 3)

@pytest.mark.parametrize('kw,exc,msg', [(dict(n=0), ValueError, 'n=0'), (dict(n=-2), ValueError, 'n=-2'),
                                        (dict(n=2.5), TypeError, 'n=2.5'), (dict(n=True), TypeError, 'n=True'),
                                        (dict(n=3, nrows=0), ValueError, 'nrows=0'),
                                        (dict(n=3, ncols=1.5), TypeError, 'ncols=1.5'),
                                        (dict(n=7, nrows=2, ncols=3), ValueError, 'nrows=2 and ncols=3 give 6 axes, fewer than n=7')])
def test_get_grid_rejects(kw, exc, msg):
    with pytest.raises(exc, match=msg): get_grid(**kw)

def image_axes(fig): return [ax for ax in fig.axes if ax.images]

def test_show_images_no_titles():
    show_images([u8(5, 7)]*5)
    fig = plt.gcf()
    assert len(image_axes(fig))==5 and len(fig.axes)==6
    assert [ax.get_title() for ax in fig.axes]==['']*6

def test_show_images_fewer_titles_batch_tensor():
    show_images(torch.rand(4, 1, 28, 28), titles=['a', 'b'])
    assert [ax.get_title() for ax in image_axes(plt.gcf())]==['a', 'b', '', '']

def test_show_images_rows_cols_and_kwargs():
    show_images([u8(5, 7)]*5, nrows=1, ncols=5, imsize=1, title='five')
    fig = plt.gcf()
    assert len(fig.axes)==5 and tuple(fig.get_size_inches())==(5, 1) and fig.get_suptitle()=='five'

@pytest.mark.parametrize('ims,titles,msg', [
    ([], None, 'n should be a positive integer value, but got n=0'),
    ([u8(5, 7)]*2, 'abc', 'show_images needs at most one title per image, but got 3 titles for 2 images'),
    (torch.rand(28, 28), None, r'show_images needs a list or a batch of images, but got one image of shape \(28, 28\): show it with show_image'),
    (u8(28, 28), None, r'but got one image of shape \(28, 28\)'),
    (torch.rand(28), None, r'but got one image of shape \(28,\)'),
])
def test_show_images_rejects(ims, titles, msg):
    with pytest.raises(ValueError, match=msg): show_images(ims, titles=titles)

def test_from_dd_shapes(small):
    dls = DataLoaders.from_dd(small.with_transform(transformi), 16)
    b = next(iter(dls.train))
    assert isinstance(b, tuple) and b[0].shape==(16, 1, 28, 28) and b[1].shape==(16,) and b[1].dtype==torch.int64
    xb, yb = next(iter(dls.valid))
    assert xb.shape==(32, 1, 28, 28) and yb.tolist()==small['test'][:32]['label']  # not shuffled
    assert sum(len(xb) for xb,_ in dls.train)==300

def test_from_dd_split_names(small):
    dd = DatasetDict(train=small['train'], validation=small['test'].select(range(10)), test=small['test'])
    assert len(next(iter(DataLoaders.from_dd(dd.with_transform(transformi), 16).valid))[0])==10

@pytest.mark.parametrize('make', ['from_dd', 'from_tensorized'])
@pytest.mark.parametrize('splits,exc,msg', [
    (['train'], ValueError, r"dd should have a 'train' split and a 'valid', 'validation' or 'test' one, but it has \['train'\]"),
    (['test'], ValueError, r"but it has \['test'\]"),
    (['train', 'extra'], ValueError, r"but it has \['train', 'extra'\]"),
    (None, AttributeError, "'Dataset' object has no attribute 'keys'"),   # a split where the dict of splits belongs
])
def test_dataloaders_reject_splits(make, splits, exc, msg):
    dd = image_dd()
    dd = dd['train'] if splits is None else DatasetDict({k: dd['train'] for k in splits})
    with pytest.raises(exc, match=msg): getattr(DataLoaders, make)(dd, 4)

def test_tensorize(small):
    ds = small['test']
    t = tensorize(ds)
    assert t.x.shape==(100, 1, 28, 28) and t.x.dtype==torch.float32 and 0<=t.x.min()<t.x.max()<=1
    assert torch.equal(t.x[7], to_tensor(ds[7]['image'])) and t.y.tolist()==ds['label'][:]
    f = tensorize(ds.with_transform(transformi), flat=True)  # a transform on `ds` is ignored
    assert f.x.shape==(100, 784) and torch.equal(f.x, t.x.flatten(1))
    xb, yb = t[[5, 2]]
    assert torch.equal(xb, t.x[[5, 2]]) and yb.tolist()==[ds[5]['label'], ds[2]['label']]

@pytest.mark.parametrize('ds,exc,msg', [
    (HFDataset.from_dict({'a': [1], 'b': [2]}), ValueError, r'to_tensor needs an image of shape \(H, W\) or \(H, W, C\), but got shape \(\)'),
    ([1, 2], AttributeError, "'list' object has no attribute"),
])
def test_tensorize_rejects(ds, exc, msg):
    with pytest.raises(exc, match=msg): tensorize(ds)

def test_from_tensorized(small):
    dls = DataLoaders.from_tensorized(small, 16, flat=True)
    xb, yb = next(iter(dls.train))
    assert xb.shape==(16, 784) and yb.shape==(16,)
    xv, yv = next(iter(dls.valid))
    assert xv.shape==(32, 784) and yv.tolist()==small['test'][:32]['label']
    course = DataLoaders.from_dd(small.with_transform(transformi), 64)
    fast = DataLoaders.from_tensorized(small, 64)
    torch.manual_seed(3); a = list(course.train)
    torch.manual_seed(3); b = list(fast.train)
    assert [len(xb) for xb,_ in b]==[64]*4+[44]
    assert same_batches(a, b)
    torch.manual_seed(4)
    assert not same_batches(a, list(fast.train))  # the comparison can fail: another seed, another order

# miniai.validate's rule for integer arguments, here for the batch sizes of both kinds of `DataLoaders`

@pytest.mark.parametrize('bs,exc', [(0, ValueError), (-1, ValueError), (True, TypeError), (2.5, TypeError),
                                    (np.float64(4), TypeError), ('4', TypeError), (None, TypeError)])
@pytest.mark.parametrize('make', ['from_dd', 'from_tensorized'])
def test_dataloaders_reject_bad_batch_size(make, bs, exc):
    dd = DatasetDict(train=HFDataset.from_dict({'a': [1]}), test=HFDataset.from_dict({'a': [1]}))  # not even images:
    with pytest.raises(exc, match=re.escape(f'but got batch_size={bs!r}')):  # checked before any work
        getattr(DataLoaders, make)(dd, bs)

@pytest.mark.parametrize('bs', [3, np.int64(3), np.int32(3), np.uint8(3)])
def test_dataloaders_take_any_integral_batch_size(bs):
    dd = image_dd()
    for dls in (DataLoaders.from_dd(dd.with_transform(transformi), bs), DataLoaders.from_tensorized(dd, bs)):
        assert [len(yb) for _,yb in dls.train]==[3]*4 and [len(yb) for _,yb in dls.valid]==[5]

@pytest.mark.parametrize('n', [2, np.int64(2), np.uint16(2)])
def test_get_grid_takes_any_integral_type(n):
    assert get_grid(n, nrows=np.int32(1))[1].shape==(2,) and get_grid(5, ncols=n)[1].shape==(3, 2)

@pytest.mark.parametrize('kw,msg', [
    (dict(collate_fn='tfm'), 'collate_fn (tfm) needs tfm, defined in this notebook'),
    (dict(worker_init_fn='init'), 'worker_init_fn (init) needs init, defined in this notebook'),
    (dict(collate_fn=default_collate), 'to_tensor needs an image'),   # checked, found fine, then decoding fails
    (dict(collate_fn='tfm', multiprocessing_context='fork'), 'to_tensor needs an image'),
    (dict(collate_fn='tfm', num_workers=0), 'to_tensor needs an image'),
])
def test_from_tensorized_checks_workers_before_decoding(notebook, kw, msg):
    "Functions from a notebook can't reach spawned workers: `from_tensorized` says so before it decodes (here, fails to)"
    exec('def tfm(b): return b\ndef init(i): pass', vars(notebook))
    dd = DatasetDict(train=HFDataset.from_dict({'a': [1], 'b': [2]}), test=HFDataset.from_dict({'a': [1], 'b': [2]}))  # no images
    kw = dict(num_workers=2, multiprocessing_context='spawn') | {k: vars(notebook).get(v, v) if isinstance(v, str) else v for k,v in kw.items()}
    with pytest.raises(ValueError, match=re.escape(msg)): DataLoaders.from_tensorized(dd, 4, **kw)
