#!/usr/bin/env python3
"""scikit-learn's classical classifiers on Fashion-MNIST, with neurite's preprocessing.

The reference side of `neurite classic`: the same files, the same preprocessing
(pixels / 255, then the training set's single mean and population std over all pixels),
the same 10,000 test images. Prints one JSON object with `accuracy` and `fit_seconds`.

    /work/venv/bin/python bench/sklearn/classic.py --method perceptron
    /work/venv/bin/python bench/sklearn/classic.py --method linear-svc --c 0.01
    /work/venv/bin/python bench/sklearn/classic.py --method svc --limit-train 10000
"""
import argparse
import gzip
import json
import os
import time

import numpy as np

DATA = os.environ.get("NEURITE_DATA", "/usr/share/datasets/fashion-mnist")


def read_idx(path):
    """An idx file (gzip or plain) as a numpy array of its stored shape."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def find(data_dir, stem):
    for name in (stem + ".gz", stem):
        p = os.path.join(data_dir, name)
        if os.path.exists(p):
            return p
    raise FileNotFoundError(f"{stem}(.gz) not in {data_dir}")


def load(data_dir, limit_train):
    xs = read_idx(find(data_dir, "train-images-idx3-ubyte"))
    ys = read_idx(find(data_dir, "train-labels-idx1-ubyte"))
    xt = read_idx(find(data_dir, "t10k-images-idx3-ubyte"))
    yt = read_idx(find(data_dir, "t10k-labels-idx1-ubyte"))
    if limit_train:
        xs, ys = xs[:limit_train], ys[:limit_train]
    xs = xs.reshape(len(xs), -1).astype(np.float64) / 255.0
    xt = xt.reshape(len(xt), -1).astype(np.float64) / 255.0
    # One mean and std over all training pixels, as neurite's Normalization (1 channel).
    mean, std = xs.mean(), xs.std()
    std = std if std > 0 else 1.0
    xs = ((xs - mean) / std).astype(np.float32)
    xt = ((xt - mean) / std).astype(np.float32)
    return xs, ys.astype(np.int64), xt, yt.astype(np.int64)


def model(args):
    if args.method == "perceptron":
        from sklearn.linear_model import Perceptron

        return Perceptron(random_state=args.seed), {}
    if args.method == "linear-svc":
        from sklearn.svm import LinearSVC

        c = 1.0 if args.c is None else args.c
        # dual=True: liblinear's dual coordinate descent, the solver neurite mirrors.
        return (
            LinearSVC(C=c, loss=args.loss, dual=True, max_iter=args.max_iter, random_state=args.seed),
            {"C": c, "loss": args.loss, "max_iter": args.max_iter},
        )
    if args.method == "svc":
        from sklearn.svm import SVC

        c = 10.0 if args.c is None else args.c
        return (
            SVC(kernel="rbf", C=c, gamma="scale", cache_size=args.cache_mb),
            {"C": c, "gamma": "scale", "cache_mb": args.cache_mb},
        )
    raise SystemExit(f"unknown method {args.method}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", required=True, choices=["perceptron", "linear-svc", "svc"])
    ap.add_argument("--limit-train", type=int, default=None)
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--c", type=float, default=None, help="C (default 1 for linear-svc, 10 for svc)")
    ap.add_argument("--loss", default="squared_hinge", choices=["hinge", "squared_hinge"])
    ap.add_argument("--max-iter", type=int, default=1000)
    ap.add_argument("--cache-mb", type=float, default=600.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    xs, ys, xt, yt = load(args.data, args.limit_train)
    clf, params = model(args)
    start = time.perf_counter()
    clf.fit(xs, ys)
    fit_seconds = time.perf_counter() - start
    accuracy = float((clf.predict(xt) == yt).mean())
    import sklearn

    out = {
        "method": args.method,
        "sklearn": sklearn.__version__,
        "n_train": int(len(xs)),
        **params,
        "accuracy": round(accuracy, 6),
        "fit_seconds": round(fit_seconds, 3),
    }
    if hasattr(clf, "n_iter_"):
        out["n_iter"] = np.asarray(clf.n_iter_).max().item()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
