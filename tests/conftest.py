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
import os, socket
from functools import cache
import pytest
from hypothesis import HealthCheck, settings
from helpers import DATA
from seed_data import data_folder, seed

os.environ.setdefault('MPLBACKEND', 'Agg')
SEEDED = (src := data_folder()) is not None
if SEEDED:
    seed(src)
    os.environ.update(HF_HUB_OFFLINE='1', HF_DATASETS_OFFLINE='1')

# No test's outcome may depend on wall-clock time: no deadline per example, and no health check that times them.
settings.register_profile('miniai', deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile('miniai')
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
    config.addinivalue_line('markers', "slow: runs notebooks, a browser or the docs build; `pytest -m 'not slow'` "
                                       "leaves these out for a quick loop")
    config.addinivalue_line('markers', "browser: drives headless Chromium")
    config.addinivalue_line('markers', "colab: makes a fresh Python and installs miniai into it from PyPI and a wheel")

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
