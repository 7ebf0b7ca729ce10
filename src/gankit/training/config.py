"""The generic training config; each family supplies its paper's defaults for these fields.

Every field is range-checked when a config is built (see :mod:`gankit.config`); what a single
field's range cannot say (betas must be a pair) is checked by :func:`validate_train`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from ..config import Choice, Fraction, Interval, Positive, Range, Seed, Size
from ..errors import ConfigError

Kimg = Annotated[float, Range(0.0, 1e9, open_lo=True)]


@dataclass
class TrainConfig:
    kimg: Kimg = 100.0  # length of training in thousands of real images shown to D
    batch_size: Size = 64  # global batch: every optimizer step sees this many samples
    batch_gpu: Annotated[int, Range(0, 1 << 16)] = 0  # samples per process and pass; fewer than batch / processes accumulates gradients
    seed: Seed = 0
    optimizer: Annotated[str, Choice(("adam", "rmsprop", "sgd"))] = "adam"  # adam | rmsprop | sgd
    g_lr: Positive = 2e-4
    d_lr: Positive = 2e-4
    betas: tuple[Annotated[float, Range(0.0, 0.9999999)], ...] = (0.5, 0.999)  # adam
    momentum: Annotated[float, Range(0.0, 0.9999999)] = 0.0  # sgd / rmsprop
    eps: Positive = 1e-8
    n_critic: Interval = 1  # D steps per iteration (the adversarial and style families)
    n_gen: Interval = 1  # G steps per iteration (the adversarial and style families); DCGAN-tensorflow's code takes 2
    lr_schedule: Annotated[str, Choice(("constant", "linear-decay"))] = "constant"  # constant | linear-decay (to 0 from lr_decay_start of training)
    lr_decay_start: Fraction = 0.5
    ema_kimg: Annotated[float, Range(0.0, 1e9)] = 0.0  # half-life of the G EMA in kimg; 0 keeps G_ema equal to G
    ema_rampup: Annotated[float, Range(0.0, 1e9)] = 0.0  # ema half-life <= ema_rampup * images seen (StyleGAN2-ADA); 0 disables
    snapshot_kimg: Kimg = 10.0  # checkpoint interval
    keep: Annotated[int, Range(1, 1 << 20)] = 3  # checkpoints kept (saving needs room for one more while the oldest is pruned)
    sample_kimg: Kimg = 5.0  # sample-grid interval
    log_kimg: Kimg = 1.0  # log / progress interval
    grid: Annotated[int, Range(1, 4096)] = 64  # samples in the grid
    mirror: bool = False  # random horizontal flips of real images
    cache: bool = True  # decode image folders once into memory (false: decode each batch on the fly)
    workers: Annotated[int, Range(0, 256)] = 2  # with cache false: threads decoding the next batches during training (0: in the loop)
    threads: Annotated[int, Range(0, 4096)] = 0  # torch CPU threads; 0 keeps torch's default
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    precision: Annotated[str, Choice(("fp32", "bf16", "fp16", "auto"))] = "fp32"  # fp32 | bf16 | fp16: autocast around every loss (fp16 with a gradient scaler) | auto: bf16 on a CPU with native bf16, else fp32
    fused_adam: bool = False  # Adam through torch's fused kernel (cpu, cuda): the same update within float rounding, fewer passes over memory
    compile: bool = False  # torch.compile the networks (first steps are slow while it compiles)
    tensorboard: bool = True
    metrics: bool = True  # mode metrics at the end when the data has them
    eval_metrics: str = ""  # gankit eval metrics to log during training, e.g. "fid,kid" or "fid,ppl-w"
    eval_kimg: Annotated[float, Range(0.0, 1e9)] = 0.0  # interval of eval_metrics in kimg (0: only at the end)
    eval_num_gen: Annotated[int, Range(2, 1 << 24)] = 5000  # generated images (and PPL pairs) per evaluation
    eval_extractor: str = "auto"  # feature extractor of eval_metrics (see gankit eval --help)


def validate_train(cfg: TrainConfig) -> TrainConfig:
    """Checks what the fields' ranges cannot (betas a pair, a known device, known metrics); returns ``cfg``."""
    if cfg.optimizer == "adam" and len(cfg.betas) != 2:
        raise ConfigError(f"--train.betas {','.join(map(str, cfg.betas))}: Adam takes two values, e.g. 0.5,0.999")
    check_device(cfg.device)
    if cfg.eval_metrics:
        from ..metrics.evaluate import parse_metrics

        parse_metrics(cfg.eval_metrics)
    return cfg


def check_device(name: str) -> None:
    """Refuses a device string torch cannot parse, by name (the device need not be present)."""
    import torch

    if name == "auto":
        return
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        raise ConfigError(f"--train.device {name!r}: not a device; use auto, cpu, cuda, cuda:N or mps") from None
    if dev.type not in ("cpu", "cuda", "mps", "xpu"):
        raise ConfigError(f"--train.device {name!r}: use auto, cpu, cuda, cuda:N or mps")
