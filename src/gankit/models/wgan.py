"""WGAN (Arjovsky, Chintala & Bottou 2017, "Wasserstein GAN").

Algorithm 1: the critic f (no sigmoid, no batch norm) maximizes E[f(x)] - E[f(G(z))] for
n_critic = 5 steps per generator step, its weights clipped to [-c, c] with c = 0.01 after each
step; RMSProp with lr 5e-5, batch 64. Image data uses the DCGAN networks (the paper's main
architecture) with the critic's batch norm removed; vector data (the 2D mixtures) uses ReLU
MLPs of three 512-unit layers. Not included: the authors' code's extra 100 critic steps during
the first 25 generator steps (not part of Algorithm 1).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Annotated

from ..config import Choice, Size
from ..errors import ConfigError
from ..losses import clip_weights
from ..registry import register
from . import dcgan, gan
from .family import Family, adversarial_phases, check_power_of_two


@dataclass
class WGANConfig:
    data_shape: tuple[Size, ...] = (3, 64, 64)  # set from the data
    arch: Annotated[str, Choice(("auto", "dcgan", "mlp"))] = "auto"  # auto (dcgan for images, mlp for vectors) | dcgan | mlp
    z_dim: Size = 100
    ngf: Size = 64  # dcgan arch widths (the WGAN code's defaults)
    ndf: Size = 64
    max_channels: Size = 1024
    mlp_hidden: tuple[Size, ...] = (512, 512, 512)
    d_norm: Annotated[str, Choice(("none", "layer", "batch"))] = "none"  # critic normalization for the dcgan arch: none | layer
    clip: float = 0.01  # Algorithm 1, c


def resolve_arch(cfg) -> str:
    if cfg.arch == "auto":
        return "dcgan" if len(cfg.data_shape) == 3 else "mlp"
    if cfg.arch not in ("dcgan", "mlp"):
        raise ConfigError(f"--model.arch {cfg.arch}: use auto, dcgan or mlp")
    return cfg.arch


def build_pair(cfg):
    """The WGAN families' networks: DCGAN's for images, MLPs for vectors (shared with wgan-gp)."""
    if resolve_arch(cfg) == "mlp":
        G = gan.Generator(cfg.data_shape, cfg.z_dim, cfg.mlp_hidden, "relu")
        D = gan.Discriminator(cfg.data_shape, cfg.mlp_hidden, "relu", dropout=0.0)
        return G, D
    c, res, _ = cfg.data_shape
    G = dcgan.Generator(res, c, cfg.z_dim, cfg.ngf, cfg.max_channels, "batch")
    D = dcgan.Discriminator(res, c, cfg.ndf, cfg.max_channels, cfg.d_norm)
    return G, D


class WassersteinFamily(Family):
    """Shared parts of WGAN and WGAN-GP: data handling and networks."""

    data_kinds = ("vector", "image")

    def data_fields(self, info):
        return {"data_shape": tuple(info.shape)}

    def validate(self, cfg) -> None:
        if resolve_arch(cfg) == "dcgan":
            if len(cfg.data_shape) != 3:
                raise ConfigError("--model.arch dcgan needs image data")
            check_power_of_two(type(self).registered_name, cfg.data_shape[1], lo=8)
        if cfg.d_norm == "batch":
            raise ConfigError("--model.d-norm batch: Wasserstein critics take no batch norm; use none or layer")

    def build(self, cfg):
        return build_pair(cfg)


@register("wgan")
class WGAN(WassersteinFamily):
    Config = WGANConfig
    paper = "Arjovsky et al. 2017, Wasserstein GAN"
    train_defaults = {"optimizer": "rmsprop", "g_lr": 5e-5, "d_lr": 5e-5, "batch_size": 64, "n_critic": 5}
    presets = {
        "paper": {},
        "cpu-toy": {"model": {"z_dim": 2, "mlp_hidden": (256, 256, 256)}, "train": {"g_lr": 5e-4, "d_lr": 5e-4,
                                                                                      "batch_size": 256}},
        "cpu-digits": {"model": {"ngf": 32, "ndf": 32, "z_dim": 64}, "train": {"g_lr": 2e-4, "d_lr": 2e-4}},
    }

    def phases(self, cfg: WGANConfig, G, D, train):
        return adversarial_phases("wasserstein", n_critic=train.n_critic,
                                  after_d=functools.partial(clip_weights, c=cfg.clip))
