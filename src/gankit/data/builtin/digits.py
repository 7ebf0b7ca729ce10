"""scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes) and Stacked Digits.

Pixel values 0..16 are scaled to 0..255. ``res`` upsamples with bilinear interpolation
(8 keeps the native images). ``stacked-digits`` puts three random digits in the R, G and B
channels, giving 10^3 = 1,000 modes: the Stacked MNIST protocol of VEEGAN (Srivastava et al.
2017, section 5.2) and PacGAN, on the small digits that ship with scikit-learn.
"""
from __future__ import annotations

from typing import Annotated

import functools

import numpy as np
import torch
from PIL import Image

from ...config import Range, Seed

from ...errors import DataError
from ...registry import register_dataset
from ..base import TensorDataset


@functools.lru_cache(maxsize=1)
def load_digits_8x8() -> tuple[np.ndarray, np.ndarray]:
    """Returns (images uint8 N x 8 x 8 in 0..255, labels int64 N) from scikit-learn's copy."""
    from sklearn.datasets import load_digits

    d = load_digits()
    imgs = np.clip(np.rint(d.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    return imgs, d.target.astype(np.int64)


def upscale(imgs: np.ndarray, res: int) -> np.ndarray:
    if res & (res - 1) or not 8 <= res <= 256:
        raise DataError(f"digits: res={res} is not a power of two from 8 to 256; use for example res=32")
    if res == imgs.shape[-1]:
        return imgs
    return np.stack([np.asarray(Image.fromarray(im).resize((res, res), Image.BILINEAR)) for im in imgs])


@register_dataset("digits")
def digits(res: int = 8) -> TensorDataset:
    """The 1,797 sklearn digits as 1-channel images, optionally upscaled to ``res``."""
    imgs, labels = load_digits_8x8()
    data = torch.from_numpy(upscale(imgs, res)).unsqueeze(1)
    return TensorDataset(f"digits-{res}", data, torch.from_numpy(labels), num_classes=10, mode_metric="digits")


@register_dataset("stacked-digits")
def stacked_digits(res: int = 8, n: Annotated[int, Range(1, 1_000_000)] = 20_000, seed: Seed = 0) -> TensorDataset:
    """``n`` RGB images whose channels are three random digits; label = 100*r + 10*g + b (1,000 modes)."""
    imgs, labels = load_digits_8x8()
    up = upscale(imgs, res)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(imgs), size=(n, 3))
    data = torch.from_numpy(up[idx])  # (n, 3, res, res)
    lab = labels[idx]
    y = torch.from_numpy(lab[:, 0] * 100 + lab[:, 1] * 10 + lab[:, 2])
    return TensorDataset(f"stacked-digits-{res}-{n}-{seed}", data, y, num_classes=1000,
                         mode_metric="stacked-digits")
