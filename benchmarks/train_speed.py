"""Training-iteration throughput (images/s) of gankit families on this machine.

    python benchmarks/train_speed.py [--families dcgan] [--res 32 64] [--iters 20] [--out benchmarks/results/train_speed.json]

For each (family, preset, resolution) it builds the trainer on in-memory ``builtin:shapes`` data,
runs warm-up iterations, then times ``--iters`` full iterations (every phase, EMA update) and
prints images/s (real images shown to D per second). Writes JSON with the machine's facts.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

from common import write_results

from gankit.training.trainer import Trainer

CONFIGS = {  # (family, preset) pairs measured by default
    "dcgan": [("paper", {}), ("cpu-64", {})],
}


def measure(family: str, preset: str, res: int, iters: int, warmup: int, threads: int) -> dict:
    data = f"builtin:shapes?res={res}&n=512"
    with tempfile.TemporaryDirectory() as tmp:
        t = Trainer(family, data, tmp, preset=preset,
                    overrides={"train": {"tensorboard": False, "metrics": False, "threads": threads}}, progress=False)
        t.setup()
        total = 10**12
        for _ in range(warmup):
            t.step(total)
        start_img, t0 = t.cur_nimg, time.perf_counter()
        for _ in range(iters):
            t.step(total)
        dt = time.perf_counter() - t0
    imgs = t.cur_nimg - start_img
    params = {k: sum(p.numel() for p in m.parameters()) for k, m in (("G", t.G), ("D", t.D))}
    return {"family": family, "preset": preset, "resolution": res, "batch_size": t.cfg.batch_size,
            "iterations": iters, "seconds": round(dt, 3), "images_per_s": round(imgs / dt, 2),
            "params_G": params["G"], "params_D": params["D"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--families", nargs="+", default=list(CONFIGS))
    ap.add_argument("--res", nargs="+", type=int, default=[32, 64])
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", default="benchmarks/results/train_speed.json")
    args = ap.parse_args()
    rows = []
    print(f"{'family':8s} {'preset':8s} {'res':>4s} {'batch':>5s} {'img/s':>8s}")
    for fam in args.families:
        for preset, _ in CONFIGS.get(fam, [(None, {})]):
            for res in args.res:
                r = measure(fam, preset, res, args.iters, args.warmup, args.threads)
                rows.append(r)
                print(f"{fam:8s} {str(preset):8s} {res:4d} {r['batch_size']:5d} {r['images_per_s']:8.1f}", flush=True)
    write_results(args.out, rows, args.threads)


if __name__ == "__main__":
    main()
