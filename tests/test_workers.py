"""The scratch `DataLoader`'s worker processes under each way of starting them: *fork* (Linux up to Python 3.13),
*spawn* (macOS, Windows) and *forkserver* (Linux from Python 3.14). Whatever happens (a worker raises or dies, the
loop stops early, the user presses Ctrl-C, the main process is killed) the error is clear, nothing hangs and no
worker is left behind. What runs in the main process of a notebook, whose `__main__` is no file, runs in `python -c`;
under fork, in a forked child of the test's process, which is what a fresh Python would be by then, only quicker."""
import multiprocessing, os, re, signal, sys
import psutil, pytest, torch
from miniai.scratch import BatchSampler, DataLoader, Sampler, collate
from helpers import Dataset, Dying, Failing, Forked, RaisesUnsendable, Stuck, hits, run_as_notebook

# fork is quick; a spawned worker (or a fork server) imports torch first, so those runs are left out of the quick loop
METHODS = ['fork', *(pytest.param(m, marks=pytest.mark.slow) for m in ('spawn', 'forkserver'))]
pytestmark = pytest.mark.timeout(900)   # each test ends in seconds, a minute or two on a loaded machine; a hang fails it instead of stopping the run

@pytest.fixture(params=METHODS)
def method(request):
    "Start worker processes the way `request.param` says, for one test"
    old = multiprocessing.get_start_method(allow_none=True)
    multiprocessing.set_start_method(request.param, force=True)
    yield request.param
    multiprocessing.set_start_method(old, force=True)

def tensor_ds(n=100, d=3, cls=Dataset): return cls(torch.arange(n*d, dtype=torch.float32).reshape(n, d), torch.arange(n))
def loader(ds, bs=4, n_workers=2, **kwargs): return DataLoader(ds, BatchSampler(Sampler(ds), bs), n_workers=n_workers, **kwargs)
def no_workers_left(): return not multiprocessing.active_children()

@pytest.mark.parametrize('collate_fn', [collate, None])
def test_same_batches_as_in_this_process(method, collate_fn):
    ds = tensor_ds(203)
    batchs = list(BatchSampler(Sampler(ds, shuffle=True), 16))
    one, two = list(DataLoader(ds, batchs, collate_fn=collate_fn)), list(DataLoader(ds, batchs, n_workers=2, collate_fn=collate_fn))
    assert len(one) == len(two) == 13
    for (xa,ya),(xb,yb) in zip(one, two): assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert no_workers_left()

class Counted(list):
    "Batches of indices that count how many of them have been handed out so far."
    def __iter__(self):
        self.handed = 0
        for b in super().__iter__():
            self.handed += 1
            yield b

@pytest.mark.parametrize('n_workers', [1, 3])
def test_at_most_two_batches_per_worker_ahead(method, n_workers):
    batchs = Counted([[i, i+1] for i in range(0, 60, 2)])
    for k,(xb,yb) in enumerate(DataLoader(tensor_ds(60), batchs, n_workers=n_workers), 1):
        assert batchs.handed - k <= 2*n_workers, f"{batchs.handed} batches handed out when batch {k} was yielded"
        assert yb.tolist() == [2*k-2, 2*k-1]
    assert k == 30

@pytest.mark.parametrize('collate_fn', [collate, None])
def test_a_worker_that_raises(method, collate_fn):
    with pytest.raises(KeyError, match='item 13 is broken') as e: list(loader(tensor_ds(40, cls=Failing), collate_fn=collate_fn))
    assert "raise KeyError('item 13 is broken')" in str(e.value.__cause__)   # the worker's traceback, as the cause
    assert no_workers_left()
    with pytest.raises(RuntimeError, match=r'Unsendable: not rebuilt'): list(loader(tensor_ds(8, cls=RaisesUnsendable)))
    assert no_workers_left()

class Exiting(Dataset):
    "Calls `sys.exit(3)` at item 13"
    def __getitem__(self, i):
        if 13 in hits(i): sys.exit(3)
        return super().__getitem__(i)

class Interrupting(Dataset):
    "Raises a `KeyboardInterrupt` of its own at item 13 (workers ignore Ctrl-C: the main process handles it)"
    def __getitem__(self, i):
        if 13 in hits(i): raise KeyboardInterrupt('in item 13')
        return super().__getitem__(i)

def with_generator(n):
    "A dataset holding a `torch.Generator`, whose state a spawned worker can't rebuild from shared memory"
    ds = tensor_ds(n)
    ds.g = torch.Generator()
    return ds

@pytest.mark.parametrize('ds,msg,where', [
    (tensor_ds(40, cls=Exiting), 'SystemExit: 3', 'sys.exit(3)'),
    (tensor_ds(40, cls=Interrupting), 'KeyboardInterrupt: in item 13', "raise KeyboardInterrupt('in item 13')"),
])
def test_a_worker_that_exits_or_is_interrupted_says_so(method, ds, msg, where):
    "Reported with what ended it and where, as a `RuntimeError`: raising `SystemExit` here would end the main process"
    with pytest.raises(RuntimeError, match=re.escape(msg)) as e: list(loader(ds))
    assert where in str(e.value.__cause__)
    assert no_workers_left()

def test_a_worker_that_cant_rebuild_the_dataset_says_why(method):
    if method == 'fork': assert len(list(loader(with_generator(8)))) == 2   # a forked worker rebuilds nothing
    else:
        with pytest.raises(RuntimeError) as e: list(loader(with_generator(8)))
        assert 'ended unexpectedly' not in str(e.value) and 'pickle.loads(setup)' in str(e.value.__cause__), e.value
    assert no_workers_left()

def test_a_worker_that_dies(method):
    with pytest.raises(RuntimeError, match=r'A worker process \(pid \d+\) ended unexpectedly, with exit code 3$'):
        list(loader(tensor_ds(40, cls=Dying)))
    assert no_workers_left()

def test_stopping_early_ends_the_workers_without_waiting_for_batches_in_flight(method):
    it = iter(loader(tensor_ds(100, cls=Stuck)))   # batch 3, items 12 to 15, takes ten minutes: is it waited for?
    assert len([next(it) for _ in range(3)]) == 3 and len(multiprocessing.active_children()) == 2
    it.close()   # what `break` does to the loop's generator
    assert no_workers_left()

STUCK = '''
    import multiprocessing, torch
    from miniai.scratch import BatchSampler, DataLoader, Sampler
    from helpers import Stuck
    ds = Stuck(torch.zeros(100, 3), torch.arange(100))
    it = iter(DataLoader(ds, BatchSampler(Sampler(ds), 4), n_workers=2))
    next(it)
    print(*[p.pid for p in multiprocessing.active_children()], flush=True)
'''

def start(code, method):
    "`code` run as a notebook's main process, with workers started by `method`: a running `Popen` or `Forked`"
    return Forked(code) if method == 'fork' else run_as_notebook(code, method, wait=False)

def workers_of(proc):
    "The worker processes whose pids `proc` prints on its first line (it prints them once both have started)"
    line = proc.stdout.readline()
    pids = [int(p) for p in line.split()]
    assert len(pids) == 2, line + proc.stderr.read()
    return [psutil.Process(p) for p in pids]

def outlived(workers):
    "Those of `workers` still running well after their main process ended (a generous bound: they should end at once)"
    return psutil.wait_procs(workers, timeout=300)[1]

@pytest.mark.parametrize('sig', [signal.SIGKILL, signal.SIGTERM])
def test_workers_end_with_the_main_process(method, sig):
    proc = start(STUCK + "    import threading; threading.Event().wait()", method)   # in the loop, as a kernel would be
    try:
        workers = workers_of(proc)
        proc.send_signal(sig)   # what a kernel restart does
        proc.wait(300)
        assert not outlived(workers), f"workers outlived the main process: {workers}"
    finally: proc.kill(); proc.wait()

def test_a_forked_worker_inside_one_long_c_call_ends_with_the_main_process():
    "A worker busy in one call that holds the GIL (no Python step, so no thread can act) still ends: the kernel kills it"
    proc = Forked('''
        import itertools, multiprocessing, torch
        from miniai.scratch import DataLoader
        from miniai.training import Dataset
        class Busy(Dataset):
            def __getitem__(self, i):
                if i == [2, 3]: print('busy', flush=True); sum(itertools.repeat(1, 10**12))   # hours, all in C
                return super().__getitem__(i)
        it = iter(DataLoader(Busy(torch.zeros(8, 2), torch.arange(8)), [[0, 1], [2, 3]], n_workers=2, collate_fn=None))
        next(it)
        print(*[p.pid for p in multiprocessing.active_children()], flush=True)
        list(it)
    ''')
    try:
        lines = sorted([proc.stdout.readline(), proc.stdout.readline()])   # in either order: the worker prints 'busy'
        assert lines[1] == 'busy\n', lines + [proc.stderr.read()]
        workers = [psutil.Process(int(p)) for p in lines[0].split()]
        proc.kill()
        proc.wait(300)
        assert not outlived(workers), f"workers outlived the main process: {workers}"
    finally:
        proc.kill(); proc.wait()
        for w in locals().get('workers', []):
            if w.is_running(): w.kill()

def test_ctrl_c_returns_at_once_and_ends_the_workers(method):
    proc = start(STUCK + '''
    import miniai.scratch
    wait = miniai.scratch.wait   # says when the loader waits for workers: Ctrl-C then lands inside the loop
    miniai.scratch.wait = lambda objs: print('waiting', flush=True) or wait(objs)
    try: list(it)   # waits for batch 3, which takes ten minutes
    except KeyboardInterrupt: print('interrupted; workers left:', multiprocessing.active_children())
    ''', method)
    try:
        workers = workers_of(proc)
        assert proc.stdout.readline() == 'waiting\n'
        os.kill(proc.pid, signal.SIGINT)   # Jupyter's interrupt
        out, err = proc.communicate(timeout=300)   # it didn't wait for the ten-minute batch
        assert out.splitlines()[-1] == 'interrupted; workers left: []', out + err
        assert not outlived(workers)
    finally: proc.kill(); proc.wait()

def test_a_notebook_class_gets_a_clear_error_at_once(method):
    proc = start('''
        import torch
        from miniai.scratch import DataLoader
        from miniai.training import Dataset
        class Local(Dataset): pass
        ds = Local(torch.zeros(8, 2), torch.arange(8))
        try: print(len(list(DataLoader(ds, [[0, 1], [2, 3]], n_workers=2))), 'batches')
        except ValueError as e: print(e)
    ''', method)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    if method == 'fork': assert out.strip() == '2 batches'
    else:
        assert out.startswith('dataset (a Local) needs Local, defined in this notebook or session'), out + err
        assert f"started by {method!r} can't import" in out and 'num_workers=0' in out
