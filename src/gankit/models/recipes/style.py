"""The StyleGAN recipe shared by StyleGAN, StyleGAN2 and StyleGAN3: style mixing, the non-saturating
logistic loss with lazy R1 and path length regularization, the lazy Adam correction, the
truncation strip, and :class:`StyleFamily`, the family base class they share."""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...errors import ConfigError
from ...losses import path_length_penalty, r1_penalty, widen
from ...nn import gaussian_blur
from ..family import Family, Phase, Step, check_power_of_two

ARCHITECTURES = ("orig", "skip", "resnet")


def mix_styles(ws: Tensor, ws2: Tensor, cutoff: int) -> Tensor:
    """Layers [0, cutoff) from ``ws``, layers [cutoff, num_ws) from ``ws2`` (StyleGAN section 3.1)."""
    return torch.cat([ws[:, :cutoff], ws2[:, cutoff:]], dim=1)


def run_mapping(G: nn.Module, z: Tensor, c: Tensor | None, mixing_prob: float, update_w_avg: bool = True) -> Tensor:
    """ws for training: with probability ``mixing_prob`` a second latent takes over from a random
    crossover layer (style mixing regularization, StyleGAN section 3.1; StyleGAN2-ADA's run_G)."""
    ws = G.mapping(z, c, update_w_avg=update_w_avg)
    if mixing_prob > 0:
        if torch.rand([]).item() < mixing_prob:
            cutoff = int(torch.randint(1, ws.shape[1], []))
            ws = mix_styles(ws, G.mapping(torch.randn_like(z), c, update_w_avg=False), cutoff)
    return ws


@contextlib.contextmanager
def trainable(net: nn.Module):
    """Records ``net``'s graph inside another network's phase (the trainer freezes it there)."""
    flags = [p.requires_grad for p in net.parameters()]
    net.requires_grad_(True)
    try:
        yield
    finally:
        for p, f in zip(net.parameters(), flags):
            p.requires_grad_(f)


def style_phases(cfg, G: nn.Module, D: nn.Module, n_critic: int = 1, n_gen: int = 1) -> list[Phase]:
    """The StyleGAN / StyleGAN2 / StyleGAN3 recipe: non-saturating logistic loss, R1 on reals and
    path length regularization, each lazy (its own phase every N minibatches, scaled by N) or in
    the main step. ``n_gen`` G main steps, then ``n_critic`` D main steps per iteration (1 and 1 in
    the papers); the lazy phases stay once per iteration.

    ``cfg`` needs r1_gamma, d_reg_interval, pl_weight, pl_decay, pl_batch_shrink, g_reg_interval,
    style_mixing_prob; optional blur_init_sigma / blur_fade_kimg blur the images D sees early in
    training (StyleGAN3 config R). With ``share_fakes`` (and one D step per iteration) D's step runs
    first and draws its fakes with G's graph kept, and G's step then judges those same fakes by the
    updated D: one G forward per iteration instead of two (junyanz's and PyTorch's DCGAN order), at
    the price of one w_avg update per iteration instead of two and the same z in both steps. A G
    with ``ema_in_d_step`` (StyleGAN3) moves its EMAs (w_avg, magnitudes) only when it makes fakes
    for D's step, as NVIDIA's stylegan3 loss does; otherwise w_avg moves in every training call
    (StyleGAN2-ADA).
    """
    ema_in_d = getattr(G, "ema_in_d_step", False)
    share = getattr(cfg, "share_fakes", False) and n_critic == 1
    blur_init, blur_fade = getattr(cfg, "blur_init_sigma", 0.0), getattr(cfg, "blur_fade_kimg", 0.0)

    def labels(s: Step, real: bool) -> Tensor | None:
        if G.c_dim == 0:
            return None
        if real:
            return F.one_hot(s.labels.long(), G.c_dim).float()
        return F.one_hot(s.randint(G.c_dim), G.c_dim).float()

    def fake(z: Tensor, c: Tensor | None, for_d: bool) -> tuple[Tensor, Tensor]:
        update = for_d or not ema_in_d
        ws = run_mapping(G, z, c, cfg.style_mixing_prob, update_w_avg=update)
        return (G.synthesis(ws, update_emas=True) if ema_in_d and for_d else G.synthesis(ws)), ws

    def run_D(s: Step, img: Tensor, c: Tensor | None) -> Tensor:
        if blur_init > 0 and blur_fade > 0:
            # StyleGAN3 config R: sigma fades linearly from blur_init_sigma to 0 over blur_fade_kimg
            # of the images seen when the iteration began (NVIDIA's cur_nimg), whatever the batch split
            sigma = max(1 - s.cur_nimg / (blur_fade * 1e3), 0) * blur_init
            img = gaussian_blur(img, sigma)
        return D(img, c)

    def pl_term(s: Step, scale: float) -> dict:
        n = max(1, s.batch_size // cfg.pl_batch_shrink)
        c = labels(s, False)
        img, ws = fake(s.z(n), None if c is None else c[:n], False)
        penalty, G.pl_mean = path_length_penalty(img, ws, G.pl_mean, cfg.pl_decay)
        # StyleGAN2 eq. 4 times weight and lazy interval (section 3.1)
        return {"loss": penalty.mean() * cfg.pl_weight * scale, "pl_penalty": penalty.detach().mean(),
                "pl_mean": G.pl_mean.detach()}

    def r1_term(s: Step, real: Tensor, real_out: Tensor, scale: float) -> dict:
        r1 = r1_penalty(real_out, real)
        return {"loss": r1 * (cfg.r1_gamma / 2) * scale, "r1": r1.detach()}  # Mescheder 2018 eq. 9, times N

    lazy_pl = cfg.pl_weight > 0 and cfg.g_reg_interval > 1
    lazy_r1 = cfg.r1_gamma > 0 and cfg.d_reg_interval > 1

    def g_main(s: Step) -> dict:
        shared = s.scratch.pop("style_fake", None)  # left by this iteration's D step (share_fakes)
        if shared is not None:
            img, c, _ = shared
        else:
            c = labels(s, False)
            img, _ = fake(s.z(), c, False)
        loss = F.softplus(-widen(run_D(s, img, c))).mean()  # -log sigmoid(D(G(z))): non-saturating (Goodfellow 2014 s. 3)
        out = {"loss": loss, "adv": loss.detach()}
        if cfg.pl_weight > 0 and not lazy_pl:
            pl = pl_term(s, 1.0)
            out["loss"] = loss + pl.pop("loss")
            out.update(pl)
        return out

    def d_main(s: Step) -> dict:
        c_fake, c_real = labels(s, False), labels(s, True)
        if share:  # G's graph is kept for the G step that follows; D's loss sees a detached copy
            z = s.z()
            with trainable(G):
                fake_img, _ = fake(z, c_fake, True)
            s.scratch["style_fake"] = (fake_img, c_fake, z)
            fake_img = fake_img.detach()
        else:
            with torch.no_grad():
                fake_img, _ = fake(s.z(), c_fake, True)
        real = s.real.detach().requires_grad_(cfg.r1_gamma > 0 and not lazy_r1)
        fake_out, real_out = run_D(s, fake_img, c_fake), run_D(s, real, c_real)
        # -log(1 - sigmoid(D(G(z)))) - log sigmoid(D(x)): the logistic loss (Goodfellow 2014 eq. 1)
        loss = F.softplus(widen(fake_out)).mean() + F.softplus(-widen(real_out)).mean()  # fp32 under autocast
        out = {"loss": loss, "adv": loss.detach(), "real": real_out.detach().mean(), "fake": fake_out.detach().mean()}
        if cfg.r1_gamma > 0 and not lazy_r1:
            r1 = r1_term(s, real, real_out, 1.0)
            out["loss"] = loss + r1.pop("loss")
            out.update(r1)
        return out

    def d_reg(s: Step) -> dict:
        real = s.real.detach().requires_grad_(True)
        return r1_term(s, real, run_D(s, real, labels(s, True)), float(cfg.d_reg_interval))

    g_phases = [Phase("G", "G", g_main, repeat=n_gen, higher_order=cfg.pl_weight > 0 and not lazy_pl)]
    if lazy_pl:
        g_phases.append(Phase("Greg", "G", lambda s: pl_term(s, float(cfg.g_reg_interval)), every=cfg.g_reg_interval,
                              higher_order=True))
    d_phases = [Phase("D", "D", d_main, repeat=n_critic, real=True, higher_order=cfg.r1_gamma > 0 and not lazy_r1)]
    if lazy_r1:
        d_phases.append(Phase("Dreg", "D", d_reg, every=cfg.d_reg_interval, real=True, reuse_real=True,
                              higher_order=True))
    return d_phases + g_phases if share else g_phases + d_phases


def lazy_ratios(cfg) -> dict[str, float]:
    """Adam correction for lazy regularization: lr * r and betas ** r with r = N / (N + 1) (StyleGAN2 s. 3.1)."""
    out = {}
    if cfg.pl_weight > 0 and cfg.g_reg_interval > 1:
        out["G"] = cfg.g_reg_interval / (cfg.g_reg_interval + 1)
    if cfg.r1_gamma > 0 and cfg.d_reg_interval > 1:
        out["D"] = cfg.d_reg_interval / (cfg.d_reg_interval + 1)
    return out


def truncation_samples(G: nn.Module, out_dir) -> list:
    """samples/truncation.png: rows of seeds at psi 1, 0.75, 0.5, 0.25, 0 (StyleGAN Figure 8)."""
    from pathlib import Path

    from ...visual import truncation_strip

    path = Path(out_dir) / "truncation.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = G.training
    truncation_strip(G.eval()).save(path)
    G.train(was_training)
    return [path]


def check_style_config(name: str, cfg) -> None:
    check_power_of_two(name, cfg.resolution)
    for field in ("g_architecture", "d_architecture"):
        if hasattr(cfg, field) and getattr(cfg, field) not in ARCHITECTURES:
            raise ConfigError(f"--model.{field.replace('_', '-')} {getattr(cfg, field)}: use orig, skip or resnet")
    if cfg.conditional and cfg.c_dim <= 0:
        raise ConfigError("--model.conditional needs labelled data (a dataset with classes, e.g. builtin:digits)")
    for field in ("g_reg_interval", "d_reg_interval", "pl_batch_shrink", "mapping_layers"):
        if getattr(cfg, field) < (0 if field == "mapping_layers" else 1):
            raise ConfigError(f"--model.{field.replace('_', '-')} must be >= 1")


class StyleFamily(Family):
    """What the StyleGAN families share: class labels from the data when conditional, the style
    recipe (:func:`style_phases`), the lazy Adam correction and a truncation strip at the end."""

    demo_page = "style"

    def data_fields(self, info):
        return {**super().data_fields(info), "c_dim": info.num_classes or 0}

    def compile_targets(self, nets):
        return [nets["G"].mapping, nets["G"].synthesis, nets["D"]]  # the style phases call these, not G itself

    def fit_to_data(self, cfg, info, user_overrides):
        cfg = super().fit_to_data(cfg, info, user_overrides)
        if not cfg.conditional:
            cfg.c_dim = 0
        return cfg

    def phases(self, cfg, nets, train):
        steps = {} if train is None else {"n_critic": train.n_critic, "n_gen": train.n_gen}  # None: one of each
        return style_phases(cfg, nets["G"], nets["D"], **steps)

    def optimizer_ratios(self, cfg) -> dict[str, float]:
        return lazy_ratios(cfg)

    def final_samples(self, G, out_dir) -> list:
        return truncation_samples(G, out_dir)

    def export_module(self, G, truncation_psi: float = 1.0, noise_mode: str = "const"):
        return StyleExport(G, truncation_psi, noise_mode)


class StyleExport(nn.Module):
    """z [, c] -> images in [-1, 1] through the mapping (truncation ``psi`` toward w_avg, Karras et al.
    2019 section 2.1 / appendix B) and the synthesis with the noise mode fixed: deterministic unless
    the noise is random."""

    def __init__(self, G: nn.Module, truncation_psi: float = 1.0, noise_mode: str = "const"):
        super().__init__()
        self.G, self.psi, self.noise_mode = G, float(truncation_psi), noise_mode

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        ws = self.G.mapping(z, c, truncation_psi=self.psi, update_w_avg=False)
        return self.G.synthesis(ws, noise_mode=self.noise_mode).clamp(-1, 1)
