"""Fashion-MNIST (Xiao et al. 2017): 70,000 28x28 grayscale images of 10 clothing classes.

Read from the IDX files that Debian's ``dataset-fashion-mnist`` package installs under
``/usr/share/datasets/fashion-mnist`` (``apt-get install dataset-fashion-mnist``), or from any
folder holding the four standard files (``path=``). ``res`` resizes with Lanczos (default 32,
the nearest power of two, so convolutional families can use it directly; 28 keeps the originals).
"""
from __future__ import annotations

import numpy as np
import torch

from ...errors import DataError
from ...registry import register_dataset
from ..base import TensorDataset
from ..idx import read_mnist_layout, resize_square

DEFAULT_PATH = "/usr/share/datasets/fashion-mnist"
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
           "Ankle boot")
HOW_TO_GET = "install Debian's package (apt-get install dataset-fashion-mnist) or pass path=DIR holding the IDX files"


@register_dataset("fashion-mnist")
def fashion_mnist(path: str = DEFAULT_PATH, split: str = "all", res: int = 32) -> TensorDataset:
    """Fashion-MNIST from IDX files; ``split`` is train (60,000), test (10,000) or all (70,000)."""
    if res != 28 and (res & (res - 1) or not 4 <= res <= 256):
        raise DataError(f"fashion-mnist: res={res} must be 28 or a power of two from 4 to 256")
    x, y = read_mnist_layout("fashion-mnist", path, split, HOW_TO_GET)
    x = resize_square(x, res)
    return TensorDataset(f"fashion-mnist-{split}-{res}", torch.from_numpy(np.ascontiguousarray(x)).unsqueeze(1),
                         torch.from_numpy(y), num_classes=10, meta={"classes": CLASSES})
