"""Times the products of `neurite bench gemm --shapes ...` in PyTorch (same syntax).

    python bench/pytorch/gemm.py --threads 2 --shapes 2048x128x384/nt,384x2048x128/tn
"""
import argparse
import time

import torch


def operand(rows, cols, transposed):
    # Stored as [cols, rows] and used transposed, as neurite's Gemm reads it.
    return torch.rand(cols, rows).t() if transposed else torch.rand(rows, cols)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--shapes", default="1024x1024x1024")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=9)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    for text in args.shapes.split(","):
        dims, _, flags = text.partition("/")
        flags = flags or "nn"
        m, k, n = (int(v) for v in dims.split("x"))
        a = operand(m, k, flags[0] == "t")
        b = operand(k, n, flags[1] == "t")
        c = torch.empty(m, n)
        for _ in range(2):
            torch.mm(a, b, out=c)
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            torch.mm(a, b, out=c)
            times.append(time.perf_counter() - t)
        secs = sorted(times)[len(times) // 2]
        print(f"torch sgemm {text:<28} {2 * m * k * n / secs / 1e9:10.2f} GFLOP/s")


if __name__ == "__main__":
    main()
