"""Fashion-MNIST (Xiao et al. 2017): 70,000 28x28 grayscale images of 10 clothing classes.

Read from the IDX files that Debian's ``dataset-fashion-mnist`` package installs under
``/usr/share/datasets/fashion-mnist`` (``apt-get install dataset-fashion-mnist``), or from any
folder holding the four standard files (``path=``). ``res`` resizes with Lanczos (default 32,
the nearest power of two, so convolutional families can use it directly; 28 keeps the originals).
"""
from __future__ import annotations

import os

import numpy as np
import torch
from PIL import Image

from ...errors import DataError
from ...registry import register_dataset
from ..base import TensorDataset
from ..idx import read_idx

DEFAULT_PATH = "/usr/share/datasets/fashion-mnist"
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
           "Ankle boot")
FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def _find(path: str, stem: str) -> str:
    for name in (stem + ".gz", stem):
        p = os.path.join(path, name)
        if os.path.exists(p):
            return p
    raise DataError(f"fashion-mnist: {stem}(.gz) not found in {path}; install Debian's package "
                    "(apt-get install dataset-fashion-mnist) or pass path=DIR holding the IDX files")


@register_dataset("fashion-mnist")
def fashion_mnist(path: str = DEFAULT_PATH, split: str = "all", res: int = 32) -> TensorDataset:
    """Fashion-MNIST from IDX files; ``split`` is train (60,000), test (10,000) or all (70,000)."""
    if split not in ("train", "test", "all"):
        raise DataError(f"fashion-mnist: split={split!r}; use train, test or all")
    if res != 28 and (res & (res - 1) or not 4 <= res <= 256):
        raise DataError(f"fashion-mnist: res={res} must be 28 or a power of two from 4 to 256")
    if not os.path.isdir(path):
        raise DataError(f"fashion-mnist: folder {path} not found; install Debian's package "
                        "(apt-get install dataset-fashion-mnist) or pass path=DIR holding the IDX files")
    xs, ys = [], []
    for s in (("train", "test") if split == "all" else (split,)):
        img_file, lab_file = FILES[s]
        x, y = read_idx(_find(path, img_file)), read_idx(_find(path, lab_file))
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise DataError(f"fashion-mnist: {path} holds IDX files of unexpected shapes {x.shape}, {y.shape}")
        xs.append(x)
        ys.append(y)
    x, y = np.concatenate(xs), np.concatenate(ys).astype(np.int64)
    if res != x.shape[-1]:
        x = np.stack([np.asarray(Image.fromarray(im).resize((res, res), Image.LANCZOS)) for im in x])
    return TensorDataset(f"fashion-mnist-{split}-{res}", torch.from_numpy(np.ascontiguousarray(x)).unsqueeze(1),
                         torch.from_numpy(y), num_classes=10, meta={"classes": CLASSES})
