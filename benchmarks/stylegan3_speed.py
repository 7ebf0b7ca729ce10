"""StyleGAN3 (config T) training images/s: gankit against NVIDIA's stylegan3 code, one run (issue 17, item 5).

    python benchmarks/stylegan3_speed.py --nvidia /path/to/stylegan3 [--res 32] [--batch 16] [--iters 32]
        [--threads 2] [--out benchmarks/results/stylegan3_speed.json]

Both sides build the same networks from gankit's ``cpu-shapes`` StyleGAN3 preset (64-d latents, 2
mapping layers, 6 layers of at most 64 channels, margin 4; D: StyleGAN2's resnet D with at most
128 channels) and train fp32 on random images with config T's losses: the non-saturating loss
with R1 every 16 steps (gamma 0.1), no path length, no mixing. gankit's side is ``Trainer.step``
(its data pipeline and G EMA included); NVIDIA's runs ``StyleGAN2Loss.accumulate_gradients``
phases Gmain, Dmain and every 16th iteration Dreg, with Adam steps and a G EMA as its training
loop does. On CPU NVIDIA's custom ops (filtered_lrelu, bias_act, upfirdn2d) use their reference
implementations. The checkout is NVIDIA's and stays outside the repository; only ``requests``
(dnnlib imports it; nothing is downloaded) and, without setuptools, ``pkg_resources.parse_version``
(``packaging``'s) are stand-ins.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
import time
import types

import torch

from common import write_results


def model_cfg(res: int) -> dict:
    import dataclasses

    from gankit.api import resolve_configs

    cfg = resolve_configs("stylegan3", "cpu-shapes", {"model": {"resolution": res, "channels": 3}})[0]
    return dataclasses.asdict(cfg)


def gankit_rate(res: int, batch: int, iters: int, threads: int) -> dict:
    from gankit.training.trainer import Trainer

    with tempfile.TemporaryDirectory() as tmp:
        t = Trainer("stylegan3", f"builtin:shapes?res={res}&n=512", tmp, preset="cpu-shapes", progress=False,
                    overrides={"train": {"batch_size": batch, "tensorboard": False, "metrics": False,
                                         "threads": threads}})
        t.setup()
        total = 10**12
        for _ in range(4):
            t.step(total)
        t0, n0 = time.perf_counter(), t.cur_nimg
        for _ in range(iters):
            t.step(total)
        dt = time.perf_counter() - t0
        return {"img_s": (t.cur_nimg - n0) / dt, "params": {k: sum(p.numel() for p in t.nets[k].parameters())
                                                            for k in ("G", "D")}}


def nvidia_rate(path: str, res: int, batch: int, iters: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    sys.path.insert(0, path)
    sys.modules.setdefault("requests", types.ModuleType("requests"))
    try:
        import pkg_resources  # noqa: F401  (setuptools; conv2d_gradfix reads torch's version with it)
    except ImportError:
        from packaging.version import parse

        sys.modules["pkg_resources"] = types.SimpleNamespace(parse_version=parse)
    from training.loss import StyleGAN2Loss
    from training.networks_stylegan2 import Discriminator
    from training.networks_stylegan3 import Generator

    m = model_cfg(res)
    layer = {k: m[k] for k in ("conv_kernel", "filter_size", "lrelu_upsampling", "use_radial_filters", "conv_clamp")}
    G = Generator(z_dim=m["z_dim"], c_dim=0, w_dim=m["w_dim"], img_resolution=res, img_channels=3,
                  mapping_kwargs={"num_layers": m["mapping_layers"]}, channel_base=m["channel_base"],
                  channel_max=m["channel_max"], num_layers=m["num_layers"], num_critical=m["num_critical"],
                  first_cutoff=m["first_cutoff"], first_stopband=m["first_stopband"],
                  last_stopband_rel=m["last_stopband_rel"], margin_size=m["margin_size"],
                  output_scale=m["output_scale"], num_fp16_res=0,
                  magnitude_ema_beta=0.5 ** (batch / (m["magnitude_ema_kimg"] * 1000)), **layer)
    D = Discriminator(c_dim=0, img_resolution=res, img_channels=3, architecture=m["d_architecture"],
                      channel_base=m["d_channel_base"], channel_max=m["d_channel_max"], num_fp16_res=0,
                      conv_clamp=m["d_conv_clamp"], epilogue_kwargs={"mbstd_group_size": m["mbstd_group"]})
    G_ema = copy.deepcopy(G).eval()
    loss = StyleGAN2Loss(torch.device("cpu"), G, D, r1_gamma=m["r1_gamma"], pl_weight=0, style_mixing_prob=0)
    ratio = 16 / 17  # lazy R1 every 16 steps (StyleGAN2-ADA's Adam correction)
    opt = {"G": torch.optim.Adam(G.parameters(), lr=0.0025, betas=(0.0, 0.99)),
           "D": torch.optim.Adam(D.parameters(), lr=0.002 * ratio, betas=(0.0, 0.99 ** ratio))}
    real, c0 = torch.rand(batch, 3, res, res) * 2 - 1, torch.zeros(batch, 0)

    def phase(name, module, net, other, i):
        net.requires_grad_(True)
        other.requires_grad_(False)
        opt[module].zero_grad(set_to_none=True)
        loss.accumulate_gradients(name, real, c0, torch.randn(batch, G.z_dim), c0, gain=16 if name == "Dreg" else 1,
                                  cur_nimg=i * batch)
        opt[module].step()

    def iteration(i):
        phase("Gmain", "G", G, D, i)
        phase("Dmain", "D", D, G, i)
        if i % 16 == 0:
            phase("Dreg", "D", D, G, i)
        with torch.no_grad():  # the training loop's G EMA (ema_kimg 2, beta per batch)
            beta = 0.5 ** (batch / 2000)
            for pe, p in zip(G_ema.parameters(), G.parameters()):
                pe.copy_(p.lerp(pe, beta))
            for be, b in zip(G_ema.buffers(), G.buffers()):
                be.copy_(b)

    for i in range(4):
        iteration(i + 1)
    t0 = time.perf_counter()
    for i in range(iters):
        iteration(i)  # i = 0, 16, ... run Dreg: iters / 16 of them, as gankit's interval
    dt = time.perf_counter() - t0
    return {"img_s": iters * batch / dt, "params": {"G": sum(p.numel() for p in G.parameters()),
                                                     "D": sum(p.numel() for p in D.parameters())}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nvidia", required=True, help="a checkout of NVlabs/stylegan3")
    ap.add_argument("--res", type=int, nargs="+", default=[32])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--iters", type=int, default=32)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--side", choices=["gankit", "nvidia"], help=argparse.SUPPRESS)  # one side per process
    ap.add_argument("--out", default="benchmarks/results/stylegan3_speed.json")
    args = ap.parse_args()
    if args.side:
        fn = gankit_rate if args.side == "gankit" else lambda *a: nvidia_rate(args.nvidia, *a)
        print(json.dumps(fn(args.res[0], args.batch, args.iters, args.threads)))
        return
    rows = []
    for res in args.res:
        got = {}
        for side in ("nvidia", "gankit"):  # a fresh process each, so neither inherits the other's state
            cmd = [sys.executable, __file__, "--nvidia", args.nvidia, "--res", str(res), "--batch", str(args.batch),
                   "--iters", str(args.iters), "--threads", str(args.threads), "--side", side]
            got[side] = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
        row = {"family": "stylegan3", "preset": "cpu-shapes", "resolution": res, "batch": args.batch,
               "nvidia_img_s": round(got["nvidia"]["img_s"], 2), "gankit_img_s": round(got["gankit"]["img_s"], 2),
               "ratio": round(got["gankit"]["img_s"] / got["nvidia"]["img_s"], 3),
               "nvidia_params": got["nvidia"]["params"], "gankit_params": got["gankit"]["params"],
               "threads": args.threads}
        rows.append(row)
        print(json.dumps(row), flush=True)
    write_results(args.out, rows, args.threads)


if __name__ == "__main__":
    main()
