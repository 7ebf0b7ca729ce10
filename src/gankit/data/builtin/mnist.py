"""MNIST (LeCun et al. 1998) and Stacked MNIST (Srivastava et al. 2017, VEEGAN, section 5.2).

Nothing is downloaded: the four IDX files of LeCun's layout (``train-images-idx3-ubyte``,
``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each may be
``.gz``; torchvision's ``MNIST/raw`` folder holds them) are read from ``path=DIR`` or from the
folder named by the ``GANKIT_MNIST`` environment variable. ``res`` resizes with Lanczos (28 keeps
the originals; convolutional families need a power of two such as 16 or 32).

``stacked-mnist`` is the mode-collapse benchmark of VEEGAN and PacGAN: three random MNIST digits
as the R, G and B channels, 1,000 modes. PacGAN's code draws 128,000 triples from all 70,000
digits at 28 px; those are the defaults here, except ``res`` (32, the nearest power of two).
Its mode metric is ``stacked-mnist`` (docs/metrics.md).
"""
from __future__ import annotations

import os
from typing import Annotated

import numpy as np
import torch

from ...config import Range, Seed
from ...errors import DataError
from ...registry import register_dataset
from ..base import TensorDataset
from ..idx import read_mnist_layout, resize_square

ENV = "GANKIT_MNIST"
HOW_TO_GET = (f"put MNIST's four IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte, "
              f"t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, optionally .gz) in a folder and set {ENV}=DIR "
              "or pass path=DIR; nothing is downloaded")


def _check_res(name: str, res: int) -> None:
    if res != 28 and (res & (res - 1) or not 8 <= res <= 256):
        raise DataError(f"{name}: res={res} must be 28 or a power of two from 8 to 256 (for example res=32)")


def _load(name: str, path: str, split: str, res: int) -> tuple[np.ndarray, np.ndarray]:
    _check_res(name, res)
    x, y = read_mnist_layout(name, path or os.environ.get(ENV, ""), split, HOW_TO_GET)
    return resize_square(x, res), y


@register_dataset("mnist")
def mnist(path: str = "", split: str = "all", res: int = 28) -> TensorDataset:
    """MNIST digits as 1-channel images; ``split`` is train (60,000), test (10,000) or all (70,000)."""
    x, y = _load("mnist", path, split, res)
    return TensorDataset(f"mnist-{split}-{res}", torch.from_numpy(np.ascontiguousarray(x)).unsqueeze(1),
                         torch.from_numpy(y), num_classes=10, mode_metric="mnist")


@register_dataset("stacked-mnist")
def stacked_mnist(path: str = "", res: int = 32, n: Annotated[int, Range(1, 1_000_000)] = 128_000,
                  seed: Seed = 0) -> TensorDataset:
    """``n`` RGB images whose channels are three random MNIST digits (of all 70,000); label =
    100*r + 10*g + b (1,000 modes)."""
    x, y = _load("stacked-mnist", path, "all", res)
    idx = np.random.default_rng(seed).integers(0, len(x), size=(n, 3))
    lab = y[idx]
    return TensorDataset(f"stacked-mnist-{res}-{n}-{seed}", torch.from_numpy(x[idx]),
                         torch.from_numpy(lab[:, 0] * 100 + lab[:, 1] * 10 + lab[:, 2]), num_classes=1000,
                         mode_metric="stacked-mnist")
