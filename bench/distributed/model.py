"""The communication model of docs/distributed.md, calibrated on measurements.

    mpirun -np 2 neurite bench allreduce --threads 1 --json > allreduce.jsonl
    python3 bench/distributed/model.py allreduce.jsonl --rates W1=R1,W3=R3,W4=R4 \
        [--measured W1=E1,W3=E3,W4=E4]

RATES are the 1-rank, 1-thread throughputs (`neurite bench W1 --threads 1`), in images/s
(W1, W3) or tokens/s (W4). The all-reduce times of 2 ranks give a latency and a bandwidth:
a ring all-reduce of S bytes over N ranks takes 2(N-1) steps of S/N bytes each way,

    t(S, N) = 2 (N-1) alpha + 2 (N-1)/N * S / W

so with N = 2: t = 2 alpha + S / W. alpha is half the time of the smallest message (1 KB:
latency only); W is the least-squares slope, through that intercept, of the points from 256
KB to 4 MB (larger buffers leave the caches of this machine: no link behaves like that). The model then predicts, without overlap (the conservative case: every byte's
time added to the step),

- the 2-rank efficiency on this machine, rate(2) / (2 rate(1)) = t1 / (t1 + 2 t_ar), where
  t1 is the 1-rank step of the global batch (each rank computes half of it);
- the weak-scaling efficiency at 8, 64 and 256 ranks (each rank keeps the spec's batch, the
  global batch grows with N) on 10 and 100 Gb/s links with a per-message latency of
  --link-latency-us (default 20 us, a typical TCP over Ethernet figure; an assumption, not
  a measurement): t1 / (t1 + t_ar(S, N)).

Prints a markdown table of each.
"""

import argparse
import json

# Parameters of each workload's model (f32 gradients: 4 bytes each) and its batch.
WORKLOADS = {
    "W1": ("mlp", 535_818, 128),
    "W3": ("resnet20", 272_186, 128),
    "W4": ("gpt", 842_496, 16 * 128),
}


def fit(points):
    """alpha from the smallest message, W from the mid sizes (see the module's text)."""
    smallest = min(points)
    alpha = smallest[1] / 2
    mid = [(s, t - 2 * alpha) for s, t in points if 256 << 10 <= s <= 4 << 20]
    bw = sum(s * s for s, _ in mid) / sum(s * t for s, t in mid)
    return alpha, bw


def parse_pairs(text):
    return {k: float(v) for k, v in (p.split("=") for p in text.split(","))} if text else {}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("allreduce", help="JSON lines of `neurite bench allreduce --json` on 2 ranks")
    p.add_argument("--rates", required=True, help="W1=..,W3=..,W4=..: 1-rank 1-thread rates")
    p.add_argument("--measured", default="", help="W1=..,W3=..,W4=..: measured 2-rank efficiencies")
    p.add_argument("--link-latency-us", type=float, default=20.0)
    a = p.parse_args()
    points = []
    for line in open(a.allreduce):
        m = json.loads(line)
        kb = int(m["what"].split()[2])
        points.append((kb * 1024, m["value"] * 1e-6))
    alpha, bw = fit(points)
    print(f"calibration (2 ranks): alpha {alpha * 1e6:.1f} us per message, W {bw / 1e9:.2f} GB/s")
    for s, t in points:
        print(f"  {s // 1024:>6} KB: measured {t * 1e6:9.1f} us, model {(2 * alpha + s / bw) * 1e6:9.1f} us")
    rates = parse_pairs(a.rates)
    measured = parse_pairs(a.measured)
    print()
    print("| workload | gradient bytes | 1-rank step (1 thread) | all-reduce (model) | "
          "2-rank efficiency, model | measured |")
    print("|---|---|---|---|---|---|")
    for wid, (name, params, batch) in WORKLOADS.items():
        if wid not in rates:
            continue
        size = 4 * params
        t1 = batch / rates[wid]
        t_ar = 2 * alpha + size / bw
        eff = t1 / (t1 + 2 * t_ar)
        seen = f"{measured[wid]:.2f}" if wid in measured else "-"
        print(f"| {wid} {name} | {size / 1e6:.2f} MB | {t1 * 1e3:.1f} ms | {t_ar * 1e3:.2f} ms | "
              f"{eff:.2f} | {seen} |")
    print()
    lat = a.link_latency_us * 1e-6
    header = "| workload | link | " + " | ".join(f"{n} ranks" for n in (8, 64, 256)) + " |"
    print(header)
    print("|---|---|---|---|---|")
    for wid, (name, params, batch) in WORKLOADS.items():
        if wid not in rates:
            continue
        size = 4 * params
        t1 = batch / rates[wid]
        for gbps in (10, 100):
            link = gbps * 1e9 / 8
            cells = []
            for n in (8, 64, 256):
                t_ar = 2 * (n - 1) * lat + 2 * (n - 1) / n * size / link
                cells.append(f"{t1 / (t1 + t_ar):.2f}")
            print(f"| {wid} {name} | {gbps} Gb/s | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
