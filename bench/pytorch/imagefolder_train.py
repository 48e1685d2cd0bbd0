"""Train a spec model on a folder of images with torchvision's ImageFolder: PyTorch's side of
`neurite train MODEL --data DIR` (issue 22's comparison).

    python imagefolder_train.py DIR [--split SPLIT.json] [--model lenet5] [--epochs 20]
        [--lr 0.05] [--weight-decay 0] [--augment none|flip] [--threads 2] [--seed 0]
        [--size 28] [--channels 1]

The split is the one neurite used: DIR/train and DIR/test (or DIR/val) when DIR has them, else
the files listed in --split (JSON with "train" and "test" lists of paths relative to DIR). Recipe (as `neurite train`'s): SGD momentum 0.9, cosine
from --lr to 0 per step, batch 128, reshuffled every epoch, last partial batch kept; the
images are decoded once (ImageFolder + PIL), converted to gray ("L") or RGB, resized to
--size with PIL's bilinear filter when their size differs, scaled to [0, 1] and normalized with
the training part's per-channel mean and std. Prints each epoch's test accuracy, then one JSON
line with the final accuracy, loss and the wall time of the whole run (decode included).
"""

import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F
from PIL import Image
from torchvision import datasets, transforms

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from models import build  # noqa: E402

BATCH = 128


def load(root, files, classes, size, channels):
    """Decodes `files` (paths relative to root, `<class>/<name>`) into x [N, C, size, size] in
    [0, 1] and labels y [N], with ImageFolder's loader and a Resize when sizes differ."""
    mode = "L" if channels == 1 else "RGB"
    to_tensor = transforms.ToTensor()
    xs, ys = [], []
    for rel in files:
        img = datasets.folder.default_loader(os.path.join(root, rel)).convert(mode)
        if img.size != (size, size):
            img = img.resize((size, size), Image.BILINEAR)
        xs.append(to_tensor(img))
        ys.append(classes.index(rel.replace("\\", "/").split("/")[-2]))
    return torch.stack(xs), torch.tensor(ys)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("root")
    p.add_argument("--split", help="JSON {train: [...], test: [...]} of paths relative to DIR")
    p.add_argument("--model", default="lenet5")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--augment", choices=["none", "flip"], default="none")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=28)
    p.add_argument("--channels", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    started = time.perf_counter()
    if a.split:
        split = json.load(open(a.split))
        classes = datasets.ImageFolder(a.root).classes
    else:
        test_dir = "test" if os.path.isdir(os.path.join(a.root, "test")) else "val"
        parts = {}
        for part, sub in (("train", "train"), ("test", test_dir)):
            folder = datasets.ImageFolder(os.path.join(a.root, sub))
            parts[part] = [os.path.relpath(p, a.root) for p, _ in folder.samples]
            classes = folder.classes  # ImageFolder's order: sorted sub-folder names
        split = parts
    train_x, train_y = load(a.root, split["train"], classes, a.size, a.channels)
    test_x, test_y = load(a.root, split["test"], classes, a.size, a.channels)
    mean = train_x.mean(dim=(0, 2, 3), keepdim=True)
    std = train_x.std(dim=(0, 2, 3), unbiased=False, keepdim=True).clamp_min(1e-12)
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    decoded = time.perf_counter() - started

    torch.manual_seed(a.seed)
    model = build(a.model, a.channels, len(classes))
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0.9, weight_decay=a.weight_decay)
    n = train_x.shape[0]
    total = a.epochs * math.ceil(n / BATCH)
    gen = torch.Generator().manual_seed(a.seed)
    step = 0
    for epoch in range(1, a.epochs + 1):
        model.train()
        order = torch.randperm(n, generator=gen)
        for i in range(0, n, BATCH):
            idx = order[i:i + BATCH]
            x, y = train_x[idx], train_y[idx]
            if a.augment == "flip":
                flip = torch.rand(x.shape[0], generator=gen) < 0.5
                x = torch.where(flip[:, None, None, None], x.flip(3), x)
            for g in opt.param_groups:
                g["lr"] = 0.5 * a.lr * (1.0 + math.cos(math.pi * step / total))
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            opt.step()
            step += 1
        model.eval()
        with torch.no_grad():
            logits = torch.cat([model(test_x[i:i + 1000]) for i in range(0, test_x.shape[0], 1000)])
        acc = (logits.argmax(1) == test_y).float().mean().item()
        loss = F.cross_entropy(logits, test_y).item()
        print(f"epoch {epoch:>3}/{a.epochs}  test acc {acc:.4f}  test loss {loss:.4f}", flush=True)
    print(json.dumps(dict(model=a.model, accuracy=acc, loss=loss, train_images=n,
                          test_images=test_x.shape[0], decode_seconds=round(decoded, 2),
                          seconds=round(time.perf_counter() - started, 2))))


if __name__ == "__main__":
    main()
