"""Import parity: gankit's imported generators against the original projects' own networks.

For each checkout given, this builds a small random network with *that project's code* (weights
perturbed away from their initial values, EMAs moved), writes it the way the project does (NVIDIA:
pickled by their persistence module; rosinality: ``torch.save`` with ``args``), imports it with
``gankit import`` and compares outputs for the same z, truncation and constant noise.

The checkouts are read from the paths given (``git clone`` them anywhere); nothing of theirs is
part of gankit. Their CPU code paths run as is, with three stand-ins this script writes into a
temporary folder: ``requests`` (imported by dnnlib, unused), ``pkg_resources.parse_version``
(stylegan3's conv2d_gradfix) and rosinality's ``op`` package (its CUDA kernels replaced by plain
PyTorch: zero insertion + convolution for upfirdn2d, leaky ReLU + bias for fused_leaky_relu).

    python benchmarks/import_parity.py --stylegan2-ada ~/src/stylegan2-ada-pytorch \\
        --stylegan3 ~/src/stylegan3 --rosinality ~/src/stylegan2-pytorch
"""
from __future__ import annotations

import argparse
import copy
import pickle
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import torch

from common import write_results

STUBS = {
    "requests.py": "",
    "pkg_resources.py": "def parse_version(v):\n    import re\n    return tuple(int(x) for x in re.findall(r'\\d+', v)[:3])\n",
    "op/__init__.py": textwrap.dedent('''
        import torch
        import torch.nn.functional as F
        from torch import nn


        def upfirdn2d(x, kernel, up=1, down=1, pad=(0, 0)):
            p = (pad[0], pad[1], pad[0], pad[1]) if len(pad) == 2 else tuple(pad)
            B, C, H, W = x.shape
            u = x.new_zeros(B, C, H * up, W * up)
            u[:, :, ::up, ::up] = x
            u = F.pad(u, [p[0], p[1], p[2], p[3]])
            k = kernel.flip([0, 1])[None, None].expand(C, 1, *kernel.shape).to(x.dtype)
            return F.conv2d(u, k, groups=C)[:, :, ::down, ::down]


        def fused_leaky_relu(x, bias=None, negative_slope=0.2, scale=2 ** 0.5):
            if bias is not None:
                x = x + bias.view(1, -1, *[1] * (x.ndim - 2))
            return F.leaky_relu(x, negative_slope) * scale


        class FusedLeakyReLU(nn.Module):
            def __init__(self, channel, bias=True, negative_slope=0.2, scale=2 ** 0.5):
                super().__init__()
                self.bias = nn.Parameter(torch.zeros(channel)) if bias else None
                self.negative_slope, self.scale = negative_slope, scale

            def forward(self, x):
                return fused_leaky_relu(x, self.bias, self.negative_slope, self.scale)


        class conv2d_gradfix:
            conv2d = staticmethod(F.conv2d)
            conv_transpose2d = staticmethod(F.conv_transpose2d)
    '''),
}


def stub_dir(tmp: Path) -> Path:
    d = tmp / "stubs"
    for name, text in STUBS.items():
        (d / name).parent.mkdir(parents=True, exist_ok=True)
        (d / name).write_text(text)
    return d


def perturb(*nets, noise_name="noise_strength"):
    with torch.no_grad():
        for net in nets:
            for n, p in net.named_parameters():
                if n.endswith(noise_name):
                    p.fill_(0.3)  # noise on, so constant noise maps matter
                else:
                    p.add_(0.05 * torch.randn_like(p))


def gankit_import(src: Path, out: Path):
    r = subprocess.run([sys.executable, "-m", "gankit", "import", str(src), "--out", str(out)],
                       capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(r.stderr)
    import gankit
    from gankit.api import load_bundle

    bundle, _, config = load_bundle(out)
    return gankit.load(out), bundle.D.eval(), config


def nvidia(repo: Path, tmp: Path, which: str, res: int, config: str = "t") -> dict:
    sys.path[:0] = [str(stub_dir(tmp)), str(repo)]
    for m in [m for m in sys.modules if m.split(".")[0] in ("training", "torch_utils", "dnnlib")]:
        del sys.modules[m]
    torch.manual_seed(0)
    if which == "stylegan3":
        from training import networks_stylegan2, networks_stylegan3

        kw = dict(channel_base=4096, channel_max=64, magnitude_ema_beta=0.999)
        if config == "r":
            kw.update(conv_kernel=1, channel_base=8192, channel_max=128, use_radial_filters=True)
        G = networks_stylegan3.Generator(z_dim=64, c_dim=0, w_dim=64, img_resolution=res, img_channels=3,
                                         mapping_kwargs={"num_layers": 2}, num_fp16_res=0, conv_clamp=256, **kw)
        D = networks_stylegan2.Discriminator(c_dim=0, img_resolution=res, img_channels=3, channel_base=2048,
                                             channel_max=64, num_fp16_res=0, conv_clamp=256)
        perturb(G)
        with torch.no_grad():
            for _ in range(3):  # move the magnitude EMAs
                G(torch.randn(16, 64), None, update_emas=True)
    else:
        from training import networks

        G = networks.Generator(z_dim=64, c_dim=0, w_dim=64, img_resolution=res, img_channels=3,
                               mapping_kwargs={"num_layers": 2},
                               synthesis_kwargs={"channel_base": 1024, "channel_max": 128, "num_fp16_res": 0,
                                                 "conv_clamp": 256})
        D = networks.Discriminator(c_dim=0, img_resolution=res, img_channels=3, channel_base=1024, channel_max=128,
                                   num_fp16_res=0, conv_clamp=256)
        perturb(G)
    perturb(D)
    G.mapping.w_avg.normal_()
    G, D = G.eval(), D.eval()
    pkl = tmp / f"{which}.pkl"
    with open(pkl, "wb") as f:
        pickle.dump({"G": G, "D": D, "G_ema": copy.deepcopy(G), "training_set_kwargs": None, "augment_pipe": None}, f)
    ours, D_ours, config_json = gankit_import(pkl, tmp / f"run-{which}")
    z, x = torch.randn(8, 64), torch.randn(8, 3, res, res)
    row = {"source": which + (f"-{config}" if which == "stylegan3" else ""), "resolution": res}
    if which == "stylegan3":
        row.update(filters_designed_alike(G, config_json["model"]))
    with torch.no_grad():
        for psi in (1.0, 0.7):
            kw = {} if which == "stylegan3" else {"noise_mode": "const"}
            a = G(z, None, truncation_psi=psi, **kw)
            b = ours.synthesis(ours.mapping(z, None, truncation_psi=psi, update_w_avg=False), noise_mode="const")
            row[f"G_max_abs_diff_psi{psi}"] = float((a - b).abs().max())
        row["G_max_abs_out"] = float(a.abs().max())
        row["D_max_abs_diff"] = float((D(x, None).flatten() - D_ours(x)).abs().max())
    sys.path[:2] = []
    return row


def filters_designed_alike(G, model_cfg: dict) -> dict:
    """A StyleGAN3 that gankit builds from the imported config against NVIDIA's network: largest
    difference of the designed up/down filters, and whether padding and factors are equal."""
    import gankit

    fresh = gankit.create("stylegan3", **model_cfg).G
    worst, same = 0.0, True
    for name in G.synthesis.layer_names:
        a, b = getattr(G.synthesis, name), getattr(fresh.synthesis, name)
        same &= (list(a.padding) == list(b.padding) and a.up_factor == b.up_factor
                 and a.down_factor == b.down_factor)
        for f in ("up_filter", "down_filter"):
            fa, fb = getattr(a, f), getattr(b, f)
            same &= (fa is None) == (fb is None)
            if fa is not None and fb is not None:
                worst = max(worst, float((fa - fb).abs().max()))
    return {"filter_max_abs_diff": worst, "padding_and_factors_equal": bool(same)}


def rosinality(repo: Path, tmp: Path, res: int) -> dict:
    sys.path[:0] = [str(stub_dir(tmp)), str(repo)]
    sys.modules.pop("model", None)
    from model import Discriminator, Generator

    torch.manual_seed(0)
    g, d = Generator(res, 64, 2, channel_multiplier=1).eval(), Discriminator(res, channel_multiplier=1).eval()
    perturb(g, d, noise_name="noise.weight")
    g_ema = copy.deepcopy(g)
    perturb(g_ema, noise_name="noise.weight")
    args = argparse.Namespace(size=res, latent=64, n_mlp=2, channel_multiplier=1, batch=16)
    pt = tmp / "rosinality.pt"
    torch.save({"g": g.state_dict(), "d": d.state_dict(), "g_ema": g_ema.state_dict(), "g_optim": {},
                "d_optim": {}, "args": args, "ada_aug_p": 0.0}, pt)
    ours, D_ours, _ = gankit_import(pt, tmp / "run-rosinality")
    z, x = torch.randn(8, 64), torch.randn(8, 3, res, res)
    row = {"source": "rosinality", "resolution": res}
    with torch.no_grad():
        mean = ours.mapping.w_avg.unsqueeze(0)  # rosinality takes the truncation centre as an argument
        for psi in (1.0, 0.7):
            a, _ = g_ema([z], truncation=psi, truncation_latent=mean, randomize_noise=False)
            b = ours.synthesis(ours.mapping(z, None, truncation_psi=psi, update_w_avg=False), noise_mode="const")
            row[f"G_max_abs_diff_psi{psi}"] = float((a - b).abs().max())
        row["G_max_abs_out"] = float(a.abs().max())
        row["D_max_abs_diff"] = float((d(x).flatten() - D_ours(x)).abs().max())
    sys.path[:2] = []
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stylegan2-ada", type=Path, help="checkout of NVlabs/stylegan2-ada-pytorch")
    ap.add_argument("--stylegan3", type=Path, help="checkout of NVlabs/stylegan3")
    ap.add_argument("--rosinality", type=Path, help="checkout of rosinality/stylegan2-pytorch")
    ap.add_argument("--out", default="benchmarks/results/import_parity.json")
    args = ap.parse_args()
    torch.set_num_threads(2)
    rows = []
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        if args.stylegan2_ada:
            rows.append(nvidia(args.stylegan2_ada, tmp, "stylegan2-ada", 32))
        if args.stylegan3:
            rows.append(nvidia(args.stylegan3, tmp, "stylegan3", 64, "t"))
            rows.append(nvidia(args.stylegan3, tmp, "stylegan3", 64, "r"))
        if args.rosinality:
            rows.append(rosinality(args.rosinality, tmp, 64))
    if not rows:
        ap.error("give at least one checkout")
    print(f"{'source':<16}{'px':>4}  {'G |diff| psi 1':>15}{'psi 0.7':>10}{'max |G|':>9}{'D |diff|':>10}")
    for r in rows:
        print(f"{r['source']:<16}{r['resolution']:>4}  {r['G_max_abs_diff_psi1.0']:>15.2g}"
              f"{r['G_max_abs_diff_psi0.7']:>10.2g}{r['G_max_abs_out']:>9.3g}{r['D_max_abs_diff']:>10.2g}"
              + (f"  filters {r['filter_max_abs_diff']:.2g}, layout equal {r['padding_and_factors_equal']}"
                 if "filter_max_abs_diff" in r else ""))
    write_results(args.out, rows)


if __name__ == "__main__":
    main()
