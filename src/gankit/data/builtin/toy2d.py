"""2D Gaussian mixtures from the mode-collapse literature.

* ``ring8``: 8 Gaussians evenly spaced on a circle of radius 2, standard deviation 0.02
  (Metz et al. 2017, Unrolled GAN, section 3.1; also VEEGAN and PacGAN).
* ``grid25``: 25 Gaussians on a 5 x 5 grid with centres at {-4, -2, 0, 2, 4}^2, standard
  deviation 0.05 (Srivastava et al. 2017, VEEGAN, section 5.1; PacGAN).
"""
from __future__ import annotations

from typing import Annotated

import math

import torch

from ...config import Range, Seed

from ...registry import register_dataset
from ..base import TensorDataset

Samples = Annotated[int, Range(1, 10_000_000)]  # points drawn
Spread = Annotated[float, Range(0.0, 1000.0, open_lo=True)]


def _mixture(name: str, centers: torch.Tensor, std: float, n: int, seed: int) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    k = torch.randint(len(centers), (n,), generator=g)
    x = centers[k] + std * torch.randn(n, 2, generator=g)
    return TensorDataset(name, x, k, num_classes=len(centers), mode_metric="toy2d",
                         meta={"centers": centers, "std": std})


def ring8_centers(radius: float = 2.0) -> torch.Tensor:
    angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    return torch.stack([radius * torch.cos(angles), radius * torch.sin(angles)], 1).float()


def grid25_centers() -> torch.Tensor:
    v = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
    return torch.cartesian_prod(v, v)


@register_dataset("ring8")
def ring8(n: Samples = 100_000, seed: Seed = 0, std: Spread = 0.02, radius: Spread = 2.0) -> TensorDataset:
    """Ring of 8 Gaussians, radius 2, std 0.02 (Unrolled GAN)."""
    return _mixture("ring8", ring8_centers(radius), std, n, seed)


@register_dataset("grid25")
def grid25(n: Samples = 100_000, seed: Seed = 0, std: Spread = 0.05) -> TensorDataset:
    """5 x 5 grid of Gaussians, spacing 2, std 0.05 (VEEGAN)."""
    return _mixture("grid25", grid25_centers(), std, n, seed)
