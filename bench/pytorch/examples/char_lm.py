"""A small character-level language model in PyTorch: the counterpart of examples/char_lm.rs.

    python char_lm.py --steps 300

The same model (models.GPT, nanoGPT's layout), text (Debian fortunes), split, loop and
sampling settings as the Rust example.
"""

import argparse
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from models import GPT  # noqa: E402
from lm import read_text, split, text_loss  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=300)
p.add_argument("--batch-size", type=int, default=16)
p.add_argument("--block-size", type=int, default=64)
p.add_argument("--layers", type=int, default=2)
p.add_argument("--width", type=int, default=64)
p.add_argument("files", nargs="*")
args = p.parse_args()

text = read_text(args.files)
train, val = split(text)
train = torch.from_numpy(train.astype(np.int64))
torch.manual_seed(0)
model = GPT(256, args.block_size, args.layers, 4, args.width)
print(f"gpt: {sum(p.numel() for p in model.parameters())} parameters, {len(text)} bytes")

opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)


def lr_at(step, warmup=20, base=1e-3, min_lr=1e-4):
    if step < warmup:
        return base * (step + 1) / warmup
    t = (step - warmup) / max(1, args.steps - warmup)
    return min_lr + 0.5 * (base - min_lr) * (1 + math.cos(math.pi * t))


gen = torch.Generator().manual_seed(0)
B, T = args.batch_size, args.block_size
for step in range(args.steps):
    starts = torch.randint(len(train) - T - 1, (B,), generator=gen)
    x = torch.stack([train[s : s + T] for s in starts])
    y = torch.stack([train[s + 1 : s + T + 1] for s in starts])
    _, loss = model(x, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    for g in opt.param_groups:
        g["lr"] = lr_at(step)
    opt.step()
    if step % 100 == 0 or step + 1 == args.steps:
        print(f"step {step:5}  loss {loss.item():.4f}")

model.eval()
print(f"validation loss {text_loss(model, val, T):.4f} nats per byte")
prompt = torch.tensor([list(b"The ")])
out = model.generate(prompt, 200, temperature=0.8, generator=torch.Generator().manual_seed(1))
print(bytes(out[0].tolist()).decode("utf-8", "replace"))
