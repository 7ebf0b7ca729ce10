"""CoGAN (Liu & Tuzel 2016, "Coupled Generative Adversarial Networks").

Two GANs, one per domain, learn a joint distribution from unpaired samples of each: the generators
share every layer but their last (the high-level semantics, decoded first), the discriminators
every layer but their first (section 3). One z gives a pair of corresponding images.

Networks follow the paper's digit experiments (Table 1 / appendix): G is FCONV 1024, 512, 256, 128
(batch norm, PReLU; shared) and one output layer per domain; D is LeNet (CONV 20 5x5 + max-pool,
CONV 50 5x5 + max-pool, FC 500 PReLU, FC 1) with the first layer per domain. Spatial sizes follow
the data: the first FCONV makes res / 8 pixels from z and three stride-2 FCONVs reach ``res``
(the paper's 28 px is not a multiple of 8, so the built-in digits run at 16 or 32 px). ``d_arch
dcgan`` is the convolutional variant for 32-64 px: stride-2 4x4 convolutions (64, 128, 256, ...,
batch norm, LeakyReLU 0.2), the first per domain. Outputs use tanh ([-1, 1], the paper's sigmoid
up to an affine map). Training: Adam 2e-4, betas (0.5, 0.999), batch 128 (section 5), the
cross-entropy loss with the non-saturating generator.

Inference (``gankit.load(run)``): ``G(z)`` returns a pair side by side, (N, C, H, 2W): domain A on
the left, domain B on the right; ``G.pair(z)`` returns the two images.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch
from torch import nn

from ..config import Choice, Size
from ..errors import ConfigError
from ..losses import Loss, d_loss, g_loss
from ..nn import normal_init
from ..registry import register
from .family import Family, Phase, Step, latent_sampler


@dataclass
class CoGANConfig:
    resolution: Annotated[int, Choice((16, 32, 64, 128))] = 32  # set from the data
    channels: Annotated[int, Choice((1, 3))] = 1  # both domains' (set from the data)
    z_dim: Size = 100
    ngf: Size = 128  # width of the last shared FCONV (the paper's 128; the others are 2x, 4x, 8x)
    d_arch: Annotated[str, Choice(("lenet", "dcgan"))] = "lenet"
    ndf: Size = 64  # dcgan D: width of the first layer
    loss: Loss = "nonsaturating"


class CoupledGenerator(nn.Module):
    """z -> (image of A, image of B); every layer shared but the output layer (section 3)."""

    def __init__(self, z_dim: int = 100, resolution: int = 32, channels: int = 1, ngf: int = 128):
        super().__init__()
        self.z_dim, self.resolution, self.channels = z_dim, resolution, channels
        s0 = resolution // 8
        w = [ngf * 8, ngf * 4, ngf * 2, ngf]
        layers: list[nn.Module] = [nn.ConvTranspose2d(z_dim, w[0], s0, 1, 0, bias=False), nn.BatchNorm2d(w[0]),
                                   nn.PReLU(w[0])]
        for a, b in zip(w, w[1:]):
            layers += [nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.PReLU(b)]
        self.shared = nn.Sequential(*layers)  # 1 -> res / 8 -> res
        # the per-domain output layers: stride 1, as the paper's last FCONV (3x3 here, the paper's 6x6 at 28 px)
        self.head_A = nn.Sequential(nn.ConvTranspose2d(ngf, channels, 3, 1, 1), nn.Tanh())
        self.head_B = nn.Sequential(nn.ConvTranspose2d(ngf, channels, 3, 1, 1), nn.Tanh())
        normal_init(self)

    def pair(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.shared(z.view(z.shape[0], self.z_dim, 1, 1))
        return self.head_A(h), self.head_B(h)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        a, b = self.pair(z)
        return torch.cat([a, b], dim=3)  # a pair side by side: (N, C, H, 2W)


class CoupledDiscriminator(nn.Module):
    """(image, domain) -> logit; every layer shared but the first (section 3)."""

    def __init__(self, resolution: int = 32, channels: int = 1, arch: str = "lenet", ndf: int = 64):
        super().__init__()
        if arch == "lenet":
            def first():
                return nn.Sequential(nn.Conv2d(channels, 20, 5), nn.MaxPool2d(2))
            r = ((resolution - 4) // 2 - 4) // 2
            self.shared = nn.Sequential(nn.Conv2d(20, 50, 5), nn.MaxPool2d(2), nn.Flatten(),
                                        nn.Linear(50 * r * r, 500), nn.PReLU(500), nn.Linear(500, 1))
        else:  # dcgan-style: stride-2 4x4 convolutions down to 4x4
            def first():
                return nn.Sequential(nn.Conv2d(channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2))
            layers, w, r = [], ndf, resolution // 2
            while r > 4:
                layers += [nn.Conv2d(w, 2 * w, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * w), nn.LeakyReLU(0.2)]
                w, r = 2 * w, r // 2
            self.shared = nn.Sequential(*layers, nn.Conv2d(w, 1, r), nn.Flatten())
        self.first_A, self.first_B = first(), first()
        normal_init(self)

    def forward(self, x: torch.Tensor, domain: str = "A") -> torch.Tensor:
        return self.shared((self.first_A if domain == "A" else self.first_B)(x)).flatten()


@register("cogan")
class CoGAN(Family):
    Config = CoGANConfig
    tiny = ("builtin:digits-invert?res=16", {"model": {"z_dim": 8, "ngf": 4}})  # the registry test's config
    paper = "Liu & Tuzel 2016, Coupled Generative Adversarial Networks"
    data_kinds = ("unpaired",)
    train_defaults = {"optimizer": "adam", "g_lr": 2e-4, "d_lr": 2e-4, "betas": (0.5, 0.999), "batch_size": 128,
                      "kimg": 3200.0}  # 25,000 iterations of 128
    presets = {
        "paper": {},
        "cpu-digits": {"model": {"z_dim": 64, "ngf": 32},
                       "train": {"batch_size": 32, "kimg": 100.0, "ema_kimg": 1.0, "ema_rampup": 0.05,
                                 "snapshot_kimg": 20.0, "sample_kimg": 10.0},
                       "doc": "16 px builtin:digits-invert in about 2 minutes on 2 cores: the paper's layers at a "
                              "quarter of the width, batch 32, a G EMA"},
    }

    def data_fields(self, info):
        c, h, _ = info.shape
        if tuple(info.source_shape) != tuple(info.shape):
            raise ConfigError(f"cogan: both domains need one image shape (A is {info.source_shape}, B {info.shape})")
        return {"resolution": h, "channels": c}

    def validate(self, cfg: CoGANConfig) -> None:
        if cfg.d_arch == "lenet" and cfg.resolution > 32:
            raise ConfigError(f"--model.d-arch lenet is the paper's digit D (16-32 px); at {cfg.resolution} px use "
                              "--model.d-arch dcgan")

    def sample_shape(self, cfg, info):
        c, h, w = info.shape
        return (c, h, 2 * w)

    def build(self, cfg: CoGANConfig) -> dict[str, nn.Module]:
        return {"G": CoupledGenerator(cfg.z_dim, cfg.resolution, cfg.channels, cfg.ngf),
                "D": CoupledDiscriminator(cfg.resolution, cfg.channels, cfg.d_arch, cfg.ndf)}

    def phases(self, cfg: CoGANConfig, nets, train):
        G, D = nets["G"], nets["D"]

        def d_step(s: Step) -> dict:
            with torch.no_grad():
                fake_A, fake_B = G.pair(s.z())
            # eq. 4: max over D1, D2 of the two GAN objectives, each domain from its own (unpaired) samples
            loss_A = d_loss(cfg.loss, D(s.batch["A"], "A"), D(fake_A, "A"))
            loss_B = d_loss(cfg.loss, D(s.batch["B"], "B"), D(fake_B, "B"))
            return {"loss": loss_A + loss_B, "D_A": loss_A.detach(), "D_B": loss_B.detach()}

        def g_step(s: Step) -> dict:
            fake_A, fake_B = G.pair(s.z())  # one z, a pair (section 3)
            loss_A, loss_B = g_loss(cfg.loss, D(fake_A, "A")), g_loss(cfg.loss, D(fake_B, "B"))
            return {"loss": loss_A + loss_B, "G_A": loss_A.detach(), "G_B": loss_B.detach()}

        return [Phase("D", "D", d_step, real=True), Phase("G", "G", g_step)]

    def grid(self, net, dataset, n: int, seed: int, nets=None):
        """Pairs from one z each: A | B, four pairs per row."""
        return self.sample(net, max(1, n // 2), seed), 4

    def eval_setup(self, net, dataset, truncation_psi: float = 1.0):
        """fd / kd of domain A's images against the data's domain A."""
        draw = latent_sampler(net, None, truncation_psi)
        W = net.resolution

        def left(n, g):
            return draw(n, g)[..., :W]

        return left, dataset.domain("A")

    def final_metrics(self, net, dataset, device, nets=None) -> dict | None:
        """The paper's pixel agreement ratio (section 5): the data's transform of the A image of each pair
        against its B image, beside unpaired samples (a shuffled B), and digit recognition per domain."""
        from ..metrics.modes import digit_classifier

        transform = dataset.meta.get("transform")
        if transform is None:
            return None
        was = net.training
        net.eval()
        with torch.no_grad():
            a, b = net.pair(torch.randn(2000, net.z_dim, generator=torch.Generator().manual_seed(123))
                            .to(next(net.parameters()).device))
        net.train(was)
        a, b = a.cpu(), b.cpu()
        t = pair_transform(transform, a)
        perm = torch.randperm(len(b), generator=torch.Generator().manual_seed(0))
        res = {"metric": "cogan-pairs", "num_pairs": len(a), "transform": transform,
               "pixel_agreement": pixel_agreement(t, b), "pixel_agreement_unpaired": pixel_agreement(t, b[perm])}
        if dataset.meta.get("classes") == "digits":
            clf = digit_classifier()
            with torch.no_grad():
                pa = torch.softmax(clf(a), 1).max(1).values
                back = -b if transform == "invert" else None
                res["digits_recognised_A"] = float((pa >= 0.9).float().mean())
                if back is not None:
                    res["digits_recognised_B"] = float((torch.softmax(clf(back), 1).max(1).values >= 0.9).float().mean())
                    res["class_agreement"] = float((clf(a).argmax(1) == clf(back).argmax(1)).float().mean())
        return res


def pair_transform(name: str, a: torch.Tensor) -> torch.Tensor:
    """The known map from domain A to B of the built-in CoGAN data, on [-1, 1] images."""
    if name == "invert":
        return -a
    if name == "edges":
        from ..data.builtin.pairs import edges_of

        u8 = ((a.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        return edges_of(u8).float().div(127.5).sub(1.0)
    raise ValueError(f"unknown pair transform {name!r}")


def pixel_agreement(x: torch.Tensor, y: torch.Tensor) -> float:
    """Liu & Tuzel 2016, section 5: the share of pixels where two images agree, after thresholding at the
    middle grey (0 in [-1, 1])."""
    return float(((x > 0) == (y > 0)).float().mean())
