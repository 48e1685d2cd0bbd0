"""Computes the losses and float ops of issue 21 with torch on fixed inputs, with their
input gradients, and writes them to a JSON file that `tests/torch_ops.rs` compares neurite
with (so CI checks agreement with PyTorch without installing torch).

    python bench/pytorch/check_ops.py                      # writes tests/data/torch_ops.json
    python bench/pytorch/check_ops.py --out /tmp/ops.json

Each case: the op's name and arguments, its inputs (tensors as {"shape", "data"}), the
gradient `dout` given to backward (a fixed random tensor of the output's shape, or a
number for a scalar output), the output, and the gradient of every input that takes one.
Non-finite numbers are written as the strings "nan", "inf", "-inf" (JSON has none).
"""
import argparse
import json
import math
import os
import warnings

import torch
import torch.nn.functional as F

REDUCTIONS = ["mean", "sum", "none"]


def number(v):
    v = float(v)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    # Nine significant digits identify an f32 exactly, and keep the file small.
    return float("%.9g" % v)


def tensor(t):
    t = t.detach().to(torch.float32)
    return {"shape": list(t.shape), "data": [number(v) for v in t.flatten().tolist()]}


def leaf(values):
    return torch.tensor(values, dtype=torch.float32).requires_grad_()


def case(name, op, fn, inputs, args=None, differentiable=None, seed=0):
    """Runs `fn(**inputs)` forward and backward; `differentiable` names the inputs whose
    gradients are recorded (all by default)."""
    differentiable = list(inputs) if differentiable is None else differentiable
    for key, t in inputs.items():
        t.requires_grad_(key in differentiable)
    out = fn(**inputs)
    g = torch.Generator().manual_seed(1000 + seed)
    dout = torch.randn(out.shape, generator=g) if out.dim() > 0 else torch.tensor(0.7)
    out.backward(dout)
    return {
        "name": name,
        "op": op,
        "args": args or {},
        "inputs": {k: tensor(t) for k, t in inputs.items()},
        "dout": tensor(dout),
        "output": tensor(out),
        "grads": {k: tensor(inputs[k].grad) for k in differentiable},
    }


def randn(*shape, scale=1.0):
    return (torch.randn(*shape) * scale).requires_grad_()


def elementwise_cases():
    torch.manual_seed(0)
    cases = []
    x = torch.cat([torch.randn(10) * 2.0, torch.tensor([0.0, -0.0, 0.5, -0.5, 1e-8])])
    for op, fn in [("sin", torch.sin), ("cos", torch.cos), ("abs", torch.abs), ("expm1", torch.expm1)]:
        cases.append(case(op, op, lambda input, fn=fn: fn(input), {"input": x.clone()}))
    cases.append(case("log1p", "log1p", torch.log1p, {"input": x.abs().clone() - 0.4}))
    # Values exactly at the bounds, inside, outside.
    b = torch.tensor([-2.0, -0.5, -0.2, 0.0, 0.3, 0.5, 0.7, 3.0])
    for name, lo, hi in [("clamp", -0.5, 0.5), ("clamp_min", -0.5, None), ("clamp_max", None, 0.5), ("clamp/min>max", 0.5, -0.5)]:
        cases.append(case(name, "clamp", lambda input, lo=lo, hi=hi: torch.clamp(input, lo, hi), {"input": b.clone()}, {"min": lo, "max": hi}))
    # Ties in half the positions, and a broadcast operand.
    a = torch.tensor([[1.0, 2.0, 3.0, 4.0], [0.5, -1.0, 2.0, 0.0]])
    c = torch.tensor([[1.0, 3.0, 3.0, 0.0], [0.5, 1.0, -2.0, 0.0]])
    row = torch.tensor([2.0, 2.0, 0.0, 1.0])
    for op, fn in [("minimum", torch.minimum), ("maximum", torch.maximum)]:
        cases.append(case(op, op, lambda input, other, fn=fn: fn(input, other), {"input": a.clone(), "other": c.clone()}))
        cases.append(case(op + "/broadcast", op, lambda input, other, fn=fn: fn(input, other), {"input": a.clone(), "other": row.clone()}))
    for dim in [0, 1, 2]:
        parts = {"a": torch.randn(2, 3), "b": torch.randn(2, 3), "c": torch.randn(2, 3)}
        cases.append(case(f"stack/dim{dim}", "stack", lambda a, b, c, dim=dim: torch.stack([a, b, c], dim), parts, {"dim": dim}))
    return cases


def loss_cases():
    torch.manual_seed(1)
    cases = []
    x, y = torch.randn(3, 4), torch.randn(3, 4)
    y[0, 0] = x[0, 0]  # a zero difference: the L1 kink
    x[1, 1], y[1, 1] = 0.75, 0.25  # |d| exactly beta / delta = 0.5
    for r in REDUCTIONS:
        pair = lambda: {"input": x.clone(), "target": y.clone()}
        cases.append(case(f"mse_loss/{r}", "mse_loss", lambda input, target: F.mse_loss(input, target, reduction=r), pair(), {"reduction": r}))
        cases.append(case(f"l1_loss/{r}", "l1_loss", lambda input, target: F.l1_loss(input, target, reduction=r), pair(), {"reduction": r}))
        for beta in [0.5, 0.0]:
            cases.append(case(f"smooth_l1_loss/{r}/beta{beta}", "smooth_l1_loss", lambda input, target: F.smooth_l1_loss(input, target, reduction=r, beta=beta), pair(), {"reduction": r, "beta": beta}))
        cases.append(case(f"huber_loss/{r}", "huber_loss", lambda input, target: F.huber_loss(input, target, reduction=r, delta=0.5), pair(), {"reduction": r, "delta": 0.5}))

    p = torch.rand(3, 4) * 0.9 + 0.05
    p[0, 0], p[0, 1] = 0.0, 1.0  # the logs clamped at -100
    t = torch.rand(3, 4)
    t[0, 0], t[0, 1] = 1.0, 0.0
    w = torch.rand(4) + 0.5
    for r in REDUCTIONS:
        for weighted in [False, True]:
            args = {"reduction": r}
            if weighted:
                args["weight"] = tensor(w)
            # The target gradient is infinite where p is 0 or 1: only the input's is compared.
            cases.append(case(f"binary_cross_entropy/{r}/w{int(weighted)}", "binary_cross_entropy",
                              lambda input, target: F.binary_cross_entropy(input, target, weight=w if weighted else None, reduction=r),
                              {"input": p.clone(), "target": t.clone()}, args, ["input"]))
        inner = torch.rand(3, 4)
        cases.append(case(f"binary_cross_entropy/{r}/target_grad", "binary_cross_entropy",
                          lambda input, target: F.binary_cross_entropy(input, target, reduction=r),
                          {"input": inner * 0.8 + 0.1, "target": t.clone()}, {"reduction": r}))

    logits = torch.randn(3, 4) * 3.0
    logits[0, 0], logits[0, 1] = 60.0, -60.0
    pos_weight = torch.rand(4) * 2.0 + 0.5
    ew = torch.rand(3, 1) + 0.5
    for r in REDUCTIONS:
        for weight, pw in [(None, None), (ew, None), (None, pos_weight), (ew, pos_weight)]:
            args = {"reduction": r}
            if weight is not None:
                args["weight"] = tensor(weight)
            if pw is not None:
                args["pos_weight"] = tensor(pw)
            cases.append(case(f"bce_with_logits/{r}/w{int(weight is not None)}/pw{int(pw is not None)}", "binary_cross_entropy_with_logits",
                              lambda input, target: F.binary_cross_entropy_with_logits(input, target, weight=weight, pos_weight=pw, reduction=r),
                              {"input": logits.clone(), "target": t.clone()}, args))

    logp = torch.randn(3, 4).log_softmax(-1)
    q = torch.rand(3, 4).softmax(-1)
    for r in ["mean", "sum", "none"]:
        cases.append(case(f"kl_div/{r}", "kl_div", lambda input, target: F.kl_div(input, target, reduction=r), {"input": logp.clone(), "target": q.clone()}, {"reduction": r, "log_target": False}))
        cases.append(case(f"kl_div/{r}/log_target", "kl_div", lambda input, target: F.kl_div(input, target, reduction=r, log_target=True), {"input": logp.clone(), "target": q.log()}, {"reduction": r, "log_target": True}))
    return cases


def class_cases():
    torch.manual_seed(2)
    cases = []
    n, c = 6, 5
    logits = torch.randn(n, c) * 2.0
    targets = [0, 4, 2, 2, 1, 3]
    weight = torch.rand(c) * 2.0 + 0.2
    with_ignored = [0, 4, -100, 2, 1, -100]
    for r in REDUCTIONS:
        for w in [None, weight]:
            for tg, ignore in [(targets, None), (with_ignored, -100), (targets, 2)]:
                args = {"reduction": r, "targets": tg}
                if w is not None:
                    args["weight"] = tensor(w)
                if ignore is not None:
                    args["ignore_index"] = ignore
                kw = {"weight": w, "reduction": r, "ignore_index": -100 if ignore is None else ignore}
                tail = f"{r}/w{int(w is not None)}/ignore{ignore}"
                cases.append(case(f"nll_loss/{tail}", "nll_loss",
                                  lambda input: F.nll_loss(input, torch.tensor(tg), **kw),
                                  {"input": logits.log_softmax(-1).detach().clone()}, args))
                for s in [0.0, 0.15]:
                    cases.append(case(f"cross_entropy/{tail}/s{s}", "cross_entropy",
                                      lambda input: F.cross_entropy(input, torch.tensor(tg), label_smoothing=s, **kw),
                                      {"input": logits.clone()}, dict(args, label_smoothing=s)))
    return cases


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser()
    p.add_argument("--out", default=os.path.join(here, "..", "..", "tests", "data", "torch_ops.json"))
    args = p.parse_args()
    # kl_div's 'mean' warns that 'batchmean' is the KL divergence; both are compared anyway.
    warnings.filterwarnings("ignore", message="reduction: 'mean' divides")
    cases = elementwise_cases() + loss_cases() + class_cases()
    doc = {"torch_version": torch.__version__, "cases": cases}
    with open(args.out, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print(f"{len(cases)} cases from torch {torch.__version__} written to {os.path.normpath(args.out)}")


if __name__ == "__main__":
    main()
