#!/usr/bin/env python3
"""scikit-learn on a CSV table, on exactly the rows neurite used: the reference side of
`examples/table.rs` (and of `neurite train mlp --data FILE.csv`).

The split is not re-implemented: neurite writes its training and test rows (0-based data
rows, header excluded) with `--write-split FILE`, and this script reads them. Preprocessing
as neurite's: every feature column but the target standardized with the training rows'
mean and population std (`StandardScaler`); a regression's target standardized for
training too (`TransformedTargetRegressor`), as the example does. Fits an MLP with the
example's recipe (two hidden layers of 64 ReLU units, Adam at 1e-2, batches of 32, 100
epochs) and a linear model (LogisticRegression / Ridge), and prints one JSON line each:
`accuracy` for a classification, `rmse` and `mae` for a regression, on the test rows.

    cargo run --release --example table -- --write-split /tmp/iris.json
    /work/venv/bin/python bench/sklearn/tables.py --data tests/data/iris.csv \
        --target species --split /tmp/iris.json
    cargo run --release --example table -- --data tests/data/diabetes.csv --target target \
        --write-split /tmp/diabetes.json
    /work/venv/bin/python bench/sklearn/tables.py --data tests/data/diabetes.csv \
        --target target --split /tmp/diabetes.json --task regression
"""
import argparse
import csv
import json
import warnings

import numpy as np
from sklearn.compose import TransformedTargetRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.preprocessing import StandardScaler


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--split", required=True, help="JSON {train: [...], test: [...]} from neurite")
    ap.add_argument("--task", choices=["classification", "regression"], default="classification")
    ap.add_argument("--drop", default="", help="comma-separated columns to drop")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    with open(args.data, newline="") as f:
        rows = list(csv.reader(f))
    header, rows = rows[0], [r for r in rows[1:] if r]
    drop = set(filter(None, args.drop.split(",")))
    t = header.index(args.target)
    cols = [i for i, h in enumerate(header) if i != t and h not in drop]
    x = np.array([[float(r[i]) for i in cols] for r in rows])
    y_text = [r[t].strip() for r in rows]
    split = json.load(open(args.split))
    tr, te = np.array(split["train"]), np.array(split["test"])
    scaler = StandardScaler().fit(x[tr])
    x_tr, x_te = scaler.transform(x[tr]), scaler.transform(x[te])
    warnings.simplefilter("ignore", ConvergenceWarning)
    mlp = dict(hidden_layer_sizes=(64, 64), learning_rate_init=1e-2, batch_size=32,
               max_iter=100, alpha=0.0, random_state=args.seed)
    base = dict(data=args.data, n_train=len(tr), n_test=len(te))
    if args.task == "classification":
        y = np.array(y_text)
        for name, model in [("MLPClassifier", MLPClassifier(**mlp)),
                            ("LogisticRegression", LogisticRegression(max_iter=1000))]:
            model.fit(x_tr, y[tr])
            acc = float((model.predict(x_te) == y[te]).mean())
            print(json.dumps(dict(base, model=name, accuracy=round(acc, 4))))
    else:
        y = np.array([float(v) for v in y_text])
        for name, model in [("MLPRegressor", MLPRegressor(**mlp)), ("Ridge", Ridge(alpha=1.0))]:
            model = TransformedTargetRegressor(regressor=model, transformer=StandardScaler())
            model.fit(x_tr, y[tr])
            d = model.predict(x_te) - y[te]
            print(json.dumps(dict(base, model=name, rmse=round(float(np.sqrt((d * d).mean())), 3),
                                  mae=round(float(np.abs(d).mean()), 3))))


if __name__ == "__main__":
    main()
