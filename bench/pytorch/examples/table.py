"""Training on a CSV table (examples/table.rs) in PyTorch: the same rows (the split that
`examples/table.rs --write-split FILE` wrote), the same standardization (training rows'
mean and population std; a regression's target too), the same MLP (two hidden layers of 64
ReLU units), Adam at 1e-2, batches of 32, 100 epochs; prints the test accuracy, or the
RMSE and MAE.

    cargo run --release --example table -- --write-split /tmp/iris.json
    python bench/pytorch/examples/table.py --data tests/data/iris.csv --target species \
        --split /tmp/iris.json
    python bench/pytorch/examples/table.py --data tests/data/diabetes.csv --target target \
        --split /tmp/diabetes.json --task regression
"""
import argparse
import csv
import json

import torch
import torch.nn as nn
import torch.nn.functional as F


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--split", required=True)
    p.add_argument("--task", choices=["classification", "regression"], default="classification")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.manual_seed(args.seed)

    with open(args.data, newline="") as f:
        rows = [r for r in csv.reader(f) if r]
    header, rows = rows[0], rows[1:]
    t = header.index(args.target)
    x = torch.tensor([[float(v) for i, v in enumerate(r) if i != t] for r in rows], dtype=torch.float64)
    split = json.load(open(args.split))
    tr, te = torch.tensor(split["train"]), torch.tensor(split["test"])
    mean, std = x[tr].mean(0), x[tr].std(0, unbiased=False)
    std[std == 0] = 1.0
    x = ((x - mean) / std).float()
    if args.task == "classification":
        names = sorted(set(r[t] for r in rows))
        y = torch.tensor([names.index(r[t]) for r in rows])
        outputs = len(names)
    else:
        y = torch.tensor([float(r[t]) for r in rows], dtype=torch.float64)
        y_mean, y_std = y[tr].mean(), y[tr].std(unbiased=False)
        y_scaled = ((y - y_mean) / y_std).float().unsqueeze(1)
        outputs = 1
    model = nn.Sequential(nn.Linear(x.shape[1], 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                          nn.Linear(64, outputs))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(args.epochs):
        for b in tr[torch.randperm(len(tr))].split(args.batch_size):
            out = model(x[b])
            loss = F.cross_entropy(out, y[b]) if outputs > 1 else F.mse_loss(out, y_scaled[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        out = model(x[te])
    if args.task == "classification":
        print(f"test accuracy {(out.argmax(1) == y[te]).float().mean().item():.4f}")
    else:
        d = out.squeeze(1).double() * y_std + y_mean - y[te]
        print(f"test RMSE {d.pow(2).mean().sqrt().item():.3f} MAE {d.abs().mean().item():.3f}")


if __name__ == "__main__":
    main()
