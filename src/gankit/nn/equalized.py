"""Equalized learning rate layers and the fused bias + activation of the StyleGAN line.

Equalized learning rate (Karras et al. 2018, PGGAN section 4.1): weights are stored as N(0, 1)
(divided by the lr multiplier) and scaled at run time by He's constant 1/sqrt(fan_in) (times the
multiplier), so Adam's per-parameter step size is the same for every layer.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .resample import conv2d_resample, setup_filter

Tensor = torch.Tensor

#: default gains: sqrt(2) after (leaky) ReLU keeps unit variance (He et al. 2015; StyleGAN2-ADA's def_gain)
ACT_GAIN = {"linear": 1.0, "lrelu": math.sqrt(2), "relu": math.sqrt(2)}


def bias_act(x: Tensor, b: Tensor | None = None, act: str = "linear", gain: float | None = None,
             clamp: float | None = None, dim: int = 1) -> Tensor:
    """x + b, activation, times ``gain`` (default sqrt(2) for lrelu/relu), clamped to +-clamp.

    The leaky ReLU slope is 0.2 (Karras et al. 2018 section 4.2). Clamping the output is
    StyleGAN2-ADA's guard for mixed precision (``conv_clamp``). The clamp runs as ``hardtanh``,
    the same values with a one-pass backward (clamp's backward takes three); the gradients differ
    only at exactly +-clamp.
    """
    if b is not None:
        shape = [1] * x.ndim
        shape[dim] = -1
        x = x + b.view(shape)
    if act == "lrelu":
        x = F.leaky_relu(x, 0.2)
    elif act == "relu":
        x = F.relu(x)
    elif act != "linear":
        raise ValueError(f"unknown activation '{act}'; use linear, lrelu or relu")
    g = ACT_GAIN[act] if gain is None else gain
    if g != 1:
        x = x * g
    if clamp is not None and clamp >= 0:
        x = F.hardtanh(x, -clamp, clamp)
    return x


class EqualLinear(nn.Module):
    """Fully connected layer with equalized learning rate (NVIDIA's ``FullyConnectedLayer``).

    Args:
        in_features, out_features: sizes.
        bias: learn an additive bias.
        activation: ``linear``, ``lrelu`` or ``relu`` (with its gain).
        lr_multiplier: scales this layer's effective learning rate (0.01 in the mapping network,
            StyleGAN section 2 / appendix C).
        bias_init: initial bias (1 for style affines, so styles start at 1).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, activation: str = "linear",
                 lr_multiplier: float = 1.0, bias_init: float = 0.0):
        super().__init__()
        self.activation = activation
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)  # He's constant, PGGAN 4.1
        self.bias_gain = lr_multiplier

    def forward(self, x: Tensor) -> Tensor:
        w = self.weight * self.weight_gain
        b = self.bias * self.bias_gain if self.bias is not None else None
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act(x.matmul(w.t()), b, act=self.activation)

    def extra_repr(self) -> str:
        return f"in={self.weight.shape[1]}, out={self.weight.shape[0]}, act={self.activation}"


class EqualConv2d(nn.Module):
    """Convolution with equalized learning rate, optional FIR up/down-sampling, bias, activation
    and clamping (NVIDIA's ``Conv2dLayer``).

    Args:
        in_channels, out_channels, kernel_size: as ``nn.Conv2d`` ("same" padding).
        bias, activation: as :class:`EqualLinear`.
        up, down: resampling factor (2 for the StyleGAN2 up/down convolutions).
        resample_filter: FIR taps, [1, 3, 3, 1] in StyleGAN2 and [1, 2, 1] in StyleGAN.
        conv_clamp: clamp outputs to +-X (None disables).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 activation: str = "linear", up: int = 1, down: int = 1,
                 resample_filter: Sequence[float] = (1, 3, 3, 1), conv_clamp: float | None = None):
        super().__init__()
        self.activation, self.up, self.down, self.conv_clamp = activation, up, down, conv_clamp
        self.register_buffer("resample_filter", setup_filter(resample_filter), persistent=False)
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size ** 2)  # He's constant
        self.act_gain = ACT_GAIN[activation]
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x: Tensor, gain: float = 1.0) -> Tensor:
        # act(conv(x) + b) * g == act(conv(x) g + b g) for g > 0 (leaky ReLU, ReLU and linear are
        # positively homogeneous): the gain goes into the small weight and bias, and the bias into
        # the convolution, which saves two passes over the output
        g = self.act_gain * gain
        w = self.weight * (self.weight_gain * g)
        b = self.bias * g if self.bias is not None else None
        x = conv2d_resample(x, w, self.resample_filter, up=self.up, down=self.down, padding=self.padding, bias=b)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, None, act=self.activation, gain=1.0, clamp=clamp)

    def extra_repr(self) -> str:
        o, i, k, _ = self.weight.shape
        return f"{i}, {o}, k={k}, up={self.up}, down={self.down}, act={self.activation}"
