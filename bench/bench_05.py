"""Lesson 05's fast path against the course's path: one shuffled epoch over Fashion-MNIST's training split, batch size 256.

    python bench/bench_05.py            # Fashion-MNIST from nbs/fashion_mnist (see tools/seed_data.py)

The course's path converts each image when it is read (`with_transform` with `to_tensor`) and
batches the items with `collate_dict`. The fast path decodes every image once (`tensorize`) and
fetches each batch with one indexing. Both run over the same batch sampler, and the script
asserts that they give the same batches. One run of each: timings are noisy on a shared
machine, so only the ratio from one run means anything. The functions are importable, so that a
test can check the same-batches claim on a small slice without timing anything.
"""
import time
from pathlib import Path
import torch
from datasets import load_dataset
from miniai.training import DataLoader, BatchSampler, RandomSampler
from miniai.datasets import inplace, to_tensor, collate_dict, tensorize

data = Path(__file__).resolve().parent.parent/'nbs'/'fashion_mnist'

def course_dl(ds, batchs):
    "The course's path over the split `ds`: each image converted by `to_tensor` as it is read, then `collate_dict`."
    x = list(ds.features)[0]
    @inplace
    def transformi(b): b[x] = [to_tensor(o) for o in b[x]]
    tds = ds.with_transform(transformi)
    return DataLoader(tds, batch_sampler=batchs, collate_fn=collate_dict(tds))

def fast_dl(tds, batchs):
    "The fast path over `tds`, made by `tensorize`: the batch sampler is the sampler, so each batch is one `tds[indices]`."
    return DataLoader(tds, sampler=batchs, batch_size=None)

def shuffled_batches(n, bs, seed=0):
    "The index batches of one shuffled epoch over `n` items, as a list, so that every loader given it sees the same batches."
    return list(BatchSampler(RandomSampler(range(n), generator=torch.Generator().manual_seed(seed)), bs, drop_last=False))

def same_batches(a, b):
    "Whether two lists of `(xb, yb)` batches hold the same pixels and the same labels, in the same order."
    return len(a)==len(b) and all(torch.equal(xa, xb) and torch.equal(ya, yb) for (xa,ya),(xb,yb) in zip(a, b))

def timed(f):
    "`f()` and the seconds it took."
    t = time.perf_counter()
    res = f()
    return res, time.perf_counter()-t

def main(bs=256, target=20):
    ds = load_dataset(str(data))['train']
    n = len(ds)
    batchs = shuffled_batches(n, bs)
    tds, t_decode = timed(lambda: tensorize(ds))
    course, t_course = timed(lambda: list(course_dl(ds, batchs)))
    fast, t_fast = timed(lambda: list(fast_dl(tds, batchs)))
    assert same_batches(course, fast), "the fast path's batches differ from the course's"
    ratio = t_course/t_fast
    print(f"Fashion-MNIST train: {n:,} items, {len(batchs)} shuffled batches of {bs}, torch threads: {torch.get_num_threads()}, one run each")
    print(f"course path (with_transform + collate_dict): {t_course:6.2f} s  {n/t_course:>11,.0f} items/s")
    print(f"fast path (tensorize, then tensor indexing):  {t_fast:6.2f} s  {n/t_fast:>11,.0f} items/s")
    print(f"ratio fast/course: {ratio:,.1f}x (target >= {target}x: {'met' if ratio>=target else 'MISSED'})")
    print(f"one-off tensorize of the split: {t_decode:.2f} s, repaid after {t_decode/(t_course-t_fast):.1f} epochs")
    print(f"identical batches: yes ({len(course)} batches: same pixels, same labels, same order)")

if __name__ == '__main__': main()
