"""DCGAN (Radford, Metz & Chintala 2016, "Unsupervised Representation Learning with Deep
Convolutional Generative Adversarial Networks").

Section 3's guidelines: strided convolutions instead of pooling (fractional-strided in G),
batch norm in both networks (not on G's output or D's input layer), no fully connected hidden
layers, ReLU in G with tanh output, LeakyReLU (slope 0.2) in D. Section 4: weights ~ N(0, 0.02),
Adam lr 2e-4 with beta1 0.5, batch 128. Channel widths follow Figure 1 (1024 at 4x4 for 64 px)
and the authors' code (ndf = 128); any power-of-two resolution from 8 up adds or drops stages.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch
from torch import nn

from ..config import Channels, Choice, Interval, Range, Resolution, Size
from ..errors import ConfigError
from ..losses import Loss
from ..nn import activation, normal_init, packed
from ..registry import register
from .family import Family, check_power_of_two
from .recipes import adversarial_phases, g_slots


@dataclass
class DCGANConfig:
    resolution: Resolution = 64
    channels: Channels = 3
    z_dim: Size = 100
    ngf: Size = 128  # G width: ngf * resolution / (2 r) channels at resolution r (Figure 1: 1024 at 4x4)
    ndf: Size = 128  # D width, mirrored
    max_channels: Size = 1024
    # the smallest feature map: 4 (Figure 1: G projects z to 4x4, D ends on 4x4); 2 adds one stage at
    # each end, as carpedm20's DCGAN-tensorflow at 28-32 px (G from 2x2x512, D down to 2x2x512), the code
    # PacGAN's stacked-MNIST experiment trains
    min_res: Annotated[int, Range(2, 4)] = 4
    # the pixel range the networks work in. signed: reals in [-1, 1] under G's tanh (DCGAN section 3).
    # unit: reals in [0, 1] under G's tanh, as carpedm20's DCGAN-tensorflow feeds MNIST (x / 255) in
    # PacGAN's stacked-MNIST code; gankit's data stay in [-1, 1], so G's output is mapped by 2 y - 1
    # and D's input by (x + 1) / 2
    net_range: Annotated[str, Choice(("signed", "unit"))] = "signed"
    g_norm: Annotated[str, Choice(("batch", "none"))] = "batch"  # batch | none
    d_norm: Annotated[str, Choice(("batch", "layer", "none"))] = "batch"  # batch | layer | none (WGAN critics drop batch norm)
    pack: Interval = 1  # PacGAN (Lin et al. 2018): D judges packs of this many samples; 1 = no packing
    # with pack m: G draws the m packing slots in m calls, each with its own batch norm statistics
    # (PacGAN's stacked-MNIST code); off: one call draws the whole batch
    g_per_slot: bool = False
    loss: Loss = "nonsaturating"


def _norm(kind: str, ch: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(ch)
    if kind == "layer":
        return nn.GroupNorm(1, ch)  # layer norm over (C, H, W), as WGAN-GP section 4 suggests for critics
    if kind == "none":
        return nn.Identity()
    raise ConfigError(f"unknown normalization '{kind}'; use batch, layer or none")


def _widths(base: int, resolution: int, cap: int, lo: int = 4) -> dict[int, int]:
    """Channels at each resolution lo <= r < resolution: base * resolution / (2 r), capped."""
    out, r = {}, lo
    while r < resolution:
        out[r] = min(base * resolution // (2 * r), cap)
        r *= 2
    return out


class Generator(nn.Module):
    """z (B, z_dim) -> image (B, channels, resolution, resolution) in [-1, 1] ([-3, 1] with unit_range)."""

    def __init__(self, resolution=64, channels=3, z_dim=100, ngf=128, max_channels=1024, norm="batch", min_res=4,
                 unit_range=False):
        super().__init__()
        self.z_dim, self.resolution, self.unit_range = z_dim, resolution, unit_range
        ch = _widths(ngf, resolution, max_channels, min_res)
        bias = norm == "none"
        r = min_res  # z projected to r x r (a fully connected layer, as a transposed convolution from 1x1)
        layers = [nn.ConvTranspose2d(z_dim, ch[r], r, 1, 0, bias=bias), _norm(norm, ch[r]), nn.ReLU()]
        while 2 * r < resolution:
            layers += [nn.ConvTranspose2d(ch[r], ch[2 * r], 4, 2, 1, bias=bias), _norm(norm, ch[2 * r]), nn.ReLU()]
            r *= 2
        layers += [nn.ConvTranspose2d(ch[r], channels, 4, 2, 1), nn.Tanh()]  # r -> resolution
        self.net = nn.Sequential(*layers)
        normal_init(self)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        y = self.net(z.view(z.shape[0], self.z_dim, 1, 1))
        return y * 2 - 1 if self.unit_range else y  # unit: G's [0, 1] target in the data's [-1, 1]


class Discriminator(nn.Module):
    """image (B, channels, resolution, resolution) -> logit (B,)."""

    def __init__(self, resolution=64, channels=3, ndf=128, max_channels=1024, norm="batch", min_res=4,
                 unit_range=False):
        super().__init__()
        self.unit_range = unit_range
        ch = _widths(ndf, resolution, max_channels, min_res)
        r = resolution // 2
        layers = [nn.Conv2d(channels, ch[r], 4, 2, 1), activation("lrelu")]  # no norm on the input layer
        bias = norm == "none"
        while r > min_res:
            layers += [nn.Conv2d(ch[r], ch[r // 2], 4, 2, 1, bias=bias), _norm(norm, ch[r // 2]), activation("lrelu")]
            r //= 2
        layers += [nn.Conv2d(ch[r], 1, r, 1, 0)]  # r x r -> 1x1 logit, no sigmoid (the loss applies it)
        self.net = nn.Sequential(*layers)
        normal_init(self)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        if self.unit_range:
            x = (x + 1) / 2  # the data's [-1, 1] back to [0, 1]
        return self.net(x).flatten()


@register("dcgan")
class DCGAN(Family):
    Config = DCGANConfig
    tiny = ("builtin:digits?res=8", {"model": {"ngf": 8, "ndf": 8, "z_dim": 8}})  # the registry test's config
    paper = "Radford et al. 2016, DCGAN"
    train_defaults = {"optimizer": "adam", "g_lr": 2e-4, "d_lr": 2e-4, "betas": (0.5, 0.999), "batch_size": 128}
    presets = {
        "paper": {},
        # a few minutes on 2 CPU cores for 16-32 px data such as builtin:digits
        # builtin:digits (8-32 px) in a minute or a few on 2 CPU cores: narrow nets, many small steps,
        # a G EMA (half-life 1 kimg) and a linear learning-rate decay over the second half
        "cpu-digits": {"model": {"ngf": 32, "ndf": 32, "z_dim": 64},
                       "train": {"batch_size": 32, "ema_kimg": 1.0, "lr_schedule": "linear-decay", "kimg": 300}},
        # PacGAN's stacked-MNIST DCGAN (fjxmlzn/PacGAN stacked_MNIST_experiments/VEEGAN_experiment, on
        # carpedm20's DCGAN-tensorflow): 64 filters, z 100, Adam 2e-4 beta1 0.5, batch 64 packs, G twice per
        # D step, one G call per packing slot; 50 epochs of 128,000 packs = 100,000 steps for any pack size
        "pacgan-stacked": {"model": {"ngf": 64, "ndf": 64, "z_dim": 100, "g_per_slot": True},
                           "train": {"batch_size": 64, "n_gen": 2, "kimg": 6400},
                           "doc": "PacGAN's stacked-MNIST recipe: 64 filters, z 100, Adam 2e-4 beta1 0.5, G twice "
                                  "per D step, one G call per packing slot, 50 epochs of 128,000 packs (100,000 "
                                  "steps of 64 packs); with --model.pack m set --train.batch-size 64*m "
                                  "--train.kimg 6400*m"},
        # bf16 where the CPU computes it natively (1.47x at 32 px; fp32: --train.precision fp32)
        "cpu-64": {"model": {"ngf": 32, "ndf": 32, "max_channels": 256}, "train": {"batch_size": 32, "precision": "auto"}},
    }

    def validate(self, cfg: DCGANConfig) -> None:
        check_power_of_two("dcgan", cfg.resolution, lo=8)
        if cfg.min_res not in (2, 4):
            raise ConfigError(f"--model.min-res {cfg.min_res}: use 4 (DCGAN's 4x4) or 2 (carpedm20's 2x2 at 28-32 px)")

    def build(self, cfg: DCGANConfig):
        unit = cfg.net_range == "unit"
        G = Generator(cfg.resolution, cfg.channels, cfg.z_dim, cfg.ngf, cfg.max_channels, cfg.g_norm, cfg.min_res,
                      unit)
        D = Discriminator(cfg.resolution, cfg.channels * cfg.pack, cfg.ndf, cfg.max_channels, cfg.d_norm,
                          cfg.min_res, unit)
        return {"G": G, "D": packed(D, cfg.pack)}

    def phases(self, cfg: DCGANConfig, nets, train):
        return adversarial_phases(cfg.loss, n_critic=train.n_critic, n_gen=train.n_gen,
                                  g_slots=g_slots(cfg.pack, cfg.g_per_slot))
