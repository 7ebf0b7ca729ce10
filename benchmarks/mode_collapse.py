"""The mode-collapse benchmarks of VEEGAN (Srivastava et al. 2017) and PacGAN (Lin et al. 2018).

    python benchmarks/mode_collapse.py [--rows grid-gan-pac1 ...] [--seeds 0 1] [--kimg-scale 1.0] [--runs DIR]
        [--out benchmarks/results/mode_collapse.json]

* **grid25**: 25 Gaussians on {-4, -2, 0, 2, 4}^2 with standard deviation 0.05; 2,500 samples; a
  sample is high quality within 3 standard deviations of its nearest centre, a mode is covered
  when it holds at least one high-quality sample (``gankit.metrics.modes.toy2d_modes``).
* **stacked digits**: three random digits in the R, G, B channels (1,000 modes); 26,000 samples
  classified channel by channel; modes covered and KL(generated || uniform)
  (``stacked_digits_modes``). gankit's digits are scikit-learn's 8 x 8 digits (MNIST is not
  bundled), so this is the protocol on another digit set, not the published figure.
* **stacked MNIST** (rows ``smnist*``): the published protocol's data, ``builtin:stacked-mnist``, read from
  MNIST's IDX files in ``$GANKIT_MNIST``, and scored by the shipped MNIST classifier
  (``stacked_mnist_modes``).

Each row trains one family and preset with ``--model.pack m`` (PacGAN's packing; PacGAN's batch is
100 packs, so its rows use batch 100 m) for a stated budget, which is far below PacGAN's 400
epochs of 100k points where the row says so, and reads the mode metric from ``metrics.json``.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from common import write_results

from gankit.training.trainer import Trainer

GRID, STACKED = "builtin:grid25?n=100000", "builtin:stacked-digits?res=16&n=20000"
STACKED8 = "builtin:stacked-digits?res=8&n=20000"  # the style families' cpu-digits presets are for 8 px
STACKED128 = "builtin:stacked-digits?res=16&n=128000"  # PacGAN's num_training_sample
SMNIST16, SMNIST32 = "builtin:stacked-mnist?res=16", "builtin:stacked-mnist?res=32"  # n=128000 by default


def _pac(m: int, kimg: float, preset: str = "pacgan-toy") -> tuple:
    return ("gan", preset, GRID, kimg, {"pack": m}, {"batch_size": 100 * m})


#: name -> (family, preset, data, kimg, model overrides, train overrides)
ROWS = {
    **{f"grid-gan-pac{m}": _pac(m, 500 * m) for m in (1, 2, 3, 4)},  # 5,000 iterations: 1.25% of PacGAN's 400,000
    **{f"grid-gan-cpu-pac{m}": _pac(m, 500 * m, "cpu-pacgan") for m in (1, 2, 3, 4)},
    **{f"grid-gan-code-pac{m}": _pac(m, 500 * m, "pacgan-code") for m in (1, 2, 3, 4)},  # PacGAN's simultaneous update
    "grid-gan-pacgan-grid": ("gan", "pacgan-grid", GRID, 160000, {}, {}),  # 400,000 steps: 2-3 h on 2 cores
    "grid-gan-cpu-toy": ("gan", "cpu-toy", GRID, 300, {}, {}),
    "grid-wgan-cpu-toy": ("wgan", "cpu-toy", GRID, 300, {}, {}),
    "grid-wgan-gp-cpu-toy": ("wgan-gp", "cpu-toy", GRID, 800, {}, {}),
    "grid-wgan-gp-cpu-toy-pac2": ("wgan-gp", "cpu-toy", GRID, 800, {"pack": 2}, {"batch_size": 256}),
    "stacked-dcgan": ("dcgan", "cpu-digits", STACKED, 100, {}, {}),
    "stacked-dcgan-pac2": ("dcgan", "cpu-digits", STACKED, 100, {"pack": 2}, {"batch_size": 64}),
    "stacked-dcgan-pac4": ("dcgan", "cpu-digits", STACKED, 100, {"pack": 4}, {"batch_size": 128}),
    "stacked-wgan-gp": ("wgan-gp", "cpu-digits", STACKED, 100, {}, {}),
    "stacked-wgan-gp-pac2": ("wgan-gp", "cpu-digits", STACKED, 100, {"pack": 2}, {"batch_size": 128}),
    "stacked-gan": ("gan", None, STACKED, 100, {}, {}),  # the paper's MLPs (maxout D) on 768-d vectors of pixels
    "stacked-wgan": ("wgan", "cpu-digits", STACKED, 100, {}, {}),
    "stacked-stylegan2": ("stylegan2", "cpu-digits", STACKED8, 40, {}, {}),
    "stacked-stylegan2-pac2": ("stylegan2", "cpu-digits", STACKED8, 40, {"pack": 2}, {"batch_size": 64}),
    "stacked-stylegan": ("stylegan", "cpu-digits", STACKED8, 40, {}, {}),
    "stacked-stylegan3": ("stylegan3", "cpu-digits", STACKED, 24, {}, {}),  # its cpu-digits preset is for 16 px
    # PacGAN's stacked-MNIST recipe (dcgan pacgan-stacked: 64 filters, G twice per D step, a G call per
    # slot) on PacGAN's 128,000 training images, batch 64 packs, 400 kimg (1/16 of its 50 epochs' steps at pack 1,
    # 1/32 at pack 2, 1/48 at pack 3: its epochs are 2,000 steps of 64 packs whatever the pack size)
    "stacked-dcgan-pacgan-pac1": ("dcgan", "pacgan-stacked", STACKED128, 400, {}, {}),
    "stacked-dcgan-pacgan-pac2": ("dcgan", "pacgan-stacked", STACKED128, 400, {"pack": 2}, {"batch_size": 128}),
    "stacked-dcgan-pacgan-pac3": ("dcgan", "pacgan-stacked", STACKED128, 400, {"pack": 3}, {"batch_size": 192}),
    # the same recipe on real Stacked MNIST (needs GANKIT_MNIST; builtin:mnist says where the files go):
    # PacGAN's 128,000 triples of all 70,000 digits, at 16 px (a quarter of 32 px's cost) and at 32 px
    "smnist16-dcgan-pacgan-pac1": ("dcgan", "pacgan-stacked", SMNIST16, 400, {}, {}),
    "smnist16-dcgan-pacgan-pac2": ("dcgan", "pacgan-stacked", SMNIST16, 400, {"pack": 2}, {"batch_size": 128}),
    "smnist32-dcgan-pacgan-pac1": ("dcgan", "pacgan-stacked", SMNIST32, 400, {}, {}),
    "smnist32-dcgan-pacgan-pac2": ("dcgan", "pacgan-stacked", SMNIST32, 400, {"pack": 2}, {"batch_size": 128}),
}


def run(name: str, seed: int, threads: int, scale: float, keep: str | None = None) -> dict:
    family, preset, data, kimg, model, train = ROWS[name]
    kimg = kimg * scale
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        out = os.path.join(keep, f"{name}-seed{seed}") if keep else tmp
        tr = Trainer(family, data, out, preset=preset, progress=False,
                     overrides={"model": model, "train": {"kimg": kimg, "seed": seed, "tensorboard": False,
                                                          "snapshot_kimg": 10**6, "sample_kimg": 10**6,
                                                          "threads": threads, **train}})
        m = tr.run()["metric_values"]
        seconds = time.perf_counter() - t0
    keep = ("modes_covered", "num_modes", "high_quality_share", "kl_to_uniform", "num_samples")
    return {"row": name, "family": family, "preset": preset, "data": data, "kimg": kimg, "model": model,
            "train": train, "seed": seed, "seconds": round(seconds, 1), **{k: m[k] for k in keep if k in m}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--kimg-scale", type=float, default=1.0, help="multiply every row's budget (quick looks)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--runs", help="keep each run (samples, metrics.json) in this folder; default: a temporary one")
    ap.add_argument("--out", default="benchmarks/results/mode_collapse.json")
    args = ap.parse_args()
    rows = []
    for name in args.rows:
        runs = [run(name, s, args.threads, args.kimg_scale, args.runs) for s in args.seeds]
        for r in runs:
            print(r, flush=True)
        rows += runs
        for key in ("modes_covered", "high_quality_share", "kl_to_uniform"):
            vals = [r[key] for r in runs if key in r]
            if len(vals) > 1:
                print(f"  {name} {key}: mean {statistics.mean(vals):.3f} min {min(vals):.3f} max {max(vals):.3f}")
    write_results(args.out, rows, args.threads)


if __name__ == "__main__":
    main()
