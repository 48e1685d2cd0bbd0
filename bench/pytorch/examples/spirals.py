"""Two interleaved spirals told apart by a small MLP, in PyTorch: the counterpart of
neurite's examples/spirals.rs (same data, model, optimizer and loop).

    python bench/pytorch/examples/spirals.py [--points N] [--steps S]
"""

import argparse
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def spirals(n, noise):
    r = torch.arange(n, dtype=torch.float32) / n
    xs, ys = [], []
    for c in range(2):
        angle = 1.75 * 2 * math.pi * r + c * math.pi
        xs.append(torch.stack([r * torch.cos(angle), r * torch.sin(angle)], dim=1))
        ys.append(torch.full((n,), c, dtype=torch.int64))
    x = torch.cat(xs)
    return x + noise * torch.randn_like(x), torch.cat(ys)


def accuracy(logits, labels):
    return (logits.argmax(1) == labels).float().mean().item()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--points", type=int, default=500)
    p.add_argument("--steps", type=int, default=600)
    args = p.parse_args()

    torch.manual_seed(0)
    x, y = spirals(args.points, 0.03)
    model = nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)

    for step in range(1, args.steps + 1):
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 100 == 0 or step == args.steps:
            print(f"step {step:4}  loss {loss.item():.4f}  accuracy {100 * accuracy(logits, y):.1f}%")
    with torch.no_grad():
        acc = accuracy(model(x), y)
    print(f"final accuracy {100 * acc:.1f}% on {2 * args.points} points")


if __name__ == "__main__":
    main()
