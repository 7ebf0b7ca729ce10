"""Floating-point operations per training image, counted by ``torch.utils.flop_counter`` (the
convolutions' and matrix products' multiply-adds, forward and backward, as 2 FLOPs each), for a
family, preset and dataset. Iterations where a lazy regularization phase (R1, path length) is due
are stepped but not counted, since the counter cannot follow ``torch.autograd.grad``; the figure is
the main phases' cost.

    python benchmarks/train_flops.py --family stylegan2 --preset quickstart --data 'builtin:shapes?res=32'

With a measured rate in images/s, ``gflop_per_image * rate`` is the useful GFLOP/s the iteration
reaches. Results: ``benchmarks/results/train_flops.json``.
"""
from __future__ import annotations

import argparse
import tempfile

import torch
from common import write_results
from torch.utils.flop_counter import FlopCounterMode

from gankit.training.trainer import Trainer


def count(family: str, preset: str, data: str, iterations: int, warmup: int) -> dict:
    with tempfile.TemporaryDirectory() as out:
        tr = Trainer(family, data, out, preset=preset, progress=False,
                     overrides={"train": {"kimg": 10**6, "tensorboard": False, "metrics": False, "threads": 1}})
        tr.setup()
        lazy = [p.every for p in tr.phases if p.higher_order and p.every > 1]
        if any(p.higher_order and p.every == 1 for p in tr.phases):
            raise SystemExit(f"{family} {preset}: a phase takes a gradient of a gradient every iteration; "
                             "the FLOP counter cannot follow it")
        for _ in range(warmup):
            tr.step(10**9)
        flops, counted = 0, 0
        while counted < iterations:
            if any(tr.iteration % e == 0 for e in lazy):
                tr.step(10**9)
                continue
            with FlopCounterMode(display=False) as fc:
                tr.step(10**9)
            flops += fc.get_total_flops()
            counted += 1
        per_iteration = flops / counted
        return {"family": family, "preset": preset, "data": data, "batch": tr.batch_size,
                "iterations_counted": counted, "gflop_per_iteration": per_iteration / 1e9,
                "gflop_per_image": per_iteration / tr.batch_size / 1e9}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", default="stylegan2")
    ap.add_argument("--preset", default="quickstart")
    ap.add_argument("--data", default="builtin:shapes?res=32")
    ap.add_argument("--iterations", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--out", default="benchmarks/results/train_flops.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    row = count(args.family, args.preset, args.data, args.iterations, args.warmup)
    print(row)
    write_results(args.out, [row], 1)


if __name__ == "__main__":
    main()
