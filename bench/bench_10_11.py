"""What lessons 10 and 11's callbacks cost per epoch: `ActivationStats` (mean, std and a 40-bin histogram of every
convolution's output, each batch) and `BatchTransformCB` (normalising each batch), each against the same fit without it.

    python bench/bench_10_11.py                  # Fashion-MNIST from nbs/fashion_mnist (see tools/seed_data.py)
    python bench/bench_10_11.py --n 6000 --epochs 3
    python bench/bench_10_11.py --smoke          # random images, one epoch each: checks that it runs; no timing

The lessons' CNN (`get_model(act_gr)` with Kaiming init), `MomentumLearner` at lr 0.2 with `DeviceCB` and `MetricsCB`,
on the first `n` training images. Each variant trains its own model from the same seed; the variants alternate epoch
by epoch, so that load from other processes hits all alike. One torch thread (on two shared cores, two threads make
small convolutions run much slower at random moments). Wall-clock and CPU time (of this process) per epoch; only the
ratios mean much."""
import argparse, statistics, time
from functools import partial
from pathlib import Path
import torch
import torch.nn.functional as F
import fastcore.all as fc
from miniai.training import Dataset
from miniai.datasets import DataLoaders
from miniai.learner import DeviceCB, MetricsCB, MomentumLearner, Accuracy
from miniai.activations import ActivationStats, set_seed
from miniai.init import BatchTransformCB, GeneralRelu, get_model, init_weights

data = Path(__file__).resolve().parent.parent/'nbs'/'fashion_mnist'

def fashion_dls(n, bs):
    from datasets import load_dataset
    dsd = load_dataset(str(data))
    return DataLoaders.from_tensorized({'train': dsd['train'].select(range(n)), 'test': dsd['test'].select(range(n//6))}, bs)

def random_dls(n, bs):
    ds = lambda n: Dataset(torch.rand(n, 1, 28, 28), torch.randint(0, 10, (n,)))
    return DataLoaders(torch.utils.data.DataLoader(ds(n), bs, shuffle=True), torch.utils.data.DataLoader(ds(n//6), 2*bs))

def variants(dls):
    xb,_ = next(iter(dls.train))
    m,s = xb.mean(),xb.std()
    return {'plain': [], 'ActivationStats': [ActivationStats(fc.risinstance(GeneralRelu))],
            'BatchTransformCB': [BatchTransformCB(lambda b: ((b[0]-m)/s, b[1]))]}

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--smoke', action='store_true', help='random images, one epoch each, no timing')
    p.add_argument('--n', type=int, default=12_000, help='training images (validation: a sixth as many)')
    p.add_argument('--bs', type=int, default=256)
    p.add_argument('--epochs', type=int, default=4)
    a = p.parse_args()
    torch.set_num_threads(1)
    dls = random_dls(600, a.bs) if a.smoke else fashion_dls(a.n, a.bs)
    iw = partial(init_weights, leaky=0.1)
    learns = {}
    for k,cbs in variants(dls).items():
        set_seed(1)
        learns[k] = MomentumLearner(get_model(partial(GeneralRelu, leak=0.1, sub=0.4)).apply(iw), dls, F.cross_entropy,
                                    lr=0.2, cbs=[DeviceCB(), MetricsCB(Accuracy()), *cbs])
    times = {(k, c): [] for k in learns for c in ('wall', 'cpu')}
    for epoch in range(1 if a.smoke else a.epochs):
        for k in (list(learns) if epoch%2==0 else list(learns)[::-1]):
            t, c = time.perf_counter(), time.process_time()
            learns[k].fit(1)
            times[k, 'wall'].append(time.perf_counter()-t)
            times[k, 'cpu'].append(time.process_time()-c)
    print(f"{'random images' if a.smoke else 'Fashion-MNIST'}: {a.n} training images, batch size {a.bs}, "
          f"{a.epochs} epochs per variant, torch threads {torch.get_num_threads()}, one run")
    if a.smoke: return
    for c in ('wall', 'cpu'):
        base = statistics.median(times['plain', c])
        for k in learns:
            med = statistics.median(times[k, c])
            print(f"{c:4} s per epoch, median: {k:16} {med:6.2f}  ({med/base:.2f}x plain)")

if __name__ == '__main__': main()
