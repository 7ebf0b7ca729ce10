"""An encoder beside the Quickstart's generator (issue 17, fifteenth session).
Each row trains the `quickstart` preset for 24 kimg on ``builtin:shapes?res=32`` and reports
metrics.json's shapes figures. Experiments, not features: they patch the StyleGAN2 family in this
process only.

    python benchmarks/quickstart_encoder.py --variants vaegan-b0.01 mdgan ... [--seed 0] [--threads 1]

The seventh session found that the recipe's G learns to draw these shapes within the Quickstart's
steps when a regression loss says exactly what is wrong (benchmarks/synthesis_regression.py), while
the adversarial signal alone teaches it far slower. These rows give G that dense signal on real
images without labels: an encoder E (the recipe's residual D, with no minibatch-stddev layer and an
output of 2 x z_dim) maps each real image to a latent, G draws it back, and the pixel distance of
the reconstruction joins G's loss. E trains with G (it is G's submodule, so G's optimizer steps it).
G's adversarial loss on G(z), z ~ N(0, I), and D's phases stay the recipe's. The G phase runs after
D's and reuses D's real batch, so a row counts the recipe's images.

* ``vaegan-*``: E gives mean and log-variance; z_e = mu + sigma * eps, and beta times
  KL(N(mu, sigma^2) || N(0, I)) (per dimension, averaged) joins G's loss, so that the codes of the
  reals fill the prior that random samples are drawn from (VAE/GAN, Larsen et al. 2016, section 2;
  the pixel L1 here instead of their D-feature distance).
* ``mdgan``: E deterministic (the mean only), no KL; G is also asked to make D call its
  reconstructions real, weight ``adv_rec`` (Mode-regularized GAN, Che et al. 2017, section 3.1).
* ``ae``: E deterministic, the reconstruction only.

``--show VARIANT RUN OUT.png`` writes three 4 x 8 grids, one above the other: the first 32 real
images, G's reconstructions of them through E's mean (constant noise), and 32 random samples.

Results: ``benchmarks/results/quickstart_encoder.json``; sample grids stay in ``--runs``.
"""
from __future__ import annotations

import os
import sys
import time

import torch
import torch.nn.functional as F
from common import lazy_r1_phase, shapes_figures, style_recipe_patched, train_quickstart, variants_main

from gankit import load
from gankit.data import open_dataset
from gankit.losses import widen
from gankit.models.family import Phase
from gankit.models.stylegan2 import Discriminator
from gankit.nn import EqualLinear

DATA = "builtin:shapes?res=32"
#: name -> dict(rec: L1 weight, beta: KL weight (None: deterministic E), adv_rec: weight of D's verdict on the
#: reconstructions in G's loss)
VARIANTS = {
    "vaegan-b0.01": dict(rec=1.0, beta=0.01, adv_rec=0.0),
    "vaegan-b0.1": dict(rec=1.0, beta=0.1, adv_rec=0.0),
    "vaegan-b0.01-adv": dict(rec=1.0, beta=0.01, adv_rec=1.0),
    "mdgan": dict(rec=1.0, beta=None, adv_rec=0.5),
    "ae": dict(rec=1.0, beta=None, adv_rec=0.0),
}


def encoder_phases(rec: float, beta: float | None, adv_rec: float):
    def phases(cfg, G, D):
        E = G.encoder

        def g_main(s):
            img = G.synthesis(G.mapping(s.z(), None))
            adv = F.softplus(-widen(D(img))).mean()  # non-saturating (Goodfellow 2014 s. 3)
            x = s.real.detach()
            code = E(x)
            mu, logvar = code[:, :G.z_dim], code[:, G.z_dim:].clamp(-10, 10)
            z_e = mu if beta is None else mu + torch.randn_like(mu) * (0.5 * logvar).exp()  # Kingma & Welling 2014 eq. 10
            x_rec = G.synthesis(G.mapping(z_e, None, update_w_avg=False))
            rec_loss = (x_rec - x).abs().mean()  # pixel L1 reconstruction (Larsen et al. 2016 s. 2, in pixels)
            loss = adv + rec * rec_loss
            out = {"adv": adv.detach(), "rec": rec_loss.detach()}
            if beta is not None:  # KL(N(mu, sigma^2) || N(0, I)) per dimension (Kingma & Welling 2014 appendix B)
                kl = 0.5 * (mu.square() + logvar.exp() - 1 - logvar).mean()
                loss = loss + beta * kl
                out["kl"] = kl.detach()
            if adv_rec > 0:  # MDGAN's mode regularizer: D should call G(E(x)) real (Che et al. 2017 s. 3.1)
                a = F.softplus(-widen(D(x_rec))).mean()
                loss = loss + adv_rec * a
                out["adv_rec"] = a.detach()
            return {"loss": loss, **out}

        def d_main(s):
            with torch.no_grad():
                fake_img = G.synthesis(G.mapping(s.z(), None))
            f, r = D(fake_img), D(s.real.detach())
            loss = F.softplus(widen(f)).mean() + F.softplus(-widen(r)).mean()  # Goodfellow 2014 eq. 1
            return {"loss": loss, "adv": loss.detach(), "real": r.detach().mean(), "fake": f.detach().mean()}

        return [Phase("D", "D", d_main, real=True), lazy_r1_phase(cfg, D), Phase("G", "G", g_main, real=True, reuse_real=True)]
    return phases


def patched(name: str):
    """The StyleGAN2 family with an encoder in G and this row's phases, in this process, until the block ends."""
    def build(original, family, cfg):
        nets = original(family, cfg)
        E = Discriminator(0, cfg.resolution, cfg.channels, cfg.d_architecture, cfg.channel_base, cfg.channel_max,
                          mbstd_group=1, mbstd_channels=0, resample_filter=cfg.resample_filter)
        E.b4.out = EqualLinear(E.b4.fc.weight.shape[0], 2 * cfg.z_dim)  # mean and log-variance
        nets["G"].encoder = E
        return nets

    return style_recipe_patched(build, encoder_phases(**VARIANTS[name]))


def run(name: str, runs: str, threads: int, seed: int) -> dict:
    t0 = time.perf_counter()
    with patched(name):
        m = train_quickstart(DATA, os.path.join(runs, f"{name}-seed{seed}"), threads, seed)
    return {"variant": name, **VARIANTS[name], "seed": seed, "kimg": 24.0,
            "seconds": round(time.perf_counter() - t0), **shapes_figures(m)}


def show(name: str, run_dir: str, out: str) -> None:
    """Reals, their reconstructions and random samples of a finished row, as one PNG."""
    import imageio.v3 as iio

    with patched(name):
        G = load(run_dir)
    torch.manual_seed(0)
    x = open_dataset(DATA).data[:32].float() / 127.5 - 1
    with torch.no_grad():
        mu = G.encoder(x)[:, :G.z_dim]
        rec = G.synthesis(G.mapping(mu, None), noise_mode="const").clamp(-1, 1)
        samples = G(torch.randn(32, G.z_dim))
    rows = []
    for t in (x, rec, samples):
        t = ((t + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
        rows += [t.reshape(4, 8, 3, 32, 32).permute(0, 3, 1, 4, 2).reshape(128, 256, 3), torch.full((4, 256, 3), 255, dtype=torch.uint8)]
    img = torch.cat(rows[:-1]).repeat_interleave(2, 0).repeat_interleave(2, 1)
    iio.imwrite(out, img.numpy())
    print(out)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--show"]:
        show(*sys.argv[2:5])
        sys.exit()
    variants_main(__doc__, VARIANTS, run, "/tmp/quickstart-encoder", "benchmarks/results/quickstart_encoder.json")
