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

from ..config import Choice, Interval, Size
from ..losses import clip_weights
from ..registry import register
from .recipes import adversarial_phases
from .recipes.wasserstein import WassersteinFamily


@dataclass
class WGANConfig:
    data_shape: tuple[Size, ...] = (3, 64, 64)  # set from the data
    arch: Annotated[str, Choice(("auto", "dcgan", "mlp"))] = "auto"  # auto (dcgan for images, mlp for vectors) | dcgan | mlp
    z_dim: Size = 100
    ngf: Size = 64  # dcgan arch widths (the WGAN code's defaults)
    ndf: Size = 64
    max_channels: Size = 1024
    mlp_hidden: tuple[Size, ...] = (512, 512, 512)
    g_hidden: tuple[Size, ...] = ()  # mlp arch: G's hidden widths when they differ from mlp_hidden (empty: mlp_hidden)
    d_hidden: tuple[Size, ...] = ()  # mlp arch: the critic's hidden widths (empty: mlp_hidden)
    g_norm: Annotated[str, Choice(("none", "batch"))] = "none"  # mlp arch: batch norm in G's hidden layers
    d_norm: Annotated[str, Choice(("none", "layer", "batch"))] = "none"  # critic normalization for the dcgan arch: none | layer
    clip: float = 0.01  # Algorithm 1, c
    pack: Interval = 1  # PacGAN (Lin et al. 2018): the critic judges packs of this many samples; 1 = no packing


@register("wgan")
class WGAN(WassersteinFamily):
    Config = WGANConfig
    tiny = ("builtin:digits?res=16", {"model": {"ngf": 8, "ndf": 8, "z_dim": 8}})  # the registry test's config
    paper = "Arjovsky et al. 2017, Wasserstein GAN"
    train_defaults = {"optimizer": "rmsprop", "g_lr": 5e-5, "d_lr": 5e-5, "batch_size": 64, "n_critic": 5}
    presets = {
        "paper": {},
        "cpu-toy": {"model": {"z_dim": 2, "mlp_hidden": (256, 256, 256)}, "train": {"g_lr": 5e-4, "d_lr": 5e-4,
                                                                                      "batch_size": 256}},
        "cpu-digits": {"model": {"ngf": 32, "ndf": 32, "z_dim": 64}, "train": {"g_lr": 2e-4, "d_lr": 2e-4}},
    }

    def phases(self, cfg: WGANConfig, nets, train):
        return adversarial_phases("wasserstein", n_critic=train.n_critic, n_gen=train.n_gen,
                                  after_d=functools.partial(clip_weights, c=cfg.clip))
