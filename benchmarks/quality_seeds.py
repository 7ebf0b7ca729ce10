"""Seed spread of the quality figures: one short training per (config, seed), metrics.json's figures.

    python benchmarks/quality_seeds.py [--configs pix2pix cyclegan cogan] [--seeds 0 1 2]
        [--precision fp32 bf16] [--layout channels-last] [--model KEY=VALUE ...]
        [--out benchmarks/results/quality_seeds.json]

Each config is the one its quality test or docs/families.md trains (family, preset, built-in data,
kimg); every run uses ``--train.seed SEED`` (and ``--train.precision``, fp32 unless given; with
``--layout``, the StyleGAN2 configs' ``--model.layout``; with ``--model KEY=VALUE``, that model option)
and nothing else changes. Prints each run's figures,
then min / mean / max per figure over the seeds, and writes all rows as JSON.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from common import write_results

from gankit.training.trainer import Trainer

#: name -> (family, preset, data, kimg); "-test" rows are the quality tests' shorter runs
CONFIGS = {
    "pix2pix": ("pix2pix", "cpu-32", "builtin:edges2shapes", 16),
    "pix2pix-32": ("pix2pix", "cpu-32", "builtin:edges2shapes", 32),
    "cyclegan": ("cyclegan", "cpu-digits", "builtin:digits-invert", 6),
    "cogan": ("cogan", "cpu-digits", "builtin:digits-invert", 100),
    "cogan-test": ("cogan", "cpu-digits", "builtin:digits-invert", 60),
    "dcgan-digits": ("dcgan", "cpu-digits", "builtin:digits", 300),
    "stylegan2-digits": ("stylegan2", "cpu-digits", "builtin:digits?res=8", 40),
    "stylegan2-shapes": ("stylegan2", "cpu-shapes", "builtin:shapes?res=32", 24),
    "stylegan2-quickstart": ("stylegan2", "quickstart", "builtin:shapes?res=32", 24),  # make run
}


def run(name: str, seed: int, threads: int, precision: str = "fp32", layout: str = "",
        model: dict | None = None) -> dict:
    family, preset, data, kimg = CONFIGS[name]
    model = {**({"layout": layout} if layout else {}), **(model or {})}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        tr = Trainer(family, data, tmp, preset=preset, progress=False,
                     overrides={"train": {"kimg": kimg, "seed": seed, "tensorboard": False,
                                          "snapshot_kimg": 10**6, "threads": threads, "precision": precision},
                                **({"model": model} if model else {})})
        values = tr.run()["metric_values"]
        seconds = time.perf_counter() - t0
    config = (name if precision == "fp32" else f"{name}-{precision}") + (f"-{layout}" if layout else "")
    config += "".join(f"-{k}={v}" for k, v in model.items() if k != "layout")
    return {"config": config, "family": family, "preset": preset,
            "data": data, "kimg": kimg, "seed": seed, "precision": precision, **({"layout": layout} if layout else {}),
            **({"model": model} if model else {}),
            "seconds": round(seconds, 1),
            "metrics": {k: round(v, 4) if isinstance(v, float) else v for k, v in values.items()}}


def spread(rows: list) -> dict:
    """config -> figure -> [min, mean, max] over the seeds."""
    out = {}
    for name in dict.fromkeys(r["config"] for r in rows):
        runs = [r["metrics"] for r in rows if r["config"] == name]
        keys = [k for k, v in runs[0].items() if isinstance(v, (int, float))]
        out[name] = {k: [min(m[k] for m in runs), round(statistics.mean(m[k] for m in runs), 4),
                         max(m[k] for m in runs)] for k in keys}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--precision", nargs="+", default=["fp32"], choices=["fp32", "bf16"],
                    help="--train.precision of each run (several: every config at each)")
    ap.add_argument("--layout", default="", choices=["", "auto", "channels-last", "contiguous"],
                    help="--model.layout of the StyleGAN2 configs (default: the preset's)")
    ap.add_argument("--model", action="append", default=[], metavar="KEY=VALUE",
                    help="a model option for every run, e.g. share_fakes=true (repeatable)")
    ap.add_argument("--out", default="benchmarks/results/quality_seeds.json")
    args = ap.parse_args()
    model = {}
    for item in args.model:
        key, _, value = item.partition("=")
        model[key.replace("-", "_")] = {"true": True, "false": False}.get(value.lower(), value)
    rows = []
    for name in args.configs:
        for precision in args.precision:
            for seed in args.seeds:
                r = run(name, seed, args.threads, precision, args.layout, model)
                rows.append(r)
                print(f"{r['config']} seed {seed} ({r['seconds']} s): {r['metrics']}", flush=True)
    summary = spread(rows)
    for name, figs in summary.items():
        print(name + ": " + ", ".join(f"{k} {lo}-{hi} (mean {mu})" for k, (lo, mu, hi) in figs.items()))
    write_results(args.out, rows + [{"spread": summary}], args.threads)


if __name__ == "__main__":
    main()
