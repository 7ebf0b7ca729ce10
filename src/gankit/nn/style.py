"""Style-based building blocks: pixel norm, the mapping network, AdaIN, noise inputs and the
modulated / demodulated convolution of StyleGAN2.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .equalized import EqualLinear
from .resample import conv2d_resample

Tensor = torch.Tensor


def pixel_norm(x: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """x / sqrt(mean(x^2) + eps) over ``dim`` (PGGAN section 4.2, eq. 1; also StyleGAN's z normalization)."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


class PixelNorm(nn.Module):
    """Module form of :func:`pixel_norm` over channels."""

    def forward(self, x: Tensor) -> Tensor:
        return pixel_norm(x)


def truncate(w: Tensor, w_avg: Tensor, psi: float = 1.0, cutoff: int | None = None) -> Tensor:
    """Truncation trick w' = w_avg + psi (w - w_avg) (StyleGAN section 3.1, eq. 3 context; appendix B).

    ``w`` is (B, num_ws, w_dim); with ``cutoff`` only the first ``cutoff`` layers are truncated.
    """
    if psi == 1:
        return w
    t = w_avg.lerp(w, psi)  # w_avg + psi (w - w_avg)
    if cutoff is None:
        return t
    return torch.cat([t[:, :cutoff], w[:, cutoff:]], dim=1)


class MappingNetwork(nn.Module):
    """The mapping network f: Z -> W (StyleGAN section 2, Figure 1b): normalize z, then an MLP of
    ``num_layers`` equalized fully connected layers with lr multiplier 0.01 and leaky ReLU.

    Optional class conditioning as in StyleGAN2-ADA: the one-hot label is embedded, normalized and
    concatenated to z. During training the average w is tracked (decay ``w_avg_beta``) for the
    truncation trick. ``num_layers = 0`` passes the normalized z through unchanged (the
    traditional generator of StyleGAN's configs A-B, where z_dim must equal w_dim).

    Args:
        z_dim, c_dim, w_dim: latent, label and intermediate latent sizes.
        num_ws: how many copies of w to broadcast (one per synthesis layer), None = return (B, w_dim).
        num_layers: mapping depth (8 in both papers).
        lr_multiplier: 0.01 (StyleGAN appendix C).
        w_avg_beta: decay of the tracked average, None disables tracking.
        normalize_z: pixel-normalize z first (both papers).
    """

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: int | None, num_layers: int = 8,
                 embed_features: int | None = None, layer_features: int | None = None, activation: str = "lrelu",
                 lr_multiplier: float = 0.01, w_avg_beta: float | None = 0.995, normalize_z: bool = True):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers, self.w_avg_beta, self.normalize_z = num_layers, w_avg_beta, normalize_z
        embed_features = (w_dim if embed_features is None else embed_features) if c_dim > 0 else 0
        layer_features = w_dim if layer_features is None else layer_features
        if num_layers == 0 and z_dim + embed_features != w_dim:
            raise ValueError("a mapping network with 0 layers needs z_dim (+ embedding) == w_dim")
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = EqualLinear(c_dim, embed_features)
        for i in range(num_layers):
            setattr(self, f"fc{i}", EqualLinear(features[i], features[i + 1], activation=activation,
                                                lr_multiplier=lr_multiplier))
        if w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: Tensor | None, c: Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, update_w_avg: bool = True) -> Tensor:
        parts = []
        if self.z_dim > 0:
            parts.append(pixel_norm(z) if self.normalize_z else z)  # StyleGAN appendix C: normalize z
        if self.c_dim > 0:
            if c is None:
                raise ValueError("this mapping network is class-conditional: pass labels c (B, c_dim)")
            parts.append(pixel_norm(self.embed(c.to(parts[0].dtype if parts else torch.float32))))
        x = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        if self.w_avg_beta is not None and self.training and update_w_avg:
            with torch.no_grad():  # moving average of w for truncation (StyleGAN2-ADA MappingNetwork)
                self.w_avg.copy_(x.detach().mean(0).lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is None:
            return x
        x = x.unsqueeze(1).expand(-1, self.num_ws, -1)  # (B, num_ws, w_dim)
        if truncation_psi != 1:
            x = truncate(x, self.w_avg, truncation_psi, truncation_cutoff)
        return x


def modulated_conv2d(x: Tensor, weight: Tensor, styles: Tensor, demodulate: bool = True, up: int = 1,
                     padding: int = 0, resample_filter: Tensor | None = None, fused: bool = False,
                     eps: float = 1e-8, gain: float = 1.0, add: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
    """Modulated convolution with weight demodulation (StyleGAN2 section 2.2, eqs. 1-3).

    w'_ijk = s_i w_ijk (eq. 1); sigma_j = sqrt(sum_ik w'_ijk^2 + eps) (eq. 2); w''_ijk = w'_ijk / sigma_j (eq. 3).

    ``fused=True`` builds the per-sample weights and runs one grouped convolution (groups = batch);
    ``fused=False`` scales the activations before and after one shared convolution, which is the
    same maths. Either way sigma_j comes from the closed form sum_i s_i^2 sum_k w_ijk^2, a (B, I) x
    (I, O) product, without materialising B weight tensors just to normalize them.

    ``gain`` and ``add`` make the output ``gain * conv + add`` in one pass (``addcmul``): the
    layer's noise, bias and activation gain ride along with the demodulation multiply.

    Args:
        x: (B, I, H, W); weight: (O, I, k, k); styles: (B, I).
        gain: scalar on the output; add: a tensor broadcast against the output (e.g. noise + bias).
    Returns:
        the output (B, O, H', W') and the demodulation coefficients (B, O) or None.
    """
    B, I = styles.shape
    O, _, kh, kw = weight.shape
    dcoefs = None
    if demodulate:
        if x.dtype == torch.float16:
            # StyleGAN2-ADA's fp16 guard: scale weights and styles to max 1 first, which demodulation
            # cancels exactly, so x * styles and the convolution stay in fp16 range
            weight = weight * (1 / math.sqrt(I * kh * kw) / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True))
            styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)
        with torch.autocast(x.device.type, enabled=False):  # sums of squares in fp32 (or wider)
            dt = torch.promote_types(weight.dtype, torch.float32)
            s2, w2 = styles.to(dt).square(), weight.to(dt).square().sum([2, 3])
            dcoefs = (s2 @ w2.t() + eps).rsqrt()  # 1/sigma_j, eq. 3, (B, O)
    if not fused:
        x = x * styles.view(B, I, 1, 1)
        x = conv2d_resample(x, weight, resample_filter, up=up, padding=padding)
        scale = (dcoefs * gain).view(B, O, 1, 1).to(x.dtype) if demodulate else gain
    else:  # demodulation and gain inside the per-sample weights
        w = weight.unsqueeze(0) * styles.view(B, 1, I, 1, 1)  # (B, O, I, k, k), eq. 1
        if demodulate or gain != 1:
            w = w * ((dcoefs * gain).view(B, O, 1, 1, 1) if demodulate else gain)
        x = x.reshape(1, B * I, *x.shape[2:])
        x = conv2d_resample(x, w.reshape(B * O, I, kh, kw), resample_filter, up=up, padding=padding, groups=B)
        x = x.reshape(B, O, *x.shape[2:])
        scale = 1.0
    plain = not torch.is_tensor(scale)  # a number: no demodulation, or already in the weights
    if add is None:
        return (x if plain and scale == 1 else x * scale), dcoefs
    if x.is_contiguous(memory_format=torch.channels_last) and add.dim() == 4:
        add = add.contiguous(memory_format=torch.channels_last)  # mixed layouts take a slow elementwise path
    if plain:
        return (x + add if scale == 1 else torch.add(add, x, alpha=scale)), dcoefs
    return torch.addcmul(add, x, scale), dcoefs


class NoiseInput(nn.Module):
    """Per-pixel Gaussian noise added to a feature map, scaled by learned strengths initialized
    at zero (StyleGAN section 3.2: per-channel scaling factors; StyleGAN2 keeps one per layer).

    Args:
        resolution: size of the stored constant noise map (``noise_mode="const"``).
        channels: per-channel strengths (StyleGAN), or None for one scalar (StyleGAN2).
    """

    def __init__(self, resolution: int, channels: int | None = None):
        super().__init__()
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.noise_strength = nn.Parameter(torch.zeros([] if channels is None else [channels]))

    def noise(self, x: Tensor, mode: str = "random") -> Tensor | None:
        """The scaled noise to add to ``x`` (B, C, H, W), or None for ``mode="none"``."""
        return self.sample(x.shape[0], x.shape[2:], x.device, x.dtype, mode)

    def sample(self, batch: int, size, device, dtype, mode: str = "random") -> Tensor | None:
        """The scaled noise for a (batch, C, *size) feature map, before that map exists."""
        if mode == "none":
            return None
        if mode == "random":
            n = torch.randn(batch, 1, *size, device=device, dtype=dtype)
        elif mode == "const":
            n = self.noise_const.to(dtype).view(1, 1, *self.noise_const.shape)
        else:
            raise ValueError(f"noise mode '{mode}': use random, const or none")
        s = self.noise_strength
        return n * (s.view(1, -1, 1, 1) if s.ndim else s)

    def forward(self, x: Tensor, mode: str = "random") -> Tensor:
        n = self.noise(x, mode)
        return x if n is None else x + n


class AdaIN(nn.Module):
    """Adaptive instance normalization (StyleGAN section 2, eq. 1):
    AdaIN(x_i, y) = y_s,i (x_i - mu(x_i)) / sigma(x_i) + y_b,i, with y = A(w) a learned affine map.

    The scale is parameterised as 1 + A_s(w) (A's bias starts at 0), as in NVIDIA's ``style_mod``.
    ``instance_norm=False`` keeps only the style modulation (StyleGAN's ablations).
    """

    def __init__(self, channels: int, w_dim: int, instance_norm: bool = True):
        super().__init__()
        self.instance_norm = instance_norm
        self.affine = EqualLinear(w_dim, 2 * channels)  # gain 1 (StyleGAN code: dense(gain=1))

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        if self.instance_norm:
            x = F.instance_norm(x, eps=1e-8)
        y = self.affine(w).view(x.shape[0], 2, x.shape[1], 1, 1)
        return x * (y[:, 0] + 1) + y[:, 1]
