"""Evaluation throughput on this machine: feature extraction (images/s) per extractor, and PPL
distance pairs/s per perceptual network.

    python benchmarks/eval_speed.py [--res 32] [--batch 64] [--iters 5] [--out benchmarks/results/eval_speed.json]

Inputs are random uint8 images at ``--res`` px (each extractor resizes to its own input size:
299 for Inception, 224 for EfficientNet-Lite0). Throughput does not depend on weight values, so
Inception and LPIPS run with random weights when their files are absent (noted in the JSON).
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch
from common import write_results

from gankit.metrics.features import EXTRACTORS
from gankit.metrics.inception import INCEPTION_WEIGHTS, FIDInceptionV3
from gankit.metrics.perceptual import LPIPS, LPIPS_WEIGHTS, VGG16_WEIGHTS, VGG16Features, build_distance


def _timed(fn, iters: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    return (time.perf_counter() - t0) / iters


def extractor(name: str, tmp: Path):
    """The shipped code path; Inception with random weights (saved to a temporary file) when absent."""
    if name == "inception" and INCEPTION_WEIGHTS.find() is None:
        torch.save(FIDInceptionV3().state_dict(), tmp / "inception.pth")
        return EXTRACTORS.get(name)(tmp / "inception.pth", check_hash=False), "random weights (file absent)"
    return EXTRACTORS.get(name)(), "shipped or local weights"


def distance(name: str, tmp: Path):
    if name == "lpips" and not (VGG16_WEIGHTS.find() and LPIPS_WEIGHTS.find()):
        torch.save(VGG16Features().state_dict(), tmp / "vgg16.pth")
        torch.save({f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) for i, c in enumerate((64, 128, 256, 512, 512))},
                   tmp / "vgg.pth")
        return LPIPS(tmp / "vgg16.pth", tmp / "vgg.pth", check_hash=False), "random weights (files absent)"
    return build_distance(name), "shipped or local weights"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--res", type=int, default=32)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", default="benchmarks/results/eval_speed.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randint(0, 256, (args.batch, 3, args.res, args.res), dtype=torch.uint8)
    rows = []
    print(f"{'kind':10s} {'network':20s} {'res':>4s} {'batch':>5s} {'per s':>9s}  weights")
    with torch.no_grad(), tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        for name in EXTRACTORS.names():
            ext, note = extractor(name, tmp)
            s = _timed(lambda: ext(x), args.iters)
            rows.append({"kind": "features", "network": name, "res": args.res, "batch": args.batch,
                         "images_per_s": round(args.batch / s, 2), "weights": note})
            print(f"{'features':10s} {name:20s} {args.res:4d} {args.batch:5d} {args.batch / s:9.1f}  {note}", flush=True)
        a = x.float() / 127.5 - 1
        b = (a + 0.01 * torch.randn_like(a)).clamp(-1, 1)
        for name in ("lpips", "efficientnet-lite0", "shapes", "digits"):
            d, note = distance(name, tmp)
            s = _timed(lambda: d(a, b), args.iters)
            rows.append({"kind": "distance", "network": name, "res": args.res, "batch": args.batch,
                         "pairs_per_s": round(args.batch / s, 2), "weights": note})
            print(f"{'distance':10s} {name:20s} {args.res:4d} {args.batch:5d} {args.batch / s:9.1f}  {note}", flush=True)
    write_results(args.out, rows, args.threads)


if __name__ == "__main__":
    main()
