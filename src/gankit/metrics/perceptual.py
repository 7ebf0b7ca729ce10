"""Perceptual distances between image pairs, for path length and projection.

* ``lpips``: LPIPS v0.1 with VGG16 (Zhang et al. 2018, eq. 1): unit-normalise each layer's
  channels, square the difference, weight channels by the learned linear heads, average over space,
  sum over the five layers (relu1_2 .. relu5_3). Both files are local: torchvision's
  ``vgg16-397923af.pth`` and LPIPS's ``weights/v0.1/vgg.pth``; the ``lpips`` package is not used.
* ``efficientnet-lite0`` and the domain networks (``shapes``, ``digits``): the same formula with
  uniform weights (LPIPS's "lin=False" baseline) over their multi-layer features.
* ``pixel``: mean squared difference in [-1, 1] pixel space (a reference for tests).

Every distance takes two float batches in [-1, 1] (N, C, H, W) and returns (N,) and is
differentiable with respect to both.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import Registry
from .weights import WeightsError, WeightsSpec, load_into, load_state_dict

DISTANCES: Registry = Registry("perceptual distance")

VGG16_WEIGHTS = WeightsSpec(
    what="VGG16 (torchvision, for LPIPS)", env="GANKIT_VGG16_WEIGHTS", option="--vgg16-weights",
    filenames=("vgg16-397923af.pth",),
    sha256=("397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0",),
    url="https://download.pytorch.org/models/vgg16-397923af.pth")
LPIPS_WEIGHTS = WeightsSpec(
    what="LPIPS v0.1 linear heads (vgg.pth)", env="GANKIT_LPIPS_WEIGHTS", option="--lpips-weights",
    filenames=("lpips-v0.1-vgg.pth", "vgg.pth"),
    sha256=("a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868",),
    url="https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/vgg.pth")


def normalize_channels(x: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Unit length along channels (LPIPS eq. 1's hat-y)."""
    return x / (x.square().sum(1, keepdim=True).sqrt() + eps)


def layer_distance(f0: list[torch.Tensor], f1: list[torch.Tensor], weights=None) -> torch.Tensor:
    """sum_l mean_hw || w_l * (norm(f0_l) - norm(f1_l)) ||^2 (LPIPS eq. 1; w = 1 without heads)."""
    total = 0
    for i, (a, b) in enumerate(zip(f0, f1)):
        d = (normalize_channels(a) - normalize_channels(b)).square()
        d = (d * weights[i].view(1, -1, 1, 1)).sum(1) if weights is not None else d.sum(1)
        total = total + d.mean((1, 2))
    return total


class VGG16Features(nn.Module):
    """torchvision's VGG16 ``features`` (13 convolutions); returns relu1_2, relu2_2, relu3_3, relu4_3, relu5_3."""

    cfg = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
    taps = (3, 8, 15, 22, 29)  # indices of those ReLUs in ``features``

    def __init__(self):
        super().__init__()
        layers, cin = [], 3
        for v in self.cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU()]
                cin = v
        self.features = nn.Sequential(*layers)

    def forward(self, x):
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.taps:
                out.append(x)
        return out


class Distance(nn.Module):
    """LPIPS eq. 1 over ``features(x)`` with ``heads()`` as channel weights (None: uniform), in
    passes of ``chunk`` pairs when set."""

    name = "distance"
    chunk = 0

    def _freeze(self):
        self.eval().requires_grad_(False)
        return self

    def features(self, x) -> list[torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def heads(self):
        return None

    def forward(self, x0, x1):
        pairs = zip(x0.split(self.chunk), x1.split(self.chunk)) if self.chunk else [(x0, x1)]
        return torch.cat([layer_distance(self.features(a), self.features(b), self.heads()) for a, b in pairs])


@DISTANCES.register("lpips")
class LPIPS(Distance):
    """LPIPS-VGG16 v0.1. The input shift and scale are LPIPS's ScalingLayer (ImageNet statistics in
    [-1, 1] units)."""

    name = "lpips"
    shift = (-0.030, -0.088, -0.188)
    scale = (0.458, 0.448, 0.450)

    def __init__(self, vgg16_weights=None, lpips_weights=None, check_hash: bool = True):
        super().__init__()
        self.vgg = VGG16Features()
        p = VGG16_WEIGHTS.resolve(vgg16_weights, check_hash)
        sd = {k: v for k, v in load_state_dict(p, VGG16_WEIGHTS.what).items() if k.startswith("features.")}
        load_into(self.vgg, sd, p, VGG16_WEIGHTS.what)
        p = LPIPS_WEIGHTS.resolve(lpips_weights, check_hash)
        heads = load_state_dict(p, LPIPS_WEIGHTS.what)
        try:
            w = [heads[f"lin{i}.model.1.weight"].flatten() for i in range(5)]
        except KeyError:
            raise WeightsError(f"{p}: not LPIPS linear heads (expected keys lin0.model.1.weight .. lin4...)") from None
        if [len(x) for x in w] != [64, 128, 256, 512, 512]:
            raise WeightsError(f"{p}: LPIPS heads of sizes {[len(x) for x in w]}, expected VGG16's 64..512")
        self.register_buffer("lin", torch.cat(w))
        self.register_buffer("shift_", torch.tensor(self.shift).view(1, 3, 1, 1))
        self.register_buffer("scale_", torch.tensor(self.scale).view(1, 3, 1, 1))
        self._freeze()

    def heads(self) -> list[torch.Tensor]:
        return list(self.lin.split([64, 128, 256, 512, 512]))

    def features(self, x):
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return self.vgg((x - self.shift_) / self.scale_)


@DISTANCES.register("efficientnet-lite0")
class EffNetDistance(Distance):
    """Uniform-weight LPIPS over EfficientNet-Lite0 features at five scales, inputs resized to 224 px."""

    name = "efficientnet-lite0"

    def __init__(self, weights=None, check_hash: bool = True):
        super().__init__()
        from .features import EffNetExtractor

        self.net = EffNetExtractor(weights, check_hash).net
        self._freeze()

    chunk = 8  # pairs per pass: small batches keep the 224 px activations in cache on CPU

    def features(self, x):
        return self.net.taps(self.net.preprocess((x + 1) * 127.5 if x.dtype != torch.uint8 else x))


@DISTANCES.register("shapes")
class ShapesDistance(Distance):
    """Uniform-weight LPIPS over the shipped shapes CNN's three convolution stages (32 px input)."""

    name = "shapes"

    def __init__(self, weights=None, check_hash: bool = True):
        super().__init__()
        from .modes import shapes_classifier

        self.net = shapes_classifier().net
        self._freeze()

    def features(self, x):
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[-1] != 32:
            x = F.interpolate(x, size=32, mode="bilinear", align_corners=False, antialias=x.shape[-1] > 32)
        out = []
        for i, layer in enumerate(self.net):
            x = layer(x)
            if i in (1, 4, 7):  # the ReLU of each convolution stage
                out.append(x)
            if i == 7:
                break
        return out


@DISTANCES.register("digits")
class DigitsDistance(Distance):
    """Uniform-weight LPIPS over the shipped digits CNN's two convolutions (8 px, grey)."""

    name = "digits"

    def __init__(self, weights=None, check_hash: bool = True):
        super().__init__()
        from .modes import digit_classifier

        self.net = digit_classifier().net
        self._freeze()

    def features(self, x):
        if x.shape[1] != 1:
            x = x.mean(1, keepdim=True)
        if x.shape[-1] != 8:
            x = F.adaptive_avg_pool2d(x, 8)
        h1 = self.net[1](self.net[0](x))
        return [h1, self.net[3](self.net[2](h1))]


@DISTANCES.register("pixel")
class PixelDistance(Distance):
    """Mean squared pixel difference (not perceptual; a reference for tests)."""

    name = "pixel"

    def __init__(self, weights=None, check_hash: bool = True):
        super().__init__()

    def forward(self, x0, x1):
        return (x0 - x1).square().flatten(1).mean(1)


def build_distance(name: str = "auto", vgg16_weights=None, lpips_weights=None, effnet_weights=None,
                   device=None) -> Distance:
    """A distance by name. ``auto``: LPIPS-VGG16 when both its files are found, else EfficientNet-Lite0."""
    if name == "auto":
        have = (vgg16_weights or VGG16_WEIGHTS.find()) and (lpips_weights or LPIPS_WEIGHTS.find())
        name = "lpips" if have else "efficientnet-lite0"
    if name == "lpips":
        d = LPIPS(vgg16_weights, lpips_weights)
    else:
        d = DISTANCES.get(name)(effnet_weights if name == "efficientnet-lite0" else None)
    return d.to(device or "cpu")
