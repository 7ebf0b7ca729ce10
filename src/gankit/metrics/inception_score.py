"""Inception Score (Salimans et al. 2016, section 4): exp(E_x KL(p(y|x) || p(y))), over 10 splits
in order, reported as mean and standard deviation (their code's protocol)."""
from __future__ import annotations

import numpy as np
import torch

from ..registry import register_metric
from .base import StoredFeatures, score_name


def inception_score(logits: torch.Tensor, splits: int = 10) -> tuple[float, float]:
    """Mean and standard deviation of exp(mean KL(p(y|x) || p(y))) over ``splits`` consecutive parts."""
    logp = torch.log_softmax(logits.double(), 1)
    n = len(logp)
    if n < splits:
        raise ValueError(f"the Inception Score's {splits} splits need at least {splits} images, got {n}")
    scores = []
    for k in range(splits):
        part = logp[k * n // splits:(k + 1) * n // splits]
        p_y = torch.logsumexp(part, 0) - np.log(len(part))  # log of the marginal p(y) over the split
        kl = (part.exp() * (part - p_y)).sum(1).mean()
        scores.append(float(kl.exp()))
    return float(np.mean(scores)), float(np.std(scores))


@register_metric("is")
class InceptionScore(StoredFeatures):
    """Streaming IS over generated images' logits; reports ``is`` and ``is_std`` (``is-TAG``)."""

    needs_real = False
    uses_logits = True

    def __init__(self, extractor=None, splits: int = 10):
        self.splits = splits
        super().__init__(extractor)

    def compute(self) -> dict:
        mean, std = inception_score(self.stacked(False), self.splits)
        name = score_name("is", self.tag)
        return {name: mean, f"{name}_std": std}
