"""Improved precision and recall (Kynkaanniemi et al. 2019, section 2): each set's manifold is the
union of balls reaching every feature's k-th nearest neighbour (k = 3); precision is the share of
generated features inside the real manifold, recall the share of real features inside the
generated one."""
from __future__ import annotations

import torch

from ..registry import register_metric
from .base import StoredFeatures, score_name


def _kth_radii(manifold: torch.Tensor, k: int, batch: int) -> torch.Tensor:
    # k + 1: each point's distance to itself (0) is the first neighbour
    return torch.cat([torch.cdist(b, manifold).kthvalue(k + 1, dim=1).values for b in manifold.split(batch)])


def _inside(probes: torch.Tensor, manifold: torch.Tensor, radii: torch.Tensor, batch: int) -> torch.Tensor:
    return torch.cat([(torch.cdist(b, manifold) <= radii[None]).any(1) for b in probes.split(batch)])


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3, batch: int = 2000) -> tuple[float, float]:
    """(precision, recall) of ``fake`` against ``real`` features (N, D), in float64 distances."""
    real, fake = real.double(), fake.double()
    if min(len(real), len(fake)) <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} images per side")
    precision = _inside(fake, real, _kth_radii(real, k, batch), batch).double().mean()
    recall = _inside(real, fake, _kth_radii(fake, k, batch), batch).double().mean()
    return float(precision), float(recall)


@register_metric("pr")
class PrecisionRecall(StoredFeatures):
    """Streaming precision/recall; reports ``precision`` and ``recall`` (``precision-TAG``...)."""

    def __init__(self, extractor=None, k: int = 3):
        self.k = k
        super().__init__(extractor)

    def compute(self) -> dict:
        p, r = precision_recall(self.stacked(True), self.stacked(False), self.k)
        return {score_name("precision", self.tag): p, score_name("recall", self.tag): r}
