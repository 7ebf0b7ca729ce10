"""How the shipped shapes classifier's "recognised" share (shape and colour both with p >= 0.9)
moves under changes a person does not see, against a copy retrained with that jitter (not
shipped), and both on the checkpoints given.

    python benchmarks/classifier_sensitivity.py [--checkpoints RUN/checkpoints/ckpt-... ...] [--epochs 6]
        [--out benchmarks/results/classifier_sensitivity.json]

The jittered copy is ``gankit.metrics.modes.train_shapes_classifier`` (the shipped recipe: same
data, "none" negatives, Adam 1e-3) with ``augment`` set to, per image: contrast x U(0.88, 1.12), a colour offset N(0, 0.1) per
channel, a Gaussian blur of sigma U(0, 0.6) on half the images, and pixel noise of std U(0, 0.08).
"""
from __future__ import annotations

import argparse

import torch

from common import write_results

from gankit.api import load_bundle
from gankit.data.builtin.shapes import shapes
from gankit.metrics import modes
from gankit.nn import gaussian_blur


def jitter(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    n = len(x)
    x = x * (1 + 0.12 * (torch.rand(n, 1, 1, 1, generator=g) * 2 - 1))
    x = x + 0.1 * torch.randn(n, 3, 1, 1, generator=g)
    blur = torch.rand(n, generator=g) < 0.5
    if blur.any():
        x[blur] = gaussian_blur(x[blur], 0.6 * float(torch.rand([], generator=g)))
    return (x + 0.08 * torch.rand(n, 1, 1, 1, generator=g) * torch.randn(x.shape, generator=g)).clamp(-1, 1)


def train_jittered(epochs: int, seed: int = 0) -> modes.ShapesClassifier:
    g = torch.Generator().manual_seed(seed)
    model, _ = modes.train_shapes_classifier(seed=seed, epochs=epochs, augment=lambda x: jitter(x, g))
    return model.requires_grad_(False)


def recognised(model: modes.ShapesClassifier, images: torch.Tensor) -> dict:
    m = modes.shapes_modes(images.clamp(-1, 1), model=model)
    return {"recognised_share": round(m["recognised_share"], 4), "pairs_covered": m["pairs_covered"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoints", nargs="*", default=[], help="StyleGAN2 checkpoint folders to score (3,000 samples)")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--out", default="benchmarks/results/classifier_sensitivity.json")
    args = ap.parse_args()
    torch.manual_seed(0)
    x = shapes(res=32, n=3000, seed=5).data.float().div(127.5).sub(1)
    neg = modes._negatives(x)
    q = len(neg) // 4
    inputs = {"real": x, "blur 0.6": gaussian_blur(x, 0.6), "blur 1.0": gaussian_blur(x, 1.0),
              **{f"noise {a}": x + a * torch.randn_like(x) for a in (0.03, 0.06, 0.1)},
              "colour offset 0.1": x + 0.1 * torch.randn(len(x), 3, 1, 1), "contrast 0.9": x * 0.9,
              **{f"negatives: {k}": neg[i * q:(i + 1) * q] for i, k in enumerate(("uniform", "smooth", "empty", "blend"))}}
    for ck in args.checkpoints:
        G = load_bundle(ck)[1]
        inputs[ck] = modes.generate(G, 3000)
    models = {"shipped": modes.shapes_classifier(), "jittered": train_jittered(args.epochs)}
    rows = []
    for name, images in inputs.items():
        row = {"input": name, **{k: recognised(m, images) for k, m in models.items()}}
        print(f"{name:40s} shipped {row['shipped']}  jittered {row['jittered']}", flush=True)
        rows.append(row)
    write_results(args.out, rows)


if __name__ == "__main__":
    main()
