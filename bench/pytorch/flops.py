"""FLOPs of one training step (forward, backward) of the spec models, counted by PyTorch's
FlopCounterMode (products and convolutions, 2 FLOPs per multiply-add; elementwise work not
counted): the useful arithmetic that docs/performance.md divides by the machine's peak.

    python bench/pytorch/flops.py
"""

import os
import sys

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from models import build  # noqa: E402


def step_flops(model, x, targets):
    with FlopCounterMode(display=False) as fc:
        out = model(x)
        out = out[0] if isinstance(out, tuple) else out
        F.cross_entropy(out.reshape(-1, out.shape[-1]), targets.reshape(-1)).backward()
    return fc.get_total_flops()


def main():
    torch.set_num_threads(1)
    for name, batch in [("mlp", 128), ("lenet5", 64), ("resnet20", 128), ("vit", 128)]:
        f = step_flops(build(name), torch.randn(batch, 1, 28, 28), torch.randint(0, 10, (batch,)))
        print(f"{name:9s} batch {batch:4d}: {f / 1e9:8.3f} GFLOP per step, {f / batch / 1e6:8.3f} MFLOP per image")
    x = torch.randint(0, 256, (16, 128))
    f = step_flops(build("gpt"), x, x)
    print(f"gpt       16 x 128 tokens: {f / 1e9:8.3f} GFLOP per step, {f / 2048 / 1e6:8.3f} MFLOP per token")


if __name__ == "__main__":
    main()
