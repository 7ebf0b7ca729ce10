"""How fast can StyleGAN2's synthesis network learn to draw the built-in shapes when it is told what
to draw? A GAN-free probe of the Quickstart's generator (issue 17).

G gets each image's factors instead of noise (one-hot shape, colour, size and background, and the
centre's x and y in [-1, 1], zero-padded to z_dim) and is trained by L1 regression to the image,
with the GAN recipe's Adam (betas (0, 0.99) unless a row says otherwise). After ``--steps`` steps
it draws 2,000 held-in images from their factors, and the shapes classifier scores them as it
scores a GAN's samples (``modes-shapes``: shape and colour both at p >= 0.9). Since the factors
fix the image, a network that can draw shapes should approach the real data's 87.5%; what it
reaches in the Quickstart's number of steps bounds how much any GAN recipe can get out of that
generator in that time.

    python benchmarks/synthesis_regression.py [--variants base lr-0.01 ...] [--steps 1500] [--threads 1]

Rows are appended to ``--out`` (default benchmarks/results/synthesis_regression.json); a grid of
each row's drawings goes to ``--runs``.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

from common import earlier_results, write_results

from gankit.data.builtin.shapes import shapes
from gankit.metrics.modes import shapes_modes
from gankit.models.stylegan2 import Generator
from gankit.visual import image_grid

#: the Quickstart preset's generator (z 64, w 64, 2 mapping layers at lr x0.01, channel_base 1024, 128 at most)
BASE = {"arch": "orig", "lr": 0.0025, "beta1": 0.0, "noise": True, "mapping_lr_mul": 0.01, "channel_base": 1024,
        "channel_max": 128, "place": "random"}
VARIANTS = {
    "base": {},
    "skip": {"arch": "skip"},
    "centred": {"place": "centre"},
    "map-lr-1": {"mapping_lr_mul": 1.0},
    "map-lr-1-beta1-0.9": {"mapping_lr_mul": 1.0, "beta1": 0.9},
    "map-lr-1-lr-0.01": {"mapping_lr_mul": 1.0, "lr": 0.01},
    "map-lr-1-lr-0.01-nonoise": {"mapping_lr_mul": 1.0, "lr": 0.01, "noise": False},
    "map-lr-1-lr-0.01-cb4096": {"mapping_lr_mul": 1.0, "lr": 0.01, "channel_base": 4096},
    "lr-0.01": {"lr": 0.01},
}


def factor_codes(meta: dict, idx: np.ndarray, z_dim: int) -> torch.Tensor:
    f, z, off = meta["factors"], torch.zeros(len(idx), z_dim), 0
    rows = torch.arange(len(idx))
    for k in ("shape", "colour", "size", "background"):
        z[rows, off + torch.from_numpy(f[k][idx])] = 1
        off += len(meta["factor_names"][k])
    z[:, off] = torch.from_numpy(f["x"][idx]).float() * 2 - 1
    z[:, off + 1] = torch.from_numpy(f["y"][idx]).float() * 2 - 1
    return z


def run(name: str, steps: int, runs: str, seed: int = 0, batch: int = 16) -> dict:
    v = {**BASE, **VARIANTS[name]}
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    ds = shapes(res=32, n=10_000, seed=0, place=v["place"])
    x = ds.data.float().div(127.5).sub(1)
    G = Generator(64, 0, 64, 32, 3, mapping_kwargs={"num_layers": 2, "lr_multiplier": v["mapping_lr_mul"]},
                  synthesis_kwargs={"channel_base": v["channel_base"], "channel_max": v["channel_max"],
                                    "architecture": v["arch"], "use_noise": v["noise"]})
    opt = torch.optim.Adam(G.parameters(), lr=v["lr"], betas=(v["beta1"], 0.99), eps=1e-8)
    t0 = time.perf_counter()
    for _ in range(steps):
        idx = rng.integers(0, len(x), batch)
        loss = (G(factor_codes(ds.meta, idx, 64)) - x[idx]).abs().mean()  # L1 to the image the factors describe
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    seconds = time.perf_counter() - t0
    idx = np.arange(2000)
    with torch.no_grad():
        out = torch.cat([G(factor_codes(ds.meta, idx[i:i + 500], 64)) for i in range(0, len(idx), 500)])
    m = shapes_modes(out)
    Path(runs).mkdir(parents=True, exist_ok=True)
    image_grid(out[:64], cols=8).save(os.path.join(runs, f"{name}-{steps}.png"))
    return {"variant": name, "settings": v, "steps": steps, "batch": batch, "seed": seed, "l1": round(float(loss.detach()), 4),
            "seconds": round(seconds), "recognised_share": m["recognised_share"], "pairs_covered": m["pairs_covered"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", nargs="+", default=["base"], choices=list(VARIANTS))
    ap.add_argument("--steps", type=int, default=1500, help="1,500: the Quickstart's 24 kimg at batch 16")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", default="/tmp/synthesis-regression")
    ap.add_argument("--out", default="benchmarks/results/synthesis_regression.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = earlier_results(args.out)
    for name in args.variants:
        rows.append({**run(name, args.steps, args.runs, args.seed), "threads": args.threads})
        print(rows[-1], flush=True)
        write_results(args.out, rows, args.threads)  # after every row: a long search keeps what it did


if __name__ == "__main__":
    main()
