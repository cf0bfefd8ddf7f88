"""Every notebook in nbs/ runs top to bottom in a real Jupyter kernel, as a learner runs it: widgets, worker
processes and display included, and any error fails the test. Cells marked `#| eval: false` are skipped, as
nbdev's own runner (`nbdev_test`) skips them (none of ours has one: a debugger session is scripted instead).

Lesson 04 starts worker processes. It also runs as it does on macOS and Windows (workers *spawned*) and on Linux
from Python 3.14 (*forkserver*), and must print the same training results as with the default start method."""
import json, multiprocessing, os, re
from pathlib import Path
import pytest

nbs = Path(__file__).resolve().parent.parent/'nbs'
pytestmark = pytest.mark.slow
CELL_TIMEOUT = 600   # seconds any one cell may take: a hung cell fails the test instead of the whole run

def needs(p):
    "The datasets a notebook reads, found in its code: lesson 04's pickle, lesson 05's Hugging Face dataset"
    src = '\n'.join(''.join(c['source']) for c in json.loads(p.read_text(encoding='utf-8'))['cells'] if c['cell_type'] == 'code')
    return [name for name,pat in (('mnist', r'mnist\.pkl\.gz'), ('fashion_mnist', r'fashion_mnist')) if re.search(pat, src)]

def param(p, *args):
    d = needs(p)
    return pytest.param(p.name, *args, marks=[pytest.mark.data(*d)] if d else [], id='-'.join([p.name, *args]))

def skipped(c): return c.cell_type == 'code' and re.match(r'#\|\s*eval:\s*false\s*$', c.source.split('\n')[0])

def run(name, start_method=None, timeout=CELL_TIMEOUT):
    "Execute the notebook `name` in a fresh kernel, first setting `start_method` if given; return it, outputs and all"
    import nbformat   # here, not at the top: the quick selection collects this file without running it
    from nbclient import NotebookClient
    nb = nbformat.read(nbs/name, as_version=4)
    nb.cells = [c for c in nb.cells if not skipped(c)]
    if start_method: nb.cells.insert(0, nbformat.v4.new_code_cell(
        f"import multiprocessing; multiprocessing.set_start_method({start_method!r}, force=True)"))
    env = os.environ | {'IN_TEST': '1'}   # a lesson may choose a smaller setting under test (nbdev's convention)
    NotebookClient(nb, timeout=timeout, kernel_name='python3', resources={'metadata': {'path': str(nbs)}}).execute(env=env)
    errors = [o for c in nb.cells if c.cell_type=='code' for o in c.outputs if o.output_type=='error']
    assert not errors, errors
    return nb

def printed(nb):
    "What the notebook's cells print, cell by cell, leaving out timings, which differ from run to run"
    return [''.join(o.text for o in c.outputs if o.output_type == 'stream' and o.name == 'stdout')
            for c in nb.cells if c.cell_type == 'code' and not re.search(r'%time|perf_counter|timeit', c.source)]

runs = {}   # the default run of each notebook, for the start-method tests to compare with

@pytest.mark.parametrize('name', [param(p) for p in sorted(nbs.glob('[!_]*.ipynb'))])
def test_notebook_runs(name): runs[name] = run(name)

@pytest.mark.parametrize('name,method', [param(nbs/'04_minibatch_training.ipynb', m) for m in ('spawn', 'forkserver')])
def test_lesson_04_runs_alike_whatever_starts_its_workers(name, method):
    assert method in multiprocessing.get_all_start_methods()
    default = runs.get(name) or run(name)
    spawned = run(name, method)
    assert printed(spawned)[1:] == printed(default), "the lesson printed other results than with the default start method"
