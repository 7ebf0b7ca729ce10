"""Where a whole training iteration's time goes: ``torch.profiler`` over ``Trainer.step`` (every
phase, the lazy regularization at its interval, the EMA, the data), by operator.

    python benchmarks/profile_iteration.py [--family stylegan2 --preset small --data 'builtin:shapes?res=64']
        [--iterations 32] [--precision fp32|bf16] [--batch N] [--fused-adam] [--by-shape]
        [--out benchmarks/results/profile_iteration.json]

Prints the operator table (self CPU time) and the share of the iteration spent in convolutions
(forward and backward: aten::mkldnn_convolution, aten::convolution_backward and what they call)
against everything else, and writes both as JSON. ``--by-shape`` also records input shapes and
splits the convolutions' time by kind (kxk, 1x1, depthwise: the FIR filters) and by input shape,
in ms per iteration. Profiling adds per-operator overhead, so the wall time here is above
``gankit bench``'s.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

from torch.profiler import ProfilerActivity, profile

from common import write_results

from gankit.training.trainer import Trainer

CONV = ("conv", "mkldnn_convolution", "convolution_backward", "_convolution", "thnn_conv", "slow_conv")


def conv_by_shape(p, iterations: int, rows: int) -> tuple[dict, list]:
    """Convolution self time (forward and backward) by kind and by input shapes, ms per iteration."""
    kinds: dict[str, float] = {}
    out = []
    for e in p.key_averages(group_by_input_shape=True):
        if e.key not in ("aten::convolution_backward", "aten::mkldnn_convolution"):
            continue
        w = e.input_shapes[2] if e.key == "aten::convolution_backward" else e.input_shapes[1]
        if len(w) != 4:
            kind = "other"
        elif w[1] == 1:
            kind = "depthwise"
        elif w[2] == w[3] == 1:
            kind = "1x1"
        else:
            kind = "kxk"
        op = "backward" if e.key == "aten::convolution_backward" else "forward"
        ms = e.self_cpu_time_total / 1e3 / iterations
        kinds[f"{op} {kind}"] = kinds.get(f"{op} {kind}", 0.0) + ms
        out.append({"op": op, "kind": kind, "ms": round(ms, 3), "calls": round(e.count / iterations, 2),
                    "shapes": [list(s) for s in e.input_shapes[:3]]})
    out.sort(key=lambda r: -r["ms"])
    return {k: round(v, 3) for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])}, out[:rows]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", default="stylegan2")
    ap.add_argument("--preset", default="small")
    ap.add_argument("--data", default="builtin:shapes?res=64")
    ap.add_argument("--iterations", type=int, default=32, help="profiled iterations (16 covers each lazy interval)")
    ap.add_argument("--warmup", type=int, default=8)
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--batch", type=int, help="--train.batch-size (default: the preset's)")
    ap.add_argument("--layout", choices=("auto", "channels-last", "contiguous"), help="--model.layout (StyleGAN2)")
    ap.add_argument("--fused-adam", action="store_true", help="--train.fused-adam (one fused kernel per optimizer step)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--rows", type=int, default=25)
    ap.add_argument("--by-shape", action="store_true",
                    help="also split convolution time by kind and input shape (record_shapes)")
    ap.add_argument("--out", default="benchmarks/results/profile_iteration.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tr = Trainer(args.family, args.data, tmp, preset=args.preset, progress=False,
                     overrides={"train": {"threads": args.threads, "precision": args.precision, "tensorboard": False,
                                          "metrics": False, "kimg": 10**6, "fused_adam": args.fused_adam,
                                          **({"batch_size": args.batch} if args.batch else {})},
                                **({"model": {"layout": args.layout}} if args.layout else {})})
        tr.setup()
        total = 10**9
        for _ in range(args.warmup):
            tr.step(total)
        t0 = time.perf_counter()
        with profile(activities=[ProfilerActivity.CPU], record_shapes=args.by_shape) as p:
            for _ in range(args.iterations):
                tr.step(total)
        wall = time.perf_counter() - t0
        batch = tr.batch_size
    events = p.key_averages()
    table = events.table(sort_by="self_cpu_time_total", row_limit=args.rows)
    print(table)
    self_total = sum(e.self_cpu_time_total for e in events)
    conv = sum(e.self_cpu_time_total for e in events if any(k in e.key for k in CONV))
    ops = sorted(({"op": e.key, "self_ms": round(e.self_cpu_time_total / 1e3 / args.iterations, 3),
                   "calls": e.count // args.iterations} for e in events), key=lambda r: -r["self_ms"])
    row = {"family": args.family, "preset": args.preset, "data": args.data, "precision": args.precision,
           "fused_adam": args.fused_adam,
           "batch": batch, "iterations": args.iterations, "ms_per_iteration_profiled": round(wall / args.iterations * 1e3, 2),
           "img_s_profiled": round(batch * args.iterations / wall, 2), "conv_share": round(conv / self_total, 4),
           "top_ops": ops[:args.rows]}
    if args.by_shape:
        row["conv_by_kind"], row["conv_by_shape"] = conv_by_shape(p, args.iterations, args.rows)
        print("convolution ms per iteration by kind:", row["conv_by_kind"])
        for r in row["conv_by_shape"]:
            print(f"  {r['op']:22s} {r['kind']:9s} {r['ms']:8.2f} ms {r['calls']:6.2f} calls  {r['shapes']}")
    print({k: v for k, v in row.items() if k not in ("top_ops", "conv_by_shape")})
    write_results(args.out, [row], args.threads)


if __name__ == "__main__":
    main()
