"""Training on a folder decoded on the fly (``--train.cache false``): decoding threads against decoding in the loop.

    python benchmarks/data_loading.py                      # 256 px PNGs, DCGAN at 64 px, batch 32
    python benchmarks/data_loading.py --images 512 --src-res 512 --kimg 1

It writes a folder of smooth random PNGs (``--src-res`` px; blurred noise compresses and decodes
like photographs, unlike white noise), then trains the same short DCGAN run (``cpu-64`` preset,
resized to ``--res``) three ways, each in this process after a warm-up: images decoded once
into memory (``cache``), decoded in the training loop (``workers 0``), and decoded ahead by
``--train.workers`` threads. It also times decoding alone (a batch in the loop). Results go to
``benchmarks/results/data_loading.json``.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter

sys.path.insert(0, str(Path(__file__).parent))
from common import write_results  # noqa: E402

from gankit.data import open_dataset  # noqa: E402
from gankit.training.trainer import Trainer  # noqa: E402


def write_folder(root: Path, n: int, res: int) -> None:
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        arr = rng.integers(0, 256, (res // 8, res // 8, 3), dtype=np.uint8)
        img = Image.fromarray(arr).resize((res, res), Image.BICUBIC).filter(ImageFilter.GaussianBlur(2))
        img.save(root / f"{i:05d}.png")


def train_rate(spec: str, out: Path, kimg: float, batch: int, threads: int, **train) -> float:
    t = Trainer("dcgan", spec, out, preset="cpu-64", overrides={"train": {
        "kimg": kimg, "batch_size": batch, "threads": threads, "tensorboard": False, "metrics": False,
        "snapshot_kimg": 1000, "sample_kimg": 1000, "log_kimg": 1000, **train}}, progress=False)
    t.setup()
    t.step(1)  # warm-up: first-call allocations and the first decode (it also asks the threads ahead)
    n, start = 0, time.perf_counter()
    while t.cur_nimg - batch < kimg * 1000:
        t.step(1)
        n += batch
    rate = n / (time.perf_counter() - start)
    if t.prefetch is not None:
        t.prefetch.close()
    return rate


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--src-res", type=int, default=256, help="size of the PNGs written")
    ap.add_argument("--res", type=int, default=64, help="training resolution (the images are resized)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--kimg", type=float, default=0.64)
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2, help="repeats of the three cases, interleaved")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "data_loading.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "imgs"
        write_folder(folder, args.images, args.src_res)
        spec = f"{folder}?res={args.res}&size=resize"
        ds = open_dataset(spec)
        idx = torch.arange(args.batch)
        ds.get_batch(idx)
        t0 = time.perf_counter()
        for k in range(4):
            ds.get_batch(idx + k * args.batch % max(len(ds) - args.batch, 1))
        decode = 4 * args.batch / (time.perf_counter() - t0)
        print(f"decoding alone, one thread: {decode:.1f} img/s")
        cases = {"cache": dict(cache=True), "loop": dict(cache=False, workers=0),
                 f"workers{args.workers}": dict(cache=False, workers=args.workers)}
        rates: dict[str, list[float]] = {k: [] for k in cases}
        for r in range(args.rounds):
            for name, train in cases.items():
                rate = train_rate(spec, Path(tmp) / f"{name}{r}", args.kimg, args.batch, args.threads, **train)
                rates[name].append(rate)
                print(f"round {r}: {name:10s} {rate:7.1f} img/s")
    row = {"images": args.images, "src_res": args.src_res, "res": args.res, "batch": args.batch,
           "decode_img_s_one_thread": decode, **{f"train_img_s_{k}": max(v) for k, v in rates.items()},
           "rounds": rates}
    print({k: round(v, 1) for k, v in row.items() if k.startswith("train")})
    write_results(args.out, [row], args.threads)


if __name__ == "__main__":
    main()
