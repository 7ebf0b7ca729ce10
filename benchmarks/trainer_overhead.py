"""Per-iteration cost of the trainer's own work: multi-tensor optimizers and EMA against the
per-tensor Python loops they replaced, in one run, alternating.

    python benchmarks/trainer_overhead.py [--configs toy shapes digits] [--iterations 200] [--repeats 3]

``loop`` rebuilds the optimizers with ``foreach=False`` (PyTorch's CPU default) and updates the
EMA tensor by tensor; ``foreach`` is what the trainer does. Both give bitwise the same weights
(``tests/test_performance.py``). Prints and writes ms per iteration (best of the repeats).
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch

from common import write_results

import gankit.training.trainer as trainer_mod
from gankit.training import ema as ema_mod
from gankit.training.trainer import Trainer

CONFIGS = {
    "toy": ("gan", "pacgan-toy", "builtin:grid25?n=100000"),
    "shapes": ("stylegan2", "cpu-shapes", "builtin:shapes?res=32"),
    "digits": ("dcgan", "cpu-digits", "builtin:digits?res=8"),
}


@torch.no_grad()
def loop_ema(G_ema, G, beta):
    for p_ema, p in zip(G_ema.parameters(), G.parameters()):
        p_ema.copy_(p) if beta == 0.0 else p_ema.lerp_(p, 1.0 - beta)
    for b_ema, b in zip(G_ema.buffers(), G.buffers()):
        b_ema.copy_(b)


def loop_optimizer(params, cfg, lr, ratio=1.0):
    opt = NEW_OPTIMIZER(params, cfg, lr, ratio)
    for group in opt.param_groups:
        group["foreach"] = False
    return opt


NEW_OPTIMIZER, NEW_EMA = trainer_mod.make_optimizer, ema_mod.update_ema


def time_it(config: str, mode: str, iterations: int, threads: int) -> float:
    family, preset, data = CONFIGS[config]
    trainer_mod.make_optimizer = loop_optimizer if mode == "loop" else NEW_OPTIMIZER
    trainer_mod.update_ema = loop_ema if mode == "loop" else NEW_EMA
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tr = Trainer(family, data, tmp, preset=preset, progress=False,
                         overrides={"train": {"threads": threads, "tensorboard": False, "metrics": False, "kimg": 10**6}})
            tr.setup()
            for _ in range(10):
                tr.step(10**9)
            t0 = time.perf_counter()
            for _ in range(iterations):
                tr.step(10**9)
            return (time.perf_counter() - t0) / iterations * 1e3
    finally:
        trainer_mod.make_optimizer, trainer_mod.update_ema = NEW_OPTIMIZER, NEW_EMA


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--iterations", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", default="benchmarks/results/trainer_overhead.json")
    args = ap.parse_args()
    rows = []
    for config in args.configs:
        best = {"loop": float("inf"), "foreach": float("inf")}
        for _ in range(args.repeats):
            for mode in best:
                best[mode] = min(best[mode], time_it(config, mode, args.iterations, args.threads))
        row = {"config": config, "family_preset_data": CONFIGS[config], "ms_per_iteration_loop": round(best["loop"], 3),
               "ms_per_iteration_foreach": round(best["foreach"], 3), "speedup": round(best["loop"] / best["foreach"], 3)}
        print(row, flush=True)
        rows.append(row)
    write_results(args.out, rows, args.threads)


if __name__ == "__main__":
    main()
