"""A CNN of one's own on Fashion-MNIST, in PyTorch: neurite's examples/custom_cnn.rs.

An nn.Module with LeNet-5's layers and a hand-written forward, a hand-written training loop
(zero_grad, forward, cross_entropy, backward, step), test accuracy, a checkpoint saved and
loaded back, and inference timed (batch 1000 over the test set, median of --rounds) in
eval mode without autograd.

    bench/pytorch/.venv/bin/python bench/pytorch/examples/custom_cnn.py --limit-train 2000 --epochs 1
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from data import FashionMNIST  # noqa: E402


class Cnn(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, classes)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))  # [N, 6, 14, 14]
        x = self.pool(F.relu(self.conv2(x)))  # [N, 16, 5, 5]
        x = x.flatten(1)  # [N, 400]
        x = F.relu(self.fc1(x))  # [N, 120]
        x = F.relu(self.fc2(x))  # [N, 84]
        return self.fc3(x)  # [N, classes]


def accuracy(model, x, y):
    with torch.no_grad():
        correct = sum((model(xb).argmax(1) == yb).sum().item() for xb, yb in zip(x.split(1000), y.split(1000)))
    return correct / len(y)


def images_per_second(model, x):
    started = time.perf_counter()
    with torch.no_grad():
        for xb in x.split(1000):
            model(xb)
    return len(x) / (time.perf_counter() - started)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--limit-train", type=int)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--data")
    p.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "torch-custom-cnn"))
    a = p.parse_args()

    torch.manual_seed(a.seed)
    data = FashionMNIST(a.data, limit_train=a.limit_train)
    model = Cnn()
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0.9)
    for epoch in range(a.epochs):
        model.train()
        started = time.perf_counter()
        order = torch.randperm(len(data.train_y))
        loss_sum = 0.0
        for i in range(0, len(order), a.batch_size):
            idx = order[i : i + a.batch_size]
            x, y = data.train_x[idx], data.train_y[idx]  # [B, 1, 28, 28], [B]
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(y)
        model.eval()
        acc = accuracy(model, data.test_x, data.test_y)
        seen = len(order)
        print(f"epoch {epoch + 1}/{a.epochs}: train loss {loss_sum / seen:.4f}, test accuracy "
              f"{100 * acc:.2f}%, {seen / (time.perf_counter() - started):.0f} img/s")

    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, "model.pt")
    torch.save(model.state_dict(), path)
    loaded = Cnn()
    loaded.load_state_dict(torch.load(path))
    loaded.eval()
    print(f"checkpoint {path}: test accuracy {100 * accuracy(loaded, data.test_x, data.test_y):.2f}% after loading")

    images_per_second(loaded, data.test_x)  # warm-up
    rates = [images_per_second(loaded, data.test_x) for _ in range(a.rounds)]
    print(f"inference on {len(data.test_y)} test images, batch 1000, median of {a.rounds}: "
          f"{statistics.median(rates):.0f} img/s")


if __name__ == "__main__":
    main()
