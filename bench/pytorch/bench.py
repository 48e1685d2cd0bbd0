"""PyTorch side of the spec's benchmark workloads W1-W7 (see docs/models.md).

    python bench.py [W1 W2 ... | all] [--threads N] [--repeats R] [--json]

Each training workload times steady-state steps (forward, backward, optimizer
update) on batches already in memory, after warm-up steps; the figure is the
median over `--repeats` timed runs of `steps` steps each. `--json` prints one
line per figure: {"id", "what", "value", "unit", "threads"} (the same fields as
`neurite bench --json`; W5's torch figure has the same `what` as neurite's).
"""

import argparse
import os
import sys
import time


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("workloads", nargs="*", default=["all"], help="W1..W7 or all (default all)")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="threads (default: all cores)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs; the median is reported")
    p.add_argument("--steps", type=int, default=None, help="steps per timed run (default per workload)")
    p.add_argument("--warmup", type=int, default=3, help="warm-up steps/runs before timing")
    p.add_argument("--json", action="store_true", help="one JSON line per figure instead of a table")
    p.add_argument("--data", default=None, help="Fashion-MNIST directory (default: as neurite finds it)")
    p.add_argument("--omp-wait", choices=["default", "passive", "active"], default="default",
                   help="OMP_WAIT_POLICY for PyTorch's OpenMP threads. `default` leaves it as found "
                        "(libgomp spins); `passive` sleeps at barriers, which is far faster when the "
                        "machine is shared with other busy processes")
    return p.parse_args(argv)


ARGS = parse_args()
# Thread counts must be set before numpy/torch load their BLAS and OpenMP runtimes.
for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)
if ARGS.omp_wait != "default":
    os.environ["OMP_WAIT_POLICY"] = ARGS.omp_wait.upper()

import json  # noqa: E402
import statistics  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from models import build  # noqa: E402

torch.set_num_threads(ARGS.threads)
torch.manual_seed(0)

TEXT_DIR = "/usr/share/games/fortunes"


def median_seconds(fn, repeats, warmup):
    """Median wall time of `fn()` over `repeats` runs after `warmup` untimed runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(max(1, repeats)):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


_DATA = None


def images():
    """Fashion-MNIST (train_x, train_y, test_x, test_y), or random tensors of the same shape if absent."""
    global _DATA
    if _DATA is None:
        try:
            from data import FashionMNIST

            ds = FashionMNIST(ARGS.data)
            _DATA = (ds.train_x, ds.train_y, ds.test_x, ds.test_y)
        except FileNotFoundError as e:
            print(f"note: {e}; timing on random images", file=sys.stderr)
            _DATA = (torch.randn(60000, 1, 28, 28), torch.randint(0, 10, (60000,)),
                     torch.randn(10000, 1, 28, 28), torch.randint(0, 10, (10000,)))
    return _DATA


def text_bytes():
    """The fortunes text as a uint8 tensor (random bytes if absent)."""
    try:
        names = sorted(n for n in os.listdir(TEXT_DIR) if "." not in n)
        data = b"".join(open(os.path.join(TEXT_DIR, n), "rb").read() for n in names
                        if os.path.isfile(os.path.join(TEXT_DIR, n)) and not os.path.islink(os.path.join(TEXT_DIR, n)))
        if data:
            return torch.frombuffer(bytearray(data), dtype=torch.uint8)
    except OSError:
        pass
    return torch.randint(0, 256, (1 << 20,), dtype=torch.uint8)


def image_train_step_workload(wid, model_name, batch, make_opt, steps):
    train_x, train_y, _, _ = images()
    model = build(model_name).train()
    opt = make_opt(model.parameters())
    # Pre-sliced batches cycled in order: data already in memory, no loader in the timing.
    nb = min(64, train_x.shape[0] // batch)
    batches = [(train_x[i * batch:(i + 1) * batch].contiguous(), train_y[i * batch:(i + 1) * batch].contiguous())
               for i in range(nb)]
    state = {"i": 0}

    def run():
        for _ in range(steps):
            x, y = batches[state["i"] % nb]
            state["i"] += 1
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()

    secs = median_seconds(run, ARGS.repeats, ARGS.warmup)
    return [(wid, f"{model_name} train step, batch {batch}", steps * batch / secs, "images/s")]


def sgd(lr, wd=0.0):
    return lambda params: torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=wd)


def w1():
    return image_train_step_workload("W1", "mlp", 128, sgd(0.01), ARGS.steps or 50)


def w2():
    return image_train_step_workload("W2", "lenet5", 64, sgd(0.01), ARGS.steps or 30)


def w3():
    return image_train_step_workload("W3", "resnet20", 128, sgd(0.1, 5e-4), ARGS.steps or 5)


def w4():
    text = text_bytes().long()
    model = build("gpt").train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1)
    B, T = 16, model.block_size
    g = torch.Generator().manual_seed(0)
    starts = torch.randint(0, text.numel() - T - 1, (64, B), generator=g)
    batches = [(torch.stack([text[s:s + T] for s in row]), torch.stack([text[s + 1:s + T + 1] for s in row]))
               for row in starts]
    steps = ARGS.steps or 5
    state = {"i": 0}

    def run():
        for _ in range(steps):
            x, y = batches[state["i"] % len(batches)]
            state["i"] += 1
            opt.zero_grad(set_to_none=True)
            _, loss = model(x, y)
            loss.backward()
            opt.step()

    secs = median_seconds(run, ARGS.repeats, ARGS.warmup)
    return [("W4", f"gpt train step, batch {B}x{T}", steps * B * T / secs, "tokens/s")]


def w5():
    out = []
    for m, k, n in [(1024, 1024, 1024), (128, 1024, 4096)]:
        a = torch.rand(m, k)
        b = torch.rand(k, n)
        c = torch.empty(m, n)
        flops = 2.0 * m * k * n
        reps = ARGS.steps or 10
        secs = median_seconds(lambda: [torch.matmul(a, b, out=c) for _ in range(reps)], ARGS.repeats, ARGS.warmup)
        out.append(("W5", f"sgemm {m}x{k}x{n}", flops * reps / secs / 1e9, "GFLOP/s"))
        an, bn = a.numpy(), b.numpy()
        cn = np.empty((m, n), dtype=np.float32)
        secs = median_seconds(lambda: [np.matmul(an, bn, out=cn) for _ in range(reps)], ARGS.repeats, ARGS.warmup)
        out.append(("W5", f"sgemm {m}x{k}x{n} numpy", flops * reps / secs / 1e9, "GFLOP/s"))
    return out


def w6():
    _, _, test_x, _ = images()
    out = []
    for name in ("lenet5", "resnet20"):
        model = build(name).eval()
        batch = 1000

        def run():
            with torch.no_grad():
                for i in range(0, test_x.shape[0], batch):
                    model(test_x[i:i + batch])

        secs = median_seconds(run, ARGS.repeats, max(1, ARGS.warmup // 2))
        out.append(("W6", f"{name} inference, batch {batch}", test_x.shape[0] / secs, "images/s"))
    return out


def w7():
    model = build("gpt").eval()
    new = 256
    out = []
    for use_cache, label in ((True, "kv cache"), (False, "no cache")):
        g = torch.Generator().manual_seed(0)
        prompt = torch.tensor([[ord("\n")]])
        secs = median_seconds(lambda: model.generate(prompt, new, use_cache=use_cache, generator=g),
                              ARGS.repeats, 1)
        out.append(("W7", f"gpt sampling {new} tokens, batch 1, {label}", new / secs, "tokens/s"))
    return out


WORKLOADS = {"W1": w1, "W2": w2, "W3": w3, "W4": w4, "W5": w5, "W6": w6, "W7": w7}


def main():
    ids = [w.upper() for w in ARGS.workloads]
    if "ALL" in ids:
        ids = list(WORKLOADS)
    unknown = [w for w in ids if w not in WORKLOADS]
    if unknown:
        print(f"unknown workload(s) {', '.join(unknown)}; available: {', '.join(WORKLOADS)}, all", file=sys.stderr)
        return 2
    for wid in ids:
        for id_, what, value, unit in WORKLOADS[wid]():
            if ARGS.json:
                print(json.dumps({"id": id_, "what": what, "value": round(value, 2), "unit": unit,
                                  "threads": ARGS.threads}), flush=True)
            else:
                print(f"{id_:<4} {what:<45} {value:>12.2f} {unit}  ({ARGS.threads} threads, torch {torch.__version__}, "
                      f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')})",
                      flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
