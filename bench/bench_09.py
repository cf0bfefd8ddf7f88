"""Lesson 07's `Learner` against a hand-written loop doing the same work, on Fashion-MNIST.

    python bench/bench_09.py            # Fashion-MNIST from nbs/fashion_mnist (see tools/seed_data.py)

Both train the notebook's MLP (784-256-64-10) with AdamW, lr 2e-3, batch size 256, on lesson 05's
fast-path loaders, from the same seed, so they see the same batches and end with the same weights.
Each epoch trains on the 60,000 training images and then evaluates on the 10,000 validation images,
with the loss (weighted by batch size) and the accuracy of both parts turned into numbers once per
epoch and printed. The Learner runs with `TrainCB`, `DeviceCB`, `MetricsCB(accuracy)` and
`ProgressCB`; the hand loop is the code those callbacks stand for. The loops alternate, epoch by
epoch, so that load from other processes hits both alike (the Learner keeps one AdamW across its
one-epoch fits, as the hand loop does). PyTorch runs on one thread: with two threads on two cores
shared with other processes, an epoch swings between 1 and 40 s. One run; only the ratio means much.
"""
import time
from pathlib import Path
import torch
import torch.nn.functional as F
from torch import nn, optim
from datasets import load_dataset
from miniai.training import accuracy
from miniai.datasets import DataLoaders
from miniai.learner import Learner, TrainCB, DeviceCB, MetricsCB, ProgressCB, def_device, to_device

data = Path(__file__).resolve().parent.parent/'nbs'/'fashion_mnist'

def get_model(): return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 64), nn.ReLU(), nn.Linear(64, 10))

def hand_epoch(model, opt, dls, device=def_device):
    "One epoch by hand: train, then validate, accumulating loss and accuracy on the device; returns the two lines of numbers."
    res = []
    for train, dl in ((True, dls.train), (False, dls.valid)):
        model.train(train)
        n, tot_loss, tot_acc = 0, 0., 0.
        with torch.set_grad_enabled(train):
            for xb,yb in dl:
                xb, yb = to_device((xb, yb), device)
                preds = model(xb)
                loss = F.cross_entropy(preds, yb)
                if train:
                    loss.backward()
                    opt.step()
                    opt.zero_grad()
                k = len(yb)
                n += k
                tot_loss = tot_loss + loss.detach()*k
                tot_acc = tot_acc + accuracy(preds.detach(), yb)*k
        res.append((float(tot_loss/n), float(tot_acc/n)))
        print(f"hand: {'train' if train else 'eval'}, loss {res[-1][0]:.4f}, accuracy {res[-1][1]:.4f}")
    return res

def main(epochs=4, bs=256, lr=2e-3, seed=1, threads=1):
    torch.set_num_threads(threads)
    dls = DataLoaders.from_tensorized(load_dataset(str(data)), bs, flat=True)
    print(f"Fashion-MNIST, MLP 784-256-64-10, AdamW lr={lr}, batch size {bs}, {epochs} epochs each, device {def_device}, torch threads {threads}, one run")
    torch.manual_seed(seed)
    model = get_model().to(def_device)
    opt = optim.AdamW(model.parameters(), lr)
    torch.manual_seed(seed)
    learn = Learner(get_model(), dls, F.cross_entropy, lr, [TrainCB(), DeviceCB(), MetricsCB(accuracy), ProgressCB()])
    learn_opt = optim.AdamW(learn.model.parameters(), lr)
    learn.opt_func = lambda params, lr: learn_opt   # one optimizer across the fits, as the hand loop keeps its own
    rng = {'hand': torch.get_rng_state(), 'learn': torch.get_rng_state()}
    times = {'hand': [], 'learn': []}
    def run(name):
        torch.set_rng_state(rng[name])
        t = time.perf_counter()
        if name=='hand': hand_epoch(model, opt, dls)
        else: learn.fit(1)
        times[name].append(time.perf_counter()-t)
        rng[name] = torch.get_rng_state()
    for epoch in range(epochs):
        for name in (('hand', 'learn') if epoch%2==0 else ('learn', 'hand')): run(name)
    same = all(torch.equal(a, b) for a,b in zip(model.state_dict().values(), learn.model.state_dict().values()))
    print(f"same final weights: {'yes' if same else 'NO'}")
    for name, label in (('hand', 'hand-written loop'), ('learn', 'Learner.fit')):
        ts = times[name]
        print(f"{label:18}: " + ', '.join(f'{t:.2f}' for t in ts) + f" s per epoch; mean {sum(ts)/len(ts):.2f} s, best {min(ts):.2f} s")
    ratio_mean, ratio_best = sum(times['learn'])/sum(times['hand']), min(times['learn'])/min(times['hand'])
    print(f"ratio Learner/hand: {ratio_mean:.3f}x on the mean, {ratio_best:.3f}x on the best epoch (target <= 1.15x: {'met' if ratio_mean<=1.15 else 'MISSED'})")

if __name__ == '__main__': main()
