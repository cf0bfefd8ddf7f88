"""Test setup: headless, and the lessons' data found, fetched or reported missing.

Where the data comes from, in this order:
- a folder of pre-downloaded files (`$MINIAI_DATA`, else `../shared/data` when it exists) is linked where the
  notebooks look, and Hugging Face is kept offline, so nothing is fetched;
- files that an earlier run downloaded are used as they are;
- online, the notebooks' own download code fetches what is missing the first time (17 MB of MNIST, 30 MB of
  Fashion-MNIST).
Offline with neither, the tests that need data skip and say how to provide it. Those tests carry the marker
`data('mnist')` or `data('fashion_mnist')` (the fixture `fashion_dd` adds the second): `pytest -m "not data"` leaves
them out.
"""
import os, socket, sys
from functools import cache
from pathlib import Path
import pytest

root = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(root/'tools'))
from seed_data import data_folder, seed, targets

os.environ.setdefault('MPLBACKEND', 'Agg')
SEEDED = (src := data_folder()) is not None
if SEEDED:
    seed(src)
    os.environ.update(HF_HUB_OFFLINE='1', HF_DATASETS_OFFLINE='1')

# name -> (where the notebooks keep it, the host they fetch it from, what a learner without it can do)
DATA = {'mnist': (targets['mnist.pkl.gz'], 'github.com',
                  "MNIST: set MINIAI_DATA to a folder holding mnist.pkl.gz, or run online once"),
        'fashion_mnist': (targets['fashion_mnist'], 'huggingface.co',
                          "Fashion-MNIST: set MINIAI_DATA to a folder holding fashion_mnist/ (Hugging Face layout), "
                          "or run online")}
FIXTURES = {'fashion_dd': 'fashion_mnist'}  # a test using the fixture needs the dataset

@cache
def online(host, timeout=3):
    "Can we open a connection to `host`? Asked once per host, and never for longer than `timeout` seconds."
    try: socket.create_connection((host, 443), timeout=timeout).close()
    except OSError: return False
    return True

def missing(name):
    "Why the dataset `name` can't be had (a skip reason), or `None` if it is here or can be downloaded."
    if name not in DATA: raise ValueError(f"data marker names {name!r}, but the known datasets are {list(DATA)}")
    path, host, how = DATA[name]
    return None if path.exists() or (not SEEDED and online(host)) else f"needs {how}"

def pytest_configure(config):
    config.addinivalue_line('markers', "data(name, ...): needs the dataset `name` ('mnist' or 'fashion_mnist'); "
                                       "skips with instructions when it is neither here nor downloadable")

def pytest_collection_modifyitems(items):
    for item in items:
        for fx,name in FIXTURES.items():
            if fx in item.fixturenames: item.add_marker(pytest.mark.data(name))

def pytest_runtest_setup(item):
    for m in item.iter_markers('data'):
        if not m.args: raise ValueError(f"{item.nodeid}: the data marker needs a dataset name, e.g. data('mnist')")
        for name in m.args:
            if why := missing(name): pytest.skip(why)

@pytest.fixture(scope='session')
def fashion_dd():
    "Fashion-MNIST as a `DatasetDict`, loaded as lesson 05 loads it: the local folder if there is one, else the Hub."
    from datasets import load_dataset
    path = DATA['fashion_mnist'][0]
    return load_dataset(str(path) if path.exists() else 'fashion_mnist')

# For the browser tests: Debian's Chromium, started so that it never calls home (offline, that floods
# refused connections; Playwright adds --headless), and the folder their screenshots go to.
CHROMIUM = os.environ.get('CHROMIUM', '/usr/bin/chromium')
CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
                 '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage']
ARTIFACTS = Path(os.environ.get('ARTIFACTS', root/'artifacts'))
