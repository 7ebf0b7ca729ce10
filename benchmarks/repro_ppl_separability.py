"""Small-scale reproduction of the StyleGAN papers' latent-space findings on built-in ``shapes``:

* StyleGAN (Karras et al. 2019, Tables 3 and 4): with a mapping network, perceptual path length
  and linear separability are better (lower) in W than in Z;
* StyleGAN2 (Karras et al. 2020, Table 1, config E): path length regularization lowers PPL.

    python benchmarks/repro_ppl_separability.py [--runs runs/repro] [--pairs 10000] [--samples 20000]

It trains three runs when they are missing (the exact commands are in ``RUNS`` and in the JSON):
StyleGAN2 ``cpu-shapes`` with and without path length regularization, and StyleGAN (2019) with
the same sizes, an 8-layer mapping network and the paper's lr 0.001 (R1 gamma 1); then it evaluates PPL (full, Z and W; distances
from the shapes network and from EfficientNet-Lite0), separability (Z and W; the shapes
classifier's 4 shape and 6 colour attributes), fd-shapes and the shapes mode metric. Writes
``benchmarks/results/repro_ppl_separability.json`` and ``docs/images/repro_ppl.png``.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from common import results_path

COMMON = ["--data", "builtin:shapes?res=32"]
SG1 = ["--model.z-dim", "64", "--model.w-dim", "64", "--model.channel-base", "1024", "--model.channel-max", "128",
       "--model.r1-gamma", "1", "--train.batch-size", "32", "--train.g-lr", "0.001", "--train.d-lr", "0.001",
       "--train.ema-kimg", "2", "--train.ema-rampup", "0.05", "--train.kimg", "24", "--train.snapshot-kimg", "8",
       "--train.sample-kimg", "4"]
RUNS = {  # name -> gankit train arguments (after --out)
    "sg2-pl": ["stylegan2", "--preset", "cpu-shapes", *COMMON],
    "sg2-nopl": ["stylegan2", "--preset", "cpu-shapes", *COMMON, "--model.pl-weight", "0"],
    "sg1": ["stylegan", *COMMON, *SG1],  # 8 mapping layers, the paper's default
}
LABELS = {"sg2-pl": "StyleGAN2, path length reg.", "sg2-nopl": "StyleGAN2, no path length reg.",
          "sg1": "StyleGAN (2019)"}


def train(runs: Path, name: str) -> None:
    args = RUNS[name]
    cmd = [sys.executable, "-m", "gankit", "train", args[0], "--out", str(runs / name), *args[1:]]
    print("training:", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", default="runs/repro")
    ap.add_argument("--pairs", type=int, default=10000, help="PPL pairs with the shapes distance")
    ap.add_argument("--effnet-pairs", type=int, default=1000, help="PPL pairs with the EfficientNet distance")
    ap.add_argument("--samples", type=int, default=20000, help="separability samples (the most confident half kept)")
    ap.add_argument("--fd-samples", type=int, default=10000)
    ap.add_argument("--out", default="benchmarks/results/repro_ppl_separability.json")
    ap.add_argument("--plot", default="docs/images/repro_ppl.png")
    args = ap.parse_args()

    from gankit.api import load
    from gankit.data import open_dataset
    from gankit.metrics import evaluate
    from gankit.metrics.modes import evaluate_generator
    from gankit.metrics.perceptual import build_distance
    from gankit.metrics.ppl import PerceptualPathLength

    runs = Path(args.runs)
    ds = open_dataset("builtin:shapes?res=32")
    shapes_d, effnet_d = build_distance("shapes"), build_distance("efficientnet-lite0")
    rows, hist = {}, {}
    for name in RUNS:
        if not (runs / name / "checkpoints").is_dir():
            train(runs, name)
        G = load(runs / name)
        t0 = time.perf_counter()
        r = {"command": "gankit train " + " ".join([RUNS[name][0], "--out", str(runs / name), *RUNS[name][1:]])}
        for space in ("z", "w"):  # as evaluate(G, "ppl-z,ppl-w", distance=shapes_d) does, keeping per-pair values
            m = PerceptualPathLength(space, "full", tag="shapes")
            g = torch.Generator().manual_seed(2)
            for _ in range(args.pairs // 100):
                m.update(G, shapes_d, 100, g)
            r.update(m.compute())
            hist[(name, space)] = m.values()
        r.update(evaluate(G, "ppl-z,ppl-w", num_gen=args.effnet_pairs, distance=effnet_d, batch=50))
        r.update(evaluate(G, "separability", data=ds, num_gen=args.samples, batch=250))
        r.update(evaluate(G, "fid", data=ds, num_gen=args.fd_samples, extractor="shapes", batch=250))
        r["modes-shapes"] = {k: v for k, v in evaluate_generator(G, ds).items() if not isinstance(v, list)}
        r.pop("timings", None)
        r["eval_seconds"] = round(time.perf_counter() - t0, 1)
        rows[name] = r
        print(json.dumps({name: {k: v for k, v in r.items() if isinstance(v, float)}}), flush=True)

    out = {"runs": rows, "protocol": {"ppl_pairs_shapes": args.pairs, "ppl_pairs_effnet": args.effnet_pairs,
                                      "separability_samples": args.samples, "fd_samples": args.fd_samples}}
    path = results_path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
    print(f"wrote {path}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), sharey=True)
    for ax, name in zip(axes, RUNS):
        for space, colour in (("z", "tab:red"), ("w", "tab:blue")):
            v = hist[(name, space)]
            v = v[(v >= np.percentile(v, 1)) & (v <= np.percentile(v, 99))]
            ax.hist(np.log10(v), bins=60, alpha=0.55, color=colour, density=True,
                    label=f"{space.upper()}: PPL {rows[name][f'ppl-{space}-shapes']:.3g}")
        ax.set_title(LABELS[name], fontsize=10)
        ax.set_xlabel("log10 per-pair path length (shapes distance)")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("density")
    fig.tight_layout()
    Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.plot, dpi=110)
    print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
