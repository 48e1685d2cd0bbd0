"""Images per second of torchvision's ImageFolder + DataLoader(num_workers=N) on a folder:
decode (PIL), grayscale, Resize((H, W)), RandomCrop(H, padding=2), RandomHorizontalFlip,
ToTensor — the work neurite's folder reader does per image when it decodes on demand.

    /work/venv/bin/python bench/pytorch/imagefolder_loader.py DIR [--workers 2] [--passes 3]
        [--size 28] [--channels 1]

The neurite side, on the same folder:
    NEURITE_FOLDER_BENCH=DIR cargo test --release --test folder -- --ignored --nocapture
The first pass is timed too (both sides read files the OS has cached after a warm-up pass).
"""

import argparse
import time

import torch
from torch.utils.data import DataLoader
from torchvision import datasets, transforms


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--size", type=int, default=28)
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--batch", type=int, default=128)
    args = ap.parse_args()
    torch.set_num_threads(1)
    steps = [transforms.Grayscale(1)] if args.channels == 1 else []
    steps += [transforms.Resize((args.size, args.size)),
              transforms.RandomCrop(args.size, padding=2),
              transforms.RandomHorizontalFlip(),
              transforms.ToTensor()]
    data = datasets.ImageFolder(args.root, transform=transforms.Compose(steps))
    loader = DataLoader(data, batch_size=args.batch, shuffle=True, num_workers=args.workers,
                        persistent_workers=args.workers > 0)
    for _ in loader:  # warm-up: start the workers, fill the OS file cache
        pass
    start = time.perf_counter()
    n = 0
    for _ in range(args.passes):
        for x, _y in loader:
            n += x.shape[0]
    seconds = time.perf_counter() - start
    print(f"torchvision ImageFolder + DataLoader(num_workers={args.workers}): {n} images in "
          f"{seconds:.2f} s: {n / seconds:.0f} images/s")


if __name__ == "__main__":
    main()
