"""Where a stacked-digits generator's KL to uniform comes from: each channel's digit frequencies,
and the dependence between channels.

    python benchmarks/stacked_digit_frequencies.py RUN [RUN ...]
    GANKIT_MNIST=DIR python benchmarks/stacked_digit_frequencies.py RUN/checkpoints/ckpt-002800000

For the newest checkpoint of each run (or the checkpoint given) it draws 26,000 samples as training scores them, classifies
each channel, and prints KL(p || uniform over 1,000), KL(p_k || uniform over 10) for each channel k,
the dependence KL(p || p_0 p_1 p_2) (the first equals the sum of the other two kinds), each
channel's digit frequencies, and the share of channels classified with p < 0.9. Nothing is written.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from gankit.api import load_bundle
from gankit.metrics.modes import classify_digits, classify_mnist, generate


def kl(p: torch.Tensor, q: torch.Tensor) -> float:
    nz = p > 0
    return float((p[nz] * (p[nz] / q[nz]).log()).sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="run folders (their newest checkpoint) or checkpoint folders")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    for run in args.runs:
        path = Path(run)
        ckpts = [path] if path.name.startswith("ckpt-") else sorted((path / "checkpoints").glob("ckpt-*"))
        if not ckpts:
            raise SystemExit(f"{run}: no checkpoints/ckpt-* folders")
        run_dir = ckpts[-1].parent.parent
        spec = json.loads((run_dir / "config.json").read_text())["data"]["spec"]
        classify = classify_mnist if spec.startswith("builtin:stacked-mnist") else classify_digits
        _, net, _ = load_bundle(ckpts[-1])
        x = generate(net, 26000)
        probs = [classify(x[:, k:k + 1]) for k in range(3)]
        d = [p.argmax(1) for p in probs]
        joint = torch.bincount(d[0] * 100 + d[1] * 10 + d[2], minlength=1000).double() / len(x)
        margs = [torch.bincount(v, minlength=10).double() / len(x) for v in d]
        prod = (margs[0][:, None, None] * margs[1][None, :, None] * margs[2][None, None, :]).flatten()
        unsure = float(torch.cat([p.max(1).values < 0.9 for p in probs]).float().mean())
        print(f"{run_dir} ({ckpts[-1].name}): modes {int((joint > 0).sum())}, KL {kl(joint, torch.full_like(joint, 1e-3)):.3f}; "
              f"per channel {[round(kl(m, torch.full_like(m, 0.1)), 3) for m in margs]}; "
              f"dependence {kl(joint, prod):.3f}; channels with p < 0.9: {unsure:.1%}")
        for k, m in enumerate(margs):
            print(f"  channel {k}: " + " ".join(f"{i}:{v:.3f}" for i, v in enumerate(m.tolist())))


if __name__ == "__main__":
    main()
