"""The FIR filters as one 2-D depthwise pass against two 1-D passes, in whole training iterations
(issue 17, fifteenth session).

    python benchmarks/fir_one_pass.py [--rows quickstart:32:16 small:32:8 small:64:8] [--precision fp32 bf16]
        [--window 16] [--rounds 4] [--threads 2]

Each row builds one trainer (``PRESET:RES:BATCH`` on ``builtin:shapes?res=RES``) and times its own
steps with ``gankit.nn.resample.ONE_PASS`` switched between windows: two passes, then one pass,
``--rounds`` times, ``--window`` iterations each (after 8 warm-up iterations of each). Both settings
run in one process on the same machine state, so their ratio is what to compare; the figures are
training images/s per window. Results: ``benchmarks/results/fir_one_pass.json``.
"""
from __future__ import annotations

import argparse
import tempfile
import time

from common import write_results

import gankit.nn.resample as resample
from gankit.training.trainer import Trainer


def windows(preset: str, res: int, batch: int, precision: str, window: int, rounds: int, threads: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        tr = Trainer("stylegan2", f"builtin:shapes?res={res}", tmp, preset=preset, progress=False,
                     overrides={"train": {"threads": threads, "precision": precision, "tensorboard": False,
                                          "metrics": False, "kimg": 10**6, "batch_size": batch}})
        tr.setup()
        rates: dict[str, list[float]] = {"two_passes": [], "one_pass": []}
        for one in (False, True):  # warm-up: oneDNN builds its kernels for each setting's shapes
            resample.ONE_PASS = one
            for _ in range(8):
                tr.step(10**9)
        for _ in range(rounds):
            for one in (False, True):
                resample.ONE_PASS = one
                t0 = time.perf_counter()
                for _ in range(window):
                    tr.step(10**9)
                rates["one_pass" if one else "two_passes"].append(round(window * batch / (time.perf_counter() - t0), 2))
        resample.ONE_PASS = True
    two, one = sum(rates["two_passes"]), sum(rates["one_pass"])
    return {"preset": preset, "res": res, "batch": batch, "precision": precision, "window": window,
            "img_s": rates, "ratio_of_means": round(one / two, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", nargs="+", default=["quickstart:32:16", "small:32:8", "small:64:8"])
    ap.add_argument("--precision", nargs="+", default=["fp32", "bf16"])
    ap.add_argument("--window", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/results/fir_one_pass.json")
    args = ap.parse_args()
    rows = []
    for spec in args.rows:
        preset, res, batch = spec.split(":")
        for precision in args.precision:
            rows.append(windows(preset, int(res), int(batch), precision, args.window, args.rounds, args.threads))
            print(rows[-1], flush=True)
            write_results(args.out, rows, args.threads)


if __name__ == "__main__":
    main()
