"""Projection speed: seconds per 1,000 optimisation steps on this machine.

    python benchmarks/project_speed.py [--res 64] [--steps 200] [--distances efficientnet-lite0 shapes]

Projects an image that an untrained StyleGAN2 (``cpu-64`` sizes) made, timing ``--steps`` steps
with each distance, and reports the time scaled to 1,000 steps. Writes
``benchmarks/results/project_speed.json``.
"""
from __future__ import annotations

import argparse
import time

import torch
from common import write_results

import gankit
from gankit.metrics.perceptual import build_distance
from gankit.tools import generate
from gankit.tools.project import project


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--res", type=int, default=64)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--distances", nargs="+", default=["efficientnet-lite0", "shapes", "pixel"])
    ap.add_argument("--out", default="benchmarks/results/project_speed.json")
    args = ap.parse_args()
    torch.manual_seed(0)
    G = gankit.create("stylegan2", preset="cpu-64", resolution=args.res).G.eval()
    target = generate(G, [1])
    rows = []
    print(f"{'distance':20s} {'res':>4s} {'steps':>6s} {'s':>8s} {'s/1000 steps':>13s}")
    for name in args.distances:
        d = build_distance(name)
        t0 = time.perf_counter()
        project(G, target, d, steps=args.steps, w_samples=10000)
        dt = time.perf_counter() - t0
        rows.append({"distance": name, "res": args.res, "steps": args.steps, "seconds": round(dt, 2),
                     "seconds_per_1000_steps": round(dt * 1000 / args.steps, 1)})
        print(f"{name:20s} {args.res:4d} {args.steps:6d} {dt:8.1f} {dt * 1000 / args.steps:13.1f}", flush=True)
    write_results(args.out, rows)


if __name__ == "__main__":
    main()
