"""StyleGAN (Karras, Laine & Aila 2019, "A Style-Based Generator Architecture for Generative
Adversarial Networks").

Where a reader of the paper finds each part:

* Section 2, Figure 1b: the mapping network f (8 fully connected layers, lr multiplier 0.01),
  the learned constant 4x4 input, AdaIN (eq. 1) after every convolution, and the noise inputs B
  with learned per-channel scaling factors: :class:`gankit.nn.MappingNetwork`,
  :class:`StyleLayer`, :class:`SynthesisNetwork`.
* Section 3.1: style mixing regularization (90 % of images use two latents with a random
  crossover) and the truncation trick w' = w_avg + psi (w - w_avg) (``G(z, truncation_psi=0.7)``).
* Table 1, configurations A-F, as presets: A the progressive GAN baseline (latent into a dense
  first layer, pixel norm, nearest/box resampling), B tuned with bilinear ([1, 2, 1]) resampling,
  C + mapping network and styles, D + constant input, E + noise inputs, F + mixing regularization.
* Appendix C: Adam (0, 0.99), equalized learning rate, leaky ReLU 0.2, minibatch stddev (group 4),
  non-saturating loss with R1 (gamma 10) on FFHQ, G EMA, and the PGGAN discriminator (here
  StyleGAN2's discriminator with the ``orig`` architecture and the [1, 2, 1] filter).

The paper trained every configuration with progressive growing. gankit has no growing yet
(a later issue), so G runs with the ``skip`` output architecture of StyleGAN2 (the sum of
upsampled per-resolution RGB outputs, which mimics growing's fade-in), D with ``orig``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

import torch
from torch import nn

from ..config import Channels, Choice, Count, Fraction, Interval, Layers, Positive, Range, Resolution, Size
from ..errors import ConfigError
from ..nn import AdaIN, EqualConv2d, EqualLinear, NoiseInput, bias_act, pixel_norm
from ..nn.resample import setup_filter, upsample2d
from ..registry import register
from .stylegan2 import Architecture, Discriminator, Generator, StyleFamily, channel_widths, check_style_config


@dataclass
class StyleGANConfig:
    resolution: Resolution = 1024
    channels: Channels = 3
    z_dim: Size = 512
    w_dim: Size = 512
    conditional: bool = False  # class-conditional mapping (StyleGAN2-ADA style embedding)
    c_dim: Count = 0  # number of classes; set from the data when conditional
    mapping_layers: Layers = 8  # section 2; 0 feeds the normalized z as w (configs A, B)
    mapping_lr_mul: Positive = 0.01  # appendix C
    w_avg_beta: Fraction = 0.995  # tracked average w for truncation
    channel_base: Annotated[int, Range(1, 1 << 24)] = 16384  # channels min(channel_base / r, channel_max): TF fmap_base 8192
    channel_max: Size = 512
    const_input: bool = True  # learned 4x4 constant (config D); false = latent through a dense layer
    use_styles: bool = True  # AdaIN after every convolution (config C); false = pixel norm (PGGAN)
    use_noise: bool = True  # per-layer noise with per-channel strengths (config E)
    resample_filter: tuple[Annotated[int, Range(1, 1 << 16)], ...] = (1, 2, 1)  # bilinear (config B); (1, 1) = nearest / box (config A)
    g_architecture: Annotated[str, Choice(("skip", "orig"))] = "skip"  # skip | orig: RGB output summed over resolutions, or only at the end
    d_architecture: Architecture = "orig"  # the progressive GAN discriminator
    mbstd_group: Count = 4
    mbstd_channels: Size = 1
    r1_gamma: float = 10.0  # FFHQ: non-saturating loss with R1, gamma 10
    d_reg_interval: Interval = 1  # R1 in every D step (StyleGAN had no lazy regularization)
    pl_weight: float = 0.0  # path length regularization is StyleGAN2's
    pl_decay: Fraction = 0.01
    pl_batch_shrink: Interval = 2
    g_reg_interval: Interval = 1
    style_mixing_prob: Fraction = 0.9  # section 3.1 (config F)
    share_fakes: bool = False  # one G forward per iteration: D steps first, G judges the same fakes (recipes/style.py); false = NVIDIA's G-then-D with fresh fakes


class StyleLayer(nn.Module):
    """The layer epilogue of Figure 1b: + noise (B), + bias, leaky ReLU, then AdaIN with style A(w)
    (or pixel norm when styles are off, as in the progressive GAN)."""

    def __init__(self, channels: int, w_dim: int, resolution: int, use_noise: bool, use_styles: bool):
        super().__init__()
        self.noise = NoiseInput(resolution, channels) if use_noise else None  # per-channel strengths, init 0
        self.bias = nn.Parameter(torch.zeros(channels))
        self.style = AdaIN(channels, w_dim) if use_styles else None

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        if self.noise is not None:
            x = self.noise(x, noise_mode)
        x = bias_act(x, self.bias, act="lrelu")
        return self.style(x, w) if self.style is not None else pixel_norm(x)  # eq. 1 / PGGAN eq. 1


class SynthesisBlock(nn.Module):
    """[const | dense | upsampling conv] + epilogue, conv 3x3 + epilogue, and an RGB output."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, img_channels: int,
                 is_last: bool, architecture: str, const_input: bool, use_noise: bool, use_styles: bool,
                 resample_filter):
        super().__init__()
        self.in_channels, self.resolution, self.architecture = in_channels, resolution, architecture
        self.register_buffer("resample_filter", setup_filter(resample_filter), persistent=False)
        if in_channels == 0:
            if const_input:
                self.const = nn.Parameter(torch.ones(out_channels, resolution, resolution))  # NVIDIA init: ones
            else:  # traditional input: latent -> dense -> 4x4 (gain sqrt(2)/4 as in PGGAN's code)
                self.dense = EqualLinear(w_dim, out_channels * resolution ** 2, bias=False)  # bias comes next
        else:
            self.conv0 = EqualConv2d(in_channels, out_channels, 3, up=2, resample_filter=resample_filter)
        self.epi0 = StyleLayer(out_channels, w_dim, resolution, use_noise, use_styles)
        self.conv1 = EqualConv2d(out_channels, out_channels, 3)
        self.epi1 = StyleLayer(out_channels, w_dim, resolution, use_noise, use_styles)
        self.has_rgb = is_last or architecture == "skip"
        if self.has_rgb:
            self.torgb = EqualConv2d(out_channels, img_channels, 1)
        self.num_conv, self.num_torgb = 2, 0  # two styles per block; RGB layers take none

    def forward(self, x, img, ws: torch.Tensor, noise_mode: str = "random", fused=None):
        w = ws.unbind(1)
        if self.in_channels == 0:
            B = ws.shape[0]
            if hasattr(self, "const"):
                x = self.const.unsqueeze(0).expand(B, -1, -1, -1)
            else:
                x = self.dense(w[0]).view(B, -1, self.resolution, self.resolution) * (math.sqrt(2) / 4)
        else:
            x = self.conv0(x)
        x = self.epi0(x, w[0], noise_mode)
        x = self.epi1(self.conv1(x), w[1], noise_mode)
        if img is not None:
            img = upsample2d(img, self.resample_filter)
        if self.has_rgb:
            y = self.torgb(x)
            img = y if img is None else img + y
        return x, img


class SynthesisNetwork(nn.Module):
    """g: W -> image with one style per convolution (2 per resolution, 18 at 1024 px)."""

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, channel_base: int = 16384,
                 channel_max: int = 512, architecture: str = "skip", **block_kwargs):
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.block_resolutions = [2 ** i for i in range(2, int(math.log2(img_resolution)) + 1)]
        ch = channel_widths(channel_base, channel_max, self.block_resolutions)
        for res in self.block_resolutions:
            setattr(self, f"b{res}", SynthesisBlock(ch[res // 2] if res > 4 else 0, ch[res], w_dim, res, img_channels,
                                                    res == img_resolution, architecture, **block_kwargs))
        self.num_ws = 2 * len(self.block_resolutions)

    def forward(self, ws: torch.Tensor, noise_mode: str = "random", fused=None) -> torch.Tensor:
        if ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"synthesis expects ws of shape (B, {self.num_ws}, {self.w_dim}), got {tuple(ws.shape)}")
        x = img = None
        for i, res in enumerate(self.block_resolutions):
            x, img = getattr(self, f"b{res}")(x, img, ws[:, 2 * i:2 * i + 2], noise_mode)
        return img


_NO_GROWING = ("the paper grew it progressively; gankit has no growing yet, so it trains at full resolution "
               "with the skip output architecture")
_BASELINE = {"mapping_layers": 0, "use_styles": False, "const_input": False, "use_noise": False,
             "style_mixing_prob": 0.0}


@register("stylegan")
class StyleGAN(StyleFamily):
    Config = StyleGANConfig
    tiny = ("builtin:digits?res=8",  # the registry test's config
            {"model": {"z_dim": 8, "w_dim": 8, "mapping_layers": 1, "channel_base": 64, "channel_max": 8}})
    paper = "Karras et al. 2019, A Style-Based Generator Architecture for Generative Adversarial Networks"
    train_defaults = {"optimizer": "adam", "g_lr": 0.001, "d_lr": 0.001, "betas": (0.0, 0.99), "eps": 1e-8,
                      "batch_size": 32, "ema_kimg": 10.0, "kimg": 25000.0}
    presets = {
        # Table 1 (FFHQ column); each adds one change to the previous configuration
        "config-a": {"model": {**_BASELINE, "resample_filter": (1, 1)},
                     "doc": "A: progressive GAN baseline (dense input, pixel norm, box resampling); " + _NO_GROWING},
        "config-b": {"model": {**_BASELINE},
                     "doc": "B: + tuning incl. bilinear up/down-sampling; " + _NO_GROWING},
        "config-c": {"model": {"const_input": False, "use_noise": False, "style_mixing_prob": 0.0},
                     "doc": "C: + mapping network and styles (AdaIN); " + _NO_GROWING},
        "config-d": {"model": {"use_noise": False, "style_mixing_prob": 0.0},
                     "doc": "D: + learned constant input; " + _NO_GROWING},
        "config-e": {"model": {"style_mixing_prob": 0.0}, "doc": "E: + noise inputs; " + _NO_GROWING},
        "config-f": {"doc": "F: + mixing regularization, the full StyleGAN (the defaults); " + _NO_GROWING},
        "cpu-digits": {"model": {"z_dim": 32, "w_dim": 32, "mapping_layers": 2, "channel_base": 2048,
                                 "channel_max": 64, "r1_gamma": 0.05},
                       "train": {"batch_size": 32, "ema_kimg": 0.5, "ema_rampup": 0.05, "g_lr": 0.002,
                                 "d_lr": 0.002, "kimg": 40.0},
                       "doc": "builtin:digits at its native 8 px on 2 CPU cores: 64 channels, 32-d latents"},
    }

    def validate(self, cfg: StyleGANConfig) -> None:
        check_style_config("stylegan", cfg)
        if cfg.g_architecture == "resnet":
            raise ConfigError("--model.g-architecture resnet: StyleGAN's generator is orig or skip")
        if cfg.mapping_layers == 0 and cfg.z_dim + (cfg.c_dim if cfg.conditional else 0) != cfg.w_dim:
            raise ConfigError("--model.mapping-layers 0 uses z as w: set --model.w-dim equal to --model.z-dim")

    def build(self, cfg: StyleGANConfig):
        c_dim = cfg.c_dim if cfg.conditional else 0
        G = Generator(cfg.z_dim, c_dim, cfg.w_dim, cfg.resolution, cfg.channels,
                      mapping_kwargs={"num_layers": cfg.mapping_layers, "lr_multiplier": cfg.mapping_lr_mul,
                                      "w_avg_beta": cfg.w_avg_beta},
                      synthesis_kwargs={"channel_base": cfg.channel_base, "channel_max": cfg.channel_max,
                                        "architecture": cfg.g_architecture, "const_input": cfg.const_input,
                                        "use_noise": cfg.use_noise, "use_styles": cfg.use_styles,
                                        "resample_filter": cfg.resample_filter},
                      synthesis_class=SynthesisNetwork)
        D = Discriminator(c_dim, cfg.resolution, cfg.channels, cfg.d_architecture, cfg.channel_base, cfg.channel_max,
                          cfg.mbstd_group, cfg.mbstd_channels, cfg.resample_filter)
        return {"G": G, "D": D}
