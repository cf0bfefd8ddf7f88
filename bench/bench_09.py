"""Lesson 09's `Learner` against a hand-written loop doing the same work: lesson 07's CNN and the lesson's MLP.

    python bench/bench_09.py            # Fashion-MNIST from nbs/fashion_mnist (see tools/seed_data.py)
    python bench/bench_09.py --smoke    # random images, two epochs: checks that both loops train alike; no timing
    python bench/bench_09.py --only mlp # the MLP alone (or: --only cnn)

Each epoch trains on the 60,000 training images and then evaluates on the 10,000 validation images, with the loss
(weighted by batch size) and the accuracy of both parts summed on the device and turned into numbers once per epoch,
and printed. The Learner runs with `TrainCB`, `DeviceCB`, `MetricsCB(Accuracy())` and `ProgressCB`; the hand loop is
the code those callbacks stand for. Both start from the same weights and see the same batches, with plain SGD, so
they end with the same weights (checked). They alternate epoch by epoch (the Learner keeps one optimizer across its
one-epoch fits, as the hand loop does), so that load from other processes hits both alike. PyTorch runs on one
thread: on two cores shared with other processes, two threads make small convolutions run hundreds of times slower
at random moments. Each epoch's wall-clock time and CPU time (of this process, which is all the work here) are
measured; CPU time is what other processes on a shared machine disturb least. One run; only the ratios mean much.
"""
import argparse, statistics, time
from pathlib import Path
import torch
import torch.nn.functional as F
from torch import nn, optim
from miniai.training import Dataset, accuracy
from miniai.datasets import DataLoaders
from miniai.conv import conv, def_device, to_device
from miniai.learner import Learner, TrainCB, DeviceCB, MetricsCB, ProgressCB, Accuracy

data = Path(__file__).resolve().parent.parent/'nbs'/'fashion_mnist'

def mlp(): return nn.Sequential(nn.Linear(784, 50), nn.ReLU(), nn.Linear(50, 10))
def cnn(): return nn.Sequential(conv(1,4), conv(4,8), conv(8,16), conv(16,16), conv(16,10, act=False), nn.Flatten())

def hand_epoch(model, opt, dls, device=def_device):
    "One epoch by hand: train, then validate without gradients, summing loss and accuracy on the device."
    for train,dl in ((True, dls.train), (False, dls.valid)):
        model.train(train)
        n,tot_loss,tot_acc = 0,0.,0.
        with torch.set_grad_enabled(train):
            for xb,yb in dl:
                xb,yb = to_device((xb, yb), device)
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
        print(f"hand: {'train' if train else 'eval'}, loss {float(tot_loss/n):.4f}, accuracy {float(tot_acc/n):.4f}")

def compare(name, get_model, dls, lr, epochs, seed=1):
    "Time `epochs` epochs of each loop, alternating: wall-clock and CPU times, and whether the final weights agree."
    torch.manual_seed(seed)
    model = get_model().to(def_device)
    opt = optim.SGD(model.parameters(), lr)
    torch.manual_seed(seed)
    cbs = [TrainCB(), DeviceCB(), MetricsCB(Accuracy()), ProgressCB()]
    learn = Learner(get_model(), dls, F.cross_entropy, lr, cbs, opt_func=None)
    learn.opt = optim.SGD(learn.model.parameters(), lr)   # one optimizer across the one-epoch fits, as the hand loop has
    rng = dict(hand=torch.get_rng_state(), learn=torch.get_rng_state())
    times = {(side, clock): [] for side in ('hand', 'learn') for clock in ('wall', 'cpu')}
    def run(side):
        torch.set_rng_state(rng[side])
        t, c = time.perf_counter(), time.process_time()
        if side=='hand': hand_epoch(model, opt, dls)
        else: learn.fit(1)
        times[side, 'wall'].append(time.perf_counter()-t)
        times[side, 'cpu'].append(time.process_time()-c)
        rng[side] = torch.get_rng_state()
    for epoch in range(epochs):
        for side in (('hand', 'learn') if epoch%2==0 else ('learn', 'hand')): run(side)
    same = all(torch.allclose(a, b, atol=1e-6) for a,b in zip(model.parameters(), learn.model.parameters()))
    return times, same

def fashion_dls(bs, flat):
    from datasets import load_dataset
    return DataLoaders.from_tensorized(load_dataset(str(data)), bs, flat=flat)

def random_dls(bs, flat, n=512):
    x, y = torch.rand(n, 1, 28, 28), torch.randint(0, 10, (n,))
    ds = Dataset(x.flatten(1) if flat else x, y)
    return DataLoaders(torch.utils.data.DataLoader(ds, bs, shuffle=True), torch.utils.data.DataLoader(ds, 2*bs))

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--smoke', action='store_true', help='random images, two epochs, no timing: do both loops train alike?')
    p.add_argument('--epochs', type=int, default=0, help='epochs per loop and model (default: 12 for the MLP, 6 for the CNN)')
    p.add_argument('--bs', type=int, default=0,
                   help="training batch size (validation: twice as many); default: each lesson's, 1024 for the MLP, 256 for the CNN")
    p.add_argument('--only', choices=['mlp', 'cnn'], help='time one of the two models only')
    a = p.parse_args()
    torch.set_num_threads(1)
    get_dls = random_dls if a.smoke else fashion_dls
    print(f"{'random images' if a.smoke else 'Fashion-MNIST'}, SGD, "
          f"device {def_device}, torch threads {torch.get_num_threads()}, one run")
    res = {}
    for name,get_model,flat,lr,epochs,bs in (('MLP 784-50-10', mlp, True, 0.2, 12, 1024),
                                             ("lesson 07's CNN", cnn, False, 0.1, 6, 256)):
        if a.only and a.only!=get_model.__name__: continue
        epochs, bs = 2 if a.smoke else a.epochs or epochs, a.bs or bs
        print(f"\n{name}, lr {lr}, batch size {bs}, {epochs} epochs per loop")
        res[name] = compare(name, get_model, get_dls(bs, flat), lr, epochs)
    print('\nseconds per epoch (train + validation), Learner / hand loop:')
    for name,(times,same) in res.items():
        print(f"{name}: same final weights: {'yes' if same else 'NO'}")
        if a.smoke: continue
        for clock in ('wall', 'cpu'):
            h, l = times['hand', clock], times['learn', clock]
            ratio, med = sum(l)/sum(h), statistics.median(l)/statistics.median(h)
            print(f"  {clock:4} s: hand {' '.join(f'{t:.2f}' for t in h)}; Learner {' '.join(f'{t:.2f}' for t in l)}")
            print(f"          ratio {ratio:.3f}x on the mean, {med:.3f}x on the median, {min(l)/min(h):.3f}x on the best epoch "
                  f"(target <= 1.02x on the mean, median of three runs: {'met' if ratio<=1.02 else 'above'} in this one)")

if __name__ == '__main__': main()
