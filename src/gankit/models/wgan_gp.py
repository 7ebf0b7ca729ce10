"""WGAN-GP (Gulrajani et al. 2017, "Improved Training of Wasserstein GANs").

Algorithm 1: the Wasserstein critic loss plus lambda * E[(||grad D(x_hat)|| - 1)^2] on random
interpolates x_hat, lambda = 10, n_critic = 5, Adam lr 1e-4 with betas (0, 0.9), batch 64; no
batch norm in the critic (section 4; layer norm is the suggested drop-in: ``d_norm=layer``).
The toy experiments used ReLU MLPs of three 512-unit layers with 2-D noise and batch 256,
which the ``cpu-toy`` preset follows. Image data uses the DCGAN networks (the paper's image
results used ResNets, which gankit does not have yet).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..losses import gradient_penalty
from ..registry import register
from .recipes import adversarial_phases
from .recipes.wasserstein import WassersteinFamily
from .wgan import WGANConfig


@dataclass
class WGANGPConfig(WGANConfig):
    gp_lambda: float = 10.0  # Algorithm 1, lambda
    clip: float = 0.0  # unused: the gradient penalty replaces clipping


@register("wgan-gp")
class WGANGP(WassersteinFamily):
    Config = WGANGPConfig
    tiny = ("builtin:ring8?n=512", {"model": {"mlp_hidden": (16, 16), "z_dim": 2}})  # the registry test's config
    paper = "Gulrajani et al. 2017, Improved Training of Wasserstein GANs"
    train_defaults = {"optimizer": "adam", "g_lr": 1e-4, "d_lr": 1e-4, "betas": (0.0, 0.9), "batch_size": 64,
                      "n_critic": 5}
    presets = {
        "paper": {},
        # ring8 in about a minute on 2 cores: wider steps, then a linear decay that sharpens the modes
        "cpu-toy": {"model": {"z_dim": 2, "mlp_hidden": (256, 256, 256)},
                    "train": {"batch_size": 128, "g_lr": 1e-3, "d_lr": 1e-3, "lr_schedule": "linear-decay",
                              "lr_decay_start": 0.3, "kimg": 800}},
        "cpu-digits": {"model": {"ngf": 32, "ndf": 32, "z_dim": 64}, "train": {"g_lr": 2e-4, "d_lr": 2e-4}},
    }

    def phases(self, cfg: WGANGPConfig, nets, train):
        def penalty(s, fake):
            gp = gradient_penalty(s.D, s.real, fake)
            return {"loss": cfg.gp_lambda * gp, "gp": gp.detach()}  # Algorithm 1 line 7: + lambda * GP

        return adversarial_phases("wasserstein", n_critic=train.n_critic, n_gen=train.n_gen, d_penalty=penalty)
