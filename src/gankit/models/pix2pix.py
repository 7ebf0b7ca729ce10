"""pix2pix (Isola et al. 2017, "Image-to-Image Translation with Conditional Adversarial Networks").

A conditional GAN on paired data: G maps an image A to B; D, a PatchGAN, judges (A, B) pairs
concatenated on channels. Objective (eq. 4): G* = arg min_G max_D L_cGAN(G, D) + lambda L_L1(G),
lambda = 100. Defaults are junyanz's pytorch-CycleGAN-and-pix2pix ``--model pix2pix``: U-Net 256
(``unet_256``; ``unet`` picks the depth that reaches 1x1 for the data), 70x70 PatchGAN
(``n_layers`` 3), batch norm, vanilla (cross-entropy) GAN loss, D's objective halved (section 3.3),
Adam 2e-4 with beta1 0.5, batch 1, 100 epochs at the initial rate then 100 decaying linearly to 0,
N(0, 0.02) initialization, dropout 0.5 as the only noise (section 3.1), kept at test time with the
test batch's statistics (section 3.3).

Inference (``gankit.load(run)``): ``G(A) -> B``, images in [-1, 1]; sampling goes through
:func:`gankit.nn.translation.paper_inference` (dropout on, batch statistics of the input batch).

Order of the two steps: the G step runs first and leaves its fake B in the iteration's scratch;
the D step then judges that same fake, as junyanz computes one forward pass for both (junyanz
steps D before G against the same forward; here G steps first, so G meets D before D's update
of that iteration).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch
import torch.nn.functional as F
from torch import nn

from ..config import Channels, Choice, Range, Resolution, Size
from ..losses import GanMode, halved_d_loss, target_g_loss
from ..nn import normal_init
from ..nn.translation import NORMS, PatchDiscriminator, paper_inference
from ..registry import register
from .recipes.translation import TranslationFamily, build_generator, check_generator, check_patch_depth

GENERATORS = ("unet", "unet_256", "unet_128", "resnet_9blocks", "resnet_6blocks")


@dataclass
class Pix2PixConfig:
    resolution: Resolution = 256  # set from the data
    in_channels: Channels = 3  # A's channels (set from the data)
    channels: Channels = 3  # B's channels (set from the data)
    netG: Annotated[str, Choice(GENERATORS)] = "unet_256"
    ngf: Size = 64
    ndf: Size = 64
    n_layers_D: Annotated[int, Range(0, 8)] = 3  # PatchGAN depth: 3 = 70x70, 0 = PixelGAN (1x1)
    norm: Annotated[str, Choice(NORMS)] = "batch"
    dropout: bool = True  # in the U-Net's three innermost 512-channel decoder blocks
    lambda_l1: Annotated[float, Range(0.0, 1e6)] = 100.0  # eq. 4
    gan_mode: GanMode = "vanilla"  # junyanz's --gan_mode: vanilla (cross-entropy) | lsgan
    ema: bool = False  # keep an EMA copy of G (G_ema) and infer with it; the paper keeps none
    # batch norm at test time: the test batch's statistics (section 3.3, right for the paper's batch 1) or
    # the running ones (junyanz's --eval; right when training used larger batches and tests single images)
    test_norm: Annotated[str, Choice(("batch", "running"))] = "batch"


@register("pix2pix")
class Pix2Pix(TranslationFamily):
    Config = Pix2PixConfig
    tiny = ("builtin:edges2digits?res=16",  # the registry test's config
            {"model": {"netG": "unet", "ngf": 4, "ndf": 4, "n_layers_D": 2}})
    paper = "Isola et al. 2017, Image-to-Image Translation with Conditional Adversarial Networks"
    data_kinds = ("paired",)
    # junyanz: Adam 2e-4, beta1 0.5, batch 1; 100 + 100 epochs (constant, then linear decay), e.g. facades' 400 pairs
    train_defaults = {"optimizer": "adam", "g_lr": 2e-4, "d_lr": 2e-4, "betas": (0.5, 0.999), "batch_size": 1,
                      "lr_schedule": "linear-decay", "lr_decay_start": 0.5, "kimg": 80.0}
    presets = {
        "paper": {},
        "unet": {"model": {"netG": "unet"},
                 "doc": "the paper's networks with the U-Net as deep as the data allows (unet_256 at 256 px, "
                        "6 halvings at 64 px)"},
        # batch 16: test-time statistics of one image would be off the training distribution, so running ones
        # batch 16 with 5x the paper's learning rate: at 2e-4, 16 kimg reached 27-55% shape agreement over
        # seeds 0-2, at 1e-3 80-89% (benchmarks/quality_seeds.py)
        "cpu-32": {"model": {"netG": "unet", "ngf": 32, "ndf": 32, "test_norm": "running"},
                   "train": {"batch_size": 16, "g_lr": 1e-3, "d_lr": 1e-3, "kimg": 16.0, "snapshot_kimg": 8.0,
                             "sample_kimg": 4.0},
                   "doc": "32 px (builtin:edges2shapes) in about 40 s on 2 cores: U-Net down to 1x1 with 32 "
                          "base channels, batch 16, learning rate 1e-3"},
        "cpu-digits": {"model": {"netG": "unet", "ngf": 16, "ndf": 16, "n_layers_D": 2, "test_norm": "running"},
                       "train": {"batch_size": 16, "kimg": 24.0, "snapshot_kimg": 8.0, "sample_kimg": 4.0},
                       "doc": "16 px builtin:edges2digits in about 2 minutes on 2 cores"},
    }

    def validate(self, cfg: Pix2PixConfig) -> None:
        check_generator(cfg.netG, cfg.resolution)
        check_patch_depth(cfg.n_layers_D, cfg.resolution)

    def build(self, cfg: Pix2PixConfig) -> dict[str, nn.Module]:
        G = build_generator(cfg, cfg.in_channels, cfg.channels)
        # conditional D: it sees A and B concatenated on channels (section 3.2.2)
        D = PatchDiscriminator(cfg.in_channels + cfg.channels, cfg.ndf, cfg.n_layers_D, cfg.norm)
        normal_init(G)
        normal_init(D)
        G.test_norm = cfg.test_norm  # read by inference_mode; a plain attribute, rebuilt from the config on load
        return {"G": G, "D": D}

    def inference_mode(self, net):
        # section 3.3: dropout at test time, and the test batch's statistics unless the config asks for running ones
        return paper_inference(net, batch_stats=getattr(net, "test_norm", "batch") == "batch")

    def ema_pairs(self, cfg) -> dict[str, str]:
        return {"G_ema": "G"} if cfg.ema else {}

    def phases(self, cfg: Pix2PixConfig, nets, train):
        from .family import Phase

        G, D = nets["G"], nets["D"]

        def g_step(s) -> dict:
            A, B = s.batch["A"], s.batch["B"]
            fake = G(A)
            s.scratch["fake_B"] = fake.detach()  # the D step of this iteration judges this same fake
            adv = target_g_loss(cfg.gan_mode, D(torch.cat([A, fake], 1)))  # L_cGAN (eq. 1), G's non-saturating side
            l1 = F.l1_loss(fake, B)  # eq. 3: E ||y - G(x, z)||_1
            return {"loss": adv + cfg.lambda_l1 * l1, "adv": adv.detach(), "l1": l1.detach()}  # eq. 4

        def d_step(s) -> dict:
            A, B = s.batch["A"], s.batch["B"]
            real_out = D(torch.cat([A, B], 1))
            fake_out = D(torch.cat([A, s.scratch["fake_B"]], 1))
            loss = halved_d_loss(cfg.gan_mode, real_out, fake_out)  # L_cGAN (eq. 1), halved (section 3.3)
            return {"loss": loss, "real": real_out.detach().mean(), "fake": fake_out.detach().mean()}

        return [Phase("G", "G", g_step, real=True), Phase("D", "D", d_step, real=True, reuse_real=True)]
