"""Lesson 04's loaders and `fit`, timed side by side in one run; prints items/s and the ratios the issue targets.

    python bench/bench_04.py            # MNIST from nbs/data/mnist.pkl.gz (see tools/seed_data.py)

Timings are noisy on a shared machine: each figure is the best of `reps` epochs, and only the
ratios from one run mean anything.
"""
import contextlib, gzip, io, pickle, time
from pathlib import Path
import torch, torch.utils.data as tud
import torch.nn.functional as F
from torch import nn, optim
from miniai.training import Dataset, fit, accuracy
from miniai import scratch

def best_rate(f, n_items, reps=3):
    "Items per second of the fastest of `reps` calls of `f`, each processing `n_items`."
    ts = []
    for _ in range(reps):
        t = time.perf_counter(); f(); ts.append(time.perf_counter()-t)
    return n_items/min(ts)

def drain(dl):
    for _ in dl: pass

def raw_slicing(x, y, bs):
    idx = torch.randperm(len(x))
    for i in range(0, len(x), bs): b = idx[i:i+bs]; x[b], y[b]

def loaders(ds, bs):
    "The loaders compared, each yielding shuffled batches of `bs` over `ds`."
    ours = lambda: scratch.BatchSampler(scratch.Sampler(ds, shuffle=True), bs)
    theirs = tud.BatchSampler(tud.RandomSampler(ds), bs, drop_last=False)
    return {'pytorch per item':        tud.DataLoader(ds, bs, shuffle=True),
            'ours per item':           scratch.DataLoader(ds, ours()),
            'ours pre-collated':       scratch.DataLoader(ds, ours(), collate_fn=None),
            'pytorch pre-collated':    tud.DataLoader(ds, sampler=theirs, batch_size=None)}

class SlowDataset(Dataset):
    "A dataset whose items each cost about `ms` milliseconds of CPU, like decoding and augmenting an image."
    def __init__(self, x, y, ms=1.): super().__init__(x, y); self.ms = ms
    def __getitem__(self, i):
        for _ in (i if isinstance(i, list) else [i]):
            t = time.thread_time()
            while time.thread_time()-t < self.ms/1000: pass
        return super().__getitem__(i)

def hand_loop(epochs, model, loss_func, opt, train_dl, valid_dl):
    "What `fit` does, written out without checks or reporting."
    for epoch in range(epochs):
        model.train()
        for xb,yb in train_dl:
            loss_func(model(xb), yb).backward(); opt.step(); opt.zero_grad()
        model.eval()
        with torch.no_grad():
            tot_loss, tot_acc, count = 0., 0., 0
            for xb,yb in valid_dl:
                pred = model(xb)
                count += len(xb)
                tot_loss += loss_func(pred, yb)*len(xb)
                tot_acc += accuracy(pred, yb)*len(xb)
        (tot_loss/count).item(), (tot_acc/count).item()

def main(path=Path(__file__).resolve().parent.parent/'nbs'/'data'/'mnist.pkl.gz', bs=64):
    torch.manual_seed(42)
    with gzip.open(path, 'rb') as f: ((xt, yt), (xv, yv), _) = pickle.load(f, encoding='latin-1')
    xt, yt, xv, yv = map(torch.tensor, (xt, yt, xv, yv))
    ds, n = Dataset(xt, yt), len(xt)
    r = {k: best_rate(lambda: drain(dl), n) for k,dl in loaders(ds, bs).items()}
    r['raw randperm slicing'] = best_rate(lambda: raw_slicing(xt, yt, bs), n)
    print(f'Data loading over MNIST train ({n:,} items, bs={bs}, shuffled), items/s:')
    for k,v in r.items(): print(f'  {k:24} {v:12,.0f}')
    raw = r['raw randperm slicing']
    print(f'  ours pre-collated / raw slicing:   {r["ours pre-collated"]/raw:.2f}  (target >= 0.7)')
    print(f'  ours per item / pytorch per item:  {r["ours per item"]/r["pytorch per item"]:.2f}  (target >= 0.8)')

    slow = SlowDataset(xt[:2048], yt[:2048])
    batchs = scratch.BatchSampler(scratch.Sampler(slow), bs)
    def workers(w): return best_rate(lambda: drain(scratch.DataLoader(slow, batchs, w, collate_fn=None)), len(slow), 2)
    w0, w2 = workers(0), workers(2)
    print(f'\nWorkers, {len(slow):,} items costing ~1 ms each: 0 workers {w0:,.0f} items/s, '
          f'2 workers {w2:,.0f} items/s, '
          f'speed-up {w2/w0:.2f}x  (target >= 1.6)')

    times = {}
    for name,f in (('hand-written loop', hand_loop), ('fit', fit)):
        torch.manual_seed(42)
        model = nn.Sequential(nn.Linear(784, 200), nn.ReLU(), nn.Linear(200, 10))
        opt = optim.SGD(model.parameters(), lr=0.5)
        train_dl, valid_dl = tud.DataLoader(ds, bs, shuffle=True), tud.DataLoader(Dataset(xv, yv), 2*bs)
        ts = []
        for _ in range(3):
            with contextlib.redirect_stdout(io.StringIO()):  # fit prints a line per epoch
                t = time.perf_counter()
                f(1, model, F.cross_entropy, opt, train_dl, valid_dl)
                ts.append(time.perf_counter()-t)
        times[name] = min(ts)
    print(f'\nOne epoch with validation: hand-written {times["hand-written loop"]:.2f}s, fit {times["fit"]:.2f}s, '
          f'ratio {times["fit"]/times["hand-written loop"]:.2f}  (target <= 1.1)')
    return r, w2/w0, times

if __name__ == '__main__': main()
