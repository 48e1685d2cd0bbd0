"""Fashion-MNIST from its IDX gz files, with numpy only (no torchvision).

The directory is `--data`, else $NEURITE_DATA, else ~/.cache/neurite/fashion-mnist,
else /usr/share/datasets/fashion-mnist (package `dataset-fashion-mnist`), as neurite
looks. Pixels are scaled to [0, 1] and normalized with the training set's mean and
population standard deviation (as neurite computes them).
"""

import gzip
import os
from pathlib import Path

import numpy as np
import torch

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def find_data_dir(explicit=None):
    """The first of --data, $NEURITE_DATA, the user cache and the system package that holds the files."""
    if explicit:
        return Path(explicit)
    places = []
    if os.environ.get("NEURITE_DATA"):
        return Path(os.environ["NEURITE_DATA"])
    places.append(Path.home() / ".cache" / "neurite" / "fashion-mnist")
    places.append(Path("/usr/share/datasets/fashion-mnist"))
    for p in places:
        if all(_find(p, base) for base in FILES.values()):
            return p
    raise FileNotFoundError(
        "Fashion-MNIST not found in "
        + ", ".join(map(str, places))
        + "; install it with `apt-get install -y dataset-fashion-mnist` or pass --data DIR"
    )


def _find(directory, base):
    for name in (base + ".gz", base):
        p = Path(directory) / name
        if p.is_file():
            return p
    return None


def read_idx(path):
    """An IDX file (optionally gzip-compressed) of unsigned bytes as a numpy array."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an IDX file of unsigned bytes")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: header says {dims}, file holds {data.size} values")
    return data.reshape(dims)


def normalization(train_images_u8):
    """(mean, std) of the training pixels scaled to [0, 1], population std, exact via a histogram."""
    hist = np.bincount(train_images_u8.reshape(-1), minlength=256).astype(np.float64)
    v = np.arange(256, dtype=np.float64)
    n = hist.sum()
    m = (v * hist).sum() / n
    var = ((v - m) ** 2 * hist).sum() / n
    return float(np.float32(m / 255.0)), float(np.float32(np.sqrt(var) / 255.0))


class FashionMNIST:
    """Train and test tensors in memory: images [N, 1, 28, 28] f32 normalized, labels [N] int64."""

    def __init__(self, data_dir=None, limit_train=None, limit_test=None):
        d = find_data_dir(data_dir)
        raw = {k: read_idx(_find(d, base)) for k, base in FILES.items()}
        self.mean, self.std = normalization(raw["train_images"])  # always the full training set
        tr_x, tr_y = raw["train_images"], raw["train_labels"]
        te_x, te_y = raw["test_images"], raw["test_labels"]
        if limit_train:
            tr_x, tr_y = tr_x[:limit_train], tr_y[:limit_train]
        if limit_test:
            te_x, te_y = te_x[:limit_test], te_y[:limit_test]
        self.train_x = self._images(tr_x)
        self.train_y = torch.from_numpy(tr_y.astype(np.int64))
        self.test_x = self._images(te_x)
        self.test_y = torch.from_numpy(te_y.astype(np.int64))
        self.dir = d

    def _images(self, u8):
        x = u8.astype(np.float32)[:, None, :, :] / 255.0  # [N, 1, 28, 28]
        x = (x - np.float32(self.mean)) / np.float32(self.std)
        return torch.from_numpy(np.ascontiguousarray(x))

    def metadata(self):
        """The safetensors metadata neurite reads: normalize.mean / normalize.std."""
        return {"normalize.mean": str(np.float32(self.mean)), "normalize.std": str(np.float32(self.std))}


if __name__ == "__main__":
    ds = FashionMNIST()
    print(ds.dir, tuple(ds.train_x.shape), tuple(ds.test_x.shape), "mean", ds.mean, "std", ds.std)
    print("normalized train mean %.5f std %.5f" % (ds.train_x.mean(), ds.train_x.std()))
