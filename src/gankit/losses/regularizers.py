"""Regularizers of the discriminator: gradient penalty, R1, weight clipping."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from .adversarial import widen

Tensor = torch.Tensor


def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor,
                     generator: torch.Generator | None = None) -> Tensor:
    """Two-sided gradient penalty E[(||grad_x D(x_hat)||_2 - 1)^2] on random interpolates (unscaled).

    Gulrajani et al. 2017 (WGAN-GP), Algorithm 1 lines 6-8: x_hat = eps x + (1 - eps) x~, eps ~ U[0, 1].
    Multiply by lambda (10 in the paper) at the call site.
    """
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    eps = torch.rand(shape, device=real.device, dtype=real.dtype, generator=generator)
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    out = critic(x_hat)
    (grad,) = torch.autograd.grad(widen(out).sum(), x_hat, create_graph=True)
    norm = widen(grad).flatten(1).norm(2, dim=1)  # fp32 under half-precision autocast
    return ((norm - 1.0) ** 2).mean()


def r1_penalty(real_out: Tensor, real: Tensor) -> Tensor:
    """R1 penalty E[||grad_x D(x)||^2] on real data (unscaled; multiply by gamma / 2).

    Mescheder et al. 2018, eq. 9: R1 = gamma/2 E_{p_D}[||grad D(x)||^2]. ``real`` must have
    ``requires_grad=True`` before the forward pass that produced ``real_out``.
    """
    (grad,) = torch.autograd.grad(widen(real_out).sum(), real, create_graph=True)
    return widen(grad).square().flatten(1).sum(1).mean()  # fp32 under half-precision autocast


@torch.no_grad()
def clip_weights(module: nn.Module, c: float) -> None:
    """Clamps every parameter to [-c, c] (Arjovsky et al. 2017, Algorithm 1 line 7, c = 0.01)."""
    for p in module.parameters():
        p.clamp_(-c, c)


def path_lengths(img: Tensor, ws: Tensor, y: Tensor) -> Tensor:
    """||J_w^T y||_2 per sample, y scaled by 1/sqrt(H W), the squared norm averaged over layers
    of w (StyleGAN2 section 3.2; NVIDIA's pl_lengths), differentiable (create_graph)."""
    y = widen(y) / (img.shape[2] * img.shape[3]) ** 0.5
    # in fp32 whatever the dtypes (under bf16 autocast img and ws arrive in bf16)
    (grad,) = torch.autograd.grad((widen(img) * y).sum(), ws, create_graph=True)  # J_w^T y, (B, num_ws, w_dim)
    return widen(grad).square().sum(2).mean(1).sqrt()  # (B,)


def path_length_penalty(img: Tensor, ws: Tensor, pl_mean: Tensor, decay: float = 0.01) -> tuple[Tensor, Tensor]:
    """Path length penalty (||J_w^T y||_2 - a)^2 per sample, and the updated running mean a.

    Karras et al. 2020 (StyleGAN2) section 3.2, eq. 4: E_{w, y ~ N(0, I)} (||J_w^T y||_2 - a)^2,
    with y scaled by 1/sqrt(H W) so the length does not depend on resolution, the gradient taken
    w.r.t. every layer's w and averaged over layers, and a a running mean of the lengths
    (``a <- a + decay (mean length - a)``). ``ws`` (B, num_ws, w_dim) must be part of the graph of
    ``img``; multiply the mean penalty by the weight (2 in the paper) at the call site.
    """
    lengths = path_lengths(img, ws, torch.randn_like(img, dtype=torch.promote_types(img.dtype, torch.float32)))
    new_mean = pl_mean.lerp(lengths.mean().detach(), decay)
    return (lengths - new_mean).square(), new_mean
