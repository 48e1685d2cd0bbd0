"""PyTorch counterpart of examples/loader.rs: a Dataset of one's own (points on two rings,
class = ring) through a DataLoader with two workers and a small MLP trained by hand; then
a table y = 3 x0 - 2 x1 + 1 trained as a regression with SGD, reporting RMSE and MAE.

    /work/venv/bin/python bench/pytorch/examples/loader.py [--samples N] [--epochs N]
"""
import argparse
import math

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset


def hash01(i, salt):
    """The same number in [0, 1) as the Rust example's `hash01`."""
    m = (1 << 64) - 1
    z = ((i + salt) * 0x9E3779B97F4A7C15) & m
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m
    z ^= z >> 31
    return (z >> 40) / float(1 << 24)


class Rings(Dataset):
    def __init__(self, n, salt):
        self.n, self.salt = n, salt

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        cls = i % 2
        angle = 2 * math.pi * hash01(i, self.salt)
        r = 1.0 + cls + 0.2 * (hash01(i, self.salt + 1) - 0.5)
        return torch.tensor([r * math.cos(angle), r * math.sin(angle)]), cls


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--epochs", type=int, default=20)
    a = p.parse_args()
    torch.manual_seed(0)

    loader = DataLoader(Rings(a.samples, 1), batch_size=32, shuffle=True, num_workers=2)
    model = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 2))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for epoch in range(a.epochs):
        loss_sum, seen = 0.0, 0
        for x, y in loader:
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(y)
            seen += len(y)
        if epoch + 1 == a.epochs or epoch % 5 == 0:
            print(f"rings epoch {epoch + 1}: train loss {loss_sum / seen:.4f}")
    correct = total = 0
    with torch.no_grad():
        for x, y in DataLoader(Rings(a.samples // 4, 2), batch_size=256):
            correct += (model(x).argmax(1) == y).sum().item()
            total += len(y)
    print(f"rings test accuracy {100 * correct / total:.2f}%")

    def table(n, salt):
        x = torch.tensor([2 * hash01(i, salt) - 1 for i in range(2 * n)]).reshape(n, 2)
        return x, 3 * x[:, 0] - 2 * x[:, 1] + 1

    (x, y), (tx, ty) = table(a.samples, 3), table(a.samples // 4, 4)
    linear = nn.Linear(2, 1)
    opt = torch.optim.SGD(linear.parameters(), lr=0.05, momentum=0.9)
    epochs = min(a.epochs, 10)
    for _ in range(epochs):
        for xb, yb in DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True):
            loss = nn.functional.mse_loss(linear(xb).reshape(-1), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        err = linear(tx).reshape(-1) - ty
    rmse, mae = err.pow(2).mean().sqrt().item(), err.abs().mean().item()
    print(f"table regression after {epochs} epochs: test RMSE {rmse:.4f}, MAE {mae:.4f}")


if __name__ == "__main__":
    main()
