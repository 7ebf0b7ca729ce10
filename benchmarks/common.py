"""What every benchmark script writes: the machine's facts and a JSON file of rows."""
from __future__ import annotations

import contextlib
import json
import os
import platform
from pathlib import Path

import torch


def machine(threads: int | None = None) -> dict:
    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "threads": threads or torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version()}


ROOT = Path(__file__).resolve().parent.parent  # the repository


def results_path(path: str | Path) -> Path:
    """``path``, with a relative ``benchmarks/...`` path (every script's default ``--out``) taken
    from the repository root, so a script started inside ``benchmarks/`` writes where the docs say."""
    path = Path(path)
    return ROOT / path if not path.is_absolute() and path.parts[:1] == ("benchmarks",) else path


def write_results(path: str | Path, rows: list, threads: int | None = None) -> None:
    """Writes ``{"machine": ..., "results": rows}`` to ``path`` and says so."""
    path = results_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"machine": machine(threads), "results": rows}, indent=2))
    print(f"wrote {path}")


def earlier_results(path: str | Path) -> list:
    """The rows already in ``path`` (a file :func:`write_results` wrote), or none: scripts that append."""
    path = results_path(path)
    return json.loads(path.read_text())["results"] if path.exists() else []


SHAPES_FIGURES = ("recognised_share", "pairs_covered", "shapes_covered", "colours_covered")


def shapes_figures(metric_values: dict) -> dict:
    """The shapes classifier's figures of a run's metrics.json values."""
    return {k: metric_values[k] for k in SHAPES_FIGURES}


@contextlib.contextmanager
def style_recipe_patched(build, phases):
    """The StyleGAN2 family with other networks and phases, in this process only, until the block
    ends (the Quickstart experiments): ``build(original_build, family, cfg) -> nets`` and
    ``phases(cfg, G, D) -> [Phase, ...]`` replace the family's own."""
    import gankit.models.recipes.style as style
    from gankit.models.stylegan2 import StyleGAN2

    original_build, original_phases = StyleGAN2.build, style.StyleFamily.phases
    StyleGAN2.build = lambda family, cfg: build(original_build, family, cfg)
    style.StyleFamily.phases = lambda family, cfg, nets, train: phases(cfg, nets["G"], nets["D"])
    try:
        yield
    finally:
        StyleGAN2.build, style.StyleFamily.phases = original_build, original_phases


def lazy_r1_phase(cfg, D):
    """The style recipe's lazy R1 phase on D's reals, for experiments that write their own phases."""
    from gankit.losses import r1_penalty
    from gankit.models.family import Phase

    def d_reg(s):
        real = s.real.detach().requires_grad_(True)
        r1 = r1_penalty(D(real), real)
        return {"loss": r1 * (cfg.r1_gamma / 2) * cfg.d_reg_interval, "r1": r1.detach()}  # Mescheder 2018 eq. 9

    return Phase("Dreg", "D", d_reg, every=cfg.d_reg_interval, real=True, reuse_real=True, higher_order=True)


def train_quickstart(data: str, out: str, threads: int, seed: int, model: dict | None = None, kimg: float = 24.0) -> dict:
    """Trains the `quickstart` preset on ``data`` (in the current patch, if any) with no snapshots
    or sample grids on the way, and returns metrics.json's values."""
    from gankit.training.trainer import Trainer

    train = {"kimg": kimg, "tensorboard": False, "snapshot_kimg": 10**6, "sample_kimg": 10**6,
             "threads": threads, "seed": seed}
    tr = Trainer("stylegan2", data, out, preset="quickstart", progress=False,
                 overrides={"model": model or {}, "train": train})
    return tr.run()["metric_values"]


def variants_main(doc: str, variants, run, runs: str, out: str, threads: int = 1, append: bool = True) -> None:
    """The command line of a recipe-search script: ``--variants`` (names from ``variants``),
    ``--runs``, ``--threads``, ``--seed``, ``--out``; calls ``run(name, runs, threads, seed)`` per
    variant and writes the rows after each (``append``: after the rows already in ``--out``)."""
    import argparse

    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", nargs="+", default=list(variants), choices=list(variants))
    ap.add_argument("--runs", default=runs)
    ap.add_argument("--threads", type=int, default=threads)
    ap.add_argument("--seed", type=int, default=0, help="--train.seed of every run")
    ap.add_argument("--out", default=out)
    args = ap.parse_args()
    rows = earlier_results(args.out) if append else []
    for name in args.variants:
        rows.append(run(name, args.runs, args.threads, args.seed))
        print(rows[-1], flush=True)
        write_results(args.out, rows, args.threads)
