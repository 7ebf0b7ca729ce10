"""StyleGAN2 speed on this machine: generation and training images/s, and peak memory.

    python benchmarks/stylegan2_speed.py                      # gankit, all configs and resolutions
    python benchmarks/stylegan2_speed.py --nvidia /path/to/stylegan2-ada-pytorch   # also NVIDIA's code
    python benchmarks/stylegan2_speed.py --configs small --res 32 --profile        # operator table
    python benchmarks/stylegan2_speed.py --generation-only --bf16 --profile ...    # generation; its convolutions' share
    python benchmarks/stylegan2_speed.py --channels-last --bf16 ...                 # also --model.layout channels-last
    python benchmarks/stylegan2_speed.py --share-fakes --bf16 ...                   # also --model.share-fakes
    python benchmarks/stylegan2_speed.py --interleave 4 --nvidia ...                 # all in one process, in turn

Configs: ``small`` (z = w = 128, channel_base 16384, channel_max 128, 2 mapping layers,
conv_clamp 256, skip G, residual D, mbstd group 4) and ``paper256`` (StyleGAN2-ADA's paper256
widths: z = w = 512, channel_base 16384, channel_max 512, 8 mapping layers). fp32, CPU threads
as given (2 by default).

* generation: mapping + synthesis, truncation 1, constant noise, eval mode, batch 8 and 32;
* training: one iteration of all four phases with regularization amortized,
  t(G main) + t(D main) + t(G path length) / 4 + t(D R1) / 16, each timed separately
  (forward, backward and the Adam step; the fastest of repeated calls), batch 8; with
  ``--model.share-fakes`` (``+share`` rows) D's and G's main steps are timed together, since G's
  step takes the fakes D's step made;
* peak memory: the maximum RSS of a fresh process that ran only that config.

NVIDIA's networks and loss (``training/networks.py``, ``training/loss.py``) run through the same
harness when ``--nvidia`` points at a checkout; on CPU their custom ops fall back to their
reference PyTorch code. Results go to ``benchmarks/results/stylegan2_speed.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import torch

from gankit.tools.bench import best_time  # fastest of repeated calls, as `gankit bench` times

CONFIGS = {
    "small": dict(z_dim=128, w_dim=128, channel_base=16384, channel_max=128, mapping_layers=2, conv_clamp=256.0),
    "paper256": dict(z_dim=512, w_dim=512, channel_base=16384, channel_max=512, mapping_layers=8, conv_clamp=256.0),
}


# ----------------------------------------------------------------------------- gankit
def gankit_setup(cfg: dict, res: int, compile: bool = False, bf16: bool = False, channels_last: bool = False,
                 share: bool = False):
    import gankit
    from gankit.models.family import Step
    from gankit.models.stylegan2 import style_phases, lazy_ratios

    layout = {"layout": "channels-last"} if channels_last else {}  # (code before --model.layout has none)
    shared = {"share_fakes": True} if share else {}  # --model.share-fakes: D's step, then G's on its fakes
    m = gankit.create("stylegan2", preset="config-f", resolution=res, channels=3, **layout, **shared, **cfg)
    G, D = m.G, m.D
    if compile:
        for mod in (G.mapping, G.synthesis, D):
            mod.compile()

    import contextlib

    def amp():  # --train.precision bf16's autocast (gankit.training.trainer._loss_context)
        return torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()

    def generate(batch):
        z = torch.randn(batch, G.z_dim)
        with torch.no_grad(), amp():
            G.eval()(z, noise_mode="const")
        G.train()

    ratios = lazy_ratios(m.config)
    opt = {"G": torch.optim.Adam(G.parameters(), lr=0.002 * ratios["G"], betas=(0.0, 0.99 ** ratios["G"])),
           "D": torch.optim.Adam(D.parameters(), lr=0.002 * ratios["D"], betas=(0.0, 0.99 ** ratios["D"]))}
    phases = {p.name: p for p in style_phases(m.config, G, D)}
    real = torch.randn(8, 3, res, res)

    def phase(name, scratch=None):
        p = phases[name]
        mod, other = (G, D) if p.optimizer == "G" else (D, G)

        def run():
            mod.requires_grad_(True)
            other.requires_grad_(False)
            step = Step({"G": G, "D": D}, {"image": real}, 8, 0, torch.device("cpu"),
                        scratch={} if scratch is None else scratch)
            if compile and name in ("Greg", "Dreg"):
                with torch.compiler.set_stance("force_eager"):
                    out = p.loss(step)
            else:
                with amp():
                    out = p.loss(step)
            opt[p.optimizer].zero_grad(set_to_none=True)
            out["loss"].backward()
            opt[p.optimizer].step()
        return run

    runs = {k: phase(k) for k in ("Greg", "Dreg")}
    if share:  # the two main steps are timed together: G's step takes the fakes D's step left
        scratch: dict = {}
        d_step, g_step = phase("D", scratch), phase("G", scratch)

        def main_steps():
            d_step()
            g_step()
        runs["DG"] = main_steps
    else:
        runs.update(G=phase("G"), D=phase("D"))
    return generate, runs, G


# ----------------------------------------------------------------------------- NVIDIA
def nvidia_setup(cfg: dict, res: int, path: str):
    sys.path.insert(0, path)
    import types
    sys.modules.setdefault("requests", types.ModuleType("requests"))  # dnnlib imports it; nothing is downloaded
    from training.loss import StyleGAN2Loss
    from training.networks import Discriminator, Generator

    G = Generator(z_dim=cfg["z_dim"], c_dim=0, w_dim=cfg["w_dim"], img_resolution=res, img_channels=3,
                  mapping_kwargs=dict(num_layers=cfg["mapping_layers"]),
                  synthesis_kwargs=dict(channel_base=cfg["channel_base"], channel_max=cfg["channel_max"],
                                        num_fp16_res=0, conv_clamp=cfg["conv_clamp"]))
    D = Discriminator(c_dim=0, img_resolution=res, img_channels=3, channel_base=cfg["channel_base"],
                      channel_max=cfg["channel_max"], num_fp16_res=0, conv_clamp=cfg["conv_clamp"],
                      epilogue_kwargs=dict(mbstd_group_size=4))

    def generate(batch):
        z = torch.randn(batch, G.z_dim)
        with torch.no_grad():
            G.eval()(z, torch.zeros(batch, 0), noise_mode="const")
        G.train()

    loss = StyleGAN2Loss(torch.device("cpu"), G.mapping, G.synthesis, D, r1_gamma=10, style_mixing_prob=0.9,
                         pl_weight=2)
    opt = {"G": torch.optim.Adam(G.parameters(), lr=0.002 * 4 / 5, betas=(0.0, 0.99 ** (4 / 5))),
           "D": torch.optim.Adam(D.parameters(), lr=0.002 * 16 / 17, betas=(0.0, 0.99 ** (16 / 17)))}
    real = torch.randn(8, 3, res, res)
    c0 = torch.zeros(8, 0)
    table = {"G": ("Gmain", "G", 1), "Greg": ("Greg", "G", 4), "D": ("Dmain", "D", 1), "Dreg": ("Dreg", "D", 16)}

    def phase(name):
        nv_name, mod_name, gain = table[name]
        mod, other = (G, D) if mod_name == "G" else (D, G)

        def run():
            mod.requires_grad_(True)
            other.requires_grad_(False)
            opt[mod_name].zero_grad(set_to_none=True)
            loss.accumulate_gradients(nv_name, real, c0, torch.randn(8, G.z_dim), c0, sync=True, gain=gain)
            opt[mod_name].step()
        return run

    return generate, {k: phase(k) for k in table}, G


# ----------------------------------------------------------------------------- one measurement
def train_rate(phases: dict, min_time: float) -> tuple[dict, float]:
    """Seconds per phase call (fastest of calls) and training img/s at batch 8: the main steps (G
    and D, or D then G together with share-fakes) plus the lazy phases at intervals 4 and 16."""
    t = {k: best_time(fn, min_time) for k, fn in phases.items()}
    main_steps = t["DG"] if "DG" in t else t["G"] + t["D"]
    return t, 8 / (main_steps + t["Greg"] / 4 + t["Dreg"] / 16)


def measure(impl: str, config: str, res: int, threads: int, min_time: float, nvidia: str | None,
            profile: bool, generation_only: bool = False) -> dict:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    generate, phases, G = setup(impl, config, res, nvidia)
    out = {"impl": impl, "config": config, "res": res, "threads": threads,
           "params_G": sum(p.numel() for p in G.parameters())}
    for batch in (8, 32):
        out[f"gen_img_s_b{batch}"] = batch / best_time(lambda: generate(batch), min_time)
    if generation_only:
        out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        if profile:  # self CPU time per batch of 8: convolution operators against everything else
            from torch.profiler import ProfilerActivity, profile as prof
            with prof(activities=[ProfilerActivity.CPU]) as p:
                for _ in range(4):
                    generate(8)
            conv = sum(e.self_cpu_time_total for e in p.key_averages() if "conv" in e.key) / 4e3
            total = sum(e.self_cpu_time_total for e in p.key_averages()) / 4e3
            out.update(profiled_ms_b8=round(total, 1), profiled_conv_ms_b8=round(conv, 1))
        return out
    t, out["train_img_s"] = train_rate(phases, min_time)
    out.update({f"t_{k}_s": v for k, v in t.items()})
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if profile:
        from torch.profiler import ProfilerActivity, profile as prof
        with prof(activities=[ProfilerActivity.CPU]) as p:
            for k in ("DG",) if "DG" in phases else ("G", "D"):
                phases[k]()
        print(p.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
    return out


def setup(impl: str, config: str, res: int, nvidia: str | None):
    """(generate, phases, G) of "nvidia" or "gankit" with "+compile", "+bf16", "+cl" (--model.layout
    channels-last) and "+share" (--model.share-fakes) as named."""
    cfg = CONFIGS[config]
    if impl == "nvidia":
        return nvidia_setup(cfg, res, nvidia)
    return gankit_setup(cfg, res, compile="+compile" in impl, bf16="+bf16" in impl, channels_last="+cl" in impl,
                        share="+share" in impl)


def interleaved(impls: list[str], config: str, res: int, threads: int, min_time: float, nvidia: str | None,
                rounds: int) -> list[dict]:
    """Every implementation built in this one process and timed in turn, ``rounds`` times, so that
    each round's ratios compare the same machine state; one row per (round, impl)."""
    torch.set_num_threads(threads)
    built = {}
    for impl in impls:
        torch.manual_seed(0)
        built[impl] = setup(impl, config, res, nvidia)
    rows = []
    for r in range(rounds):
        for impl, (generate, phases, G) in built.items():
            rows.append({"impl": impl, "config": config, "res": res, "threads": threads, "round": r,
                         "gen_img_s_b8": 8 / best_time(lambda: generate(8), min_time),
                         "train_img_s": train_rate(phases, min_time)[1]})
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", default="small,paper256")
    ap.add_argument("--res", default="32,64,128")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--min-time", type=float, default=3.0, help="seconds of timing per figure")
    ap.add_argument("--nvidia", help="path of a stylegan2-ada-pytorch checkout to time beside gankit")
    ap.add_argument("--profile", action="store_true", help="print torch.profiler's operator table")
    ap.add_argument("--compile", action="store_true", help="also time gankit with torch.compile (gankit+compile)")
    ap.add_argument("--bf16", action="store_true", help="also time gankit under CPU bf16 autocast (gankit+bf16)")
    ap.add_argument("--generation-only", action="store_true", help="time generation only (no training phases)")
    ap.add_argument("--channels-last", action="store_true",
                    help="also time gankit with --model.layout channels-last (gankit+cl, and gankit+bf16+cl with --bf16)")
    ap.add_argument("--share-fakes", action="store_true",
                    help="also time gankit with --model.share-fakes (gankit+share, and gankit+bf16+share with --bf16)")
    ap.add_argument("--interleave", type=int, metavar="ROUNDS",
                    help="build every implementation of a (config, res) in one process and time them in turn, "
                         "ROUNDS times (training and generation at batch 8; no peak memory); prints each round's "
                         "ratios to NVIDIA's code")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # impl:config:res, run in a fresh process
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "stylegan2_speed.json"))
    args = ap.parse_args()
    if args.one:
        impl, config, res = args.one.split(":")
        print(json.dumps(measure(impl, config, int(res), args.threads, args.min_time, args.nvidia, args.profile,
                                 args.generation_only)))
        return
    impls = (["gankit"] + (["gankit+compile"] if args.compile else []) + (["gankit+bf16"] if args.bf16 else [])
             + (["gankit+cl"] if args.channels_last else []) + (["gankit+bf16+cl"] if args.channels_last and args.bf16 else [])
             + (["gankit+share"] if args.share_fakes else [])
             + (["gankit+bf16+share"] if args.share_fakes and args.bf16 else [])
             + (["nvidia"] if args.nvidia else []))
    rows = []
    if args.interleave:
        for config in args.configs.split(","):
            for res in map(int, args.res.split(",")):
                got = interleaved(impls, config, res, args.threads, args.min_time, args.nvidia, args.interleave)
                rows += got
                for r in range(args.interleave):
                    this = {row["impl"]: row for row in got if row["round"] == r}
                    ref = this.get("nvidia")
                    print(f"{config} {res}px round {r}: " + "  ".join(
                        f"{impl} train {row['train_img_s']:.2f}"
                        + (f" ({row['train_img_s'] / ref['train_img_s']:.2f}x)" if ref else "")
                        + f" gen {row['gen_img_s_b8']:.1f}"
                        + (f" ({row['gen_img_s_b8'] / ref['gen_img_s_b8']:.2f}x)" if ref else "")
                        for impl, row in this.items()), flush=True)
        impls = []  # nothing more to run
    for config in args.configs.split(","):
        for res in map(int, args.res.split(",")):
            for impl in impls:
                cmd = [sys.executable, __file__, "--one", f"{impl}:{config}:{res}", "--threads", str(args.threads),
                       "--min-time", str(args.min_time)] + (["--nvidia", args.nvidia] if args.nvidia else [])
                if args.profile:
                    cmd.append("--profile")
                if args.generation_only:
                    cmd.append("--generation-only")
                proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
                if proc.returncode:
                    print(proc.stderr[-2000:], file=sys.stderr)
                    continue
                lines = proc.stdout.strip().splitlines()
                if args.profile:
                    print("\n".join(lines[:-1]))
                row = json.loads(lines[-1])
                rows.append(row)
                train = f"  train {row['train_img_s']:6.2f} img/s" if "train_img_s" in row else ""
                if "profiled_ms_b8" in row:
                    train += f"  profiled b8: {row['profiled_ms_b8']} ms, convolutions {row['profiled_conv_ms_b8']} ms"
                print(f"{impl:14s} {config:9s} {res:4d}px  gen b8 {row['gen_img_s_b8']:7.2f}  b32 {row['gen_img_s_b32']:7.2f}"
                      f"{train}  peak RSS {row['peak_rss_mb']:6.0f} MB", flush=True)
    out = Path(args.out)
    if out.exists() and not args.interleave:  # keep earlier rows of other (impl, config, res) combinations
        done = {(r["impl"], r["config"], r["res"]) for r in rows}
        rows = [r for r in json.loads(out.read_text())["rows"] if (r["impl"], r["config"], r["res"]) not in done] + rows
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"torch": torch.__version__, "threads": args.threads, "cpu_count": os.cpu_count(),
            "command": " ".join(["python"] + sys.argv)}
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
