"Every notebook in nbs/ runs top to bottom: in nbdev's runner, and in a real Jupyter kernel."
import re, subprocess, sys
from pathlib import Path
import nbformat, pytest
from nbclient import NotebookClient

nbs = Path(__file__).resolve().parent.parent/'nbs'
bin_dir = Path(sys.executable).parent

def needs(p):
    "The datasets a notebook reads, found in its code: lesson 04's pickle, lesson 05's Hugging Face dataset"
    src = '\n'.join(c.source for c in nbformat.read(p, as_version=4).cells if c.cell_type == 'code')
    return [name for name,pat in (('mnist', r'mnist\.pkl\.gz'), ('fashion_mnist', r'fashion_mnist')) if re.search(pat, src)]

notebooks = [pytest.param(p.name, marks=[pytest.mark.data(*d)] if (d := needs(p)) else [], id=p.name)
             for p in sorted(nbs.glob('[!_]*.ipynb'))]

@pytest.mark.parametrize('name', notebooks)
def test_nbdev_runner(name):
    res = subprocess.run([bin_dir/'nbdev_test', '--path', nbs/name, '--do_print'], capture_output=True, text=True, timeout=900)
    assert res.returncode==0, res.stderr[-5000:]

@pytest.mark.parametrize('name', notebooks)
def test_real_kernel(name):
    "What only a kernel shows (widgets, worker processes, display) runs here as in Jupyter; any error fails the test."
    nb = nbformat.read(nbs/name, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name='python3', resources={'metadata': {'path': str(nbs)}}).execute()
    errors = [o for c in nb.cells if c.cell_type=='code' for o in c.outputs if o.output_type=='error']
    assert not errors, errors
