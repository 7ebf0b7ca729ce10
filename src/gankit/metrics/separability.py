"""Linear separability (Karras et al. 2019, StyleGAN, section 4.2).

Generate images, label each with binary attribute classifiers, keep the most confident half per
attribute, fit a linear SVM from the latent (z, or w) to the label, and report
exp(sum_i H(Y_i | X_i)), where X_i is the SVM's prediction and Y_i the classifier's label (NVIDIA's
code computes 2^(sum of entropies in bits), the same number). Lower is more separable; 1 is perfect.
On built-in ``shapes`` the factors play the part of CelebA's 40 attributes: one binary attribute
per shape and per colour, from the shipped shapes classifier.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..registry import register_metric
from .base import Metric


def conditional_entropy(x: np.ndarray, y: np.ndarray) -> float:
    """H(Y | X) in nats for two binary label arrays, from their joint frequencies."""
    p = np.array([[np.mean((x == a) & (y == b)) for b in (0, 1)] for a in (0, 1)], dtype=np.float64)

    def h(q):
        q = q[q > 0]
        return -float((q * np.log(q)).sum())

    return h(p.ravel()) - h(p.sum(1))  # H(X, Y) - H(X)


def separability_scores(latents: dict[str, np.ndarray], probs: np.ndarray, keep: float = 0.5) -> dict:
    """Scores per latent space. ``probs`` (N, A): each attribute's probability of being present.

    Per attribute, the ``keep`` share of samples with the highest max(p, 1 - p) is kept (NVIDIA's
    pruning), a LinearSVC (scikit-learn defaults, as in NVIDIA's code) is fit on them and scored on
    them, and H(Y | X) is summed over attributes."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.svm import LinearSVC

    n, num_attr = probs.shape
    n_keep = max(2, int(round(n * keep)))
    ent = {space: [] for space in latents}
    for a in range(num_attr):
        p = probs[:, a]
        idx = np.argsort(-np.maximum(p, 1 - p), kind="stable")[:n_keep]
        y = (p[idx] >= 0.5).astype(np.int64)
        for space, lat in latents.items():
            if len(np.unique(y)) < 2:
                pred = y  # one class only: predicted perfectly (NVIDIA's fallback)
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    pred = LinearSVC().fit(lat[idx], y).predict(lat[idx])
            ent[space].append(conditional_entropy(pred, y))
    return {space: float(np.exp(np.sum(v))) for space, v in ent.items()} | {
        "per_attribute": {space: [float(e) for e in v] for space, v in ent.items()}}


class AttributeClassifier:
    """Binary attribute probabilities (N, A) for images in [-1, 1], from a shipped domain network."""

    def __init__(self, name: str):
        if name == "shapes":
            from ..data.builtin.shapes import COLOURS, SHAPES
            from .modes import shapes_classifier

            self.net = shapes_classifier()
            self.names = [f"shape={s}" for s in SHAPES] + [f"colour={c}" for c in COLOURS]
        elif name == "digits":
            from .modes import digit_classifier

            self.net = digit_classifier()
            self.names = [f"digit={k}" for k in range(10)]
        else:
            raise ConfigError(f"--attributes {name}: attribute classifiers exist for shapes and digits")
        self.kind = name

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float().cpu()
        if self.kind == "digits":
            return F.softmax(self.net(x.mean(1, keepdim=True) if x.shape[1] != 1 else x), 1)
        ps, pc = self.net(x)
        ns, nc = self.net.num_shapes - 1, self.net.num_colours - 1  # the last class is "none"
        return torch.cat([F.softmax(ps, 1)[:, :ns], F.softmax(pc, 1)[:, :nc]], 1)


@register_metric("separability")
class LinearSeparability(Metric):
    """Streaming separability: ``update(latents={"z": z, "w": w}, probs=p)`` per batch;
    ``compute()`` gives ``separability-z`` and ``separability-w``."""

    def __init__(self, keep: float = 0.5):
        self.keep = keep
        super().__init__()

    def reset(self):
        self.latents, self.probs = {}, []

    def update(self, latents: dict[str, torch.Tensor], probs: torch.Tensor) -> None:
        for k, v in latents.items():
            self.latents.setdefault(k, []).append(v.detach().double().cpu())
        self.probs.append(probs.detach().double().cpu())

    def compute(self) -> dict:
        lat = {k: torch.cat(v).numpy() for k, v in self.latents.items()}
        res = separability_scores(lat, torch.cat(self.probs).numpy(), self.keep)
        out = {f"separability-{k}": res[k] for k in lat}
        out["separability_per_attribute"] = res["per_attribute"]
        return out
