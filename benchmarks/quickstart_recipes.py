"""Recipe search for the Quickstart (issue 17): StyleGAN2 ``cpu-shapes`` on ``builtin:shapes?res=32``
with one change at a time, scored by metrics.json (shapes classifier: share of 5,000 samples whose
shape and colour are both recognised with p >= 0.9, and the shape-colour pairs covered).

    python benchmarks/quickstart_recipes.py [--variants base orig-b16 ...] [--out benchmarks/results/quickstart_recipes.json]

Every run uses seed 0 unless `--seed` says otherwise; the sample grids stay in ``--runs`` (default /tmp/quickstart-recipes) to look at.
"""
from __future__ import annotations

import os
import time

from common import shapes_figures, variants_main

from gankit.training.trainer import Trainer

ORIG, B16 = {"g_architecture": "orig"}, {"batch_size": 16}
BEST = {**ORIG, "pl_weight": 0.0, "style_mixing_prob": 0.0}  # the best of the first search ("B")
C = {**BEST, "r1_gamma": 0.01}  # B with a lower R1 weight (0.02 beat 0.1 and 0.5)
D = {**BEST, "r1_gamma": 0.05}  # between; every D row decays the learning rate over the second half
DECAY = {**B16, "lr_schedule": "linear-decay", "lr_decay_start": 0.5}
E = {**D, "pack": 2, "use_noise": False}  # the best 72 kimg row's model
Q = {**D, "pack": 2}  # the quickstart preset's model (with DECAY)
#: name -> (kimg, model overrides, train overrides) on top of the cpu-shapes preset
VARIANTS = {
    "base-12": (12, {}, {}),
    "r1-1-12": (12, {"r1_gamma": 1.0}, {}),
    "r1-1-nopl-nomix-12": (12, {"r1_gamma": 1.0, "pl_weight": 0.0, "style_mixing_prob": 0.0}, {}),
    "r1-0.01-12": (12, {"r1_gamma": 0.01}, {}),
    "lr-0.005-12": (12, {}, {"g_lr": 0.005, "d_lr": 0.005}),
    "orig-12": (12, ORIG, {}),
    "channel-base-2048-12": (12, {"channel_base": 2048}, {}),
    "b16-12": (12, {}, B16),
    "orig-b16-12": (12, ORIG, B16),
    "orig-b8-12": (12, ORIG, {"batch_size": 8}),
    "orig-b16-24": (24, ORIG, B16),
    "orig-b16-36": (36, ORIG, B16),
    "orig-b16-dlr-0.001-24": (24, ORIG, {**B16, "d_lr": 0.001}),
    "orig-b16-nopl-nomix-24": (24, {**ORIG, "pl_weight": 0.0, "style_mixing_prob": 0.0}, B16),
    "orig-b16-r1-0.5-24": (24, {**ORIG, "r1_gamma": 0.5}, B16),
    "orig-b16-nopl-nomix-glr-0.005-24": (24, {**ORIG, "pl_weight": 0.0, "style_mixing_prob": 0.0}, {**B16, "g_lr": 0.005}),
    "orig-b16-nopl-nomix-dorig-24": (24, {**ORIG, "pl_weight": 0.0, "style_mixing_prob": 0.0, "d_architecture": "orig"},
                                     B16),
    "orig-b16-nopl-nomix-48": (48, {**ORIG, "pl_weight": 0.0, "style_mixing_prob": 0.0}, B16),
    "B-r1-0.02-24": (24, {**BEST, "r1_gamma": 0.02}, B16),
    "B-r1-0.5-24": (24, {**BEST, "r1_gamma": 0.5}, B16),
    "C-24": (24, C, B16),
    "C-decay-24": (24, C, {**B16, "lr_schedule": "linear-decay", "lr_decay_start": 0.5}),
    "C-cb2048-24": (24, {**C, "channel_base": 2048}, B16),
    "D-24": (24, D, DECAY),
    "D-pack2-24": (24, {**D, "pack": 2}, DECAY),
    "D-nonoise-24": (24, {**D, "use_noise": False}, DECAY),
    "D-mbstd8-24": (24, {**D, "mbstd_group": 8}, DECAY),
    "D-pack2-72": (72, {**D, "pack": 2}, {**DECAY, "snapshot_kimg": 24}),
    "D-pack2-nonoise-72": (72, {**D, "pack": 2, "use_noise": False}, {**DECAY, "snapshot_kimg": 24}),
    "E-24": (24, E, DECAY),
    "E-box-24": (24, {**E, "resample_filter": (1, 1)}, DECAY),
    # on top of the quickstart preset's recipe (D + pack 2)
    "Q-beta-0.5-24": (24, Q, {**DECAY, "betas": (0.5, 0.99)}),
    "Q-mapmul-1-24": (24, {**Q, "mapping_lr_mul": 1.0}, DECAY),
    "Q-cb2048-max64-24": (24, {**Q, "channel_base": 2048, "channel_max": 64}, DECAY),
    "Q-b32-lr-0.005-24": (24, Q, {**DECAY, "batch_size": 32, "g_lr": 0.005, "d_lr": 0.005}),
    # the quickstart recipe at 48 kimg (third session): the data's size, R1, batch with the learning rate
    "Q-48": (48, Q, DECAY),
    "Q-n100k-48": (48, Q, DECAY),  # 100,000 images instead of 10,000 (DATA below)
    "Q-r1-0.5-48": (48, {**Q, "r1_gamma": 0.5}, DECAY),
    "Q-b32-lr-0.005-48": (48, Q, {**DECAY, "batch_size": 32, "g_lr": 0.005, "d_lr": 0.005}),
    "Q-b64-lr-0.01-48": (48, Q, {**DECAY, "batch_size": 64, "g_lr": 0.01, "d_lr": 0.01}),
    "Q-b32-lr-0.005-nonoise-48": (48, {**Q, "use_noise": False}, {**DECAY, "batch_size": 32, "g_lr": 0.005, "d_lr": 0.005}),
    # fourth session: is it the shapes' positions, the discrete factors, or D's learning rate?
    "Q-centred-24": (24, Q, DECAY),  # every shape at the centre (DATA below)
    "D-cond-shape-24": (24, {**D, "conditional": True}, DECAY),  # G and D given the shape label (no packing)
    "D-cond-colour-24": (24, {**D, "conditional": True}, DECAY),  # given the colour label
    "Q-dlr-0.005-24": (24, Q, {**DECAY, "d_lr": 0.005}),
    "Q-dlr-0.01-24": (24, Q, {**DECAY, "d_lr": 0.01}),
    # D sees blurred images at first (StyleGAN3 config R's curriculum), the blur gone at 12 kimg
    "Q-blur-2-24": (24, {**Q, "blur_init_sigma": 2.0, "blur_fade_kimg": 12.0}, DECAY),
    "Q-blur-4-24": (24, {**Q, "blur_init_sigma": 4.0, "blur_fade_kimg": 12.0}, DECAY),
    # half the channels at every resolution (1.8x the images per second): more kimg in the same time
    "Q-cb512-24": (24, {**Q, "channel_base": 512}, DECAY),
    "Q-cb512-48": (48, {**Q, "channel_base": 512}, DECAY),
    "Q-beta2-0.9-24": (24, Q, {**DECAY, "betas": (0.0, 0.9)}),  # SAGAN / BigGAN's Adam beta2
    "Q-r1-every-step-24": (24, {**Q, "d_reg_interval": 1}, DECAY),  # R1 in every D step, not lazily
    "Q-centred-96": (96, Q, {**DECAY, "snapshot_kimg": 24}),  # the centred data, four times as long
    # fifth session: a longer G EMA (the ramp caps the half-life at 5% of the images seen)
    "Q-ema10-ramp0.3-24": (24, Q, {**DECAY, "ema_kimg": 10.0, "ema_rampup": 0.3}),
    # the two architectures of section 4.1 not tried on the recipe: residual G, skip D
    "Q-gresnet-24": (24, {**Q, "g_architecture": "resnet"}, DECAY),
    "Q-dskip-24": (24, {**Q, "d_architecture": "skip"}, DECAY),
    # sixth session: G and D given the shape-colour pair (24 classes; labels=pair), D's projection head
    "D-cond-pair-24": (24, {**D, "conditional": True}, DECAY),
    "D-cond-pair-48": (48, {**D, "conditional": True}, DECAY),
    "Q-bf16-24": (24, Q, {**DECAY, "precision": "bf16"}),  # the recipe under CPU bf16 autocast
    # seventh session: told the factors, the synthesis net learns to draw (L1 regression) 2x faster at
    # 4x the learning rate; does a faster G help inside the GAN?
    "Q-glr-0.005-24": (24, Q, {**DECAY, "g_lr": 0.005}),
    "Q-glr-0.01-24": (24, Q, {**DECAY, "g_lr": 0.01}),
    "Q-glr-0.01-mapmul-1-24": (24, {**Q, "mapping_lr_mul": 1.0}, {**DECAY, "g_lr": 0.01}),  # the best regression's G
    # eighth session: two G steps per D step (DCGAN-tensorflow's trick "to make sure that d_loss does not go
    # to zero"), since D separates reals from fakes early and keeps doing so
    "Q-ngen-2-24": (24, Q, {**DECAY, "n_gen": 2}),
}
#: eleventh session: without minibatch stddev (packing already shows D pairs), without demodulation
VARIANTS.update({"Q-nombstd-24": (24, {**Q, "mbstd_group": 1}, DECAY),  # groups of 1: the statistic is constant
                 "Q-nodemod-24": (24, {**Q, "demodulate": False}, DECAY)})
#: eighteenth session: no anti-aliasing filter in G's upsampling and D's downsampling (a one-tap FIR:
#: transposed and strided convolutions, as DCGAN's, whose shapes on this data had corners)
VARIANTS.update({"Q-fir1-24": (24, {**Q, "resample_filter": (1,)}, DECAY)})
#: nineteenth session: G's 4x4 input from a fully connected layer of w (StyleGAN Table 1 A-C's traditional
#: input) instead of the learned constant, so that w can place a shape anywhere from the first layer on
VARIANTS.update({"Q-dense-24": (24, {**Q, "g_input": "dense"}, DECAY)})
#: eleventh session: the recipe under bf16 with some phases in fp32 (autocast off for them; FP32_PHASES)
FP32_PHASES = {"Q-bf16-fp32-Dreg-24": ("Dreg",), "Q-bf16-fp32-G-Dreg-24": ("G", "Dreg"),
               "Q-bf16-fp32-D-Dreg-24": ("D", "Dreg"), "Q-bf16-fp32-all-24": ("G", "D", "Dreg")}
VARIANTS.update({name: VARIANTS["Q-bf16-24"] for name in FP32_PHASES})
#: variants trained on other data than the Quickstart's
CENTRED = "builtin:shapes?res=32&place=centre"
DATA = {"Q-n100k-48": "builtin:shapes?res=32&n=100000", "Q-centred-24": CENTRED, "Q-centred-96": CENTRED,
        "D-cond-shape-24": "builtin:shapes?res=32&label=shape", "D-cond-colour-24": "builtin:shapes?res=32&label=colour",
        "D-cond-pair-24": "builtin:shapes?res=32&label=pair", "D-cond-pair-48": "builtin:shapes?res=32&label=pair"}


def run(name: str, runs: str, threads: int, seed: int = 0) -> dict:
    kimg, model, train = VARIANTS[name]
    t0 = time.perf_counter()
    out = os.path.join(runs, name if seed == 0 else f"{name}-seed{seed}")
    tr = Trainer("stylegan2", DATA.get(name, "builtin:shapes?res=32"), out, preset="cpu-shapes", progress=False,
                 overrides={"model": model, "train": {"kimg": kimg, "tensorboard": False, "snapshot_kimg": 10**6,
                                                      "sample_kimg": 10**6, "threads": threads, "seed": seed, **train}})
    if name in FP32_PHASES:  # this run only: those phases without the bf16 autocast
        import contextlib
        context = tr._loss_context
        tr._loss_context = lambda phase: (contextlib.nullcontext() if phase.name in FP32_PHASES[name]
                                          else context(phase))
    m = tr.run()["metric_values"]
    return {"variant": name, "seed": seed, "kimg": kimg, "data": DATA.get(name, "builtin:shapes?res=32"), "model": model, "train": train,
            "seconds": round(time.perf_counter() - t0),
            **shapes_figures(m)}


def main() -> None:
    variants_main(__doc__, VARIANTS, run, "/tmp/quickstart-recipes", "benchmarks/results/quickstart_recipes.json",
                  threads=os.cpu_count() or 1, append=False)


if __name__ == "__main__":
    main()
