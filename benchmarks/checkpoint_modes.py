"""The mode metric of every checkpoint of a run: how a long run's mode coverage moves with steps.

    python benchmarks/checkpoint_modes.py RUN [RUN ...] [--out benchmarks/results/checkpoint_modes.json]

Each checkpoint's inference network is scored as ``gankit train`` scores the final one
(``gankit.metrics.modes.evaluate_generator`` on the run's own data: 2,500 samples for the 2D
mixtures, 26,000 for stacked digits, 5,000 for shapes). Keep the checkpoints with
``--train.snapshot-kimg N --train.keep 100``. Rows are added to ``--out``; a checkpoint scored again
replaces its earlier row, and ``--new-only`` skips checkpoints that already have one.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from common import earlier_results, write_results

from gankit.api import load_bundle
from gankit.data import open_dataset
from gankit.metrics.modes import evaluate_generator

KEEP = ("modes_covered", "num_modes", "high_quality_share", "kl_to_uniform", "recognised_share", "pairs_covered")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="run folders with checkpoints/ckpt-*")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="benchmarks/results/checkpoint_modes.json")
    ap.add_argument("--new-only", action="store_true", help="score only checkpoints with no row in --out yet")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = {(r["run"], r["kimg"]): r for r in earlier_results(args.out)}  # one row per checkpoint
    for run in args.runs:
        ckpts = sorted((Path(run) / "checkpoints").glob("ckpt-*"))
        if not ckpts:
            raise SystemExit(f"{run}: no checkpoints/ckpt-* folders; train with --train.snapshot-kimg N --train.keep 100")
        config = json.loads((Path(run) / "config.json").read_text())
        data = open_dataset(config["data"]["spec"])
        for ck in ckpts:
            images = int(ck.name.rsplit("-", 1)[1])  # ckpt-NNNNNNNNN: images shown so far
            if args.new_only and (str(run), images / 1000) in rows:
                continue
            _, net, _ = load_bundle(ck)
            m = evaluate_generator(net, data)
            row = {"run": str(run), "family": config["family"], "preset": config.get("preset"),
                   "model": config["model"], "batch_size": config["train"]["batch_size"], "seed": config["train"]["seed"],
                   "kimg": images / 1000, "steps": images // config["train"]["batch_size"],
                   **{k: m[k] for k in KEEP if k in m}}
            rows[(row["run"], row["kimg"])] = row
            print({k: row[k] for k in ("run", "kimg", "steps") + tuple(k for k in KEEP if k in row)}, flush=True)
    write_results(args.out, list(rows.values()), args.threads)


if __name__ == "__main__":
    main()
