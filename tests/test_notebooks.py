"""Every notebook in nbs/ runs top to bottom in a real Jupyter kernel, as a learner runs it: widgets, worker
processes and display included, and any error fails the test. Cells marked `#| eval: false` are skipped, as
nbdev's own runner (`nbdev_test`) skips them: they wait for a person (a debugger prompt, say)."""
import re
from pathlib import Path
import nbformat, pytest
from nbclient import NotebookClient

nbs = Path(__file__).resolve().parent.parent/'nbs'

pytestmark = pytest.mark.slow

def needs(nb):
    "The datasets a notebook reads, found in its code: lesson 04's pickle, lesson 05's Hugging Face dataset"
    src = '\n'.join(c.source for c in nb.cells if c.cell_type == 'code')
    return [name for name,pat in (('mnist', r'mnist\.pkl\.gz'), ('fashion_mnist', r'fashion_mnist')) if re.search(pat, src)]

def param(p):
    d = needs(nbformat.read(p, as_version=4))
    return pytest.param(p.name, marks=[pytest.mark.data(*d)] if d else [], id=p.name)

def skipped(c): return c.cell_type == 'code' and re.match(r'#\|\s*eval:\s*false\s*$', c.source.split('\n')[0])

@pytest.mark.parametrize('name', [param(p) for p in sorted(nbs.glob('[!_]*.ipynb'))])
def test_notebook_runs(name):
    nb = nbformat.read(nbs/name, as_version=4)
    nb.cells = [c for c in nb.cells if not skipped(c)]
    NotebookClient(nb, timeout=600, kernel_name='python3', resources={'metadata': {'path': str(nbs)}}).execute()
    errors = [o for c in nb.cells if c.cell_type=='code' for o in c.outputs if o.output_type=='error']
    assert not errors, errors
