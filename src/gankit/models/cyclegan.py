"""CycleGAN (Zhu et al. 2017, "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial Networks").

Two generators, G_A: A -> B and G_B: B -> A, and two PatchGAN discriminators, D_A judging domain B
(G_A's outputs) and D_B judging domain A, as junyanz's pytorch-CycleGAN-and-pix2pix names them.
Objective (eq. 3): L_GAN(G_A, D_A) + L_GAN(G_B, D_B) + lambda L_cyc, with the least-squares GAN
loss (section 4), lambda = 10 in each direction, and the identity loss of section 5.2 weighted
0.5 lambda. D learns from a history of 50 generated images per domain (section 4, after
Shrivastava et al. 2017), saved with the run so a resume continues exactly. ResNet generators
(9 blocks at 256 px, 6 at 128 and below; reflection padding; instance norm without affine
parameters), 70x70 PatchGANs, Adam 2e-4 with beta1 0.5, batch 1, a constant rate for the first
half (100 epochs) and a linear decay to 0 over the second.

Inference (``gankit.load(run)``): ``G_A(A) -> B``; ``load_bundle(run)[0].G_B`` goes back.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch
import torch.nn.functional as F
from torch import nn

from ..config import Channels, Choice, Range, Resolution, Size
from ..errors import ConfigError
from ..losses import GanMode, halved_d_loss, target_g_loss
from ..nn import normal_init
from ..nn.translation import NORMS, PatchDiscriminator
from ..registry import register
from .family import Optim, Phase, Step
from .recipes.translation import TranslationFamily, build_generator, check_generator, check_patch_depth

GENERATORS = ("resnet", "resnet_9blocks", "resnet_6blocks", "unet_256", "unet_128")


@dataclass
class CycleGANConfig:
    resolution: Resolution = 256  # set from the data
    in_channels: Channels = 3  # domain A's channels (set from the data)
    channels: Channels = 3  # domain B's channels (set from the data)
    netG: Annotated[str, Choice(GENERATORS)] = "resnet"  # resnet: 9 blocks at >= 256 px, 6 below (appendix 7.2)
    ngf: Size = 64
    ndf: Size = 64
    n_layers_D: Annotated[int, Range(0, 8)] = 3  # 70x70 PatchGAN
    norm: Annotated[str, Choice(NORMS)] = "instance"
    dropout: bool = False
    gan_mode: GanMode = "lsgan"  # section 4: least squares
    lambda_A: Annotated[float, Range(0.0, 1e6)] = 10.0  # cycle A -> B -> A (eq. 2, 3)
    lambda_B: Annotated[float, Range(0.0, 1e6)] = 10.0  # cycle B -> A -> B
    lambda_identity: Annotated[float, Range(0.0, 1e6)] = 0.5  # section 5.2, times lambda
    pool_size: Annotated[int, Range(0, 100_000)] = 50  # history of generated images per domain (section 4)
    ema: bool = False  # EMA copies G_A_ema, G_B_ema (inference uses G_A_ema); the paper keeps none


class ImagePool:
    """Shrivastava et al. 2017 / Zhu et al. 2017 section 4: D sees a history of generated images. Until
    the pool holds ``size`` images, each new image is kept and returned; then with probability 1/2
    an image is swapped for a stored one (returning the old), otherwise returned as is (junyanz's
    ``ImagePool``). Draws come from the generator given, so runs are reproducible."""

    def __init__(self, size: int):
        self.size = size
        self.images: list[torch.Tensor] = []

    def query(self, batch: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        if self.size == 0:
            return batch
        out = []
        for img in batch.detach():
            if len(self.images) < self.size:
                self.images.append(img.clone())
                out.append(img)
            elif float(torch.rand((), generator=g)) > 0.5:
                i = int(torch.randint(0, self.size, (), generator=g))
                old = self.images[i].to(img.device)
                self.images[i] = img.clone()
                out.append(old)
            else:
                out.append(img)
        return torch.stack(out)

    def state_dict(self) -> dict:
        return {"size": self.size, "images": torch.stack([t.cpu() for t in self.images]) if self.images else None}

    def load_state_dict(self, state: dict) -> None:
        imgs = state.get("images")
        if imgs is not None and (not isinstance(imgs, torch.Tensor) or imgs.dim() != 4 or len(imgs) > self.size):
            raise ValueError(f"an image pool holds at most {self.size} images (N, C, H, W)")
        self.images = [] if imgs is None else [t.clone() for t in imgs]


@register("cyclegan")
class CycleGAN(TranslationFamily):
    Config = CycleGANConfig
    tiny = ("builtin:digits-invert?res=16",  # the registry test's config
            {"model": {"ngf": 4, "ndf": 4, "n_layers_D": 2, "pool_size": 4}})
    paper = "Zhu et al. 2017, Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial Networks"
    data_kinds = ("unpaired", "paired")
    inference = "G_A_ema"
    ema = {"G_A_ema": "G_A", "G_B_ema": "G_B"}
    directions = ("AtoB", "BtoA")
    # Adam 2e-4, beta1 0.5, batch 1; 200 epochs of a ~1,000-image domain (horse2zebra), decay over the second half
    train_defaults = {"optimizer": "adam", "g_lr": 2e-4, "d_lr": 2e-4, "betas": (0.5, 0.999), "batch_size": 1,
                      "lr_schedule": "linear-decay", "lr_decay_start": 0.5, "kimg": 200.0}
    presets = {
        "paper": {},
        # the built-in CycleGAN data map images to their negatives, which the identity loss (section 5.2: a
        # generator fed its target domain returns it, for colour-keeping maps such as painting -> photo)
        # works against: these presets turn it off
        "cpu-digits": {"model": {"ngf": 16, "ndf": 16, "n_layers_D": 2, "lambda_identity": 0.0},
                       "train": {"batch_size": 4, "kimg": 6.0, "snapshot_kimg": 2.0, "sample_kimg": 1.0},
                       "doc": "16 px builtin:digits-invert in about 2 minutes on 2 cores: 16 base channels, "
                              "6 residual blocks, batch 4, no identity loss (the map is the negative)"},
        "cpu-32": {"model": {"ngf": 16, "ndf": 16, "lambda_identity": 0.0},
                   "train": {"batch_size": 4, "kimg": 8.0, "snapshot_kimg": 2.0, "sample_kimg": 1.0},
                   "doc": "32 px builtin:shapes-colorswap on 2 cores: 16 base channels, 6 residual blocks, batch 4, "
                          "no identity loss (the map is the negative)"},
    }

    def __init__(self):
        self.pools: dict[str, ImagePool] = {}

    def validate(self, cfg: CycleGANConfig) -> None:
        check_generator(cfg.netG, cfg.resolution)
        check_patch_depth(cfg.n_layers_D, cfg.resolution)
        if cfg.lambda_identity > 0 and cfg.in_channels != cfg.channels:
            raise ConfigError(f"--model.lambda-identity {cfg.lambda_identity} needs domains with the same channels "
                              f"(A has {cfg.in_channels}, B {cfg.channels}); set it to 0")

    def build(self, cfg: CycleGANConfig) -> dict[str, nn.Module]:
        nets = {"G_A": build_generator(cfg, cfg.in_channels, cfg.channels),
                "G_B": build_generator(cfg, cfg.channels, cfg.in_channels),
                "D_A": PatchDiscriminator(cfg.channels, cfg.ndf, cfg.n_layers_D, cfg.norm),  # judges domain B
                "D_B": PatchDiscriminator(cfg.in_channels, cfg.ndf, cfg.n_layers_D, cfg.norm)}  # judges domain A
        for net in nets.values():
            normal_init(net)
        return nets

    def ema_pairs(self, cfg) -> dict[str, str]:
        return dict(self.ema) if cfg.ema else {}

    def optimizers(self, cfg, train) -> dict[str, Optim]:
        # junyanz: one Adam over both generators' parameters, one over both discriminators'
        return {"G": Optim(("G_A", "G_B"), train.g_lr), "D": Optim(("D_A", "D_B"), train.d_lr)}

    def phases(self, cfg: CycleGANConfig, nets, train):
        G_A, G_B, D_A, D_B = (nets[k] for k in ("G_A", "G_B", "D_A", "D_B"))
        self.pools = {"A": ImagePool(cfg.pool_size), "B": ImagePool(cfg.pool_size)}
        idt = cfg.lambda_identity

        def g_step(s: Step) -> dict:
            A, B = s.batch["A"], s.batch["B"]
            fake_B, fake_A = G_A(A), G_B(B)
            s.scratch["fake_B"], s.scratch["fake_A"] = fake_B.detach(), fake_A.detach()
            adv_A = target_g_loss(cfg.gan_mode, D_A(fake_B))  # eq. 1 (least squares, section 4): G_A fools D_A
            adv_B = target_g_loss(cfg.gan_mode, D_B(fake_A))
            cyc_A = F.l1_loss(G_B(fake_B), A) * cfg.lambda_A  # eq. 2: ||G_B(G_A(a)) - a||_1
            cyc_B = F.l1_loss(G_A(fake_A), B) * cfg.lambda_B  # eq. 2: ||G_A(G_B(b)) - b||_1
            out = {"adv_A": adv_A.detach(), "adv_B": adv_B.detach(), "cycle_A": cyc_A.detach(),
                   "cycle_B": cyc_B.detach()}
            loss = adv_A + adv_B + cyc_A + cyc_B  # eq. 3
            if idt > 0:  # section 5.2: a generator given an image of its target domain should return it
                idt_A = F.l1_loss(G_A(B), B) * cfg.lambda_B * idt
                idt_B = F.l1_loss(G_B(A), A) * cfg.lambda_A * idt
                loss = loss + idt_A + idt_B
                out.update(idt_A=idt_A.detach(), idt_B=idt_B.detach())
            return {"loss": loss, **out}

        def pooled(s: Step) -> tuple[torch.Tensor, torch.Tensor]:
            # the history pools see the global batch in order, on every process alike
            def query():
                g = s.generator()
                return self.pools["B"].query(s.gather("fake_B"), g), self.pools["A"].query(s.gather("fake_A"), g)

            fake_B, fake_A = s.once("pooled", query)
            return s.rows(fake_B), s.rows(fake_A)

        def d_step(s: Step) -> dict:
            A, B = s.batch["A"], s.batch["B"]
            fake_B, fake_A = pooled(s)
            real_A_out, real_B_out = D_B(A), D_A(B)
            loss_A = halved_d_loss(cfg.gan_mode, real_B_out, D_A(fake_B))  # D_A: real B vs G_A's fakes (halved, s. 4)
            loss_B = halved_d_loss(cfg.gan_mode, real_A_out, D_B(fake_A))  # D_B: real A vs G_B's fakes
            return {"loss": loss_A + loss_B, "D_A": loss_A.detach(), "D_B": loss_B.detach()}

        return [Phase("G", "G", g_step, real=True), Phase("D", "D", d_step, real=True, reuse_real=True)]

    def state_dict(self) -> dict:
        return {"pools": {k: p.state_dict() for k, p in self.pools.items()}} if self.pools else {}

    def load_state_dict(self, state: dict) -> None:
        for k, p in state.get("pools", {}).items():
            if k not in self.pools:
                raise ValueError(f"unknown image pool {k!r}")
            self.pools[k].load_state_dict(p)

    def direction_network(self, bundle, direction: str):
        """AtoB: G_A (its EMA copy when kept), BtoA: G_B."""
        if direction not in self.directions:
            raise ConfigError(f"--direction {direction}: use AtoB or BtoA")
        name = "G_A" if direction == "AtoB" else "G_B"
        net = bundle.nets.get(f"{name}_ema", bundle.nets[name]).eval()
        return net, bundle.config.in_channels if direction == "AtoB" else bundle.config.channels

    def grid(self, net, dataset, n: int, seed: int, nets=None):
        """Both directions on held-out images: A | G_A(A) | G_B(G_A(A)) | B | G_B(B) | G_A(G_B(B))."""
        nets = nets or {}
        G_A = net
        G_B = nets.get("G_B_ema", nets.get("G_B"))
        held = dataset.held_out()
        k = max(1, min(n // 6, 12, len(held)))
        batch = held.get_batch(torch.arange(k))
        cols = [batch["A"], self.translate(G_A, batch["A"])]
        if G_B is not None:
            cols.append(self.translate(G_B, cols[1]))
            cols += [batch["B"], self.translate(G_B, batch["B"])]
            cols.append(self.translate(G_A, cols[-1]))
        c = max(x.shape[1] for x in cols)
        images = torch.stack([x.expand(-1, c, -1, -1) if x.shape[1] != c else x for x in cols], 1).flatten(0, 1)
        return images, len(cols)

    def final_metrics(self, net, dataset, device, nets=None) -> dict | None:
        """Held-out figures of A -> B against the true B (where known), and the held-out cycle error."""
        res = super().final_metrics(net, dataset, device, nets)
        G_B = (nets or {}).get("G_B_ema", (nets or {}).get("G_B"))
        if G_B is None:
            return res
        held = dataset.held_out()
        A = held.get_batch(torch.arange(len(held.A)))["A"]
        cycle = float((self.translate(G_B, self.translate(net, A)) - A).abs().mean())  # eq. 2 on held-out A
        return {**(res or {"metric": "translation-held-out"}), "cycle_l1_A": cycle}
