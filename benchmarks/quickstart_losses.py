"""Other adversarial losses and latent sizes in the Quickstart's recipe (issue 17, eleventh session).
Each row trains the `quickstart` preset on ``builtin:shapes?res=32`` with one change and reports
metrics.json's shapes figures. Experiments, not features: the loss rows replace the style
recipe's G and D main steps in this process only (the lazy R1 step stays as it is).

    python benchmarks/quickstart_losses.py --variants base hinge lsgan ... [--seed 0] [--threads 1]

* ``base``: the recipe's own non-saturating logistic loss, rewritten here (it repeats the
  preset's run step for step);
* ``hinge``: Lim & Ye 2017 (SAGAN, BigGAN): D relu(1 - D(x)) + relu(1 + D(G(z))), G -D(G(z));
* ``lsgan``: Mao et al. 2017 eq. 2 with a-b-c = 0-1-1: D (D(x) - 1)^2 / 2 + D(G(z))^2 / 2,
  G (D(G(z)) - 1)^2 / 2;
* ``ragan``: relativistic average GAN (Jolicoeur-Martineau 2018, eq. 6-7 with the logistic
  f): each side's logits against the other side's mean; G's step uses the reals of the last D
  step (its first step falls back to the non-saturating loss);
* ``smooth-0.9``: one-sided label smoothing (Salimans et al. 2016, section 3.4): D's real target 0.9;
* ``topk-0.5``: top-k training (Sinha et al. 2020): G's loss over the half of its packs that D
  rates most real;
* ``zdim-8``, ``map8``, ``pack4``, ``pack4-mb2``: model options (z 8-d; 8 mapping layers as the
  paper; PacGAN packing 4; that with minibatch-stddev groups of 2).

Results: ``benchmarks/results/quickstart_losses.json``; sample grids stay in ``--runs``.
"""
from __future__ import annotations

import dataclasses
import math
import os
import time

import torch
import torch.nn.functional as F
from common import shapes_figures, variants_main

import gankit.models.recipes.style as style
from gankit.losses import widen
from gankit.training.trainer import Trainer

#: name -> (loss, its parameter, model overrides)
VARIANTS = {
    "base": ("logistic", 0.0, {}), "hinge": ("hinge", 0.0, {}), "lsgan": ("lsgan", 0.0, {}),
    "ragan": ("ragan", 0.0, {}), "smooth-0.9": ("smooth", 0.9, {}), "topk-0.5": ("topk", 0.5, {}),
    "zdim-8": ("logistic", 0.0, {"z_dim": 8}), "map8": ("logistic", 0.0, {"mapping_layers": 8}),
    "pack4": ("logistic", 0.0, {"pack": 4}), "pack4-mb2": ("logistic", 0.0, {"pack": 4, "mbstd_group": 2}),
}
RECIPE_PHASES = style.style_phases


def loss_phases(kind: str, param: float):
    """style_phases with the G and D main steps' losses replaced (unconditional, no path length)."""
    def phases(cfg, G, D, n_critic=1, n_gen=1):
        last_real: list[torch.Tensor] = []

        def fake(s):
            return G.synthesis(style.run_mapping(G, s.z(), None, cfg.style_mixing_prob, update_w_avg=True))

        def g_main(s):
            f = widen(D(fake(s), None))
            if kind == "hinge":
                loss = (-f).mean()  # Lim & Ye 2017: G maximizes D's output
            elif kind == "lsgan":
                loss = 0.5 * ((f - 1) ** 2).mean()  # Mao et al. 2017 eq. 2, c = 1
            elif kind == "ragan" and last_real:
                r = widen(D(last_real[0], None))  # Jolicoeur-Martineau 2018 eq. 7: relative to the mean real
                loss = F.softplus(-(f - r.mean())).mean() + F.softplus(r - f.mean()).mean()
            elif kind == "topk":
                per = F.softplus(-f).flatten()  # Sinha et al. 2020: only the k fakes D rates most real
                loss = per.topk(max(1, math.ceil(len(per) * param)), largest=False).values.mean()
            else:
                loss = F.softplus(-f).mean()  # -log sigmoid(D(G(z))): non-saturating (Goodfellow 2014 s. 3)
            return {"loss": loss, "adv": loss.detach()}

        def d_main(s):
            with torch.no_grad():
                fake_img = fake(s)
            f, r = widen(D(fake_img, None)), widen(D(s.real.detach(), None))
            last_real[:] = [s.real.detach()]
            if kind == "hinge":
                loss = F.relu(1 - r).mean() + F.relu(1 + f).mean()  # Lim & Ye 2017
            elif kind == "lsgan":
                loss = 0.5 * ((r - 1) ** 2).mean() + 0.5 * (f ** 2).mean()  # Mao et al. 2017 eq. 2, a = 0, b = 1
            elif kind == "ragan":  # Jolicoeur-Martineau 2018 eq. 6
                loss = F.softplus(-(r - f.mean())).mean() + F.softplus(f - r.mean()).mean()
            elif kind == "smooth":  # Salimans et al. 2016 s. 3.4: the real target is param, not 1
                loss = param * F.softplus(-r).mean() + (1 - param) * F.softplus(r).mean() + F.softplus(f).mean()
            else:  # the logistic loss (Goodfellow 2014 eq. 1)
                loss = F.softplus(f).mean() + F.softplus(-r).mean()
            return {"loss": loss, "adv": loss.detach(), "real": r.detach().mean(), "fake": f.detach().mean()}

        fns = {"G": g_main, "D": d_main}
        return [dataclasses.replace(p, loss=fns[p.name]) if p.name in fns else p
                for p in RECIPE_PHASES(cfg, G, D, n_critic, n_gen)]
    return phases


def run(name: str, runs: str, threads: int, seed: int) -> dict:
    kind, param, model = VARIANTS[name]
    style.style_phases = loss_phases(kind, param)
    t0 = time.perf_counter()
    try:
        tr = Trainer("stylegan2", "builtin:shapes?res=32", os.path.join(runs, f"{name}-seed{seed}"), preset="quickstart",
                     progress=False, overrides={"model": model, "train": {
                         "kimg": 24.0, "tensorboard": False, "snapshot_kimg": 10**6, "sample_kimg": 10**6,
                         "threads": threads, "seed": seed}})
        m = tr.run()["metric_values"]
    finally:
        style.style_phases = RECIPE_PHASES
    return {"variant": name, "loss": kind, "param": param, "model": model, "seed": seed, "kimg": 24.0,
            "seconds": round(time.perf_counter() - t0),
            **shapes_figures(m)}


def main() -> None:
    variants_main(__doc__, VARIANTS, run, "/tmp/quickstart-losses", "benchmarks/results/quickstart_losses.json")


if __name__ == "__main__":
    main()
