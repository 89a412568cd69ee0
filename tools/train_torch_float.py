#!/usr/bin/python3
"""Trains a zoo model's PyTorch twin in float on Fashion-MNIST with Lowbit's float recipe and
saves its state dict: the "float model trained in PyTorch" that `lowbit import` brings into a
quantized config (docs/pytorch-interop.md, scripts/converter-flow.sh).

    /usr/bin/python3 tools/train_torch_float.py --model lenet5 --epochs 10 -o lenet5_float.pt

Recipe (configs/lenet5_fmnist_fp32.yaml): SGD lr 0.05, momentum 0.9, weight decay 5e-4,
cosine annealing per step over all epochs, batch 128, inputs x/255 normalized with mean 0.2860
and std 0.3530, a seeded shuffle every epoch. The last line printed is `test_acc=<value>`.
Needs Debian's python3-torch, python3-h5py and python3-numpy (run with /usr/bin/python3).
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from torch_to_h5 import need_modules, parse_params  # noqa: E402

need_modules("train_torch_float.py")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import h5_to_torch as h  # noqa: E402
import torch_models  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="lenet5", help="zoo model name (tools/torch_models.py)")
    p.add_argument("--param", action="append", default=[], help="model parameter NAME=VALUE (repeatable)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default=h.FMNIST_DIR, help="Fashion-MNIST folder (IDX .gz files)")
    p.add_argument("-o", "--out", required=True, help="where to save the state dict (.pt)")
    a = p.parse_args()
    if a.epochs < 1 or a.batch < 1 or a.lr <= 0:
        sys.exit("train_torch_float.py: --epochs and --batch must be >= 1 and --lr > 0")
    params = parse_params(a.param, "train_torch_float.py")

    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    try:
        x, y = h.load_fashion_mnist(True, 0, a.data)
        tx, ty = h.load_fashion_mnist(False, 0, a.data)
    except (OSError, ValueError) as e:
        sys.exit(f"train_torch_float.py: cannot read Fashion-MNIST from {a.data}: {e} "
                 "(apt-get install dataset-fashion-mnist, or pass --data)")
    x = torch.from_numpy(h.normalize(x, 0.2860, 0.3530))
    tx = torch.from_numpy(h.normalize(tx, 0.2860, 0.3530))
    y, ty = torch.from_numpy(y), torch.from_numpy(ty)

    model = torch_models.build(a.model, **params)
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0.9, weight_decay=a.weight_decay)
    steps_per_epoch = (len(y) + a.batch - 1) // a.batch
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, a.epochs * steps_per_epoch)
    gen = torch.Generator().manual_seed(a.seed)
    acc = 0.0
    for epoch in range(1, a.epochs + 1):
        model.train()
        t0, total, n = time.time(), 0.0, 0
        perm = torch.randperm(len(y), generator=gen)
        for i in range(0, len(y), a.batch):
            idx = perm[i:i + a.batch]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
            n += len(idx)
        model.eval()
        with torch.no_grad():
            correct = sum(int((model(tx[i:i + 1000]).argmax(1) == ty[i:i + 1000]).sum()) for i in range(0, len(ty), 1000))
        acc = correct / len(ty)
        print(f"epoch {epoch} train_loss {total / n:.4f} test_acc {acc:.4f} ({time.time() - t0:.0f} s)", flush=True)
    torch.save(model.state_dict(), a.out)
    print(f"saved {a.out}")
    print(f"test_acc={acc:.4f}")


if __name__ == "__main__":
    main()
