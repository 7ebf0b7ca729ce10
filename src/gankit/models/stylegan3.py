"""StyleGAN3 (Karras et al. 2021, "Alias-Free Generative Adversarial Networks"): configs T and R.

Where a reader of the paper finds each part (the ablation ladder of Table 1 / Figure 3, configs B-R):

* B, "Fourier features": the 4x4 constant becomes Fourier features of a band-limited continuous
  signal, sampled on a grid with a margin: :class:`SynthesisInput`.
* C-D, "no noise inputs", "simplified generator": no per-pixel noise, 2 mapping layers, no
  path length regularization or style mixing, every layer's input normalized by the EMA of its
  magnitude: :class:`SynthesisLayer` (``magnitude_ema``), :class:`StyleGAN3Config` defaults.
* E-F, "boundaries and upsampling", "filtered nonlinearities": every layer is modulated conv,
  bias, 2x upsampling with a windowed-sinc (Kaiser) low-pass filter, leaky ReLU, low-pass filter and
  downsampling (:func:`gankit.nn.filtered_lrelu`); the image is cropped to the target size only at
  the end.
* G-H, "non-critical sampling", "transformed Fourier features": stopbands above the cutoff except in
  the last two layers; the input's rotation and translation come from w (``input.affine``).
* T, "flexible layer specifications": 14 layers whose cutoff f_c and minimum stopband f_t follow a
  geometric progression from (2, 2^2.1) to (r/2, r/2 * 2^0.3), sampling rates and transition bands
  derived from them (section 3.2 / Figure 4b): :func:`layer_specs`.
* R, "rotation equivariance": 1x1 convolutions, radially symmetric (jinc) downsampling filters,
  twice the channels; D sees blurred images for the first 200 kimg (sigma 10, fading out).

The discriminator is StyleGAN2's (residual, minibatch stddev), as in the paper. Parameter names
follow NVIDIA's stylegan3 code (layers ``L{i}_{size}_{channels}``), so their pickles load
directly (``gankit import``). Two details exist only in NVIDIA's code and are kept for parity:
the weights and styles of demodulated layers are pre-normalized to unit mean square (the styles
over the whole batch), and the magnitude EMA is updated only while D is trained.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

import numpy as np
import torch
from torch import nn

from ..config import Channels, Count, Fraction, Interval, Layers, Positive, Range, Resolution, Size
from ..errors import ConfigError
from ..nn import EqualLinear, filtered_lrelu, modulated_conv2d
from ..registry import register
from .stylegan2 import Architecture, Discriminator, Generator, StyleFamily, check_style_config

Tensor = torch.Tensor


@dataclass
class StyleGAN3Config:
    resolution: Resolution = 1024
    channels: Channels = 3
    z_dim: Size = 512
    w_dim: Size = 512
    conditional: bool = False  # class-conditional through a label embedding (as StyleGAN2-ADA)
    c_dim: Count = 0
    mapping_layers: Annotated[int, Range(1, 64)] = 2  # config D: the mapping network shrinks from 8 to 2 layers
    mapping_lr_mul: Positive = 0.01
    w_avg_beta: Fraction = 0.998  # NVIDIA's stylegan3 MappingNetwork
    channel_base: Annotated[int, Range(1, 1 << 24)] = 32768  # channels of layer i: min(channel_base / 2 / f_c[i], channel_max)
    channel_max: Size = 512
    num_layers: Annotated[int, Range(1, 64)] = 14  # config T: 14 layers besides input and toRGB
    num_critical: Layers = 2  # the last N layers are critically sampled (config G)
    first_cutoff: Positive = 2.0  # f_c of the first layer (Figure 4b)
    first_stopband: Positive = 2 ** 2.1  # f_t of the first layer
    last_stopband_rel: Positive = 2 ** 0.3  # f_t of the last layer relative to its cutoff r/2
    margin_size: Annotated[int, Range(0, 1024)] = 10  # pixels around the image in the intermediate layers (config E)
    output_scale: Positive = 0.25
    conv_kernel: Annotated[int, Range(1, 15)] = 3  # 1 in config R
    filter_size: Annotated[int, Range(1, 64)] = 6  # low-pass taps per unit of the lower sampling rate
    lrelu_upsampling: Annotated[int, Range(1, 16)] = 2  # the nonlinearity runs at 2x the sampling rate (config F)
    use_radial_filters: bool = False  # config R: radially symmetric downsampling filters
    conv_clamp: float = 256.0
    magnitude_ema_kimg: Positive = 20.0  # half-life of the input magnitude EMA (NVIDIA: beta = 0.5 ** (batch / 20k))
    d_architecture: Architecture = "resnet"
    d_channel_base: Annotated[int, Range(1, 1 << 24)] = 32768
    d_channel_max: Size = 512
    d_conv_clamp: float = 256.0
    mbstd_group: Count = 4
    mbstd_channels: Size = 1
    # R1 weight: NVIDIA's guideline scales it with resolution squared (256 px: 2, 512: 8, 1024: 32)
    r1_gamma: float = 32.0
    d_reg_interval: Interval = 16
    blur_init_sigma: float = 0.0  # config R: 10 (D sees blurred images at first)
    blur_fade_kimg: float = 200.0  # the blur fades out over this many kimg (NVIDIA: 200 * batch / 32)
    pl_weight: float = 0.0  # config D: no path length regularization
    pl_decay: Fraction = 0.01
    pl_batch_shrink: Interval = 2
    g_reg_interval: Interval = 4
    style_mixing_prob: Fraction = 0.0  # config D: no style mixing
    share_fakes: bool = False  # one G forward per iteration: D steps first, G judges the same fakes (recipes/style.py); false = NVIDIA's G-then-D with fresh fakes


# ----------------------------------------------------------------------------- filters and layout
def design_lowpass_filter(numtaps: int, cutoff: float, width: float, fs: float, radial: bool = False) -> Tensor | None:
    """Kaiser-windowed sinc low-pass filter (separable, 1-D taps) or its radially symmetric jinc
    version (2-D), None for a 1-tap identity (StyleGAN3 section 3.2 and appendix: windowed sinc
    filters with Kaiser windows; config R: jinc)."""
    import scipy.signal
    import scipy.special

    if numtaps == 1:
        return None
    if not radial:
        return torch.as_tensor(scipy.signal.firwin(numtaps=numtaps, cutoff=cutoff, width=width, fs=fs),
                               dtype=torch.float32)
    x = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    r = np.hypot(*np.meshgrid(x, x))
    f = scipy.special.j1(2 * cutoff * (np.pi * r)) / (np.pi * r)  # jinc: the 2-D ideal low-pass
    beta = scipy.signal.kaiser_beta(scipy.signal.kaiser_atten(numtaps, width / (fs / 2)))
    w = np.kaiser(numtaps, beta)
    f *= np.outer(w, w)
    return torch.as_tensor(f / np.sum(f), dtype=torch.float32)


def layer_specs(img_resolution: int, img_channels: int, channel_base: int, channel_max: int, num_layers: int = 14,
                num_critical: int = 2, first_cutoff: float = 2.0, first_stopband: float = 2 ** 2.1,
                last_stopband_rel: float = 2 ** 0.3, margin_size: int = 10) -> dict[str, np.ndarray]:
    """Per-layer cutoff f_c, stopband f_t, sampling rate s, transition half-width f_h, size and
    channels (StyleGAN3 Figure 4b, "flexible layer specifications"): f_c and f_t grow
    geometrically up to layer N - num_critical, then stay at the image's Nyquist rate."""
    last_cutoff = img_resolution / 2
    last_stopband = last_cutoff * last_stopband_rel
    exponents = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
    cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** exponents  # f_c[i]
    stopbands = first_stopband * (last_stopband / first_stopband) ** exponents  # f_t[i]
    # s[i]: the smallest power of two >= 2 f_t (capped at the image size); f_h = max(f_t, s/2) - f_c
    sampling_rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, img_resolution))))
    half_widths = np.maximum(stopbands, sampling_rates / 2) - cutoffs
    sizes = sampling_rates + margin_size * 2
    sizes[-2:] = img_resolution
    channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
    channels[-1] = img_channels
    return {"cutoffs": cutoffs, "stopbands": stopbands, "sampling_rates": sampling_rates,
            "half_widths": half_widths, "sizes": sizes, "channels": channels}


# ----------------------------------------------------------------------------- generator
class SynthesisInput(nn.Module):
    """Fourier features (config B) rotated and translated by w (config H): channels sinusoids with
    random frequencies in a disc of radius ``bandwidth``, sampled on ``size`` x ``size`` pixels at
    ``sampling_rate``, then mixed by a learned matrix."""

    def __init__(self, w_dim: int, channels: int, size: int, sampling_rate: float, bandwidth: float):
        super().__init__()
        self.channels, self.size, self.sampling_rate, self.bandwidth = channels, int(size), sampling_rate, bandwidth
        freqs = torch.randn(channels, 2)
        radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
        freqs = freqs / (radii * radii.square().exp().pow(0.25)) * bandwidth  # uniform in the disc
        self.weight = nn.Parameter(torch.randn(channels, channels))
        self.affine = EqualLinear(w_dim, 4)  # t = (r_c, r_s, t_x, t_y), starts at the identity
        nn.init.zeros_(self.affine.weight)
        with torch.no_grad():
            self.affine.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0]))
        self.register_buffer("transform", torch.eye(3))  # user transform of the output (inverse)
        self.register_buffer("freqs", freqs)
        self.register_buffer("phases", torch.rand(channels) - 0.5)

    def forward(self, w: Tensor) -> Tensor:
        B = w.shape[0]
        t = self.affine(w)
        t = t / t[:, :2].norm(dim=1, keepdim=True)  # a pure rotation (r_c, r_s) and translation
        m_r = torch.eye(3, device=w.device, dtype=w.dtype).repeat(B, 1, 1)  # inverse rotation
        m_r[:, 0, 0], m_r[:, 0, 1], m_r[:, 1, 0], m_r[:, 1, 1] = t[:, 0], -t[:, 1], t[:, 1], t[:, 0]
        m_t = torch.eye(3, device=w.device, dtype=w.dtype).repeat(B, 1, 1)  # inverse translation
        m_t[:, 0, 2], m_t[:, 1, 2] = -t[:, 2], -t[:, 3]
        transforms = m_r @ m_t @ self.transform.unsqueeze(0)
        phases = self.phases.unsqueeze(0) + (self.freqs.unsqueeze(0) @ transforms[:, :2, 2:]).squeeze(2)
        freqs = self.freqs.unsqueeze(0) @ transforms[:, :2, :2]
        # fade out frequencies that a user transform pushes above the band limit
        amplitudes = (1 - (freqs.norm(dim=2) - self.bandwidth) / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)
        theta = torch.eye(2, 3, device=w.device, dtype=w.dtype)
        theta[0, 0] = theta[1, 1] = 0.5 * self.size / self.sampling_rate
        grid = torch.nn.functional.affine_grid(theta.unsqueeze(0), [1, 1, self.size, self.size], align_corners=False)
        x = (grid.unsqueeze(3) @ freqs.permute(0, 2, 1).unsqueeze(1).unsqueeze(2)).squeeze(3)  # (B, H, W, C)
        x = torch.sin((x + phases.unsqueeze(1).unsqueeze(2)) * (2 * math.pi)) * amplitudes.unsqueeze(1).unsqueeze(2)
        x = x @ (self.weight / math.sqrt(self.channels)).t()
        return x.permute(0, 3, 1, 2)


class SynthesisLayer(nn.Module):
    """Modulated conv, then bias, up-filter, leaky ReLU, down-filter (configs D-F); the toRGB layer
    is a 1x1 conv without demodulation and a linear "nonlinearity"."""

    def __init__(self, w_dim: int, is_torgb: bool, is_critically_sampled: bool, in_channels: int, out_channels: int,
                 in_size: int, out_size: int, in_sampling_rate: float, out_sampling_rate: float, in_cutoff: float,
                 out_cutoff: float, in_half_width: float, out_half_width: float, conv_kernel: int = 3,
                 filter_size: int = 6, lrelu_upsampling: int = 2, use_radial_filters: bool = False,
                 conv_clamp: float | None = 256.0, magnitude_ema_kimg: float = 20.0):
        super().__init__()
        self.is_torgb, self.in_channels, self.out_channels = is_torgb, in_channels, out_channels
        self.in_size, self.out_size, self.conv_clamp = int(in_size), int(out_size), conv_clamp
        self.magnitude_ema_kimg = magnitude_ema_kimg
        tmp_rate = max(in_sampling_rate, out_sampling_rate) * (1 if is_torgb else lrelu_upsampling)
        self.conv_kernel = 1 if is_torgb else conv_kernel
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, self.conv_kernel, self.conv_kernel))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.register_buffer("magnitude_ema", torch.ones([]))
        self.up_factor = int(round(tmp_rate / in_sampling_rate))
        self.down_factor = int(round(tmp_rate / out_sampling_rate))
        up_taps = filter_size * self.up_factor if self.up_factor > 1 and not is_torgb else 1
        down_taps = filter_size * self.down_factor if self.down_factor > 1 and not is_torgb else 1
        self.register_buffer("up_filter", design_lowpass_filter(up_taps, in_cutoff, in_half_width * 2, tmp_rate))
        self.register_buffer("down_filter", design_lowpass_filter(
            down_taps, out_cutoff, out_half_width * 2, tmp_rate,
            radial=use_radial_filters and not is_critically_sampled))
        # padding so the output has exactly out_size samples, centred (symmetric interpretation)
        pad_total = (self.out_size - 1) * self.down_factor + 1
        pad_total -= (self.in_size + self.conv_kernel - 1) * self.up_factor
        pad_total += up_taps + down_taps - 2
        pad_lo = (pad_total + self.up_factor) // 2
        self.padding = (pad_lo, pad_total - pad_lo, pad_lo, pad_total - pad_lo)

    def forward(self, x: Tensor, w: Tensor, update_emas: bool = False) -> Tensor:
        if update_emas:  # config D: track the input's mean square, normalize by it
            with torch.no_grad():
                beta = 0.5 ** (x.shape[0] / (self.magnitude_ema_kimg * 1000))
                self.magnitude_ema.copy_(x.detach().float().square().mean().lerp(self.magnitude_ema, beta))
        styles = self.affine(w)
        weight = self.weight
        if self.is_torgb:
            styles = styles * (1 / math.sqrt(self.in_channels * self.conv_kernel ** 2))
        else:  # NVIDIA's code: weights and styles pre-normalized to unit mean square (styles over the batch)
            weight = weight * weight.square().mean([1, 2, 3], keepdim=True).rsqrt()
            styles = styles * styles.square().mean().rsqrt()
        x = x * self.magnitude_ema.rsqrt()
        # StyleGAN2 eqs. 1-3 with "full" padding; the filtered nonlinearity crops to out_size
        x, _ = modulated_conv2d(x, weight, styles, demodulate=not self.is_torgb, padding=self.conv_kernel - 1)
        gain, slope = (1.0, 1.0) if self.is_torgb else (math.sqrt(2), 0.2)
        return filtered_lrelu(x, self.up_filter, self.down_filter, self.bias, self.up_factor, self.down_factor,
                              self.padding, gain=gain, slope=slope, clamp=self.conv_clamp)


class SynthesisNetwork(nn.Module):
    """g: W -> image: Fourier input, ``num_layers`` filtered layers, toRGB, times ``output_scale``."""

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, channel_base: int = 32768,
                 channel_max: int = 512, num_layers: int = 14, num_critical: int = 2, first_cutoff: float = 2.0,
                 first_stopband: float = 2 ** 2.1, last_stopband_rel: float = 2 ** 0.3, margin_size: int = 10,
                 output_scale: float = 0.25, **layer_kwargs):
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.num_ws, self.output_scale = num_layers + 2, output_scale
        spec = layer_specs(img_resolution, img_channels, channel_base, channel_max, num_layers, num_critical,
                           first_cutoff, first_stopband, last_stopband_rel, margin_size)
        ch, sizes, rates = spec["channels"], spec["sizes"], spec["sampling_rates"]
        cut, hw = spec["cutoffs"], spec["half_widths"]
        self.input = SynthesisInput(w_dim, int(ch[0]), int(sizes[0]), rates[0], cut[0])
        self.layer_names = []
        for i in range(num_layers + 1):
            p = max(i - 1, 0)
            layer = SynthesisLayer(w_dim, is_torgb=i == num_layers, is_critically_sampled=i >= num_layers - num_critical,
                                   in_channels=int(ch[p]), out_channels=int(ch[i]), in_size=int(sizes[p]),
                                   out_size=int(sizes[i]), in_sampling_rate=int(rates[p]),
                                   out_sampling_rate=int(rates[i]), in_cutoff=cut[p], out_cutoff=cut[i],
                                   in_half_width=hw[p], out_half_width=hw[i], **layer_kwargs)
            name = f"L{i}_{layer.out_size}_{layer.out_channels}"
            setattr(self, name, layer)
            self.layer_names.append(name)

    def forward(self, ws: Tensor, noise_mode: str = "const", fused: bool | None = None,
                update_emas: bool = False) -> Tensor:
        """``noise_mode`` and ``fused`` are accepted for StyleGAN2's interface; StyleGAN3 has no noise."""
        if ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"synthesis expects ws of shape (B, {self.num_ws}, {self.w_dim}), got {tuple(ws.shape)}")
        w = ws.unbind(1)
        x = self.input(w[0])
        for name, wi in zip(self.layer_names, w[1:]):
            x = getattr(self, name)(x, wi, update_emas=update_emas)
        return x * self.output_scale if self.output_scale != 1 else x


class StyleGAN3Generator(Generator):
    """StyleGAN2's generator interface (mapping, synthesis, truncation, eval-mode clamp) around the
    alias-free synthesis network. Its EMAs (w_avg, magnitudes) move only in D's step, as NVIDIA's."""

    ema_in_d_step = True


# ----------------------------------------------------------------------------- family
STYLEGAN3_TRAIN = {"optimizer": "adam", "g_lr": 0.0025, "d_lr": 0.002, "betas": (0.0, 0.99), "eps": 1e-8,
                   "batch_size": 32, "ema_kimg": 10.0, "kimg": 25000.0}

_R = {"conv_kernel": 1, "channel_base": 65536, "channel_max": 1024, "use_radial_filters": True,
      "blur_init_sigma": 10.0}


@register("stylegan3")
class StyleGAN3(StyleFamily):
    Config = StyleGAN3Config
    tiny = ("builtin:digits?res=16",  # the registry test's config
            {"model": {"z_dim": 8, "w_dim": 8, "channel_base": 256, "channel_max": 8, "num_layers": 3,
                       "margin_size": 2, "d_channel_base": 128, "d_channel_max": 8}})
    paper = "Karras et al. 2021, Alias-Free Generative Adversarial Networks"
    train_defaults = STYLEGAN3_TRAIN
    presets = {
        "stylegan3-t": {"doc": "config T (translation equivariant): the defaults"},
        "stylegan3-r": {"model": _R, "doc": "config R (rotation equivariant): 1x1 convs, radial filters, 2x "
                                            "channels, D input blur sigma 10 fading over 200 kimg"},
        "cpu-shapes": {"model": {"z_dim": 64, "w_dim": 64, "channel_base": 2048, "channel_max": 64, "num_layers": 6,
                                 "margin_size": 4, "d_channel_base": 1024, "d_channel_max": 128, "r1_gamma": 0.1,
                                 "magnitude_ema_kimg": 2.0},
                       "train": {"batch_size": 32, "g_lr": 0.0025, "d_lr": 0.002, "ema_kimg": 2.0, "ema_rampup": 0.05,
                                 "kimg": 24.0, "snapshot_kimg": 8.0, "sample_kimg": 4.0},
                       "doc": "builtin:shapes at 32 px on 2 cores: 6 layers, 64 channels at most, 64-d latents"},
        "cpu-digits": {"model": {"resolution": 16, "z_dim": 32, "w_dim": 32, "channel_base": 1024, "channel_max": 32,
                                 "num_layers": 4, "margin_size": 2, "d_channel_base": 512, "d_channel_max": 32,
                                 "r1_gamma": 0.05, "magnitude_ema_kimg": 1.0},
                       "train": {"batch_size": 32, "g_lr": 0.003, "d_lr": 0.003, "ema_kimg": 0.5, "ema_rampup": 0.05,
                                 "kimg": 6.0},
                       "doc": "builtin:digits?res=16 in about 1.5 minutes on 2 cores: 4 layers, 32 channels"},
    }

    def validate(self, cfg: StyleGAN3Config) -> None:
        check_style_config("stylegan3", cfg)
        if cfg.num_layers <= cfg.num_critical:
            raise ConfigError("--model.num-layers must be larger than --model.num-critical")
        if cfg.resolution < 16:
            raise ConfigError(f"--model.resolution {cfg.resolution}: StyleGAN3 needs at least 16 px")

    def build(self, cfg: StyleGAN3Config):
        c_dim = cfg.c_dim if cfg.conditional else 0
        G = StyleGAN3Generator(
            cfg.z_dim, c_dim, cfg.w_dim, cfg.resolution, cfg.channels,
            mapping_kwargs={"num_layers": cfg.mapping_layers, "lr_multiplier": cfg.mapping_lr_mul,
                            "w_avg_beta": cfg.w_avg_beta},
            synthesis_kwargs={"channel_base": cfg.channel_base, "channel_max": cfg.channel_max,
                              "num_layers": cfg.num_layers, "num_critical": cfg.num_critical,
                              "first_cutoff": cfg.first_cutoff, "first_stopband": cfg.first_stopband,
                              "last_stopband_rel": cfg.last_stopband_rel, "margin_size": cfg.margin_size,
                              "output_scale": cfg.output_scale, "conv_kernel": cfg.conv_kernel,
                              "filter_size": cfg.filter_size, "lrelu_upsampling": cfg.lrelu_upsampling,
                              "use_radial_filters": cfg.use_radial_filters, "conv_clamp": cfg.conv_clamp or None,
                              "magnitude_ema_kimg": cfg.magnitude_ema_kimg},
            synthesis_class=SynthesisNetwork)
        D = Discriminator(c_dim, cfg.resolution, cfg.channels, cfg.d_architecture, cfg.d_channel_base,
                          cfg.d_channel_max, cfg.mbstd_group, cfg.mbstd_channels, conv_clamp=cfg.d_conv_clamp or None)
        return {"G": G, "D": D}
