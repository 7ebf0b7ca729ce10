"""Kernel Inception Distance (Binkowski et al. 2018, section 3): the unbiased estimator of the
squared MMD with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3, averaged over random
subsets (100 subsets of 1,000, the protocol of their code and NVIDIA's kid50k)."""
from __future__ import annotations

import numpy as np
import torch

from ..registry import register_metric
from .base import StoredFeatures, score_name


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 between equal-size samples x, y (m, d) with the cubic kernel (eq. 3 of Binkowski
    et al. with k(x, y) = (x.y/d + 1)^3): within-set sums exclude the diagonal."""
    m, d = x.shape
    kxx = (x @ x.T / d + 1) ** 3
    kyy = (y @ y.T / d + 1) ** 3
    kxy = (x @ y.T / d + 1) ** 3
    a = kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)
    return float(a / (m * (m - 1)) - 2 * kxy.sum() / (m * m))


def kid(real: torch.Tensor, fake: torch.Tensor, num_subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float]:
    """Mean and standard deviation of MMD^2 over ``num_subsets`` random subsets (without replacement
    within a subset) of ``min(subset_size, len(real), len(fake))`` rows."""
    x, y = fake.double().numpy(), real.double().numpy()
    m = min(subset_size, len(x), len(y))
    if m < 2:
        raise ValueError("KID needs at least 2 images per side")
    rng = np.random.default_rng(seed)
    vals = [mmd2_unbiased(x[rng.choice(len(x), m, replace=False)], y[rng.choice(len(y), m, replace=False)])
            for _ in range(num_subsets)]
    return float(np.mean(vals)), float(np.std(vals))


@register_metric("kid")
class KID(StoredFeatures):
    """Streaming KID; reports ``kid`` and ``kid_std`` (``kd-TAG`` with other extractors)."""

    def __init__(self, extractor=None, num_subsets: int = 100, subset_size: int = 1000, seed: int = 0):
        self.num_subsets, self.subset_size, self.seed = num_subsets, subset_size, seed
        super().__init__(extractor)

    def compute(self) -> dict:
        mean, std = kid(self.stacked(True), self.stacked(False), self.num_subsets, self.subset_size, self.seed)
        name = score_name("kid", self.tag)
        return {name: mean, f"{name}_std": std}
