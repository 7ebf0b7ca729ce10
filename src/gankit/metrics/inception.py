"""The FID Inception-v3: the TensorFlow graph of 2015-12-05 used by Heusel et al.'s FID code,
written here in pure PyTorch with the parameter names of the ports that pytorch-fid,
torch-fidelity and NVIDIA's metrics load (torchvision's Inception3 names, 1008 classes).

Unlike torchvision's ImageNet Inception-v3, it follows the TF graph: average pools do not
count padding, the last block max-pools, BatchNorm eps is 1e-3, and there are 1008 logits.
Input: uint8 images, resized to 299x299 with TensorFlow 1.x's bilinear rule (no half-pixel
offset, as in the original graph and torch-fidelity), then mapped to [-1, 1) by (x - 128) / 128.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .weights import WeightsSpec

INCEPTION_WEIGHTS = WeightsSpec(
    what="Inception-v3 (FID)", env="GANKIT_INCEPTION_WEIGHTS", option="--inception-weights",
    filenames=("weights-inception-2015-12-05-6726825d.pth", "pt_inception-2015-12-05-6726825d.pth"),
    sha256=("6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2",),
    url="https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth")


def resize_bilinear_tf1(x: torch.Tensor, size: int) -> torch.Tensor:
    """TensorFlow 1.x ``resize_bilinear(align_corners=False)``: source = dest * in / out, no half
    pixel offset, the far neighbour clamped to the border; interpolates along x, then y."""

    def axis(n_in: int):
        src = torch.arange(size, dtype=torch.float32) * torch.tensor(n_in / size, dtype=torch.float32)
        lo = src.long()
        return lo, (lo + 1).clamp_max(n_in - 1), src - lo.float()

    (ylo, yhi, dy), (xlo, xhi, dx) = axis(x.shape[2]), axis(x.shape[3])
    dev = x.device
    ylo, yhi, dy, xlo, xhi, dx = (t.to(dev) for t in (ylo, yhi, dy, xlo, xhi, dx))
    top, bottom = x.index_select(2, ylo), x.index_select(2, yhi)
    t0, t1 = top.index_select(3, xlo), top.index_select(3, xhi)
    b0, b1 = bottom.index_select(3, xlo), bottom.index_select(3, xhi)
    t = t0 + (t1 - t0) * dx.view(1, 1, 1, -1)
    b = b0 + (b1 - b0) * dx.view(1, 1, 1, -1)
    return t + (b - t) * dy.view(1, 1, -1, 1)


class BasicConv2d(nn.Module):
    """Convolution without bias, BatchNorm (eps 1e-3, as in the TF graph), ReLU."""

    def __init__(self, cin: int, cout: int, kernel_size, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def _avg_pool(x):
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)  # TF's pool ignores padding


class InceptionA(nn.Module):
    def __init__(self, cin: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64, 1)
        self.branch5x5_1 = BasicConv2d(cin, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, 1)

    def forward(self, x):
        return torch.cat([self.branch1x1(x), self.branch5x5_2(self.branch5x5_1(x)),
                          self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                          self.branch_pool(_avg_pool(x))], 1)


class InceptionB(nn.Module):
    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x):
        return torch.cat([self.branch3x3(x), self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                          F.max_pool2d(x, 3, stride=2)], 1)


class InceptionC(nn.Module):
    def __init__(self, cin: int, c7: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 192, 1)
        self.branch7x7_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x):
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = x
        for i in range(1, 6):
            d = getattr(self, f"branch7x7dbl_{i}")(d)
        return torch.cat([self.branch1x1(x), b7, d, self.branch_pool(_avg_pool(x))], 1)


class InceptionD(nn.Module):
    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x):
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), b7, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionE(nn.Module):
    """``pool="avg"`` for Mixed_7b; the TF graph's Mixed_7c max-pools its pool branch."""

    def __init__(self, cin: int, pool: str):
        super().__init__()
        self.pool = pool
        self.branch1x1 = BasicConv2d(cin, 320, 1)
        self.branch3x3_1 = BasicConv2d(cin, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x):
        a = self.branch3x3_1(x)
        b = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        p = _avg_pool(x) if self.pool == "avg" else F.max_pool2d(x, 3, stride=1, padding=1)
        return torch.cat([self.branch1x1(x), self.branch3x3_2a(a), self.branch3x3_2b(a),
                          self.branch3x3dbl_3a(b), self.branch3x3dbl_3b(b), self.branch_pool(p)], 1)


class FIDInceptionV3(nn.Module):
    """uint8 images (N, 3, H, W) -> {"features": pool3 (N, 2048), "logits": (N, 1008)}.

    The logits have no bias, as in the Inception Score code of Salimans et al. (2016), which
    multiplies pool3 by the softmax weights only; torch-fidelity's ``logits_unbiased``."""

    input_size = 299

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, 32)
        self.Mixed_5c = InceptionA(256, 64)
        self.Mixed_5d = InceptionA(288, 64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, 128)
        self.Mixed_6c = InceptionC(768, 160)
        self.Mixed_6d = InceptionC(768, 160)
        self.Mixed_6e = InceptionC(768, 192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, "avg")
        self.Mixed_7c = InceptionE(2048, "max")
        self.fc = nn.Linear(2048, 1008)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float()
        if x.shape[2:] != (self.input_size, self.input_size):
            x = resize_bilinear_tf1(x, self.input_size)
        return (x - 128) / 128

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.preprocess(images)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = F.max_pool2d(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)), 3, stride=2)
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)
        feats = x.mean((2, 3))  # pool3, (N, 2048)
        return {"features": feats, "logits": feats @ self.fc.weight.T}
