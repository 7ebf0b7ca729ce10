"""The generic training config; each family supplies its paper's defaults for these fields."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TrainConfig:
    kimg: float = 100.0  # length of training in thousands of real images shown to D
    batch_size: int = 64  # global batch: every optimizer step sees this many samples
    batch_gpu: int = 0  # samples per process and pass; fewer than batch / processes accumulates gradients
    seed: int = 0
    optimizer: str = "adam"  # adam | rmsprop | sgd
    g_lr: float = 2e-4
    d_lr: float = 2e-4
    betas: tuple[float, ...] = (0.5, 0.999)  # adam
    momentum: float = 0.0  # sgd / rmsprop
    eps: float = 1e-8
    n_critic: int = 1  # D steps per G step
    lr_schedule: str = "constant"  # constant | linear-decay (to 0 from lr_decay_start of training)
    lr_decay_start: float = 0.5
    ema_kimg: float = 0.0  # half-life of the G EMA in kimg; 0 keeps G_ema equal to G
    ema_rampup: float = 0.0  # ema half-life <= ema_rampup * images seen (StyleGAN2-ADA); 0 disables
    snapshot_kimg: float = 10.0  # checkpoint interval
    keep: int = 3  # checkpoints kept
    sample_kimg: float = 5.0  # sample-grid interval
    log_kimg: float = 1.0  # log / progress interval
    grid: int = 64  # samples in the grid
    mirror: bool = False  # random horizontal flips of real images
    cache: bool = True  # decode image folders once into memory (false: decode each batch on the fly)
    workers: int = 2  # with cache false: threads decoding the next batches during training (0: in the loop)
    threads: int = 0  # torch CPU threads; 0 keeps torch's default
    device: str = "auto"  # auto | cpu | cuda | mps
    precision: str = "fp32"  # fp32 | bf16 | fp16: autocast around every loss (fp16 with a gradient scaler)
    compile: bool = False  # torch.compile the networks (first steps are slow while it compiles)
    tensorboard: bool = True
    metrics: bool = True  # mode metrics at the end when the data has them
    eval_metrics: str = ""  # gankit eval metrics to log during training, e.g. "fid,kid" or "fid,ppl-w"
    eval_kimg: float = 0.0  # interval of eval_metrics in kimg (0: only at the end)
    eval_num_gen: int = 5000  # generated images (and PPL pairs) per evaluation
    eval_extractor: str = "auto"  # feature extractor of eval_metrics (see gankit eval --help)
