"""Exact rewrites of StyleGAN2's convolutions that were tried on CPU and not shipped, timed against what ships.

    python benchmarks/conv_alternatives.py              # batch 8 x 128 channels at 32 and 64 px
    python benchmarks/conv_alternatives.py --rounds 3
    python benchmarks/conv_alternatives.py --cases winograd --shapes 8x128x16,8x512x32,8x256x64

* ``winograd``: a stride-1 3x3 convolution as Winograd's F(4x4, 3x3) (Lavin and Gray 2016,
  section 4): 6 x 6 input tiles transformed by one 36 x 36 matrix product, 36 batched (O x I)
  products, a 16 x 36 output transform; against ``F.conv2d``.
* ``fir_even``, ``fir_slices``: D's down-sampling convolution (the [1, 3, 3, 1] FIR, then a
  stride-2 3x3 convolution) with the FIR output padded to an even size, or the FIR as sums of
  shifted slices; against gankit's ``upfirdn2d`` + ``F.conv2d``.

Each case is checked against its reference first (outputs and both gradients), then timed as
forward + both gradients, the fastest of repeated calls, the cases alternating. Results go to
``benchmarks/results/conv_alternatives.json``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from common import write_results  # noqa: E402

from gankit.nn.resample import setup_filter, upfirdn2d  # noqa: E402
from gankit.tools.bench import best_time  # noqa: E402

# Winograd F(4x4, 3x3) matrices (Lavin and Gray 2016): Y = A^T [(G g G^T) * (B^T d B)] A
_BT = [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
       [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]]
_G = [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
      [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]]
_AT = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]


def _kron(m) -> torch.Tensor:
    t = torch.tensor(m, dtype=torch.float64)
    return torch.kron(t, t).float()  # vec(M X M^T) = (M kron M) vec(X)


TB, TG, TA = _kron(_BT), _kron(_G), _kron(_AT)


def winograd_conv3x3(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``F.conv2d(x, w, padding=1)`` for H and W multiples of 4, by F(4x4, 3x3)."""
    N, C, H, W = x.shape
    K = w.shape[0]
    th, tw = H // 4, W // 4
    d = F.pad(x, [1, 1, 1, 1]).unfold(2, 6, 4).unfold(3, 6, 4)  # N C th tw 6 6 (a view)
    d = d.permute(4, 5, 1, 0, 2, 3).reshape(36, -1)  # the tile gather
    V = (TB @ d).view(36, C, N * th * tw)
    U = (TG @ w.reshape(K * C, 9).t()).view(36, K, C)
    M = torch.bmm(U, V)
    Y = (TA @ M.view(36, -1)).view(4, 4, K, N, th, tw)
    return Y.permute(3, 2, 4, 0, 5, 1).reshape(N, K, H, W)


_F = setup_filter([1, 3, 3, 1])


def down_conv(x, w):  # what gankit ships (conv2d_resample with down=2, padding 1)
    return F.conv2d(upfirdn2d(x, _F, padding=(2, 2, 2, 2)), w, stride=2)


def down_conv_even(x, w):
    return F.conv2d(upfirdn2d(x, _F, padding=(2, 3, 2, 3)), w, stride=2)


def down_conv_slices(x, w):
    f = _F.flip(0).tolist()
    x = F.pad(x, [2, 2, 2, 2])
    H, W = x.shape[2] - 3, x.shape[3] - 3
    y = sum(x[:, :, i:i + H] * f[i] for i in range(4))
    y = sum(y[..., i:i + W] * f[i] for i in range(4))
    return F.conv2d(y, w, stride=2)


CASES = {
    "winograd": (lambda x, w: F.conv2d(x, w, padding=1), winograd_conv3x3),
    "fir_even": (down_conv, down_conv_even),
    "fir_slices": (down_conv, down_conv_slices),
}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", default="8x128x32,8x128x64", help="batch x channels x px, comma-separated")
    ap.add_argument("--cases", default=",".join(CASES), help="which of: " + ", ".join(CASES))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--min-time", type=float, default=0.5)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "conv_alternatives.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    for shape in args.shapes.split(","):
        batch, channels, res = (int(v) for v in shape.split("x"))
        g = torch.Generator().manual_seed(0)
        x = torch.randn(batch, channels, res, res, generator=g, requires_grad=True)
        w = torch.randn(channels, channels, 3, 3, generator=g, requires_grad=True)
        for name in args.cases.split(","):
            ref, alt = CASES[name]
            y0 = ref(x, w)
            gy = torch.randn(y0.shape, generator=g)
            errs = []
            for a, b in zip((y0, *torch.autograd.grad(y0, (x, w), gy)),
                            (alt(x, w), *torch.autograd.grad(alt(x, w), (x, w), gy))):
                errs.append(float((a - b).abs().max().detach() / b.abs().max().detach()))
            times = {"ref": [], "alt": []}
            for _ in range(args.rounds):
                for key, fn in (("ref", ref), ("alt", alt)):
                    times[key].append(1e3 * best_time(
                        lambda fn=fn: torch.autograd.grad(fn(x, w), (x, w), gy), args.min_time))
            row = {"case": name, "res": res, "batch": batch, "channels": channels,
                   "max_rel_err_out_gx_gw": errs, "ms_fwd_bwd_ref": times["ref"], "ms_fwd_bwd_alt": times["alt"]}
            rows.append(row)
            print(f"{name:10s} {shape:10s}  err {max(errs):.1e}  ref {min(times['ref']):7.1f} ms  "
                  f"alt {min(times['alt']):7.1f} ms")
    write_results(args.out, rows, args.threads)


if __name__ == "__main__":
    main()
