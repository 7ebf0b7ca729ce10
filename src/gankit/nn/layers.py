"""Fully-connected building blocks: activations by name, maxout, and a configurable MLP."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..errors import ConfigError


class Maxout(nn.Module):
    """Linear layer with ``pieces`` outputs per unit, keeping the maximum (Goodfellow et al. 2013)."""

    def __init__(self, in_features: int, out_features: int, pieces: int):
        super().__init__()
        self.pieces = pieces
        self.linear = nn.Linear(in_features, out_features * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.linear(x)  # (B, out * pieces)
        return y.view(x.shape[0], -1, self.pieces).amax(dim=2)  # (B, out)


def activation(name: str) -> nn.Module:
    """An activation by name: relu, lrelu (slope 0.2), tanh, sigmoid, identity."""
    table = {"relu": lambda: nn.ReLU(), "lrelu": lambda: nn.LeakyReLU(0.2), "tanh": lambda: nn.Tanh(),
             "sigmoid": lambda: nn.Sigmoid(), "identity": lambda: nn.Identity()}
    if name not in table:
        raise ConfigError(f"unknown activation '{name}'; choose one of: {', '.join(table)}")
    return table[name]()


class MLP(nn.Sequential):
    """Linear layers with an activation between them (or maxout units), optional dropout.

    Args:
        sizes: layer widths from input to output, e.g. ``(2, 512, 512, 1)``.
        act: hidden activation name, or ``"maxout"``.
        pieces: maxout pieces per unit (used when ``act == "maxout"``).
        dropout: dropout probability applied to the input of every layer but the first.
        out_act: activation after the last layer.
        norm: "none", or "batch": batch norm between each hidden linear layer (then bias-free) and its
            activation (PacGAN's toy generator).
        norm_momentum: the batch norms' weight of each batch in the population statistics.
    """

    def __init__(self, sizes: Sequence[int], act: str = "relu", pieces: int = 5, dropout: float = 0.0,
                 out_act: str = "identity", norm: str = "none", norm_momentum: float = 0.1):
        if norm not in ("none", "batch"):
            raise ConfigError(f"unknown MLP normalization '{norm}'; use none or batch")
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            last = i == len(sizes) - 2
            if dropout > 0 and i > 0:
                layers.append(nn.Dropout(dropout))
            if act == "maxout" and not last:
                layers.append(Maxout(a, b, pieces))
            elif norm == "batch" and not last:
                layers += [nn.Linear(a, b, bias=False), nn.BatchNorm1d(b, momentum=norm_momentum), activation(act)]
            else:
                layers.append(nn.Linear(a, b))
                layers.append(activation(out_act if last else act))
        super().__init__(*layers)


def pack(x: torch.Tensor, m: int) -> torch.Tensor:
    """PacGAN (Lin et al. 2018, section 3): m consecutive samples joined along the first feature
    axis, (B, C, ...) -> (B / m, m C, ...), so one discriminator input judges m samples at once.
    m = 1 returns ``x`` itself."""
    if m == 1:
        return x
    if x.shape[0] % m:
        raise ConfigError(f"PacGAN packing: --model.pack {m} does not divide a batch of {x.shape[0]} samples; "
                          f"use a --train.batch-size (and --train.batch-gpu) that {m} divides")
    return x.reshape(x.shape[0] // m, m * x.shape[1], *x.shape[2:])


class Packed(nn.Module):
    """A discriminator that judges packs of ``m`` samples (PacGAN, Lin et al. 2018): ``net`` is
    built for ``m`` times the data's channels (or features) and sees :func:`pack` of its input.
    It returns one output per pack; every real pack holds only reals and every fake pack only fakes."""

    def __init__(self, net: nn.Module, m: int):
        super().__init__()
        self.net, self.m = net, m

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        if c is None:
            return self.net(pack(x, self.m))
        if c.numel():
            raise ConfigError("PacGAN packing (--model.pack) takes unconditional discriminators only")
        return self.net(pack(x, self.m), c[:x.shape[0] // self.m])


def packed(net: nn.Module, m: int) -> nn.Module:
    """``net`` itself for m = 1 (same parameters and checkpoint names as without packing), else :class:`Packed`."""
    return net if m == 1 else Packed(net, m)


class MinibatchStd(nn.Module):
    """Minibatch standard deviation (PGGAN section 3): the std of each feature over groups of
    ``group_size`` samples, averaged over features and pixels, appended as ``num_channels`` maps.

    Args:
        group_size: samples per group (4 in StyleGAN/StyleGAN2); a batch it does not divide uses
            the largest group size below it that does (training batches are multiples of it).
        num_channels: how many channel groups get their own statistic (1 in the papers).
    """

    def __init__(self, group_size: int = 4, num_channels: int = 1):
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        N, C, H, W = x.shape
        G = min(self.group_size, N) if self.group_size else N
        while N % G:  # odd batches (evaluation): the largest group size that divides the batch
            G -= 1
        F_ = self.num_channels
        y = x.reshape(G, -1, F_, C // F_, H, W)  # (G, n, F, c, H, W): sample i is in group i % n
        y = (y - y.mean(0)).square().mean(0)  # variance over the group
        y = (y + 1e-8).sqrt().mean(dim=[2, 3, 4])  # (n, F): mean std over channels and pixels
        y = y.reshape(-1, F_, 1, 1).repeat(G, 1, H, W)  # (N, F, H, W)
        return torch.cat([x, y], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}"
