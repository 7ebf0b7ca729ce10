"""Progressive growing with a fade-in (Karras et al. 2018, "Progressive Growing of GANs", section 2)
on the Quickstart's recipe (issue 17, eleventh session). An experiment, not a feature: it patches
the StyleGAN2 family in this process only (issue 18 brings growing as a feature).

    python benchmarks/quickstart_growing.py --variants grow-a grow-b [--seed 0] [--threads 1]

G and D train at 8 px, then 16, then 32 (the data's resolution), each new resolution faded in
linearly over a stretch of images. Extra toRGB layers (G, modulated 1x1 as StyleGAN2's tRGB) and
fromRGB layers (D, 1x1 + leaky ReLU) serve the lower resolutions; during a fade, G's output is
lerp(nearest-upsampled previous toRGB, new toRGB, alpha) and D's input path is lerp(fromRGB of
the 2x average-pooled image, new block, alpha), as PGGAN's Figure 2. Reals are average-pooled to
the current resolution and faded the same way. At full resolution the networks are exactly the
recipe's (orig G, residual D, pack 2); the extra layers are then unused. R1 is taken at the
current resolution. Schedules (kimg at which each stage ends; the last stage runs to the end):

* ``grow-a``: 8 px to 4 kimg, fade to 16 px by 8, 16 px to 12, fade to 32 px by 16, 32 px to 30 kimg;
* ``grow-b``: 3 / 6 / 9 / 12, then 32 px to 28 kimg.

Both take about the wall time of the recipe's 24 kimg at 32 px. Results:
``benchmarks/results/quickstart_growing.json``; sample grids stay in ``--runs``.
"""

from __future__ import annotations

import dataclasses
import os
import time

import torch
import torch.nn.functional as F
from common import shapes_figures, variants_main
from torch import nn

import gankit.models.recipes.style as style
import gankit.models.stylegan2 as sg2
from gankit.losses import r1_penalty, widen
from gankit.nn.equalized import EqualConv2d
from gankit.training.trainer import Trainer

STATE = {"level": 32, "alpha": 1.0, "full": 32}
SCHED = []  # (end kimg, level, fading)


def set_state(nimg):
    k, start = nimg / 1000, 0.0
    for end, level, fading in SCHED:
        if k < end:
            STATE.update(level=level, alpha=(k - start) / (end - start) if fading else 1.0)
            return
        start = end
    STATE.update(level=STATE["full"], alpha=1.0)


def is_full():
    return STATE["level"] >= STATE["full"] and STATE["alpha"] >= 1.0


orig_syn, orig_D = sg2.SynthesisNetwork.forward, sg2.Discriminator.forward
ORIG_PHASES, orig_build = style.style_phases, sg2.StyleGAN2.build


def syn_forward(self, ws, noise_mode="random", fused=None):
    if is_full() or not hasattr(self, "grow_torgb"):
        return orig_syn(self, ws, noise_mode, fused)
    L, a = STATE["level"], STATE["alpha"]
    x, i, xs, img = None, 0, {}, None
    for res in self.block_resolutions:
        if res > L:
            break
        block = getattr(self, f"b{res}")
        x, img = block(x, None, ws.narrow(1, i, block.num_conv + block.num_torgb), noise_mode, False)
        xs[res] = x
        i += block.num_conv
    w0 = ws[:, 0]
    out = img if L == self.img_resolution else self.grow_torgb[str(L)](xs[L], w0)
    if a < 1:  # PGGAN fade-in: lerp(nearest-upsampled previous toRGB, new toRGB, alpha)
        prev = self.grow_torgb[str(L // 2)](xs[L // 2], w0)
        out = torch.lerp(F.interpolate(prev, scale_factor=2, mode="nearest"), out, a)
    return out


def d_forward(self, img, c=None):
    if is_full() or not hasattr(self, "grow_fromrgb"):
        return orig_D(self, img, c)
    L, a = STATE["level"], STATE["alpha"]
    if L == self.img_resolution:
        x, _ = getattr(self, f"b{L}")(None, img)
    else:
        x, _ = getattr(self, f"b{L}")(self.grow_fromrgb[str(L)](img), None)
    if a < 1:
        y = self.grow_fromrgb[str(L // 2)](F.avg_pool2d(img, 2))
        x = torch.lerp(y, x, a)
    for res in self.block_resolutions:
        if res < L:
            x, _ = getattr(self, f"b{res}")(x, None)
    return self.b4(x, None, None)


def build(self, cfg):
    nets = orig_build(self, cfg)
    G, D = nets["G"], nets["D"]
    Dn = D.net if hasattr(D, "net") else D
    levels = [r for r in G.synthesis.block_resolutions if 8 <= r < cfg.resolution]
    ch = sg2.channel_widths(cfg.channel_base, cfg.channel_max, G.synthesis.block_resolutions)
    G.synthesis.grow_torgb = nn.ModuleDict({str(r): sg2.ToRGBLayer(ch[r], cfg.channels, cfg.w_dim) for r in levels})
    Dn.grow_fromrgb = nn.ModuleDict(
        {str(r): EqualConv2d(cfg.channels * cfg.pack, ch[r], 1, activation="lrelu") for r in [4] + levels}
    )
    return nets


def to_level(real):
    if is_full():
        return real
    L, a = STATE["level"], STATE["alpha"]
    r = F.avg_pool2d(real, real.shape[-1] // L) if real.shape[-1] > L else real
    if a < 1:
        r = torch.lerp(F.interpolate(F.avg_pool2d(r, 2), scale_factor=2, mode="nearest"), r, a)
    return r


def phases(cfg, G, D, n_critic=1, n_gen=1):
    ps = ORIG_PHASES(cfg, G, D, n_critic, n_gen)

    def fake(s):
        ws = style.run_mapping(G, s.z(), None, cfg.style_mixing_prob, update_w_avg=True)
        return G.synthesis(ws)

    def g_main(s):
        set_state(s.cur_nimg)
        loss = F.softplus(-widen(D(fake(s), None))).mean()
        return {"loss": loss, "adv": loss.detach(), "level": torch.tensor(float(STATE["level"]) + STATE["alpha"] - 1)}

    def d_main(s):
        set_state(s.cur_nimg)
        with torch.no_grad():
            fi = fake(s)
        f, r = widen(D(fi, None)), widen(D(to_level(s.real.detach()), None))
        loss = F.softplus(f).mean() + F.softplus(-r).mean()
        return {"loss": loss, "adv": loss.detach(), "real": r.detach().mean(), "fake": f.detach().mean()}

    def d_reg(s):
        set_state(s.cur_nimg)
        real = to_level(s.real.detach()).detach().requires_grad_(True)
        r1 = r1_penalty(D(real, None), real)
        return {"loss": r1 * (cfg.r1_gamma / 2) * float(cfg.d_reg_interval), "r1": r1.detach()}

    fns = {"G": g_main, "D": d_main, "Dreg": d_reg}
    return [dataclasses.replace(p, loss=fns[p.name]) for p in ps]


SCHEDS = {  # name -> (stages: (end kimg, resolution, fading), total kimg)
    "grow-a": ([(4, 8, False), (8, 16, True), (12, 16, False), (16, 32, True)], 30.0),
    "grow-b": ([(3, 8, False), (6, 16, True), (9, 16, False), (12, 32, True)], 28.0),
}


def run(name: str, runs: str, threads: int, seed: int) -> dict:
    sched, kimg = SCHEDS[name]
    SCHED[:] = sched
    STATE.update(level=32, alpha=1.0)
    patched = [
        (sg2.SynthesisNetwork, "forward", syn_forward),
        (sg2.Discriminator, "forward", d_forward),
        (sg2.StyleGAN2, "build", build),
        (style, "style_phases", phases),
    ]
    saved = [(obj, attr, getattr(obj, attr)) for obj, attr, _ in patched]
    for obj, attr, new in patched:
        setattr(obj, attr, new)
    t0 = time.perf_counter()
    try:
        tr = Trainer(
            "stylegan2",
            "builtin:shapes?res=32",
            os.path.join(runs, f"{name}-seed{seed}"),
            preset="quickstart",
            progress=False,
            overrides={
                "train": {
                    "kimg": kimg,
                    "tensorboard": False,
                    "snapshot_kimg": 10**6,
                    "sample_kimg": 10**6,
                    "threads": threads,
                    "seed": seed,
                }
            },
        )
        m = tr.run()["metric_values"]
    finally:
        for obj, attr, old in saved:
            setattr(obj, attr, old)
        STATE.update(level=32, alpha=1.0)
    return {
        "variant": name,
        "stages": sched,
        "seed": seed,
        "kimg": kimg,
        "seconds": round(time.perf_counter() - t0),
        **shapes_figures(m),
    }


def main() -> None:
    variants_main(__doc__, SCHEDS, run, "/tmp/quickstart-growing", "benchmarks/results/quickstart_growing.json")


if __name__ == "__main__":
    main()
