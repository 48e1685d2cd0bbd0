"""Writes what torchvision does to small images — `transforms.Resize((H, W))` on PIL images
(Pillow's antialiased bilinear filter) and Pillow's `convert("L")` — to
tests/data/pil_resize.json; tests/folder_pil.rs checks that neurite's image-folder reader gives
the same bytes (CI has no torch or Pillow).

    /work/venv/bin/python bench/pytorch/check_pil_resize.py [--out tests/data/pil_resize.json]

Each case has a `mode` ("L" or "RGB"), the input `size` [H, W] and `pixels` (row-major,
channels interleaved as Pillow stores them), the target `out` [H, W] and the `expected`
bytes in the same layout.
"""

import argparse
import json
import random

from PIL import Image
from torchvision import transforms


def case(rng, mode, h, w, oh, ow):
    channels = 1 if mode == "L" else 3
    pixels = [rng.randrange(256) for _ in range(h * w * channels)]
    img = Image.frombytes(mode, (w, h), bytes(pixels))
    out = transforms.Resize((oh, ow))(img)
    return {"mode": mode, "size": [h, w], "pixels": pixels, "out": [oh, ow],
            "expected": list(out.tobytes())}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/data/pil_resize.json")
    args = ap.parse_args()
    rng = random.Random(22)
    shapes = [(28, 28, 14, 14), (32, 32, 28, 28), (20, 24, 28, 28), (9, 7, 4, 3),
              (5, 5, 11, 13), (17, 3, 6, 8), (1, 6, 1, 4), (40, 30, 7, 5), (28, 28, 28, 20)]
    # Random shapes too: Pillow 13 chooses which axis to resize first from the sizes.
    shapes += [tuple(rng.randint(1, 16) for _ in range(4)) for _ in range(40)]
    cases = [case(rng, mode, *s) for mode in ("L", "RGB") for s in shapes]
    cases += [case(rng, "L", 45, 36, 28, 28), case(rng, "L", 20, 64, 28, 28)]
    rgb = [rng.randrange(256) for _ in range(3 * 64)]
    gray = Image.frombytes("RGB", (64, 1), bytes(rgb)).convert("L")
    doc = {"resize": cases, "luma": {"rgb": rgb, "expected": list(gray.tobytes())}}
    import PIL
    doc["pillow"] = PIL.__version__
    with open(args.out, "w") as f:
        json.dump(doc, f)
    print(f"wrote {len(cases)} resize cases and 64 luma pixels to {args.out}")


if __name__ == "__main__":
    main()
