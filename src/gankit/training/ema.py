"""Exponential moving average of the generator's weights (Karras et al. 2018/2020; StyleGAN2-ADA's scheme)."""
from __future__ import annotations

import copy

import torch
from torch import nn


def make_ema(G: nn.Module) -> nn.Module:
    G_ema = copy.deepcopy(G).eval()
    G_ema.requires_grad_(False)
    return G_ema


def ema_beta(batch_size: int, cur_nimg: int, ema_kimg: float, ema_rampup: float) -> float:
    """beta = 0.5 ** (batch / half-life images); half-life ramps up with images seen when ema_rampup > 0."""
    if ema_kimg <= 0:
        return 0.0
    ema_nimg = ema_kimg * 1000
    if ema_rampup > 0:
        ema_nimg = min(ema_nimg, cur_nimg * ema_rampup)
    return 0.5 ** (batch_size / max(ema_nimg, 1e-8))


@torch.no_grad()
def update_ema(G_ema: nn.Module, G: nn.Module, beta: float) -> None:
    """G_ema <- beta G_ema + (1 - beta) G for parameters; buffers (batch-norm statistics) are copied."""
    for p_ema, p in zip(G_ema.parameters(), G.parameters()):
        if beta == 0.0:
            p_ema.copy_(p)
        else:
            p_ema.lerp_(p, 1.0 - beta)
    for b_ema, b in zip(G_ema.buffers(), G.buffers()):
        b_ema.copy_(b)
