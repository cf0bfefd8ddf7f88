"""Lesson 05's fast path against the course's path: shuffled epochs over Fashion-MNIST's training split, batch size 256.

    python bench/bench_05.py            # Fashion-MNIST from nbs/fashion_mnist (see tools/seed_data.py)

Both paths are the library's own. The course's path is `DataLoaders.from_dd` over the splits with the lesson's
transform: each image is converted by `to_tensor` as it is read, and the items are batched by `collate_dict`. The
fast path is `DataLoaders.from_tensorized`: every image is decoded once, and each batch is one indexing. Seeded
alike, they shuffle alike, and the script asserts that they give the same batches. The two are timed in turn,
`reps` epochs each, and the best epoch of each counts: timings are noisy on a shared machine, so only the ratio
from one run means anything. PyTorch runs on one thread while they are timed, as in a `DataLoader`'s worker
processes: on busy cores, the fast path's small indexing operations would otherwise mostly wait for each other.
"""
import time
from pathlib import Path
import torch
from datasets import load_dataset
from miniai.datasets import DataLoaders, inplace, to_tensor

data = Path(__file__).resolve().parent.parent/'nbs'/'fashion_mnist'

@inplace
def transformi(b): b['image'] = [to_tensor(o) for o in b['image']]

def timed(f):
    "`f()` and the seconds it took."
    t = time.perf_counter()
    res = f()
    return res, time.perf_counter()-t

def epoch(dl, seed=0):
    "The batches of one epoch of `dl`, shuffled from `seed`, and the seconds it took."
    torch.manual_seed(seed)
    return timed(lambda: list(dl))

def compare(dd, bs=256, reps=2, threads=1):
    "Seconds per training epoch of the course's path and of the fast path over `dd`, best of `reps` each, and more."
    course = DataLoaders.from_dd(dd.with_transform(transformi), bs).train
    fast, t_decode = timed(lambda: DataLoaders.from_tensorized(dd, bs).train)
    ts, n_threads = {'course': [], 'fast': []}, torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for _ in range(reps):
            (cb, tc), (fb, tf) = epoch(course), epoch(fast)
            ts['course'].append(tc); ts['fast'].append(tf)
            same = len(cb)==len(fb) and all(torch.equal(a, b) for c,f in zip(cb, fb) for a,b in zip(c, f))
            assert same, "the fast path's batches differ from the course's"
    finally: torch.set_num_threads(n_threads)
    return dict(course=min(ts['course']), fast=min(ts['fast']), decode=t_decode, n=len(dd['train']), batches=len(cb),
                threads=threads)

def main(bs=256, reps=2, target=20):
    r = compare(load_dataset(str(data)), bs, reps)
    n, ratio = r['n'], r['course']/r['fast']
    print(f"Fashion-MNIST train: {n:,} items, {r['batches']} shuffled batches of {bs}, "
          f"torch threads: {r['threads']}, best of {reps} epochs each, taken in turn")
    print(f"course path (with_transform + collate_dict): {r['course']:6.2f} s  {n/r['course']:>11,.0f} items/s")
    print(f"fast path (tensorize, then tensor indexing):  {r['fast']:6.2f} s  {n/r['fast']:>11,.0f} items/s")
    print(f"fast path speed-up: {ratio:,.1f}x (target >= {target}x: {'met' if ratio>=target else 'MISSED'})")
    print(f"one-off tensorize of both splits: {r['decode']:.2f} s, "
          f"repaid after {r['decode']/(r['course']-r['fast']):.1f} epochs")
    print(f"identical batches: yes ({r['batches']} batches: same pixels, same labels, same order)")
    return r

if __name__ == '__main__': main()
