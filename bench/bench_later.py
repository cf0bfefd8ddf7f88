"""What the callbacks of lessons 10-14 cost per epoch, as ratios against the same `fit` without them.

    python bench/bench_later.py            # Fashion-MNIST (a subset) from nbs/fashion_mnist (see tools/seed_data.py)
    python bench/bench_later.py --smoke    # random images, one epoch each: checks that every setting runs; no timing

Lesson 14's CPU model (a conv stem, ResBlocks, global average pooling) is trained with `TrainLearner`, `DeviceCB` and
`MetricsCB` (the base), then with one more callback at a time: `ActivationStats` (lesson 10), `BatchTransformCB`
normalising the inputs (11), `BatchSchedCB` with 1cycle and a `RecorderCB` of the learning rate (12), and the
augmentations of lesson 14 (crop and flip; then with random erase; then with random copy). Settings alternate epoch by
epoch, so that load from other processes hits each alike. PyTorch runs on one thread. One run: only ratios mean much.
"""
import argparse, statistics, time
from functools import partial
from pathlib import Path
import fastcore.all as fc, torch
import torch.nn.functional as F
from torch import nn, optim
from torch.optim import lr_scheduler
from miniai.training import Dataset
from miniai.datasets import DataLoaders
from miniai.learner import TrainLearner, DeviceCB, MetricsCB, Accuracy
from miniai.activations import ActivationStats
from miniai.init import BatchTransformCB, GeneralRelu, conv
from miniai.sgd import BatchSchedCB, RecorderCB
from miniai.resnet import ResBlock, act_gr
from miniai.augment import rand_crop, rand_flip, RandErase, RandCopy

data = Path(__file__).resolve().parent.parent/'nbs'/'fashion_mnist'

def model(nfs=(8, 16, 32, 64)):
    layers = [conv(1, nfs[0], ks=5, stride=1, act=act_gr, norm=nn.BatchNorm2d)]
    layers += [ResBlock(nfs[i], nfs[i+1], act=act_gr, norm=nn.BatchNorm2d, stride=2) for i in range(len(nfs)-1)]
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(nfs[-1], 10))

def tfm_x(f): return BatchTransformCB(lambda b: (f(b[0]), *b[1:]), on_val=False)

def settings(n_batches):
    sched = partial(lr_scheduler.OneCycleLR, max_lr=1e-2, total_steps=100*n_batches)
    crop_flip = fc.compose(partial(rand_crop, pad=1), rand_flip)
    return {'base': [], 'ActivationStats': [ActivationStats(fc.risinstance(GeneralRelu))],
            'BatchTransformCB (normalise)': [BatchTransformCB(lambda b: ((b[0]-0.28)/0.35, *b[1:]))],
            'BatchSchedCB + RecorderCB': [BatchSchedCB(sched), RecorderCB(lr=lambda cb: cb.pg['lr'])],
            'crop + flip': [tfm_x(crop_flip)], 'crop + flip + erase': [tfm_x(fc.compose(crop_flip, RandErase()))],
            'crop + flip + copy': [tfm_x(fc.compose(crop_flip, RandCopy()))]}

def dls(smoke, n, bs):
    if smoke: x, y = torch.rand(n, 1, 28, 28), torch.randint(0, 10, (n,))
    else:
        from datasets import load_dataset
        d = DataLoaders.from_tensorized(load_dataset(str(data)), bs)
        x, y = d.train.dataset.x[:n], d.train.dataset.y[:n]
    return DataLoaders(torch.utils.data.DataLoader(Dataset(x, y), bs, shuffle=True), torch.utils.data.DataLoader(Dataset(x[:n//5], y[:n//5]), 2*bs))

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--smoke', action='store_true', help='random images, one epoch each, no timing: does every setting run?')
    p.add_argument('--epochs', type=int, default=3, help='epochs per setting')
    p.add_argument('--n', type=int, default=5000, help='training images')
    p.add_argument('--bs', type=int, default=256, help='training batch size')
    a = p.parse_args()
    torch.set_num_threads(1)
    epochs, n = (1, 256) if a.smoke else (a.epochs, a.n)
    d = dls(a.smoke, n, a.bs)
    learns = {}
    for k,cbs in settings(len(d.train)).items():
        torch.manual_seed(0)
        learns[k] = TrainLearner(model(), d, F.cross_entropy, lr=1e-2, cbs=[DeviceCB(), MetricsCB(Accuracy()), *cbs], opt_func=optim.AdamW)
    times = {k: [] for k in learns}
    for epoch in range(epochs):
        for k in (list(learns) if epoch%2==0 else list(learns)[::-1]):
            t = time.perf_counter()
            learns[k].fit(1)
            times[k].append(time.perf_counter()-t)
    if a.smoke: return print('every setting ran:', ', '.join(learns))
    base = statistics.median(times['base'])
    print(f"\nseconds per epoch ({n} training images, batch size {a.bs}, one thread), median of {epochs}, and the ratio to the base:")
    for k,ts in times.items(): print(f"  {k:30} {statistics.median(ts):6.2f} s  {statistics.median(ts)/base:.3f}x")

if __name__ == '__main__': main()
