"""Test accuracy and loss of a safetensors checkpoint in PyTorch (neurite -> PyTorch).

    python eval.py MODEL CKPT.safetensors [--json]

Loads the checkpoint into the spec's PyTorch definition with
`load_state_dict(strict=True)` (gpt: a missing `lm_head.weight` is read as tied),
normalizes the test images with the checkpoint's `normalize.mean` / `normalize.std`
metadata (else the training set's), and prints the accuracy and the mean
cross-entropy over the 10,000 Fashion-MNIST test images. For gpt it only checks
that the checkpoint loads and reports the loss on the fortunes validation split.
"""

import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from models import build, load_state_dict_from_safetensors  # noqa: E402


def read_checkpoint(path):
    from safetensors import safe_open

    with safe_open(path, framework="pt") as f:
        meta = f.metadata() or {}
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    return tensors, meta


def check_dtypes(model, tensors):
    """Notes on tensors whose dtype differs from PyTorch's (load_state_dict would convert them)."""
    notes = []
    for k, v in model.state_dict().items():
        if k in tensors and tensors[k].dtype != v.dtype:
            notes.append(f"{k}: checkpoint {tensors[k].dtype}, PyTorch {v.dtype}")
    return notes


def gpt_val_loss(model, block_size=128, text_dir="/usr/share/games/fortunes"):
    """Spec validation loss: last 10% of the joined bytes, non-overlapping windows of block_size+1."""
    names = sorted(n for n in os.listdir(text_dir)
                   if os.path.isfile(os.path.join(text_dir, n)) and not os.path.islink(os.path.join(text_dir, n))
                   and "." not in n)
    data = b"".join(open(os.path.join(text_dir, n), "rb").read() for n in names)
    val = torch.from_numpy(np.frombuffer(data[int(0.9 * len(data)):], dtype=np.uint8).astype(np.int64))
    windows = [val[i:i + block_size + 1] for i in range(0, len(val) - block_size, block_size)]
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(windows), 64):
            w = torch.stack(windows[i:i + 64])
            _, loss = model(w[:, :-1], w[:, 1:])
            total += loss.item() * w[:, 1:].numel()
            count += w[:, 1:].numel()
    return total / count


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", choices=["mlp", "lenet5", "resnet20", "vit", "gpt"])
    p.add_argument("checkpoint")
    p.add_argument("--data", default=None)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    tensors, meta = read_checkpoint(a.checkpoint)
    model = build(a.model)
    notes = check_dtypes(model, tensors)
    load_state_dict_from_safetensors(model, tensors)  # strict=True
    model.eval()
    result = {"model": a.model, "checkpoint": a.checkpoint}
    if a.model == "gpt":
        result["val_loss"] = gpt_val_loss(model, model.block_size)
    else:
        from data import FashionMNIST
        from train import evaluate

        ds = FashionMNIST(a.data)
        if "normalize.mean" in meta and "normalize.std" in meta:
            mean = [float(v) for v in meta["normalize.mean"].split(",")]
            std = [float(v) for v in meta["normalize.std"].split(",")]
            # Re-normalize the raw pixels with the checkpoint's constants.
            raw = ds.test_x * ds.std + ds.mean
            m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
            s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
            x = (raw - m) / s
            result["normalize"] = "checkpoint metadata"
        else:
            x = ds.test_x
            result["normalize"] = "training set"
        acc, loss = evaluate(model, x, ds.test_y)
        result.update(test_accuracy=acc, test_loss=loss)
    if notes:
        result["dtype_notes"] = notes
    if a.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k}: {v}")


if __name__ == "__main__":
    main()
