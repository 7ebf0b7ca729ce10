"""The D / G phases of z -> sample families: alternating as Goodfellow et al. 2014, Algorithm 1, or
simultaneous as the ALI / PacGAN reference code."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ...errors import ConfigError
from ..family import Phase, Step


def g_slots(pack: int, per_slot: bool) -> int:
    """How many G calls draw one batch: the ``pack`` packing slots with ``--model.g-per-slot``, else one."""
    return pack if per_slot else 1


def adversarial_phases(loss: str, n_critic: int = 1, d_penalty: Callable[[Step, torch.Tensor], dict] | None = None,
                       after_d: Callable[[nn.Module], None] | None = None, simultaneous: bool = False,
                       g_slots: int = 1, n_gen: int = 1) -> list[Phase]:
    """k = ``n_critic`` D steps per G step (Goodfellow et al. 2014, Algorithm 1) over networks G and D,
    then ``n_gen`` G steps (DCGAN-tensorflow and PacGAN's stacked-MNIST code take 2, "to make sure that
    d_loss does not go to zero"), each on fresh z.

    ``d_penalty(step, fake)`` may add regularization terms to the D loss: it returns a dict whose
    ``"loss"`` is added and whose other entries are logged.

    ``simultaneous``: both players' gradients from the same point (G_t, D_t), as the ALI code that
    PacGAN trains with (Dumoulin et al. 2017; fjxmlzn/PacGAN): G steps first against D_t, and D then
    steps on the very fakes that G_t drew in that step (kept per micro-batch in ``step.scratch``)
    instead of drawing new ones, so G runs once per iteration. Needs ``n_critic`` 1.

    ``g_slots`` m > 1: G draws a batch as m calls of B / m samples, each with its own batch-norm
    statistics, and pack k holds sample k of every call, as PacGAN's code feeds its m packing slots
    (``--model.pack m``); 1 draws the batch in one call.
    """
    from ...losses import d_loss, g_loss

    if simultaneous and (n_critic, n_gen) != (1, 1):
        raise ConfigError(f"simultaneous updates take one D step per G step; --train.n-critic is {n_critic} and "
                          f"--train.n-gen {n_gen}: set both to 1 or use alternating updates")

    def draw(s: Step) -> torch.Tensor:
        z = s.z()
        if g_slots == 1:
            return s.G(z)
        slots = [s.G(part) for part in z.chunk(g_slots)]  # each slot its own G call
        return torch.stack(slots, 1).flatten(0, 1)  # sample k of every slot side by side: pack k

    def d_step(s: Step) -> dict:
        fake = s.scratch.pop("fake", None) if simultaneous else None
        if fake is None:
            with torch.no_grad():
                fake = draw(s)
        real_out, fake_out = s.D(s.real), s.D(fake)
        adv = d_loss(loss, real_out, fake_out)
        out = {"loss": adv, "adv": adv.detach(), "real": real_out.detach().mean(), "fake": fake_out.detach().mean()}
        if d_penalty is not None:
            extra = d_penalty(s, fake)
            out["loss"] = adv + extra.pop("loss")
            out.update(extra)
        return out

    def g_step(s: Step) -> dict:
        fake = draw(s)
        if simultaneous:
            s.scratch["fake"] = fake.detach()  # D_t's step judges G_t's samples
        return {"loss": g_loss(loss, s.D(fake))}

    d = Phase("D", "D", d_step, repeat=n_critic, real=True, after=after_d, higher_order=d_penalty is not None)
    g = Phase("G", "G", g_step, repeat=n_gen)
    return [g, d] if simultaneous else [d, g]
