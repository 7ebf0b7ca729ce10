"""A discriminator that also classifies, in the Quickstart's recipe (issue 17, fourteenth session).
Each row trains the `quickstart` preset for 24 kimg on ``builtin:shapes?res=32&label=pair`` (each
image labelled with its shape-colour pair, 24 classes) and reports metrics.json's shapes figures.
Experiments, not features: they patch the StyleGAN2 family in this process only.

    python benchmarks/quickstart_aux_classifier.py --variants ac-real ent-pack2 ... [--seed 0] [--threads 1]

D keeps the recipe's logit (unconditional: no projection) and gains an auxiliary head, a linear
layer from its epilogue's fully connected features to the 24 classes (to 24 per image of a pack
when packed). Its cross-entropy on the reals' labels joins D's loss.

* ``ac-*``: AC-GAN (Odena et al. 2017, section 3). G is given a label drawn uniformly
  (``--model.conditional``; no packing) and its loss adds ``weight`` times the cross-entropy of
  D's head on its fakes against that label. ``ac-real`` trains D's head on reals only;
  ``ac-both`` also on the fakes with their labels, as the paper's L_C does.
* ``ent-*``: G unconditional with the recipe's packing 2; G's loss adds ``weight`` times
  H[p(y|G(z))] - H[E_z p(y|G(z))], the conditional entropy minus the batch's marginal entropy of
  D's head (CatGAN, Springenberg 2016, section 4): each fake confidently one class, all classes
  used.

``--spread VARIANT RUN ...`` prints each run's within-class spread (mean per-pixel std over 16
samples of one class, averaged over the classes); ``--spread reals`` the data's.

Results: ``benchmarks/results/quickstart_aux_classifier.json``; sample grids stay in ``--runs``.
"""
from __future__ import annotations

import os
import sys
import time

import torch
import torch.nn.functional as F
from common import lazy_r1_phase, shapes_figures, style_recipe_patched, train_quickstart, variants_main
from torch import nn

from gankit import load
from gankit.data import open_dataset
from gankit.losses import widen
from gankit.models.family import Phase
from gankit.models.stylegan2 import Discriminator
from gankit.nn.layers import packed

DATA = "builtin:shapes?res=32&label=pair"
NUM_CLASSES = 24  # shape-colour pairs of builtin:shapes
#: name -> (kind, weight, pack, D's head also trained on fakes)
VARIANTS = {
    "ac-real": ("ac", 1.0, 1, False), "ac-real-w3": ("ac", 3.0, 1, False), "ac-both": ("ac", 1.0, 1, True),
    "ent-pack2": ("ent", 1.0, 2, False), "ent-pack2-w3": ("ent", 3.0, 2, False),
}


def aux_phases(kind: str, weight: float, fakes_too: bool):
    def phases(cfg, G, D):
        def labels(s, real):
            if real:
                return s.labels.long()
            return s.randint(G.c_dim) if G.c_dim else None

        def fake(z, y):
            return G.synthesis(G.mapping(z, F.one_hot(y, G.c_dim).float() if G.c_dim else None))

        def g_term(logits, y):
            if kind == "ent":  # CatGAN (Springenberg 2016, s. 4): H[p(y|x)] - H[E p(y|x)] over the batch
                p = logits.softmax(1)
                marginal = p.mean(0)
                return -(p * logits.log_softmax(1)).sum(1).mean() + (marginal * marginal.clamp_min(1e-8).log()).sum()
            return F.cross_entropy(logits, y)  # AC-GAN (Odena et al. 2017, s. 3): L_C on G's side

        def g_main(s):
            y = labels(s, False)
            adv = F.softplus(-widen(D(fake(s.z(), y)))).mean()  # non-saturating (Goodfellow 2014 s. 3)
            aux = g_term(D.aux_logits(), y)
            return {"loss": adv + weight * aux, "adv": adv.detach(), "aux": aux.detach()}

        def d_main(s):
            y = labels(s, False)
            with torch.no_grad():
                fake_img = fake(s.z(), y)
            f = D(fake_img)
            f_logits = D.aux_logits() if fakes_too else None
            r = D(s.real.detach())
            ce_real = F.cross_entropy(D.aux_logits(), labels(s, True))
            adv = F.softplus(widen(f)).mean() + F.softplus(-widen(r)).mean()  # Goodfellow 2014 eq. 1
            loss = adv + weight * ce_real
            out = {"adv": adv.detach(), "real": r.detach().mean(), "fake": f.detach().mean(), "ce_real": ce_real.detach()}
            if fakes_too:  # Odena et al. 2017 eq. 2: L_C over reals and fakes
                ce_fake = F.cross_entropy(f_logits, y)
                loss = loss + weight * ce_fake
                out["ce_fake"] = ce_fake.detach()
            return {"loss": loss, **out}

        return [Phase("G", "G", g_main), Phase("D", "D", d_main, real=True), lazy_r1_phase(cfg, D)]
    return phases


def patched(name: str):
    """The StyleGAN2 family with this row's D and phases, in this process, until the block ends."""
    kind, weight, pack, fakes_too = VARIANTS[name]

    def build(original, family, cfg):
        nets = original(family, cfg)  # G (and the D it replaces) drawn first, as in the runs reported
        D = Discriminator(0, cfg.resolution, cfg.channels * pack, cfg.d_architecture, cfg.channel_base,
                          cfg.channel_max, cfg.mbstd_group, cfg.mbstd_channels, cfg.resample_filter, None)
        D.aux = nn.Linear(D.b4.fc.weight.shape[0], NUM_CLASSES * pack)
        features = {}
        D.b4.fc.register_forward_hook(lambda m, i, out: features.update(fc=out))  # the epilogue's fc features
        nets["D"] = packed(D, pack)
        nets["D"].aux_logits = lambda: D.aux(features["fc"]).reshape(-1, NUM_CLASSES)  # per image, pack order
        return nets

    return style_recipe_patched(build, aux_phases(kind, weight, fakes_too))


def run(name: str, runs: str, threads: int, seed: int) -> dict:
    kind, weight, pack, fakes_too = VARIANTS[name]
    model = {"pack": 1, "conditional": kind == "ac"}  # the packed D is built in patched(), outside the config
    t0 = time.perf_counter()
    with patched(name):
        m = train_quickstart(DATA, os.path.join(runs, f"{name}-seed{seed}"), threads, seed, model=model)
    return {"variant": name, "kind": kind, "weight": weight, "pack": pack, "fakes_too": fakes_too, "seed": seed,
            "kimg": 24.0, "seconds": round(time.perf_counter() - t0), **shapes_figures(m)}


def within_class_spread(run_dir: str, name: str, n: int = 16) -> float:
    """Mean per-pixel std over ``n`` samples of one class from the run's G EMA, averaged over the
    classes (each sample a fresh z; seed 0). For the reals: ``run_dir`` "reals", the first ``n``
    images of each class among the first 3,000."""
    torch.manual_seed(0)
    if run_dir == "reals":
        ds = open_dataset(DATA)
        x, y = ds.data[:3000].float() / 127.5 - 1, ds.labels[:3000]
        return sum(x[y == k][:n].std(0).mean().item() for k in range(NUM_CLASSES)) / NUM_CLASSES
    with patched(name):
        G = load(run_dir)
    spread = []
    with torch.no_grad():
        for k in range(NUM_CLASSES if G.c_dim else 1):
            c = F.one_hot(torch.full((n,), k), G.c_dim).float() if G.c_dim else None
            spread.append(G(torch.randn(n, G.z_dim), c).clamp(-1, 1).std(0).mean().item())
    return sum(spread) / len(spread)


def main() -> None:
    if sys.argv[1:2] == ["--spread"]:  # --spread VARIANT RUN [RUN ...], or --spread reals
        args = sys.argv[2:]
        for run_dir in args[1:] if args[0] != "reals" else ["reals"]:
            print(run_dir, f"within-class spread {within_class_spread(run_dir, args[0]):.4f}")
        return
    variants_main(__doc__, VARIANTS, run, "/tmp/quickstart-aux", "benchmarks/results/quickstart_aux_classifier.json")


if __name__ == "__main__":
    main()
