"""Differentiable ops of your own, checked with torch.autograd.gradcheck
(examples/custom_op.rs): softsign, hypot (backward reads the output) and an RMS norm over
the last dimension (backward uses saved statistics), compared with the composed op.

    python bench/pytorch/examples/custom_op.py --rows 8 --width 16
"""
import argparse

import torch


class Softsign(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x / (1 + x.abs())

    @staticmethod
    def backward(ctx, dy):
        (x,) = ctx.saved_tensors
        return dy / (1 + x.abs()) ** 2


class Hypot(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, b):
        h = torch.hypot(a, b)
        ctx.save_for_backward(a, b, h)
        return h

    @staticmethod
    def backward(ctx, g):
        a, b, h = ctx.saved_tensors
        return g * a / h, g * b / h


class RmsNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, eps):
        inv_rms = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
        ctx.save_for_backward(x, inv_rms)
        return x * inv_rms

    @staticmethod
    def backward(ctx, g):
        x, r = ctx.saved_tensors
        y = x * r
        return r * (g - y * (g * y).mean(-1, keepdim=True)), None


def rms_norm_composed(x, eps):
    return x / (x.pow(2).mean(-1, keepdim=True) + eps).sqrt()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=8)
    p.add_argument("--width", type=int, default=16)
    args = p.parse_args()
    torch.manual_seed(0)
    shape = (args.rows, args.width)
    # gradcheck wants float64 inputs (its default tolerances are for double precision).
    checks = {
        "softsign": (Softsign.apply, (torch.randn(shape, dtype=torch.float64) * 2,)),
        "hypot": (Hypot.apply, (torch.rand(shape, dtype=torch.float64) * 1.5 + 0.5, torch.randn(shape, dtype=torch.float64))),
        "rms_norm": (lambda x: RmsNorm.apply(x, 1e-5), (torch.randn(shape, dtype=torch.float64),)),
    }
    for name, (fn, inputs) in checks.items():
        inputs = tuple(t.requires_grad_() for t in inputs)
        print(f"{name:<10} {'pass' if torch.autograd.gradcheck(fn, inputs) else 'FAIL'}")

    x = torch.randn(shape, requires_grad=True)
    w = torch.randn(shape)
    results = []
    for fn in (lambda t: RmsNorm.apply(t, 1e-5), lambda t: rms_norm_composed(t, 1e-5)):
        y = fn(x)
        (y * w).sum().backward()
        results.append((y.detach(), x.grad.clone()))
        x.grad = None
    dy = (results[0][0] - results[1][0]).abs().max().item()
    dg = (results[0][1] - results[1][1]).abs().max().item()
    print(f"rms_norm against library ops: max difference {dy:.2e} (values), {dg:.2e} (gradients)")


if __name__ == "__main__":
    main()
