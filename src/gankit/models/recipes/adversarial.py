"""The alternating D / G phases of Goodfellow et al. 2014, Algorithm 1, for z -> image families."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..family import Phase, Step


def adversarial_phases(loss: str, n_critic: int = 1, d_penalty: Callable[[Step, torch.Tensor], dict] | None = None,
                       after_d: Callable[[nn.Module], None] | None = None) -> list[Phase]:
    """k = ``n_critic`` D steps per G step (Goodfellow et al. 2014, Algorithm 1) over networks G and D.

    ``d_penalty(step, fake)`` may add regularization terms to the D loss: it returns a dict whose
    ``"loss"`` is added and whose other entries are logged.
    """
    from ...losses import d_loss, g_loss

    def d_step(s: Step) -> dict:
        with torch.no_grad():
            fake = s.G(s.z())
        real_out, fake_out = s.D(s.real), s.D(fake)
        adv = d_loss(loss, real_out, fake_out)
        out = {"loss": adv, "adv": adv.detach(), "real": real_out.detach().mean(), "fake": fake_out.detach().mean()}
        if d_penalty is not None:
            extra = d_penalty(s, fake)
            out["loss"] = adv + extra.pop("loss")
            out.update(extra)
        return out

    def g_step(s: Step) -> dict:
        fake_out = s.D(s.G(s.z()))
        return {"loss": g_loss(loss, fake_out)}

    return [Phase("D", "D", d_step, repeat=n_critic, real=True, after=after_d, higher_order=d_penalty is not None),
            Phase("G", "G", g_step)]
