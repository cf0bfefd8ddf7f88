"""Run the course's own notebooks (fastai/course22p2) against our `miniai`, on a CPU and a small subset of the local
Fashion-MNIST. The course's checkout is named by the env var `MINIAI_COURSE` (its `nbs/` holds the notebooks); nothing
of it is copied here.

A notebook runs as the course wrote it, with three changes:
- a prelude cell first (`PRELUDE`): a stand-in `torchvision` in `sys.modules` (registered after `datasets` is imported,
  so that Hugging Face doesn't take it for the real one), whose functions are ours (`TF_STANDINS`),
  and `_small`, which cuts a `DatasetDict` down to `n_train` training and `n_valid` test images;
- a short table of textual substitutions per notebook (`SUBS`), each with why. Every one must match the notebook at
  least once, so that a change in the course's notebook is noticed rather than silently not substituted;
- it runs in a folder of its own, where `fashion_mnist` links to the local data, with our `miniai` first on the path.

To add a notebook: add its substitutions to `SUBS` (and any torchvision function it imports to `TF_STANDINS`)."""
import os, textwrap
from pathlib import Path
import nbformat
from nbclient import NotebookClient
from helpers import DATA, root

# torchvision.transforms.functional's functions the course's notebooks use -> our code for each
TF_STANDINS = {'to_tensor': 'from miniai.datasets import to_tensor', 'hflip': 'def hflip(x): return x.flip(-1)'}
# torchvision.transforms' classes the course's notebooks use -> ours, on a batch tensor, drawn per image (miniai.augment)
T_STANDINS = '''
from torch import nn
from miniai.augment import rand_crop, rand_flip
class RandomCrop(nn.Module):
    def __init__(self, size, padding=0): super().__init__(); self.padding = padding
    def forward(self, x): return rand_crop(x, self.padding)
class RandomHorizontalFlip(nn.Module):
    def __init__(self, p=0.5): super().__init__(); self.p = p
    def forward(self, x): return rand_flip(x, self.p)
'''
# Libraries that look for torchvision when imported (and would take the stand-in for it): imported before it is there
PROBE_FIRST = ['datasets', 'torcheval.metrics']

PRELUDE = '''
import importlib.machinery, sys, types
from pathlib import Path
for _lib in {probe!r}:   # first: each asks once, at import, whether torchvision is installed, and must hear no
    try: __import__(_lib)
    except ImportError: pass
import miniai
assert Path(miniai.__file__).parent == Path({pkg!r}), f"not our miniai: {{miniai.__file__}}"
_tf = types.ModuleType('torchvision.transforms.functional')
exec({standins!r}, vars(_tf))
_tv, _t = types.ModuleType('torchvision'), types.ModuleType('torchvision.transforms')
_tv.transforms, _t.functional = _t, _tf
exec({tstandins!r}, vars(_t))
for _m in (_tv, _t, _tf):
    _m.__spec__ = importlib.machinery.ModuleSpec(_m.__name__, None)
    sys.modules[_m.__name__] = _m

def _small(dsd):
    "The first {n_train} training and {n_valid} test images of `dsd`"
    from datasets import DatasetDict
    return DatasetDict(train=dsd['train'].select(range({n_train})), test=dsd['test'].select(range({n_valid})))
'''

_data = ('dsd = load_dataset(name)', 'dsd = _small(load_dataset(name))', "a subset of Fashion-MNIST, for a CPU")
_workers = ('num_workers=4', 'num_workers=0', "no worker processes: the data is small, and spawned workers can't "
            "import a notebook's transform (macOS, Windows)")
_export = ('import nbdev; nbdev.nbdev_export()', 'pass', "no export: it would write the course's modules")

# notebook -> [(what the course wrote, what runs instead, why)]
SUBS = {
    '10_activations': [_data, _workers, _export],
    '11_initializing': [_data, _workers, _export,
                        ('learn.fit(3)', 'learn.fit(1)', "one epoch per run instead of three, for a CPU"),
                        ('learn.fit(2)', 'learn.fit(1)', "one epoch instead of two, for a CPU")],
    '12_accel_sgd': [_data, _workers, _export,
                     ('learn.fit(3)', 'learn.fit(1)', "one epoch per run instead of three, for a CPU"),
                     ('lr,epochs = 6e-2,5', 'lr,epochs = 6e-2,1', "one epoch of 1cycle instead of five, for a CPU")],
    '13_resnet': [_data, _workers, _export,
                  ('lr,epochs = 6e-2,5', 'lr,epochs = 6e-2,1', "one epoch per fit instead of five, for a CPU"),
                  ('.lr_find()', '.lr_find(max_epochs=2)', "the finder stops after two epochs of the subset, for a CPU"),
                  ('import timm\nfrom timm.models.resnet import BasicBlock, ResNet, Bottleneck', 'pass',
                   "timm left out: it imports torchvision"),
                  ("' '.join(timm.list_models('*resnet*'))", 'pass', "timm left out"),
                  ("model = timm.create_model('resnet18d', in_chans=1, num_classes=10)",
                   'model = get_model(act_gr, norm=nn.BatchNorm2d).apply(iw)', "timm left out: the lesson's ResNet in its place")],
    '14_augment': [_data, _export,
                   ('num_workers=fc.defaults.cpus', 'num_workers=0', _workers[2]),
                   ('lr,epochs = 6e-2,5', 'lr,epochs = 6e-2,1', "one epoch per fit instead of five, for a CPU"),
                   ('epochs = 20', 'epochs = 1', "one epoch instead of twenty, for a CPU"),
                   ('epochs = 50', 'epochs = 1', "one epoch instead of fifty, for a CPU"),
                   ('epochs = 25', 'epochs = 1', "one epoch instead of twenty-five, for a CPU"),
                   ('epochs=5', 'epochs=1', "one epoch instead of five, for a CPU")],
}

def course_dir():
    "The course's checkout, from `MINIAI_COURSE`; `None` when it isn't set."
    return Path(os.environ['MINIAI_COURSE']) if os.environ.get('MINIAI_COURSE') else None

def course_nb(name, n_train=2048, n_valid=1024):
    "The course's notebook `name`, as it will run: the prelude first, then its cells with `SUBS[name]` applied."
    nb = nbformat.read(course_dir()/'nbs'/f'{name}.ipynb', as_version=4)
    code = [c for c in nb.cells if c.cell_type == 'code']
    for old,new,why in SUBS[name]:
        hits = [c for c in code if old in c.source]
        if not hits: raise ValueError(f"{name}: the substitution of {old!r} ({why}) matches no cell: has the course's notebook changed?")
        for c in hits: c.source = c.source.replace(old, new)
    standins = '\n'.join(TF_STANDINS.values())
    prelude = PRELUDE.format(pkg=str(root/'miniai'), standins=standins, tstandins=T_STANDINS, probe=PROBE_FIRST, n_train=n_train, n_valid=n_valid)
    nb.cells.insert(0, nbformat.v4.new_code_cell(textwrap.dedent(prelude).strip()))
    return nb

def run_course_nb(name, workdir, timeout=600, **kwargs):
    "Execute `course_nb(name, **kwargs)` in `workdir`, with our `miniai`; return the notebook, outputs and all."
    nb = course_nb(name, **kwargs)
    workdir = Path(workdir)
    if not (workdir/'fashion_mnist').exists(): (workdir/'fashion_mnist').symlink_to(DATA['fashion_mnist'][0].resolve())
    env = os.environ | {'PYTHONPATH': os.pathsep.join([str(root), os.environ.get('PYTHONPATH', '')]), 'MPLBACKEND': 'Agg',
                        'HF_HUB_OFFLINE': '1', 'HF_DATASETS_OFFLINE': '1'}
    NotebookClient(nb, timeout=timeout, kernel_name='python3', resources={'metadata': {'path': str(workdir)}}).execute(env=env)
    return nb

def errors(nb):
    "Each error a cell of `nb` raised, with the start of that cell's source"
    return [f"{o.ename}: {o.evalue}\nin:\n{c.source[:300]}" for c in nb.cells if c.cell_type == 'code'
            for o in c.outputs if o.output_type == 'error']
