"The benchmarks compare like with like: these check their logic on small data, without timing anything."
import sys, pytest, torch
from pathlib import Path
from torch import nn, optim
import torch.nn.functional as F, torch.utils.data as tud
sys.path.insert(0, str(Path(__file__).resolve().parent.parent/'bench'))
import bench_04, bench_05
from miniai.training import Dataset, fit
from helpers import image_dd

def small_ds(n=300): return Dataset(torch.randn(n, 5), torch.arange(n))

def test_every_loader_yields_each_item_once_in_batches_of_bs():
    ds = small_ds()
    for name,dl in bench_04.loaders(ds, 64).items():
        batches = list(dl)
        assert [len(yb) for _,yb in batches] == [64]*4 + [44], name
        ys = torch.cat([yb for _,yb in batches])
        assert sorted(ys.tolist()) == list(range(300)), name
        for xb,yb in batches: assert torch.equal(xb, ds.x[yb]), name

def test_slow_dataset_returns_what_dataset_returns():
    ds = small_ds(10)
    slow = bench_04.SlowDataset(ds.x, ds.y, ms=0.01)
    for i in (3, [1, 4, 2], slice(2, 5)):
        assert all(torch.equal(a, b) for a,b in zip(slow[i], ds[i]))

def test_hand_loop_does_the_same_training_as_fit(capsys):
    ds = small_ds(128)
    ds.y = ds.y % 3
    params = []
    for f in (bench_04.hand_loop, fit):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3))
        loaders = tud.DataLoader(ds, 16), tud.DataLoader(ds, 32)
        f(2, model, F.cross_entropy, optim.SGD(model.parameters(), lr=0.1), *loaders)
        params.append(list(model.parameters()))
    assert all(torch.equal(a, b) for a,b in zip(*params))

def test_bench_05_compares_both_paths_over_the_same_batches():
    threads = torch.get_num_threads()
    r = bench_05.compare(image_dd(n_train=10, n_valid=3), bs=4, reps=2)  # asserts the batches are the same
    assert r['n'] == 10 and r['batches'] == 3
    assert all(r[k] > 0 for k in ('course', 'fast', 'decode'))
    assert torch.get_num_threads() == threads  # timed on one thread, then put back

def test_bench_05_notices_batches_that_differ(monkeypatch):
    "The comparison above can fail: a course path whose images are off by one gives other batches"
    @bench_05.inplace
    def shifted(b): b['image'] = [bench_05.to_tensor(o)+1 for o in b['image']]
    monkeypatch.setattr(bench_05, 'transformi', shifted)
    with pytest.raises(AssertionError, match="the fast path's batches differ from the course's"):
        bench_05.compare(image_dd(n_train=10, n_valid=3), bs=4, reps=1)
