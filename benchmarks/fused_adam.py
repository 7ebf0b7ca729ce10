"""Adam's fused CPU kernel against its per-tensor loop, in whole training iterations (issue 17).

    python benchmarks/fused_adam.py [--rounds 5] [--iters 50] [--out benchmarks/results/fused_adam.json]

For each config, two trainers from the same seed, one with torch's per-tensor Adam (the default)
and one with ``--train.fused-adam true`` (torch's fused kernel), timed alternately (``--rounds`` times ``--iters`` iterations each, after a warm-up), so
machine noise hits both alike. Prints milliseconds per iteration, the best round of each.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

from common import write_results

from gankit.training.trainer import Trainer

CONFIGS = {  # name -> (family, data, preset, overrides)
    "gan-pytorch-gan-mlp": ("gan", "builtin:digits?res=32", None,
                            {"model": {"g_hidden": (128, 256, 512, 1024), "g_act": "lrelu", "g_norm": "batch",
                                       "d_hidden": (512, 256), "d_act": "lrelu", "d_dropout": 0.0},
                             "train": {"optimizer": "adam", "batch_size": 64, "betas": (0.5, 0.999)}}),
    "wgan-gp-pytorch-gan-mlp": ("wgan-gp", "builtin:digits?res=32", None,
                                {"model": {"arch": "mlp", "g_hidden": (128, 256, 512, 1024), "g_norm": "batch",
                                           "d_hidden": (512, 256)}, "train": {"batch_size": 64}}),
    "dcgan-cpu-64": ("dcgan", "builtin:shapes?res=32&n=512", "cpu-64", {}),
    "stylegan2-quickstart": ("stylegan2", "builtin:shapes?res=32&n=512", "quickstart", {}),
}


def build(family, data, preset, ov, fused: bool, threads: int):
    t = Trainer(family, data, tempfile.mkdtemp(), preset=preset, progress=False,
                overrides={"model": ov.get("model", {}),
                           "train": {**ov.get("train", {}), "tensorboard": False, "metrics": False,
                                     "threads": threads, "fused_adam": fused}})
    t.setup()
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", default="benchmarks/results/fused_adam.json")
    args = ap.parse_args()
    rows = []
    for name in args.configs:
        family, data, preset, ov = CONFIGS[name]
        tr = {k: build(family, data, preset, ov, k == "fused", args.threads) for k in ("loop", "fused")}
        assert any(g.get("fused") for o in tr["fused"].opt.values() for g in o.param_groups)
        best = {k: float("inf") for k in tr}
        for t in tr.values():
            for _ in range(5):
                t.step(10**12)
        for _ in range(args.rounds):
            for k, t in tr.items():
                t0 = time.perf_counter()
                for _ in range(args.iters):
                    t.step(10**12)
                best[k] = min(best[k], (time.perf_counter() - t0) / args.iters * 1000)
        row = {"config": name, "ms_per_iter_loop": round(best["loop"], 3), "ms_per_iter_fused": round(best["fused"], 3),
               "speedup": round(best["loop"] / best["fused"], 3), "iters": args.iters, "rounds": args.rounds}
        rows.append(row)
        print(row, flush=True)
    write_results(args.out, rows, args.threads)


if __name__ == "__main__":
    main()
