#!/usr/bin/env python3
"""Writes the two small tables of neurite's CSV tests from the files scikit-learn's wheel
ships (`sklearn/datasets/data/`), as plain CSV with a real header row:

- tests/data/iris.csv: 150 rows, 4 numeric features, `species` named (setosa, versicolor,
  virginica). The shipped file's first line holds counts and class names, not column names.
- tests/data/diabetes.csv: 442 rows, the 10 raw (unscaled) features and the disease
  progression `target` (Efron et al. 2004), from `diabetes_data_raw.csv.gz` and
  `diabetes_target.csv.gz`.

Values are copied as the shipped files write them (no float reformatting), except the
diabetes target, written as the integer it is.

    /work/venv/bin/python bench/sklearn/make_tables.py [--out tests/data]
"""
import argparse
import gzip
import os

import sklearn


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/data")
    args = ap.parse_args()
    src = os.path.join(os.path.dirname(sklearn.__file__), "datasets", "data")

    with open(os.path.join(src, "iris.csv")) as f:
        first = f.readline().strip().split(",")
        names = first[2:]
        rows = [line.strip().split(",") for line in f if line.strip()]
    with open(os.path.join(args.out, "iris.csv"), "w") as f:
        f.write("sepal_length,sepal_width,petal_length,petal_width,species\n")
        for r in rows:
            f.write(",".join(r[:4] + [names[int(r[4])]]) + "\n")

    with gzip.open(os.path.join(src, "diabetes_data_raw.csv.gz"), "rt") as f:
        xs = [line.split() for line in f if line.strip()]
    with gzip.open(os.path.join(src, "diabetes_target.csv.gz"), "rt") as f:
        ys = [float(line) for line in f if line.strip()]
    assert len(xs) == len(ys) == 442
    cols = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6", "target"]
    with open(os.path.join(args.out, "diabetes.csv"), "w") as f:
        f.write(",".join(cols) + "\n")
        for x, y in zip(xs, ys):
            assert y == int(y)
            f.write(",".join(x + [str(int(y))]) + "\n")


if __name__ == "__main__":
    main()
