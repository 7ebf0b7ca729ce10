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
    """

    def __init__(self, sizes: Sequence[int], act: str = "relu", pieces: int = 5, dropout: float = 0.0,
                 out_act: str = "identity"):
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            last = i == len(sizes) - 2
            if dropout > 0 and i > 0:
                layers.append(nn.Dropout(dropout))
            if act == "maxout" and not last:
                layers.append(Maxout(a, b, pieces))
            else:
                layers.append(nn.Linear(a, b))
                layers.append(activation(out_act if last else act))
        super().__init__(*layers)
