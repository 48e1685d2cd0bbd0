"""Trains a PyTorch LeNet-5 briefly and saves it for examples/finetune.rs (PyTorch -> neurite).

    /work/venv/bin/python bench/pytorch/examples/export_lenet5.py OUT.safetensors \
        [--data DIR] [--images 5000] [--epochs 2] [--seed 0]

The model is bench/pytorch/models.py's LeNet5, whose parameter names are the spec's
(conv1.weight, ..., fc3.bias), so `model.state_dict()` loads strictly into neurite's zoo
`lenet5`. It trains on the first IMAGES Fashion-MNIST training images (SGD, lr 0.05, momentum
0.9), normalized as neurite normalizes them (the training set's mean and standard deviation,
saved as the file's `normalize.mean` / `normalize.std` metadata, as neurite's checkpoints).
"""

import argparse
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from data import FashionMNIST  # noqa: E402
from models import LeNet5  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--data", default=None)
    p.add_argument("--images", type=int, default=5000)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    from safetensors.torch import save_file

    torch.manual_seed(a.seed)
    ds = FashionMNIST(a.data, limit_train=a.images, limit_test=1)
    x, y = ds.train_x, ds.train_y
    model = LeNet5()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for _ in range(a.epochs):
        order = torch.randperm(len(x))
        for i in range(0, len(x), 128):
            idx = order[i : i + 128]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, a.out, metadata={"model": "lenet5", **ds.metadata()})
    print(f"wrote {a.out}: LeNet-5 after {a.epochs} epoch(s) on {len(x)} images, last loss {loss.item():.4f}")


if __name__ == "__main__":
    main()
