"""Lesson 04 opened alone, as Colab and Kaggle open a notebook: a copy of the notebook in a folder that also holds a
stray folder named `miniai` (a learner's clone, say), a fresh Python with only torch and a Jupyter kernel, no miniai.
Its first cell must install miniai (here from a wheel of this repository, through `MINIAI_INSTALL`), import the installed
package rather than the folder, and the lesson must then run to its end, its last cell included. Needs PyPI,
for what miniai itself needs; a fresh virtual environment and a download of a few hundred MB the first time."""
import os, shutil, socket, subprocess, sys, venv
from pathlib import Path
import pytest
from helpers import DATA, root

def reachable(host='pypi.org'):
    try: socket.create_connection((host, 443), timeout=3).close()
    except OSError: return False
    return True

pytestmark = [pytest.mark.slow, pytest.mark.colab, pytest.mark.data('mnist'), pytest.mark.timeout(3600)]   # installs, then the whole lesson

def sh(*cmd, cwd, **kwargs):
    "Run `cmd` in `cwd`, away from this repository (where `python -c` would find miniai in the current folder)"
    env = {k: v for k,v in os.environ.items() if k not in ('PYTHONPATH', 'VIRTUAL_ENV')}
    return subprocess.run([str(c) for c in cmd], check=True, capture_output=True, text=True, cwd=cwd, env=env, **kwargs)

def test_lesson_04_alone_installs_miniai_from_a_wheel_and_runs(tmp_path):
    if not reachable(): pytest.skip("needs PyPI, to install what miniai needs into a fresh Python")
    import nbformat
    from nbclient import NotebookClient
    sh(sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '--no-build-isolation', '-w', tmp_path/'dist', root, cwd=tmp_path, timeout=300)
    wheel, = (tmp_path/'dist').glob('miniai-*.whl')
    py = tmp_path/'colab'/'bin'/'python'
    venv.create(tmp_path/'colab', with_pip=True)
    torch = f"torch=={__import__('torch').__version__.split('+')[0]}"   # the torch this suite runs on: from pip's cache
    sh(py, '-m', 'pip', 'install', '-q', torch, 'ipykernel', cwd=tmp_path, timeout=1200)
    assert sh(py, '-c', "import importlib.util; print(importlib.util.find_spec('miniai'))", cwd=tmp_path).stdout.strip() == 'None'
    sh(py, '-m', 'ipykernel', 'install', '--prefix', tmp_path/'jupyter', '--name', 'colab', cwd=tmp_path)   # a kernel of that Python
    here = tmp_path/'content'   # Colab's working folder: the notebook, its data, and a folder in the way
    (here/'data').mkdir(parents=True)
    (here/'miniai'/'nbs').mkdir(parents=True)   # in the way: `import miniai` finds this folder first
    shutil.copy(root/'nbs'/'04_minibatch_training.ipynb', here)
    shutil.copy(DATA['mnist'][0], here/'data'/'mnist.pkl.gz')
    nb = nbformat.read(here/'04_minibatch_training.ipynb', as_version=4)
    env = {k: v for k,v in os.environ.items() if k not in ('PYTHONPATH', 'VIRTUAL_ENV')} | dict(
        JUPYTER_PATH=str(tmp_path/'jupyter'/'share'/'jupyter'), MINIAI_INSTALL=str(wheel), PATH=f"{py.parent}:{os.environ['PATH']}")
    old = dict(os.environ)
    os.environ.clear(); os.environ.update(env)   # the kernel starts with this environment
    try: NotebookClient(nb, timeout=900, kernel_name='colab', resources={'metadata': {'path': str(here)}}).execute()
    finally: os.environ.clear(); os.environ.update(old)
    errors = [o for c in nb.cells if c.cell_type=='code' for o in c.outputs if o.output_type=='error']
    assert not errors, errors
    said = ''.join(o.get('text', '') for c in nb.cells if 'MINIAI_INSTALL' in c.source for o in c.outputs)
    assert said == f"Installing miniai and what the lessons use from {wheel.as_uri()}: this takes a minute or two.\nDone.\n", said
    where = sh(py, '-c', "import miniai, importlib.metadata as m; print(miniai.__file__); print(m.distribution('miniai').read_text('direct_url.json'))", cwd=here).stdout
    assert where.startswith(str(tmp_path/'colab')) and wheel.name in where, where   # installed from the wheel, not the repo
    assert sorted(os.listdir(here)) == ['04_minibatch_training.ipynb', 'data', 'miniai']   # nothing exported, nothing left behind
