"""``gankit bench``: generation and training throughput, peak memory and achieved FLOP/s of any
family on this machine, with the machine's own conv2d peak measured in the same run.

    gankit bench stylegan2 --preset small --res 32,64            # the comparison config of docs/performance.md
    gankit bench dcgan gan --res 32 --out bench.json
    gankit bench stylegan2 --preset small --compile --precision bf16 --device cuda

Each (family, resolution) runs in a fresh process, so its peak RSS is its own. Training is timed
phase by phase through the trainer's own step code (data, accumulation, optimizer step), the
fastest of repeated calls; one iteration costs sum(t_phase / every) plus the EMA update, so lazy
regularization is amortized exactly. FLOPs are counted once per phase by a dispatch mode using
PyTorch's own formulas (``torch.utils.flop_counter``: convolutions, their backward passes and
matrix products; elementwise work is not counted), which also sees double-backward passes.
"""
from __future__ import annotations

import inspect
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry


class FlopCount(TorchDispatchMode):
    """Counts the FLOPs of every operator that ``torch.utils.flop_counter`` has a formula for."""

    def __init__(self):
        super().__init__()
        self.flops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.flops += int(formula(*args, **kwargs, out_val=out))
        return out


def count_flops(fn: Callable[[], object]) -> int:
    with FlopCount() as fc:
        fn()
    return fc.flops


def best_time(fn: Callable[[], object], min_time: float, min_reps: int = 3, warmup: int = 1,
              sync: Callable[[], None] = lambda: None) -> float:
    """Seconds per call: ``warmup`` calls, then calls until ``min_time`` has passed (at least
    ``min_reps``). The fastest call counts: on a shared machine, noise only ever adds time."""
    for _ in range(warmup):
        fn()
    sync()
    times, end = [], time.perf_counter() + min_time
    while len(times) < min_reps or time.perf_counter() < end:
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return min(times)


def _sync(device: torch.device) -> Callable[[], None]:
    return torch.cuda.synchronize if device.type == "cuda" else (lambda: None)


def conv_peak(device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32, min_time: float = 1.0) -> dict:
    """The machine's conv2d rate: the best FLOP/s of a 3x3 convolution's forward + backward (input
    and weight gradients) over a few StyleGAN-like shapes, both memory layouts."""
    device = torch.device(device)
    shapes = [(8, 128, 32), (8, 256, 16), (8, 512, 8)] if device.type == "cpu" else \
        [(32, 256, 64), (32, 512, 32), (64, 512, 16)]
    best = {"flops_per_s": 0.0}
    for b, c, h in shapes:
        for layout in (torch.contiguous_format, torch.channels_last):
            x = torch.randn(b, c, h, h, device=device, dtype=dtype).contiguous(memory_format=layout).requires_grad_()
            w = torch.randn(c, c, 3, 3, device=device, dtype=dtype).contiguous(memory_format=layout).requires_grad_()
            g = torch.randn(b, c, h, h, device=device, dtype=dtype).contiguous(memory_format=layout)

            def step():
                torch.autograd.grad(F.conv2d(x, w, padding=1), (x, w), g)
            flops = 3 * 2 * b * c * c * 9 * h * h  # forward, input gradient and weight gradient
            rate = flops / best_time(step, min_time, warmup=3, sync=_sync(device))
            if rate > best["flops_per_s"]:
                best = {"flops_per_s": rate, "shape": [b, c, h, h],
                        "layout": "channels_last" if layout is torch.channels_last else "contiguous"}
    return best


def _generate_fn(G, batch: int, device: torch.device, precision: str, inputs=None) -> Callable[[], object]:
    """G(z) (or G(inputs) for a translation network) without autograd in eval mode; constant noise where
    the generator has noise inputs."""
    kwargs = {"noise_mode": "const"} if "noise_mode" in inspect.signature(G.forward).parameters else {}
    z = torch.randn(batch, G.z_dim, device=device) if inputs is None else inputs[:batch].to(device)
    from ..nn.precision import autocast_context

    def run():
        with torch.no_grad(), autocast_context(precision, device):
            return G(z, **kwargs)
    return run


def measure(family: str, resolution: int, preset: str | None = None, batch: int = 8, device: str = "cpu",
            precision: str = "fp32", compile: bool = False, min_time: float = 2.0, threads: int = 0,
            gen_batches: tuple[int, ...] = (8, 32), model: dict | None = None) -> dict:
    """One (family, resolution): generation images/s per batch, training images/s, FLOP/s, peak memory;
    ``model`` holds model options on top of the preset (``--model.KEY`` of ``gankit train``)."""
    from ..api import get_family
    from ..training.ema import update_ema
    from ..training.trainer import Trainer

    if threads > 0:
        torch.set_num_threads(threads)
    data_kind = get_family(family).data_kinds[0]
    data = {"image": f"builtin:shapes?res={resolution}&n=256", "vector": "builtin:ring8",
            "paired": f"builtin:edges2shapes?res={resolution}&n=64&n_test=32",
            "unpaired": f"builtin:shapes-colorswap?res={resolution}&n=64&n_test=32&jitter=true"}[data_kind]
    train = {"batch_size": batch, "device": device, "precision": precision, "compile": compile,
             "tensorboard": False, "metrics": False, "threads": threads}
    with tempfile.TemporaryDirectory() as tmp:
        t = Trainer(family, data, tmp, preset=preset, overrides={"train": train, "model": dict(model or {})},
                    progress=False)
        t.setup()
    dev, precision = t.device, t.precision  # "auto" resolved (bf16 on a CPU with native bf16)
    sync = _sync(dev)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    out = {"family": family, "preset": preset, "resolution": resolution if data_kind != "vector" else None,
           "batch": batch, "device": str(dev), "precision": precision, "compile": compile,
           "threads": torch.get_num_threads(), **({"model": dict(model)} if model else {}),
           "params": {k: sum(p.numel() for p in m.parameters()) for k, m in t.nets.items()}}
    if "G" in t.nets and "D" in t.nets:
        out.update(params_G=out["params"]["G"], params_D=out["params"]["D"])

    # generation: the inference network (the EMA generator), as `gankit generate` / `translate` run it
    G = t.inference_net.eval()
    inputs = None
    if data_kind in ("paired", "unpaired"):
        held = t.dataset.held_out()
        inputs = held.A[:max(gen_batches)].float().div(127.5).sub(1.0).repeat(
            max(1, -(-max(gen_batches) // len(held.A))), 1, 1, 1)
    if compile:
        G.compile()
    for b in gen_batches:
        fn = _generate_fn(G, b, dev, precision, inputs)
        out[f"gen_img_s_b{b}"] = b / best_time(fn, min_time, warmup=2 if compile else 1, sync=sync)
    with torch.compiler.set_stance("force_eager"):  # the dispatch mode counts eager operators
        gen_flops = count_flops(_generate_fn(G, gen_batches[0], dev, "fp32", inputs))

    # training: each phase through the trainer's own code, then the EMA update
    per_iter, flops, imgs, phases = 0.0, 0, 0, {}
    for i, phase in enumerate(t.phases):
        def run(i=i, phase=phase):
            t._last_real = None
            t._run_phase(i, phase, {})
        before = t.cur_nimg
        run()
        shown = t.cur_nimg - before
        sec = best_time(run, min_time, warmup=2 if compile else 1, sync=sync)
        with torch.compiler.set_stance("force_eager"):  # the dispatch mode counts eager operators
            f = count_flops(run)
        phases[phase.name] = {"seconds": sec, "gflop": f / 1e9, "every": phase.every}
        per_iter += sec / phase.every
        flops += f / phase.every
        imgs += 0 if phase.reuse_real else shown / phase.every
    pairs = list(t.ema_pairs.items())
    ema = best_time(lambda: [update_ema(t.ema[c], t.nets[src], 0.999) for c, src in pairs], min(min_time, 0.5),
                    sync=sync) if pairs else 0.0
    per_iter += ema
    train_flops_s = flops / per_iter
    out.update({"phases": phases, "ema_seconds": ema, "train_iter_s": 1 / per_iter,
                "train_img_s": imgs / per_iter, "train_gflop_per_iter": flops / 1e9,
                "train_flops_per_s": train_flops_s, "gen_gflop_per_img": gen_flops / gen_batches[0] / 1e9,
                "gen_flops_per_s": gen_flops / gen_batches[0] * out[f"gen_img_s_b{gen_batches[0]}"],
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})
    if dev.type == "cuda":
        out["peak_cuda_mb"] = torch.cuda.max_memory_allocated(dev) / 2**20
    return out


def run_all(families: list[str], resolutions: list[int], *, preset: str | None = None, batch: int = 8,
            device: str = "cpu", precision: str = "fp32", compile: bool = False, min_time: float = 2.0,
            threads: int = 0, out: str | None = None, echo: Callable[[str], None] = print,
            model: dict | None = None) -> dict:
    """Every (family, resolution) in a fresh process; the conv2d peak before and after them (the higher
    counts: noise on a shared machine only lowers it); a table and JSON."""
    if threads > 0:
        torch.set_num_threads(threads)
    from ..nn.precision import AUTOCAST_DTYPES

    dtype = AUTOCAST_DTYPES.get(precision, torch.float32)  # auto: the fp32 peak
    dtype = dtype if device != "cpu" else torch.float32
    peak_time = max(0.1, min(1.0, min_time))
    peak = conv_peak(device, dtype, peak_time)  # measured again after the cases; the higher figure counts
    echo(f"conv2d peak: {peak['flops_per_s'] / 1e9:.1f} GFLOP/s (3x3, forward + backward, {peak['shape']}, "
         f"{peak['layout']}); measured again at the end")
    rows = []
    for family in families:
        for res in resolutions:
            args = dict(family=family, resolution=res, preset=preset, batch=batch, device=device,
                        precision=precision, compile=compile, min_time=min_time, threads=threads,
                        model=dict(model or {}))
            echo(f"measuring {family} at {res} px ...")
            proc = subprocess.run([sys.executable, "-m", "gankit.tools.bench", json.dumps(args)],
                                  capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
            if proc.returncode:
                echo(f"{family} {res} px failed:\n{proc.stderr.strip()[-1500:]}")
                continue
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    again = conv_peak(device, dtype, peak_time)
    peak = {**max(peak, again, key=lambda p: p["flops_per_s"]),
            "runs_gflop_per_s": [round(p["flops_per_s"] / 1e9, 1) for p in (peak, again)]}
    echo(f"conv2d peak: {peak['flops_per_s'] / 1e9:.1f} GFLOP/s (the higher of {peak['runs_gflop_per_s']})")
    echo(f"{'family':10s} {'preset':10s} {'px':>4s} {'gen b8':>8s} {'gen b32':>8s} {'train':>7s} {'GFLOP/s':>8s} "
         f"{'of peak':>7s} {'RSS MB':>7s}")
    for row in rows:
        row["share_of_peak"] = row["train_flops_per_s"] / peak["flops_per_s"]
        px = "-" if row["resolution"] is None else str(row["resolution"])
        echo(f"{row['family']:10s} {str(preset or '-'):10s} {px:>4s} {row['gen_img_s_b8']:8.1f} "
             f"{row['gen_img_s_b32']:8.1f} {row['train_img_s']:7.2f} {row['train_flops_per_s'] / 1e9:8.1f} "
             f"{row['share_of_peak']:7.0%} {row['peak_rss_mb']:7.0f}")
    result = {"machine": {"cpu_count": os.cpu_count(), "threads": threads or torch.get_num_threads(),
                          "torch": torch.__version__, "device": device,
                          **({"cuda": torch.cuda.get_device_name()} if device.startswith("cuda") else {})},
              "conv2d_peak": peak, "rows": rows}
    if out:
        from ..training.checkpoint import atomic_write_text

        atomic_write_text(out, json.dumps(result, indent=2))
        echo(f"wrote {out}")
    return result


if __name__ == "__main__":  # one measurement, in the fresh process run_all starts
    print(json.dumps(measure(**json.loads(sys.argv[1]))))
