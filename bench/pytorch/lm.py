"""Character-level GPT in PyTorch with neurite's `lm train` recipe (Q6), the spec's validation
loss, and export to safetensors for `neurite lm eval`.

    python lm.py train --steps 5000 --out gpt.safetensors      # Q6 reference run
    python lm.py eval gpt.safetensors                          # validation loss of a checkpoint

Text: the files of the Debian `fortunes` package (regular files without an extension, sorted
by name, joined), the last 10% (from int(0.9 * len)) is the validation split, as in neurite.
Recipe: AdamW lr 1e-3 (betas 0.9/0.999, wd 0.1), 100 warm-up steps then cosine to lr/10,
gradient clipping 1.0, batch 16 x 128, random windows from a seeded generator.
"""

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from models import GPT, load_state_dict_from_safetensors, state_dict_for_safetensors

FORTUNES = "/usr/share/games/fortunes"


def read_text(paths):
    """Bytes of the given files (a directory: its regular files without extension, sorted)."""
    out = bytearray()
    for p in paths or [FORTUNES]:
        if os.path.isdir(p):
            names = sorted(
                n for n in os.listdir(p)
                if os.path.isfile(os.path.join(p, n)) and not os.path.islink(os.path.join(p, n))
                and not n.endswith(".dat") and not n.endswith(".u8")
            )
            for n in names:
                out += open(os.path.join(p, n), "rb").read()
        else:
            out += open(p, "rb").read()
    return np.frombuffer(bytes(out), dtype=np.uint8)


def split(data):
    cut = int(0.9 * len(data))
    return data[:cut], data[cut:]


@torch.no_grad()
def text_loss(model, data, block):
    """Mean cross-entropy over consecutive windows of block+1 bytes, stride block; short tail dropped."""
    model.eval()
    n = (len(data) - 1) // block
    total, count = 0.0, 0
    for start in range(0, n, 64):
        rows = [data[i * block: i * block + block + 1] for i in range(start, min(n, start + 64))]
        rows = [r for r in rows if len(r) == block + 1]
        if not rows:
            break
        t = torch.tensor(np.stack(rows).astype(np.int64))
        logits = model(t[:, :-1])
        total += F.cross_entropy(logits.reshape(-1, 256), t[:, 1:].reshape(-1), reduction="sum").item()
        count += t[:, 1:].numel()
    return total / count


def lr_at(step, steps, base, warmup=100):
    if step < warmup:
        return base * (step + 1) / warmup
    t = (step - warmup) / max(1, steps - warmup)
    low = base / 10
    return low + 0.5 * (base - low) * (1 + math.cos(math.pi * min(1.0, t)))


def train(a):
    torch.manual_seed(a.seed)
    train_data, val_data = split(read_text(a.files))
    model = GPT()
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}], lr=a.lr
    )
    rng = np.random.default_rng(a.seed)
    block, start = 128, time.time()
    for step in range(a.steps):
        model.train()
        ix = rng.integers(0, len(train_data) - block - 1, size=a.batch_size)
        x = torch.tensor(np.stack([train_data[i: i + block] for i in ix]).astype(np.int64))
        y = torch.tensor(np.stack([train_data[i + 1: i + block + 1] for i in ix]).astype(np.int64))
        for g in opt.param_groups:
            g["lr"] = lr_at(step, a.steps, a.lr)
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if (step + 1) % a.eval_interval == 0 or step + 1 == a.steps:
            print(f"step {step + 1}: train loss {loss.item():.4f} val loss {text_loss(model, val_data, block):.4f}",
                  file=sys.stderr, flush=True)
    seconds = time.time() - start
    val = text_loss(model, val_data, block)
    if a.out:
        save_file(state_dict_for_safetensors(model), a.out, metadata={"model": "gpt"})
    print(json.dumps({"val_loss": val, "steps": a.steps, "seconds": seconds,
                      "tokens_per_second": a.steps * a.batch_size * block / seconds}))


def evaluate(a):
    model = GPT()
    load_state_dict_from_safetensors(model, load_file(a.checkpoint))
    _, val_data = split(read_text(a.files))
    print(json.dumps({"val_loss": text_loss(model, val_data, 128)}))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("files", nargs="*")
    t.add_argument("--steps", type=int, default=5000)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--batch-size", type=int, default=16)
    t.add_argument("--eval-interval", type=int, default=500)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=os.cpu_count())
    t.add_argument("--out")
    e = sub.add_parser("eval")
    e.add_argument("checkpoint")
    e.add_argument("files", nargs="*")
    e.add_argument("--threads", type=int, default=os.cpu_count())
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    train(a) if a.cmd == "train" else evaluate(a)


if __name__ == "__main__":
    main()
