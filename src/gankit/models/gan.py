"""The original GAN (Goodfellow et al. 2014, "Generative Adversarial Nets").

Multilayer perceptrons for both players, on vectors (the 2D mixtures) or flattened images.
Defaults follow the paper's MNIST model (the authors' pylearn2 ``mnist.yaml``): G has two
ReLU layers of 1200 units, D two maxout layers of 240 units with 5 pieces and dropout, trained
with SGD (lr 0.1, momentum 0.5), batch 100, k = 1 D step per G step. The generator uses the
non-saturating loss the paper recommends in section 3. Image outputs use tanh because gankit
scales images to [-1, 1] (the paper's sigmoid on [0, 1] is the same up to that affine map).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

import torch
from torch import nn

from ..config import Choice, Interval, Range, Size
from ..losses import Loss
from ..nn import MLP, normal_init, packed
from ..registry import register
from .family import Family
from .recipes import adversarial_phases, g_slots


@dataclass
class GANConfig:
    data_shape: tuple[Size, ...] = (1, 28, 28)  # set from the data: (D,) for vectors, (C, H, W) for images
    z_dim: Size = 100
    g_hidden: tuple[Size, ...] = (1200, 1200)
    d_hidden: tuple[Size, ...] = (240, 240)
    g_act: Annotated[str, Choice(("relu", "lrelu"))] = "relu"
    d_act: Annotated[str, Choice(("maxout", "relu", "lrelu"))] = "maxout"  # maxout | relu | lrelu
    maxout_pieces: Interval = 5
    d_dropout: Annotated[float, Range(0.0, 0.99)] = 0.5
    g_norm: Annotated[str, Choice(("none", "batch"))] = "none"  # none | batch (PacGAN's toy G)
    init_std: Annotated[float, Range(0.0, 1.0)] = 0.0  # weights ~ N(0, std), biases 0; 0 = PyTorch's default init
    pack: Interval = 1  # PacGAN (Lin et al. 2018): D judges packs of this many samples; 1 = no packing
    loss: Loss = "nonsaturating"  # minimax | nonsaturating | lsgan | hinge | wasserstein
    # alternating: D then G, each on fresh fakes (Goodfellow et al. 2014, Algorithm 1); simultaneous:
    # both gradients at (G_t, D_t) from one batch of fakes, as PacGAN's code (ALI's update)
    update: Annotated[str, Choice(("alternating", "simultaneous"))] = "alternating"
    # with pack m: G draws the m packing slots in m calls, each with its own batch norm statistics
    # (PacGAN's code); off: one call draws the whole batch
    g_per_slot: bool = False
    g_norm_momentum: Annotated[float, Range(0.0, 1.0)] = 0.1  # batch norm's population update weight per step


class Generator(nn.Module):
    """z (B, z_dim) -> sample (B, *data_shape); tanh output for images, linear for vectors."""

    def __init__(self, data_shape=(1, 28, 28), z_dim=100, hidden=(1200, 1200), act="relu", norm="none",
                 norm_momentum=0.1):
        super().__init__()
        self.z_dim, self.data_shape = z_dim, tuple(data_shape)
        out_act = "tanh" if len(self.data_shape) == 3 else "identity"
        self.net = MLP((z_dim, *hidden, math.prod(self.data_shape)), act=act, out_act=out_act, norm=norm,
                       norm_momentum=norm_momentum)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z).view(z.shape[0], *self.data_shape)


class Discriminator(nn.Module):
    """sample (B, *data_shape) -> logit (B,)."""

    def __init__(self, data_shape=(1, 28, 28), hidden=(240, 240), act="maxout", pieces=5, dropout=0.5, pack=1):
        super().__init__()
        self.net = MLP((math.prod(data_shape) * pack, *hidden, 1), act=act, pieces=pieces, dropout=dropout)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x.flatten(1)).squeeze(1)


#: PacGAN's 2D-grid networks (fjxmlzn/PacGAN synthetic_data_experiments/2DGrid_GAN&PacGAN): weights
#: IsotropicGaussian(0.02), biases 0
PACGAN_TOY = {"z_dim": 2, "g_hidden": (400, 400, 400, 400), "g_norm": "batch", "d_hidden": (200, 200, 200),
              "d_act": "maxout", "maxout_pieces": 5, "d_dropout": 0.0, "init_std": 0.02}
#: its optimizer and budget: Adam 1e-4 beta1 0.8, batch 100, 400 epochs of 100k points
PACGAN_TRAIN = {"optimizer": "adam", "g_lr": 1e-4, "d_lr": 1e-4, "betas": (0.8, 0.999), "batch_size": 100, "kimg": 40000}


@register("gan")
class GAN(Family):
    Config = GANConfig
    tiny = ("builtin:ring8?n=512",  # the registry test's config
            {"model": {"g_hidden": (16,), "d_hidden": (16,), "z_dim": 2}})
    paper = "Goodfellow et al. 2014, Generative Adversarial Nets"
    data_kinds = ("vector", "image")
    train_defaults = {"optimizer": "sgd", "g_lr": 0.1, "d_lr": 0.1, "momentum": 0.5, "batch_size": 100}
    presets = {
        # PacGAN's 2D-grid networks and optimizer
        "pacgan-toy": {"model": {**PACGAN_TOY}, "train": {**PACGAN_TRAIN},
                       "doc": "PacGAN's toy networks: G 4 x 400 ReLU + batch norm, D 3 maxout layers x 200 (5 pieces), "
                              "Adam 1e-4 beta1 0.8, batch 100, z in R^2, 400 epochs of 100k points; with --model.pack m "
                              "PacGAN's batch is 100 packs, so set --train.batch-size 100*m"},
        # pacgan-toy with the update of PacGAN's code (ALI's simultaneous step; the paper does not say)
        "pacgan-code": {"model": {**PACGAN_TOY, "update": "simultaneous", "g_per_slot": True, "g_norm_momentum": 0.05},
                        "train": {**PACGAN_TRAIN},
                        "doc": "pacgan-toy as PacGAN's code trains it (fjxmlzn/PacGAN): ALI's simultaneous update "
                               "(both gradients from one pass, applied together), one G call per packing slot, "
                               "batch norm population weight 0.05; pacgan-toy alternates as Algorithm 1 of "
                               "Goodfellow et al. 2014"},
        # PacGAN4 at PacGAN's budget (400,000 steps of 100 packs of 4), with a linear decay over the last 40%
        "pacgan-grid": {"model": {**PACGAN_TOY, "pack": 4},
                        "train": {**PACGAN_TRAIN, "batch_size": 400, "kimg": 160000, "lr_schedule": "linear-decay",
                                  "lr_decay_start": 0.6, "snapshot_kimg": 4000, "sample_kimg": 4000},
                        "doc": "for builtin:grid25: pacgan-toy with PacGAN4's packing (100 packs of 4) for PacGAN's "
                               "400,000 steps, the rate constant for 60% of them and then decayed linearly to 0 (not "
                               "PacGAN's: its rate is constant); one seed: 25 / 25 modes, 95.9% high quality (docs/metrics.md)"},
        # PacGAN's networks in 1.25% of its steps: 10x the learning rate, then a linear decay
        "cpu-pacgan": {"model": {**PACGAN_TOY},
                       "train": {"optimizer": "adam", "g_lr": 1e-3, "d_lr": 1e-3, "betas": (0.8, 0.999),
                                 "batch_size": 100, "lr_schedule": "linear-decay", "lr_decay_start": 0.3, "kimg": 500},
                       "doc": "pacgan-toy's networks for 5,000 steps (PacGAN: 400,000): Adam 1e-3 beta1 0.8, linear "
                              "decay from 30%; with --model.pack m use --train.batch-size 100*m and --kimg 500*m"},
        # small and quick on 2 CPU cores: the 2D ring / grid mixtures
        "cpu-toy": {"model": {"z_dim": 2, "g_hidden": (128, 128, 128), "d_hidden": (128, 128, 128), "d_act": "relu",
                              "d_dropout": 0.0},
                    "train": {"optimizer": "adam", "g_lr": 1e-3, "d_lr": 1e-3, "betas": (0.5, 0.999),
                              "batch_size": 256, "lr_schedule": "linear-decay", "lr_decay_start": 0.3,
                              "kimg": 300}},
        "cpu-digits": {"model": {"z_dim": 32, "g_hidden": (256, 256), "d_hidden": (128, 128), "d_dropout": 0.2},
                       "train": {"optimizer": "adam", "g_lr": 5e-4, "d_lr": 5e-4, "betas": (0.5, 0.999),
                                 "batch_size": 64}},
    }

    def data_fields(self, info):
        return {"data_shape": tuple(info.shape)}

    def build(self, cfg: GANConfig):
        # the population statistics move by g_norm_momentum per step: split over the slots' G calls, this is
        # PacGAN's code (0.95 p + 0.05 * the mean of the slots' statistics) to first order
        G = Generator(cfg.data_shape, cfg.z_dim, cfg.g_hidden, cfg.g_act, cfg.g_norm,
                      cfg.g_norm_momentum / g_slots(cfg.pack, cfg.g_per_slot))
        D = Discriminator(cfg.data_shape, cfg.d_hidden, cfg.d_act, cfg.maxout_pieces, cfg.d_dropout, cfg.pack)
        if cfg.init_std > 0:
            for net in (G, D):
                normal_init(net, cfg.init_std, norm_std=0.0)
        return {"G": G, "D": packed(D, cfg.pack)}

    def phases(self, cfg: GANConfig, nets, train):
        return adversarial_phases(cfg.loss, n_critic=train.n_critic, n_gen=train.n_gen,
                                  simultaneous=cfg.update == "simultaneous", g_slots=g_slots(cfg.pack, cfg.g_per_slot))
