"""Adversarial losses as (discriminator loss, generator loss) pairs of pure functions.

Each function takes raw discriminator outputs (logits or critic values, any shape) and returns
a scalar mean. ``softplus(x) = log(1 + exp(x))``, so ``softplus(-x) = -log(sigmoid(x))`` and
``softplus(x) = -log(1 - sigmoid(x))``.
"""
from __future__ import annotations

from typing import Annotated, Callable, NamedTuple

import torch
import torch.nn.functional as F

from ..config import Choice
from ..errors import ConfigError

Tensor = torch.Tensor


def widen(x: Tensor) -> Tensor:
    """``x`` in fp32 when it is fp16 or bf16 (autocast's outputs), else unchanged (fp32 and fp64 stay)."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


class LossPair(NamedTuple):
    d: Callable[[Tensor, Tensor], Tensor]  # (real_out, fake_out) -> D loss
    g: Callable[[Tensor], Tensor]  # fake_out -> G loss


def _bce_d(real: Tensor, fake: Tensor) -> Tensor:
    # Goodfellow et al. 2014, eq. 1: D maximizes log D(x) + log(1 - D(G(z))) -> minimize -log sig(r) - log(1 - sig(f))
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def minimax_g(fake: Tensor) -> Tensor:
    # Goodfellow et al. 2014, eq. 1: G minimizes log(1 - D(G(z))) = -softplus(f)
    return -F.softplus(fake).mean()


def nonsaturating_g(fake: Tensor) -> Tensor:
    # Goodfellow et al. 2014, section 3: G maximizes log D(G(z)) instead -> minimize -log sig(f)
    return F.softplus(-fake).mean()


def wasserstein_d(real: Tensor, fake: Tensor) -> Tensor:
    # Arjovsky et al. 2017, eq. 3 / Algorithm 1: critic maximizes E[f(x)] - E[f(G(z))]
    return fake.mean() - real.mean()


def wasserstein_g(fake: Tensor) -> Tensor:
    # Arjovsky et al. 2017, Algorithm 1 line 10: G minimizes -E[f(G(z))]
    return -fake.mean()


def hinge_d(real: Tensor, fake: Tensor) -> Tensor:
    # Lim & Ye 2017 (Geometric GAN), Miyato et al. 2018 eq. 16: E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def lsgan_d(real: Tensor, fake: Tensor) -> Tensor:
    # Mao et al. 2017 (LSGAN), eq. 9 with a=0, b=1: 1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2]
    return 0.5 * ((real - 1.0) ** 2).mean() + 0.5 * (fake ** 2).mean()


def lsgan_g(fake: Tensor) -> Tensor:
    # Mao et al. 2017 (LSGAN), eq. 9 with c=1: 1/2 E[(D(G(z)) - 1)^2]
    return 0.5 * ((fake - 1.0) ** 2).mean()


LOSSES: dict[str, LossPair] = {
    "minimax": LossPair(_bce_d, minimax_g),
    "nonsaturating": LossPair(_bce_d, nonsaturating_g),
    "wasserstein": LossPair(wasserstein_d, wasserstein_g),
    "hinge": LossPair(hinge_d, wasserstein_g),  # hinge G loss is -E[D(G(z))] (Miyato et al. 2018, eq. 17)
    "lsgan": LossPair(lsgan_d, lsgan_g),
}


#: a config field naming one of the loss pairs
Loss = Annotated[str, Choice(tuple(LOSSES))]


def list_losses() -> list[str]:
    return sorted(LOSSES)


def _get(name: str) -> LossPair:
    if name not in LOSSES:
        raise ConfigError(f"unknown loss '{name}'; choose one of: {', '.join(list_losses())}")
    return LOSSES[name]


def d_loss(name: str, real: Tensor, fake: Tensor) -> Tensor:
    """Discriminator loss ``name`` for real and fake outputs (computed in fp32 whatever their dtype:
    under bf16 or fp16 autocast the logits arrive in half precision)."""
    return _get(name).d(widen(real), widen(fake))


def g_loss(name: str, fake: Tensor) -> Tensor:
    """Generator loss ``name`` for the discriminator's outputs on fakes (in fp32, as :func:`d_loss`)."""
    return _get(name).g(widen(fake))


# ----------------------------------------------------------------------------- image-to-image convention
#: junyanz's GANLoss modes (pytorch-CycleGAN-and-pix2pix): cross-entropy ("vanilla") or least squares
GanMode = Annotated[str, Choice(("vanilla", "lsgan"))]


def _target(mode: str, out: Tensor, real: bool) -> Tensor:
    out = widen(out)  # in fp32 under half-precision autocast, as d_loss
    if mode == "vanilla":  # binary cross-entropy with the logit: -log sig(x) for real, -log(1 - sig(x)) for fake
        return F.softplus(-out).mean() if real else F.softplus(out).mean()
    if mode == "lsgan":  # squared distance to the target 1 (real) or 0 (fake)
        return ((out - 1.0) ** 2).mean() if real else (out ** 2).mean()
    raise ConfigError(f"unknown GAN mode '{mode}'; use vanilla or lsgan")


def halved_d_loss(mode: str, real: Tensor, fake: Tensor) -> Tensor:
    # Isola et al. 2017 s. 3.3 and Zhu et al. 2017 s. 4: "we divide the objective by 2 while optimizing D"
    return 0.5 * (_target(mode, real, True) + _target(mode, fake, False))


def target_g_loss(mode: str, fake: Tensor) -> Tensor:
    # Isola 2017 s. 3.3: G maximizes log D(x, G(x)) (non-saturating); Zhu 2017 s. 4: G minimizes E[(D(G(x)) - 1)^2]
    return _target(mode, fake, True)
