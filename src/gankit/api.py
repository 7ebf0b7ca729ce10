"""Public entry points: list, create and load models."""
from __future__ import annotations

from pathlib import Path

import torch

from . import models  # noqa: F401  (registers families)
from .config import apply_overrides, from_dict, merge
from .errors import CheckpointError, ConfigError
from .models.family import Bundle, Family
from .registry import FAMILIES
from .training import checkpoint as ckpt
from .training.config import TrainConfig, validate_train


def list_models() -> list[str]:
    """Names of the registered families, e.g. ``['dcgan', 'gan', 'wgan', 'wgan-gp']``."""
    return FAMILIES.names()


def get_family(name: str) -> Family:
    return FAMILIES.get(name)()


def list_presets(name: str) -> list[str]:
    return sorted(get_family(name).presets)


def resolve_configs(name: str, preset: str | None = None, overrides: dict | None = None):
    """Builds (model config, train config) from paper defaults, then the preset, then overrides.

    ``overrides`` is ``{"model": {...}, "train": {...}}``; unknown names raise ConfigError.
    """
    fam = get_family(name)
    overrides = overrides or {}
    unknown = set(overrides) - {"model", "train"}
    if unknown:
        raise ConfigError(f"unknown option group '{sorted(unknown)[0]}'; options are --model.NAME or --train.NAME")
    layers = {}
    if preset is not None:
        if preset not in fam.presets:
            raise ConfigError(f"--preset: unknown preset {preset!r} for family '{name}'; choose one of: "
                              f"{', '.join(sorted(fam.presets)) or '(none)'}")
        layers = fam.presets[preset]
    layers = merge(layers, overrides)
    model_cfg = fam.config(layers.get("model", {}))
    train_cfg = apply_overrides(apply_overrides(TrainConfig(), fam.train_defaults, "train"),
                                layers.get("train", {}), "train")
    return model_cfg, validate_train(train_cfg)


def create(name: str, preset: str | None = None, **model_overrides) -> Bundle:
    """Builds a family's networks from its config (paper defaults < preset < keyword overrides).

    Example:
        >>> m = create("dcgan", preset="cpu-digits", resolution=32, channels=1)
        >>> m.G(torch.randn(2, m.G.z_dim)).shape
        torch.Size([2, 1, 32, 32])
    """
    fam = get_family(name)
    model_cfg, _ = resolve_configs(name, preset, {"model": model_overrides})
    fam.validate(model_cfg)
    return Bundle(name, model_cfg, fam.build_checked(model_cfg), fam.inference_name(model_cfg))


def bundle_from_config(config: dict, source: str = "config.json") -> Bundle:
    """Rebuilds untrained networks from a run's ``config.json`` (no training code needed); every value
    is checked as a command-line option would be, and a bad one is named with ``source``."""
    name = config.get("family") if isinstance(config, dict) else None
    if not isinstance(name, str) or name not in FAMILIES:
        raise CheckpointError(f"{source}: names family {name!r}, which this gankit does not have; "
                              f"known: {', '.join(list_models())}")
    fam = get_family(name)
    try:
        model_cfg = from_dict(fam.Config, config.get("model", {}))
        fam.validate(model_cfg)
        nets = fam.build_checked(model_cfg)
        from .training.ema import make_ema

        for copy_name, src in fam.ema_pairs(model_cfg).items():  # untrained copies to load the EMA weights into
            nets[copy_name] = make_ema(nets[src])
    except ConfigError as e:
        raise CheckpointError(f"{source}: {str(e).replace('--model.', 'model.')}") from None
    return Bundle(name, model_cfg, nets, fam.inference_name(model_cfg))


def load_bundle(path: str | Path) -> tuple[Bundle, torch.nn.Module, dict]:
    """Loads a run or checkpoint folder: (bundle with every network of the checkpoint by name, the
    inference network in eval mode, config dict)."""
    where = ckpt.resolve(path)
    config = ckpt.read_config(where)
    source = str(where / "config.json") if (where / "config.json").is_file() else str(where.parent.parent / "config.json")
    bundle = bundle_from_config(config, source)
    ckpt.load_modules(where, bundle.nets)
    net = bundle.inference
    net.eval().requires_grad_(False)
    return bundle, net, config


def load(path: str | Path) -> torch.nn.Module:
    """The inference network of a run (newest checkpoint) or of a checkpoint folder, in eval mode:
    the EMA generator of the z -> image families, the generator of pix2pix and CycleGAN (A -> B;
    ``gankit.load_bundle(run)[0].nets`` has every network). Call signatures per family are in
    docs/families.md.

    Example:
        >>> G = load("runs/quickstart")          # doctest: +SKIP
        >>> images = G(torch.randn(16, G.z_dim))  # (16, C, H, W) in [-1, 1]  # doctest: +SKIP
    """
    return load_bundle(path)[1]
