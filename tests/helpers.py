"""What the tests share besides fixtures: paths, the datasets the lessons read, the browser's settings, and small
synthetic data. Import with `from helpers import ...` (pytest puts tests/ on the path)."""
import multiprocessing, os, select, signal, subprocess, sys, textwrap, warnings
from pathlib import Path
import numpy as np

root = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(root/'tools'))
from seed_data import targets

# name -> (where the notebooks keep it, the host they fetch it from, what a learner without it can do)
DATA = {'mnist': (targets['mnist.pkl.gz'], 'github.com',
                  "MNIST: set MINIAI_DATA to a folder holding mnist.pkl.gz, or run online once"),
        'fashion_mnist': (targets['fashion_mnist'], 'huggingface.co',
                          "Fashion-MNIST: set MINIAI_DATA to a folder holding fashion_mnist/ (Hugging Face layout), "
                          "or run online")}

# Debian's Chromium, started so that it never calls home (offline, that floods refused connections; Playwright adds
# --headless), and the folder the browser tests' screenshots go to.
CHROMIUM = os.environ.get('CHROMIUM', '/usr/bin/chromium')
CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
                 '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage']
ARTIFACTS = Path(os.environ.get('ARTIFACTS', root/'artifacts'))

def run_as_notebook(code, method=None, wait=True, **kwargs):
    """Run `code` (dedented) in a fresh `python -c`, whose `__main__`, like a notebook's, has no file a worker could
    import; workers started by `method` if given. Returns the finished `CompletedProcess` (text, output captured), or
    the running `Popen` when `wait=False`. Runs in tests/, so `from helpers import ...` works there."""
    code = (f"import multiprocessing; multiprocessing.set_start_method({method!r}, force=True)\n" if method else '') + textwrap.dedent(code)
    args = dict(stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=root/'tests') | kwargs
    if not wait: return subprocess.Popen([sys.executable, '-c', code], **args)
    with subprocess.Popen([sys.executable, '-c', code], **args) as p:
        try: out, err = p.communicate(timeout=120)
        except subprocess.TimeoutExpired: p.kill(); out, err = p.communicate()
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)

class Forked:
    """`code` (dedented) run as a notebook's main process would run it under fork, like `run_as_notebook(code, 'fork',
    wait=False)` but in a forked child of this process, which has imported everything already, so that no fresh Python
    starts. Answers as much of `Popen`'s interface as the worker tests use; what the code prints (stdout and stderr)
    comes through a pipe, and a read gives up after `bound` seconds without a byte."""
    def __init__(self, code, bound=300):
        r, w = os.pipe()
        def main():
            sys.stdout = sys.stderr = open(w, 'w', buffering=1)
            signal.signal(signal.SIGINT, signal.default_int_handler)   # Ctrl-C raises KeyboardInterrupt, as in a kernel
            exec(textwrap.dedent(code), {'__name__': '__main__'})
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', DeprecationWarning)   # Python 3.12+: "fork() may deadlock"; a hang fails the test
            (p := multiprocessing.get_context('fork').Process(target=main)).start()
        os.close(w)
        self.p, self.pid, self.fd, self.bound, self.buf, self.stdout = p, p.pid, r, bound, b'', self
    def _more(self):
        "Read what has come, if anything comes within the bound; `b''` at the end, or after the bound"
        b = os.read(self.fd, 1<<16) if select.select([self.fd], [], [], self.bound)[0] else b''
        self.buf += b
        return b
    def readline(self):
        while b'\n' not in self.buf and self._more(): pass
        line, nl, self.buf = self.buf.partition(b'\n')
        return (line + nl).decode()
    def read(self):
        while self._more(): pass
        out, self.buf = self.buf.decode(), b''
        return out
    stderr = property(lambda self: self)   # merged into stdout
    returncode = property(lambda self: self.p.exitcode)
    def send_signal(self, sig): os.kill(self.pid, sig)
    def kill(self): self.p.kill()
    def wait(self, timeout=None):
        self.p.join(timeout)
        if self.p.exitcode is None: raise subprocess.TimeoutExpired('forked main process', timeout)
        return self.p.exitcode
    def communicate(self, timeout=None): self.wait(timeout); return self.read(), ''

def u8(*shape, seed=0):
    "Random bytes of `shape`, the same for the same `seed`."
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)

def image_dd(n_train=12, n_valid=5, size=4):
    "A `DatasetDict` shaped like Fashion-MNIST's (an `image` and a `label` feature), of `size`×`size` random images."
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Image as HFImage
    from PIL import Image
    feats = Features({'image': HFImage(), 'label': ClassLabel(names=['a', 'b', 'c'])})
    def split(n, seed):
        return Dataset.from_dict({'image': [Image.fromarray(u8(size, size, seed=seed+i)) for i in range(n)],
                                  'label': [i%3 for i in range(n)]}, features=feats)
    return DatasetDict(train=split(n_train, 0), test=split(n_valid, 1000))

# Datasets for the worker tests, here in a module so that spawned workers can import them as they import any class
from miniai.training import Dataset

def hits(i): return i if isinstance(i, list) else [i]

class Failing(Dataset):
    "Raises a `KeyError` for item 13"
    def __getitem__(self, i):
        if 13 in hits(i): raise KeyError('item 13 is broken')
        return super().__getitem__(i)

class Dying(Dataset):
    "Ends its process, as the system does to one that runs out of memory, at item 13"
    def __getitem__(self, i):
        if 13 in hits(i): os._exit(3)
        return super().__getitem__(i)

class Stuck(Dataset):
    "Takes ten minutes for item 13 (so that a test sees whether anything waits for it)"
    def __getitem__(self, i):
        if 13 in hits(i): __import__('time').sleep(600)
        return super().__getitem__(i)

class Unsendable(Exception):
    "An exception that pickles but can't be rebuilt (it needs two arguments and keeps one)"
    def __init__(self, a, b): super().__init__(f'{a} {b}')

class RaisesUnsendable(Dataset):
    def __getitem__(self, i): raise Unsendable('not', 'rebuilt')
