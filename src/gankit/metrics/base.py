"""The streaming metric protocol (``update`` / ``compute`` / ``reset``, as in torchmetrics) and
what the image metrics share: uint8 conversion and score names tagged by extractor."""
from __future__ import annotations

import torch


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Images as uint8: uint8 passes through; floats in [-1, 1] are quantised as NVIDIA's metrics
    and image files do, ``(x * 127.5 + 128).clamp(0, 255)`` truncated."""
    if images.dtype == torch.uint8:
        return images
    return (images.float() * 127.5 + 128).clamp(0, 255).to(torch.uint8)


def score_name(metric: str, tag: str) -> str:
    """``fid`` with Inception; ``fd-effnet``, ``kd-shapes``, ``is-digits``... with other extractors."""
    if tag == "fid":
        return metric
    short = {"fid": "fd", "kid": "kd"}.get(metric, metric)
    return f"{short}-{tag}"


class Metric:
    """Base class: ``update`` accumulates, ``compute`` returns a dict of scores, ``reset`` forgets."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def compute(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError


class FeatureMetric(Metric):
    """A metric over extractor features of real and generated images.

    ``update(images, real=...)`` runs the extractor (uint8 or [-1, 1] floats);
    ``update_features(features, real=...)`` takes features directly."""

    needs_real = True

    def __init__(self, extractor=None):
        self.extractor = extractor
        self.tag = getattr(extractor, "tag", "fid")
        super().__init__()

    @torch.no_grad()
    def update(self, images: torch.Tensor, real: bool = False) -> None:
        if self.extractor is None:
            raise ValueError(f"{type(self).__name__} was built without an extractor; call update_features")
        dev = next(self.extractor.parameters()).device
        out = self.extractor(to_uint8(images).to(dev))
        self.update_features(out["logits" if getattr(self, "uses_logits", False) else "features"].cpu(), real)

    def update_features(self, features: torch.Tensor, real: bool = False) -> None:  # pragma: no cover
        raise NotImplementedError


class StoredFeatures(FeatureMetric):
    """Keeps every feature row (KID and precision/recall need them all)."""

    def reset(self):
        self.feats = {True: [], False: []}

    def update_features(self, features, real=False):
        self.feats[bool(real)].append(features.detach().float().cpu())

    def set_real_features(self, features: torch.Tensor) -> None:
        self.feats[True] = [features.float()]

    def stacked(self, real: bool) -> torch.Tensor:
        if not self.feats[real]:
            raise ValueError(f"{type(self).__name__}: no {'real' if real else 'generated'} images given to update()")
        return torch.cat(self.feats[real])
