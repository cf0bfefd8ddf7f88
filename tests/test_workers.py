"""The scratch `DataLoader`'s worker processes under each way of starting them: *fork* (Linux up to Python 3.13),
*spawn* (macOS, Windows) and *forkserver* (Linux from Python 3.14). Whatever happens (a worker raises or dies, the
loop stops early, the user presses Ctrl-C, the main process is killed) the error is clear, nothing hangs and no
worker is left behind. What runs in the main process of a notebook, whose `__main__` is no file, runs in `python -c`."""
import multiprocessing, os, signal, subprocess, sys, textwrap, time
import psutil, pytest, torch
from miniai.scratch import BatchSampler, DataLoader, Sampler, collate
from helpers import Dataset, Dying, Failing, RaisesUnsendable, Stuck, run_as_notebook

# fork is quick; a spawned worker (or a fork server) imports torch first, so those runs are left out of the quick loop
METHODS = ['fork', *(pytest.param(m, marks=pytest.mark.slow) for m in ('spawn', 'forkserver'))]
pytestmark = pytest.mark.timeout(120)   # each test ends in seconds; a hang fails it instead of stopping the run

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

def test_a_worker_that_dies(method):
    with pytest.raises(RuntimeError, match=r'A worker process \(pid \d+\) ended unexpectedly, with exit code 3'):
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

def wait_gone(pids, secs=60):
    "Wait until none of `pids` runs any more (a process that is a zombie has ended); return those still running"
    end = time.monotonic()+secs
    while (left := [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]):
        if time.monotonic() > end: break
        time.sleep(0.2)
    return left

@pytest.mark.parametrize('sig', [signal.SIGKILL, signal.SIGTERM])
def test_workers_end_with_the_main_process(method, sig):
    proc = run_as_notebook(STUCK + "    import time; time.sleep(600)", method, wait=False)   # in the loop, as a kernel would be
    try:
        pids = [int(p) for p in proc.stdout.readline().split()]
        assert len(pids) == 2 and all(psutil.pid_exists(p) for p in pids), proc.stderr.read()
        proc.send_signal(sig)   # what a kernel restart does
        proc.wait(30)
        assert not wait_gone(pids), f"workers outlived the main process: {pids}"
    finally: proc.kill(); proc.wait()

def test_ctrl_c_returns_at_once_and_ends_the_workers(method):
    proc = run_as_notebook(STUCK + '''
    import time
    t = time.monotonic()
    try: list(it)   # waits for batch 3, which takes ten minutes
    except KeyboardInterrupt: print('interrupted after', round(time.monotonic()-t), 's; workers left:', multiprocessing.active_children())
    ''', method, wait=False)
    try:
        pids = [int(p) for p in proc.stdout.readline().split()]
        time.sleep(1)
        os.kill(proc.pid, signal.SIGINT)   # Jupyter's interrupt
        out, err = proc.communicate(timeout=60)
        assert 'workers left: []' in out, out + err
        assert int(out.split('after ')[1].split()[0]) < 60, out   # it didn't wait for the ten-minute batch
        assert not wait_gone(pids)
    finally: proc.kill(); proc.wait()

def test_a_notebook_class_gets_a_clear_error_at_once(method):
    proc = run_as_notebook('''
        import torch
        from miniai.scratch import DataLoader
        from miniai.training import Dataset
        class Local(Dataset): pass
        ds = Local(torch.zeros(8, 2), torch.arange(8))
        try: print(len(list(DataLoader(ds, [[0, 1], [2, 3]], n_workers=2))), 'batches')
        except ValueError as e: print(e)
    ''', method, wait=False)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    if method == 'fork': assert out.strip() == '2 batches'
    else:
        assert out.startswith('dataset (a Local) needs Local, defined in this notebook or session'), out + err
        assert f"started by {method!r} can't import" in out and 'num_workers=0' in out
