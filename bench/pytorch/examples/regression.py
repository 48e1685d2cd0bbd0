"""Regression with the mean squared error on data made in Python: y = sin(x) + noise, an
MLP, Adam, a hand-written loop over shuffled mini-batches (examples/regression.rs).

    python bench/pytorch/examples/regression.py --epochs 100
"""
import argparse
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def make_data(n, noise):
    x = torch.rand(n, 1) * 2 * math.pi - math.pi
    return x, torch.sin(x) + torch.randn(n, 1) * noise


def mse(model, x, y):
    with torch.no_grad():
        return F.mse_loss(model(x), y).item()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--samples", type=int, default=1024)
    p.add_argument("--batch-size", type=int, default=64)
    args = p.parse_args()
    torch.manual_seed(0)
    x_train, y_train = make_data(args.samples, 0.1)
    x_test, y_test = make_data(args.samples // 4, 0.1)

    model = nn.Sequential(nn.Linear(1, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 1))
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)

    print("epoch  train MSE  test MSE")
    for epoch in range(1, args.epochs + 1):
        for rows in torch.randperm(args.samples).split(args.batch_size):
            loss = F.mse_loss(model(x_train[rows]), y_train[rows])
            opt.zero_grad()
            loss.backward()
            opt.step()
        if epoch == 1 or epoch % max(args.epochs // 10, 1) == 0 or epoch == args.epochs:
            print(f"{epoch:>5}  {mse(model, x_train, y_train):>9.5f}  {mse(model, x_test, y_test):>8.5f}")
    print(f"final test MSE {mse(model, x_test, y_test):.5f} (noise variance 0.01)")


if __name__ == "__main__":
    main()
