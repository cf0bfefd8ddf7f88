"""`miniai.check`: every check passes on the lesson's pieces and PyTorch's, fails on the course's own code only where a
claim says it goes beyond the course, fails on a catalogue of realistic mistakes with a report that names the symptom,
and stays quiet and reproducible. No outcome here depends on how fast the machine is. (The time limit is the engine's:
tests/test_claims.py.)"""
import functools, gc, random, re, types
import hypothesis, pytest, torch
import fastcore.all as fc
import torch.nn.functional as F
import torch.utils.data as tud
from torch import nn, optim
import miniai.check, miniai.scratch as S
from miniai.check import *
from miniai.claims import CheckResult, Claim, Finding
from miniai.datasets import collate_dict, inplace
from miniai.training import Dataset, accuracy

T = 300  # seconds a check may take in these tests: far more than any needs, however busy the machine

@pytest.fixture(scope='module', autouse=True)
def warm():
    """Each check runs in a forked child: hypothesis run once here first, and what exists so far kept out of garbage collection,
    spare every child hypothesis's first-run work and copying most of this process's pages (together 3x faster)"""
    hypothesis.given(hypothesis.strategies.integers())(hypothesis.settings(max_examples=1, database=None)(lambda x: None))()
    gc.freeze()
    yield
    gc.unfreeze()

@pytest.fixture(params=[5, pytest.param(40, marks=pytest.mark.slow)], ids=['5-cases', 'all-cases'])
def cases(request, monkeypatch):
    "Each claim tried on at most 5 cases in the quick selection, and on all it asks for (up to 40) in the full suite"
    monkeypatch.setattr(miniai.check, 'Claim', lambda text, case, test, n=40: Claim(text, case, test, min(n, request.param)))

@pytest.fixture
def only(monkeypatch):
    "`only(claim)`: checks then try only their claims whose text holds `claim` (and say whether the code can be called)"
    run = miniai.check.run_claims
    def restrict(claim):
        monkeypatch.setattr(miniai.check, 'run_claims', lambda title, cs, *a, **kw: run(title, [c for c in cs if claim in c.text], *a, **kw))
    return restrict

def torch_sampler(ds, shuffle=False): return (tud.RandomSampler if shuffle else tud.SequentialSampler)(ds)
def torch_loader(ds, batchs, collate_fn=S.collate): return tud.DataLoader(ds, batch_sampler=batchs, collate_fn=collate_fn)

class FirstDataLoader:  # lesson 04's first DataLoader over a batch sampler
    def __init__(self, ds, batchs, collate_fn=S.collate): self.ds, self.batchs, self.collate_fn = ds, batchs, collate_fn
    def __iter__(self): yield from (self.collate_fn([self.ds[i] for i in b]) for b in self.batchs)

# The course's own versions, copied verbatim from fastai/course22p2's nbs/04_minibatch_training.ipynb and
# nbs/05_datasets.ipynb (the last version of each), with the imports they need. Each check must pass them on every claim
# that doesn't say it goes beyond the course, and fail them on every claim that does.
COURSE = """
import random, torch, fastcore.all as fc
from operator import itemgetter
from torch import nn
from torch.utils.data import default_collate

def log_softmax(x): return x - x.logsumexp(-1,keepdim=True)

def logsumexp(x):
    m = x.max(-1)[0]
    return m + (x-m[:,None]).exp().sum(-1).log()

def nll(input, target): return -input[range(target.shape[0]), target].mean()

def accuracy(out, yb): return (out.argmax(dim=1)==yb).float().mean()

class MyModule:
    def __init__(self, n_in, nh, n_out):
        self._modules = {}
        self.l1 = nn.Linear(n_in,nh)
        self.l2 = nn.Linear(nh,n_out)

    def __setattr__(self,k,v):
        if not k.startswith("_"): self._modules[k] = v
        super().__setattr__(k,v)

    def __repr__(self): return f'{self._modules}'
    
    def parameters(self):
        for l in self._modules.values(): yield from l.parameters()

class SequentialModel(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        
    def forward(self, x):
        for l in self.layers: x = l(x)
        return x

class Optimizer():
    def __init__(self, params, lr=0.5): self.params,self.lr=list(params),lr

    def step(self):
        with torch.no_grad():
            for p in self.params: p -= p.grad * self.lr

    def zero_grad(self):
        for p in self.params: p.grad.data.zero_()

class Dataset():
    def __init__(self, x, y): self.x,self.y = x,y
    def __len__(self): return len(self.x)
    def __getitem__(self, i): return self.x[i],self.y[i]

class Sampler():
    def __init__(self, ds, shuffle=False): self.n,self.shuffle = len(ds),shuffle
    def __iter__(self):
        res = list(range(self.n))
        if self.shuffle: random.shuffle(res)
        return iter(res)

class BatchSampler():
    def __init__(self, sampler, bs, drop_last=False): fc.store_attr()
    def __iter__(self): yield from fc.chunked(iter(self.sampler), self.bs, drop_last=self.drop_last)

def collate(b):
    xs,ys = zip(*b)
    return torch.stack(xs),torch.stack(ys)

class DataLoader():
    def __init__(self, ds, batchs, collate_fn=collate): fc.store_attr()
    def __iter__(self): yield from (self.collate_fn(self.ds[i] for i in b) for b in self.batchs)

def inplace(f):
    def _f(b):
        f(b)
        return b
    return _f

def collate_dict(ds):
    get = itemgetter(*ds.features)
    def _f(b): return get(default_collate(b))
    return _f
"""
course = types.ModuleType('course')
exec(COURSE, course.__dict__)

class CourseModule(course.MyModule):  # the course's `MyModule` as a class to subclass: its rules, without its two layers
    def __init__(self): self._modules = {}

good = [(check_log_softmax, S.log_softmax), (check_log_softmax, functools.partial(F.log_softmax, dim=-1)),
        (check_logsumexp, functools.partial(torch.logsumexp, dim=-1)),  # lesson 04's `logsumexp` is `course.logsumexp`
        (check_nll, S.nll), (check_nll, F.nll_loss), (check_accuracy, accuracy),
        (check_module, S.Module), (check_module, nn.Module),
        (check_sequential, S.SequentialModel), (check_sequential, nn.Sequential),
        (check_optimizer, S.Optimizer), (check_optimizer, functools.partial(optim.SGD, lr=0.5)),
        (check_dataset, Dataset), (check_dataset, tud.TensorDataset),
        (check_sampler, S.Sampler), (check_sampler, torch_sampler),
        (check_batch_sampler, S.BatchSampler), (check_batch_sampler, functools.partial(tud.BatchSampler, drop_last=False)),
        (check_collate, S.collate), (check_collate, tud.default_collate),
        (check_dataloader, S.DataLoader), (check_dataloader, FirstDataLoader), (check_dataloader, torch_loader),
        (check_collate_dict, collate_dict), (check_inplace, inplace)]

@pytest.mark.parametrize('chk,f', good, ids=[f"{c.__name__}-{getattr(f, '__name__', None) or f.func.__name__}" for c,f in good])
def test_passes_on_the_lessons_and_pytorchs(chk, f, cases):
    res = chk(f, timeout=T)
    assert res and len(res.findings) >= 2, res

by_check = {}  # check -> the course's versions of its piece
for chk, f in [(check_log_softmax, course.log_softmax), (check_logsumexp, course.logsumexp), (check_nll, course.nll),
               (check_accuracy, course.accuracy), (check_module, course.MyModule), (check_module, CourseModule),
               (check_sequential, course.SequentialModel), (check_optimizer, course.Optimizer),
               (check_dataset, course.Dataset), (check_sampler, course.Sampler), (check_batch_sampler, course.BatchSampler),
               (check_collate, course.collate), (check_dataloader, course.DataLoader),
               (check_collate_dict, course.collate_dict), (check_inplace, course.inplace)]: by_check.setdefault(chk, []).append(f)

@pytest.mark.parametrize('chk', by_check, ids=lambda c: c.__name__)
def test_the_course_fails_only_claims_that_say_they_go_beyond_it(chk, cases):
    findings = [x for f in by_check[chk] for x in chk(f, timeout=T).findings]
    beyond = {x.claim for x in findings if 'beyond the course' in x.claim}
    assert {x.claim for x in findings if x.ok is False} == beyond, findings  # those fail on its code, and no others
    assert {x.claim for x in findings if x.ok} >= {x.claim for x in findings} - beyond, findings  # the others hold

def test_accuracy_passes_on_torcheval(cases):
    mca = pytest.importorskip('torcheval.metrics.functional').multiclass_accuracy
    assert check_accuracy(mca, timeout=T)

# The catalogue of mistakes: each a small broken version, the claim it must fail, and the symptom its report must name.

def naive_log_softmax(x): return (x.exp()/x.exp().sum(-1, keepdim=True)).log()
def unshifted_log_softmax(x): return x - x.exp().sum(-1, keepdim=True).log()
def lse_no_add_back(x):
    a = x.max(-1)[0]
    return (x-a[:,None]).exp().sum(-1).log()
def lse_global_max(x):
    a = x.max()
    return a + (x-a).exp().sum(-1).log()
def lse_keepdim(x): return x.logsumexp(-1, keepdim=True)
def nll_wrong_axis(inp, targ): return -(inp*F.one_hot(targ, inp.shape[1])).sum(0).mean()
def nll_sum(inp, targ): return -inp[range(targ.shape[0]), targ].sum()
def nll_item(inp, targ): return torch.tensor(-inp[range(targ.shape[0]), targ].mean().item())
def accuracy_sum(out, yb): return (out.argmax(1)==yb).float().sum()
def accuracy_bool_mean(out, yb): return (out.argmax(1)==yb).mean()
def accuracy_dim0(out, yb): return (out.argmax(0)==yb).float().mean()

class DupModule(S.Module):
    def parameters(self):
        for _ in range(2):
            for l in self._modules.values(): yield from l.parameters()

class ListModule:  # keeps children in a list: a replaced child stays
    def __init__(self): self._kids = []
    def __setattr__(self, k, v):
        if not k.startswith('_') and isinstance(v, (ListModule, nn.Module)): self._kids.append((k, v))
        super().__setattr__(k, v)
    def __repr__(self): return f'{type(self).__name__}({self._kids})'
    def parameters(self):
        for _,l in self._kids: yield from l.parameters()
    def __call__(self, x): return self.forward(x)

class PrivateModule(S.Module):  # registers private names too
    def __setattr__(self, k, v):
        if isinstance(v, (S.Module, nn.Module)): self.__dict__.setdefault('_modules', {})[k] = v
        object.__setattr__(self, k, v)

class NoSuperSetattr(S.Module):
    def __setattr__(self, k, v):
        if not k.startswith('_') and isinstance(v, (S.Module, nn.Module)): self._modules[k] = v
        else: super().__setattr__(k, v)

class NoRepr(S.Module): __repr__ = object.__repr__

class PlainListSequential(nn.Module):  # a plain list registers nothing
    def __init__(self, *layers):
        super().__init__()
        self.layers = list(layers)
    def forward(self, x):
        for l in self.layers: x = l(x)
        return x

class ReversedSequential(S.SequentialModel):
    def forward(self, x):
        for l in reversed(self.layers): x = l(x)
        return x

class NoZeroGrad(S.Optimizer):
    def zero_grad(self): pass

class WithoutZeroGrad:
    def __init__(self, params, lr=0.5): self.params, self.lr = list(params), lr
    def step(self):
        with torch.no_grad():
            for p in self.params: p -= p.grad*self.lr

class SignFlipped(S.Optimizer):
    def step(self):
        with torch.no_grad():
            for p in self.params: p += p.grad*self.lr

class GeneratorParams(S.Optimizer):  # keeps `model.parameters()` as it came: used up by the first `step`
    def __init__(self, params, lr=0.5): self.params, self.lr = params, lr

class Rebinding(S.Optimizer):
    def step(self):
        for p in self.params: p = p - p.grad*self.lr

class XOnly(Dataset):
    def __getitem__(self, i): return self.x[i]

class LenOffByOne(Dataset):
    def __len__(self): return len(self.x)+1

class NoLengthCheck:
    def __init__(self, x, y): self.x, self.y = x, y
    def __len__(self): return len(self.x)
    def __getitem__(self, i): return self.x[i], self.y[i]

class SameShuffle(S.Sampler):  # shuffles once, in __init__
    def __init__(self, ds, shuffle=False):
        super().__init__(ds, shuffle)
        self.perm = torch.randperm(self.n).tolist()
    def __iter__(self): return iter(self.perm if self.shuffle else range(self.n))

class OffByOne(S.Sampler):
    def __iter__(self): return iter(torch.randperm(self.n).tolist() if self.shuffle else range(1, self.n+1))

class TwiceSampler(S.Sampler):  # draws with replacement
    def __iter__(self): return iter(torch.randint(0, max(self.n, 1), (self.n,)).tolist() if self.shuffle else range(self.n))

class NotShuffling(S.Sampler):
    def __iter__(self): return iter(range(self.n))

class PyRandomSampler(S.Sampler):
    def __iter__(self):
        res = list(range(self.n))
        if self.shuffle: random.shuffle(res)
        return iter(res)

class NoLenSampler:
    def __init__(self, ds, shuffle=False): self.n, self.shuffle = len(ds), shuffle
    def __iter__(self): return iter(torch.randperm(self.n).tolist() if self.shuffle else range(self.n))

class ItemsSampler(S.Sampler):  # iterates the dataset instead of counting
    def __init__(self, ds, shuffle=False): super().__init__(ds, shuffle); self.ds = ds
    def __iter__(self): return iter(self.ds)

class EndlessSampler(S.Sampler):
    def __iter__(self):
        while True: yield 0

class DropLastBatch(S.BatchSampler):  # yields a batch only when it is full
    def __iter__(self):
        b = []
        for i in self.sampler:
            b.append(i)
            if len(b)==self.bs: yield b; b = []

class IgnoresDropLast(S.BatchSampler):
    def __iter__(self): yield from fc.chunked(self.sampler, self.bs)

class CountingBatchSampler(S.BatchSampler):  # counts instead of following the sampler
    def __iter__(self): yield from fc.chunked(range(len(self.sampler)), self.bs, drop_last=self.drop_last)

class OnePassBatchSampler(S.BatchSampler):
    def __init__(self, sampler, bs, drop_last=False):
        super().__init__(sampler, bs, drop_last)
        self.it = iter(sampler)
    def __iter__(self):
        while b := [i for _,i in zip(range(self.bs), self.it)]:
            if len(b)==self.bs or not self.drop_last: yield b

class LenFloorBatchSampler(S.BatchSampler):
    def __len__(self): return len(self.sampler)//self.bs

class NoCheckBatchSampler(S.BatchSampler):
    def __init__(self, sampler, bs, drop_last=False): self.sampler, self.bs, self.drop_last = sampler, bs, drop_last

class BatchSizeOnly:
    def __init__(self, sampler, batch_size): pass

def collate_lists(b): return list(zip(*b))
def collate_cat(b): return tuple(torch.cat(o) for o in zip(*b))
def collate_per_item(b): return [torch.stack(o) for o in b]
def collate_none(b): pass

class IgnoresCollateFn(FirstDataLoader):
    def __iter__(self): yield from (S.collate([self.ds[i] for i in b]) for b in self.batchs)

class OnePassLoader(FirstDataLoader):
    def __init__(self, ds, batchs, collate_fn=S.collate): super().__init__(ds, iter(batchs), collate_fn)

class SlicingLoader(FirstDataLoader):  # slices the dataset in order, ignoring the batch sampler
    def __iter__(self):
        bs = self.batchs.batch_size
        for i in range(0, len(self.ds), bs): yield self.collate_fn([self.ds[j] for j in range(i, min(i+bs, len(self.ds)))])

def by_keys(b, keys):
    d = tud.default_collate(b)
    return tuple(d[k] for k in keys)
def sorted_collate_dict(ds): return functools.partial(by_keys, keys=sorted(ds.features))

def inplace_returns_f(f):
    def _f(b): return f(b)
    return _f
def inplace_twice(f):
    @functools.wraps(f)
    def _f(b):
        f(b); f(b)
        return b
    return _f
def inplace_copy(f):
    @functools.wraps(f)
    def _f(b):
        b = dict(b)
        f(b)
        return b
    return _f

catalogue = [  # check, broken version, the claim that must fail, what its report must say
    (check_log_softmax, naive_log_softmax, 'large logits', r'`x = \[\[\d+\.0\]\]`: expected the result `\[\[0\.0\]\]`, got `\[\[nan\]\]`'),
    (check_log_softmax, unshifted_log_softmax, 'large logits', r'got `\[\[-?(inf|nan)'),
    (check_logsumexp, lse_no_add_back, 'ordinary logits', r'expected the result `\[1\.0\]`, got `\[0\.0\]`'),
    (check_logsumexp, lse_global_max, 'large logits', r'`x = \[\[0\.0\], \[\d+\.0\]\]`'),
    (check_logsumexp, lse_keepdim, 'ordinary logits', r'to be a float32 tensor of shape \(1,\), got a float32 tensor of shape \(1, 1\)'),
    (check_nll, nll_wrong_axis, 'mean over the batch', r'expected the loss `0\.6931`, got `0\.3466`'),
    (check_nll, nll_sum, 'mean over the batch', r'expected the loss `[\d.]+`, got `[\d.]+`'),
    (check_nll, nll_item, 'autograd', r"autograd can't follow back to `inp` \(was it made with `\.item\(\)`"),
    (check_accuracy, accuracy_sum, 'share of rows', r'expected 0\.5 \(1 of 2 rows right\), got 1'),
    (check_accuracy, accuracy_bool_mean, 'share of rows', r'your code raised `RuntimeError: mean\(\)'),
    (check_accuracy, accuracy_dim0, 'share of rows', r'expected \d'),
    (check_module, DupModule, 'each once', r'got 4 \(l1\.bias, l1\.bias, l1\.weight, l1\.weight\)'),
    (check_module, ListModule, 'each once', r'l1\.bias \(of a replaced one\), l1\.weight, l1\.weight \(of a replaced one\)\)'),
    (check_module, PrivateModule, 'stays private', r"`self\._cache = nn\.Linear\(2, 2\)` in `__init__`: expected 0 parameters \(none\), "
                                                  r"got 2 \(_cache\.bias, _cache\.weight\)"),
    (check_module, CourseModule, 'is no child', r"`self\.n_in = 3`.*AttributeError: 'int' object has no attribute 'parameters'"),
    (check_module, NoSuperSetattr, 'read back', r"`self\.l1` can't be read back: does `__setattr__` end with `super\(\)\.__setattr__"),
    (check_module, NoRepr, 'names every child', r'expected `repr` to name the child `l1`, got `.<.*object at'),
    (check_sequential, course.SequentialModel, 'can be called as', r'takes the layers as one list'),
    (check_sequential, PlainListSequential, 'each once', r'expected 2 parameters \(layers\[0\]\.bias, layers\[0\]\.weight\), '
                                                        r'got 0 \(none\)'),
    (check_sequential, ReversedSequential, 'in order', r'expected `model\(x\)` `\[\[-?\d'),
    (check_optimizer, NoZeroGrad, 'zero_grad` clears', r"after `zero_grad`, parameter 0's gradient is `\["),
    (check_optimizer, WithoutZeroGrad, 'zero_grad` clears', r"AttributeError: 'WithoutZeroGrad' object has no attribute 'zero_grad'"),
    (check_optimizer, SignFlipped, 'against its gradient', r'moved with their gradient, to `p \+ lr\*grad`: the update\'s sign is flipped'),
    (check_optimizer, GeneratorParams, 'training loop', r'after step 2, .*step 1 matched.*generator'),
    (check_optimizer, Rebinding, 'against its gradient', r"didn't change \(does `step` rebind a name"),
    (check_dataset, XOnly, '`ds[i]`', r'expected the pair `\(x, y\)` to be a tuple of 2 tensors, got a float32 tensor'),
    (check_dataset, LenOffByOne, '`len(ds)`', r'`len\(ds\)` gave 1'),
    (check_dataset, NoLengthCheck, 'different lengths', r'y of shape \(1,\): it made a dataset instead of raising an error'),
    (check_sampler, SameShuffle, 'a new order every epoch', r'epochs 1 and 2 gave the same order'),
    (check_sampler, OffByOne, 'unshuffled', r'expected `\[0\]`, got `\[1\]` \(not an index of the dataset: `\[1\]`; missing: `\[0\]`\)'),
    (check_sampler, TwiceSampler, 'exactly once', r'epoch \d: more than once: `\[\d\]`; missing: `\[\d\]`'),
    (check_sampler, NotShuffling, 'a new order every epoch', r'not shuffled: epoch 1 gave the indices in order'),
    (check_sampler, PyRandomSampler, 'reproducible', r'`torch\.randperm`'),
    (check_sampler, NoLenSampler, '`len(sampler)`', r"TypeError: object of type 'NoLenSampler' has no len\(\)"),
    (check_sampler, ItemsSampler, 'unshuffled', r"an epoch is `\['item 0'\]`, expected a list of indices"),
    (check_sampler, EndlessSampler, 'unshuffled', r'for a dataset of 0 items: expected 0 indices, got more than 10: `\[0, 0,'),
    (check_batch_sampler, DropLastBatch, 'keeps a last short batch', r'and a sampler of 1 index, `\[0\]`: expected 1 batch of size 1, got no batches'),
    (check_batch_sampler, IgnoresDropLast, 'drop_last=True', r'expected no batches, got 1 batch of size 1'),
    (check_batch_sampler, CountingBatchSampler, "sampler's order", r"of 2 indices, `\[1, 0\]`: batch 0: expected `\[1\]`, the sampler's "
                                                                     r"indices in its order, got `\[0\]`"),
    (check_batch_sampler, OnePassBatchSampler, 'iterating again', r'the second pass gave 0 batches, the first 1 \(does `__iter__` use up'),
    (check_batch_sampler, LenFloorBatchSampler, '`len(batch_sampler)`', r'`len\(batch_sampler\)` gave 0, expected 1'),
    (check_batch_sampler, NoCheckBatchSampler, "isn't positive", r'`BatchSampler\(sampler, 0\)`.*instead of raising an error'),
    (check_batch_sampler, BatchSizeOnly, 'can be called as', r'calls `BatchSampler\(sampler, bs, drop_last=False\)`, as the lesson '
                                                             r'does, but yours is `BatchSizeOnly\(sampler, batch_size\)`'),
    (check_collate, collate_lists, 'stacked into one tensor', r'expected entry 0 of the batch to be a float32 tensor of shape \(1,\), got a tuple of 1 tensor'),
    (check_collate, collate_cat, 'one entry per part', r'RuntimeError: zero-dimensional tensor'),
    (check_collate, collate_per_item, 'one entry per part', r'expected the batch to be a tuple of 2 tensors, got a list of 1 tensor'),
    (check_collate, course.collate, 'one part, or three', r"ValueError: not enough values to unpack \(expected 2, got 1\)"),
    (check_collate, collate_none, 'one entry per part', r'expected the batch to be a tuple of 2 tensors, got `None`'),
    (check_dataloader, IgnoresCollateFn, 'uses the `collate_fn`', r'expected entry 0 of the batches to be a list of 1 int, got a tuple of 2 tensors'),
    (check_dataloader, OnePassLoader, 'iterating again', r'the second pass gave 0 batches, the first 1 \(does `__iter__` use up'),
    (check_dataloader, SlicingLoader, 'batches of PyTorch', r"`batchs` made by `BatchSampler\(sampler, \d+, drop_last=\w+\)` and a sampler of \d+ ind\w+, `\[[\d, ]+\]`: expected (entry 0 of entry 0 of )?the batches"),
    (check_dataloader, course.DataLoader, 'list of items', r"your code raised `TypeError: 'generator' object is not subscriptable"),
    (check_collate_dict, course.collate_dict, 'tuple of one', r"expected a tuple of 1, \('\w+',\), got an? \w+ tensor"),
    (check_collate_dict, course.collate_dict, 'pickled', r"pickling the collate function raised `AttributeError: Can't (pickle|get) local"),   # Python 3.13 says 'get'
    (check_collate_dict, sorted_collate_dict, 'order of `ds.features`', r"expected the batched '\w+' to be"),
    (check_inplace, inplace_returns_f, 'returns the batch', r'expected the batch itself back, got `None`'),
    (check_inplace, inplace_twice, 'calls `f` once', r'`f` was called 2 times for one batch'),
    (check_inplace, course.inplace, 'functools.wraps', r"named '_f', with docstring None: copy them with `functools\.wraps\(f\)`"),
    (check_inplace, inplace_copy, 'returns the batch', r'expected the batch itself back, got a copy of it'),
]

def failed(res, claim):
    "The detail of the claim of `res` containing `claim`, which must have failed"
    f = next(f for f in res.findings if claim in f.claim)
    assert f.ok is False, res
    return f.detail

@pytest.mark.parametrize('chk,f,claim,symptom', catalogue, ids=[f"{f.__name__}-{claim}" for _,f,claim,_ in catalogue])
def test_mistake_is_caught_and_named(chk, f, claim, symptom, only):
    only(claim)  # the claims that hold cost time, and are tried above
    res = chk(f, timeout=T)
    assert not res
    assert re.search(symptom, failed(res, claim)), res
    assert re.search(symptom, repr(res)) and 'Traceback' not in repr(res)

def test_every_check_is_tested():
    "Each check `miniai.check` exports passes the lessons' code, is tried on the course's and catches a mistake"
    def names(checks): return {c.__name__ for c in checks}
    assert names(c for c,*_ in catalogue) == names(c for c,_ in good) == names(by_check) == set(miniai.check.__all__)

# The machinery

def test_an_endless_iterator_is_read_only_a_little(only, tmp_path):
    only('unshuffled')
    log = tmp_path/'reads'  # a line per index read, and one per pass: the claims may run in a forked process
    class Endless(S.Sampler):  # right up to 4 items, endless from 5
        def __iter__(self):
            with open(log, 'a') as f: f.write(f'pass {self.n}\n')
            while True:
                for i in range(self.n):
                    with open(log, 'a') as f: f.write('read\n')
                    yield i
                if self.n < 5: return
    assert 'got more than' in failed(check_sampler(Endless, timeout=T), 'unshuffled')
    passes = [[int(p.split()[0]), p.count('read')] for p in log.read_text().split('pass ')[1:]]
    assert max(n for n,_ in passes) >= 5 and all(k <= 2*n+11 for n,k in passes), passes  # a little past the length, no more

def test_report_is_quiet_reproducible_and_reads_in_a_terminal_and_in_jupyter(capfd, only):
    only('keeps a last short batch')
    res, again = check_batch_sampler(DropLastBatch, timeout=T), check_batch_sampler(DropLastBatch, timeout=T)
    text, md = repr(res), res._repr_markdown_()
    assert text == repr(again) and capfd.readouterr() == ('', '')  # hypothesis prints nothing, not even "Falsifying example"
    assert text.startswith('check_batch_sampler(DropLastBatch): ') and "\n✗ follows the sampler's order, and keeps a last short batch" in text
    assert '\n    with `BatchSampler(sampler, 2)`' in text
    assert md.startswith('**`check_batch_sampler(DropLastBatch)`**') and "\n- ✗ follows the sampler's order, and keeps" in md
    assert '\n  - with `BatchSampler(sampler, 2)`' in md
    assert CheckResult('t', [Finding('a <b> `c<d`', True)])._repr_markdown_().endswith('- ✓ a &lt;b> `c<d`')

def test_signature_mismatch_stops_before_calling():
    res = check_batch_sampler(BatchSizeOnly, timeout=T)
    assert res.findings[0].ok is False and all(f.ok is None and f.detail == 'not checked: fix the signature first'
                                               for f in res.findings[1:])

def test_an_object_instead_of_a_class():
    res = check_sampler(S.Sampler(range(3)), timeout=T)
    assert 'expected a class or a function, got' in failed(res, 'can be called as') and 'not an object made from it' in repr(res)

def test_a_sequential_model_of_a_list_is_named_and_checked_with_a_list(cases):
    res = check_sequential(course.SequentialModel, timeout=T)  # the lesson's first version too: one list
    assert not res and [f.ok for f in res.findings] == [False, True, True]
    assert 'checked by passing a list' in res.findings[0].detail

def test_nn_module_is_held_to_pytorchs_rule(only, cases):
    only('starting with `_`')
    res = check_module(nn.Module, timeout=T)
    assert "is a child too (PyTorch's rule" in repr(res) and res
    assert 'stays private' in repr(check_module(S.Module, timeout=T))
