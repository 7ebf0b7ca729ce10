"""Fréchet Inception Distance (Heusel et al. 2017, eq. 6 of "GANs trained by a two time-scale
update rule"): ||mu_r - mu_g||^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2))."""
from __future__ import annotations

import numpy as np
import torch

from ..registry import register_metric
from .base import FeatureMetric, score_name


def _psd_sqrt(s: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """The Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), in float64.

    Tr((S1 S2)^(1/2)) is the sum of the square roots of the eigenvalues of S1^(1/2) S2 S1^(1/2),
    which has the same eigenvalues as S1 S2 but is symmetric positive semi-definite, so ``eigh``
    gives it stably (no complex parts or the ``sqrtm`` retries of the reference code)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    r = _psd_sqrt(s1)
    m = r @ s2 @ r
    tr_covmean = np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)


class Moments:
    """Running mean and covariance in float64 (sum and sum of outer products)."""

    def __init__(self):
        self.n, self.s, self.ss = 0, None, None

    def add(self, x: torch.Tensor):
        x = x.detach().double().cpu()
        if self.s is None:
            self.s, self.ss = torch.zeros(x.shape[1], dtype=torch.float64), torch.zeros(x.shape[1], x.shape[1],
                                                                                       dtype=torch.float64)
        self.n += x.shape[0]
        self.s += x.sum(0)
        self.ss += x.T @ x

    def mean_cov(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and unbiased covariance (np.cov's n - 1, as in Heusel et al.'s code and pytorch-fid)."""
        if self.n < 2:
            raise ValueError(f"FID needs at least 2 images per side, got {self.n}")
        mu = self.s / self.n
        cov = (self.ss - self.n * torch.outer(mu, mu)) / (self.n - 1)
        return mu.numpy(), cov.numpy()


@register_metric("fid")
class FID(FeatureMetric):
    """Streaming FID: ``update(images, real=True/False)``; ``set_real_stats(mu, sigma)`` for cached
    statistics. Reports ``fid`` with Inception, ``fd-TAG`` with other extractors."""

    def reset(self):
        self.moments = {True: Moments(), False: Moments()}
        self.real_stats = None

    def update_features(self, features, real=False):
        self.moments[bool(real)].add(features)

    def set_real_stats(self, mu, sigma):
        self.real_stats = (np.asarray(mu), np.asarray(sigma))

    def compute(self) -> dict:
        mu_r, s_r = self.real_stats or self.moments[True].mean_cov()
        mu_g, s_g = self.moments[False].mean_cov()
        return {score_name("fid", self.tag): frechet_distance(mu_r, s_r, mu_g, s_g)}


def fid_from_features(real: torch.Tensor, fake: torch.Tensor) -> float:
    """FID between two feature sets (N, D)."""
    m = FID()
    m.update_features(real, real=True)
    m.update_features(fake)
    return m.compute()["fid"]
