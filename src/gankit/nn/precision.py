"""StyleGAN2-ADA's mixed precision: only the blocks of the highest resolutions run in fp16
(Karras et al. 2020b, "Training Generative Adversarial Networks with Limited Data", appendix D.2:
fp16 in the 4 highest resolutions, conv outputs clamped to +-256), the rest in fp32.

A block marked ``use_fp16`` runs its convolutions under fp16 autocast with fp16 activations,
on the devices in :data:`FP16_DEVICES` (CUDA; NVIDIA's code likewise forces fp32 on CPU, where
fp16 is slow). Tests add "cpu" to check the path.
"""
from __future__ import annotations

import contextlib

import torch

Tensor = torch.Tensor

#: devices on which ``use_fp16`` blocks really run in fp16
FP16_DEVICES = {"cuda"}


def fp16_active(use_fp16: bool, device: torch.device) -> bool:
    return use_fp16 and device.type in FP16_DEVICES


def block_context(half: bool, device: torch.device):
    """fp16 autocast for a half-precision block; nothing otherwise (an outer autocast, e.g.
    ``--train.precision bf16``, stays in force)."""
    return torch.autocast(device.type, dtype=torch.float16) if half else contextlib.nullcontext()


def to_block(x: Tensor | None, half: bool) -> Tensor | None:
    """A block's input in its precision: fp16 inside half blocks; fp16 coming out of one into a full
    precision block goes back to fp32 (unless an outer autocast manages dtypes)."""
    if x is None:
        return None
    if half:
        return x.half()
    if x.dtype == torch.float16 and not torch.is_autocast_enabled(x.device.type):
        return x.float()
    return x


def fp16_resolution(img_resolution: int, num_fp16_res: int) -> int:
    """Blocks at this resolution and above use fp16 (StyleGAN2-ADA: max(2^(log2 res + 1 - N), 8))."""
    if num_fp16_res <= 0:
        return img_resolution * 2  # none
    return max(2 ** (img_resolution.bit_length() - 1 + 1 - num_fp16_res), 8)


def native_bf16_cpu() -> bool:
    """Whether this CPU computes bf16 natively (AVX-512 BF16 or AMX), as oneDNN reports it."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(name: str, device: torch.device) -> tuple[str, str]:
    """``--train.precision`` as it will run on ``device`` and why: ``auto`` is bf16 autocast on a
    CPU with native bf16 and fp32 everywhere else (GPUs keep fp32 unless asked: StyleGAN2-ADA's
    fp16 blocks are ``--model.num-fp16-res``)."""
    if name != "auto":
        return name, "as set"
    if device.type == "cpu" and native_bf16_cpu():
        return "bf16", "auto: this CPU computes bf16 natively (AVX-512 BF16 / AMX); --train.precision fp32 to turn off"
    why = "this CPU has no native bf16" if device.type == "cpu" else f"auto keeps fp32 on {device.type}"
    return "fp32", f"auto: {why}"


AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast_context(precision: str, device: torch.device):
    """The autocast of a resolved precision (:func:`resolve_precision`) on ``device``: none for
    fp32, bf16 or fp16 autocast otherwise. The trainer's losses, ``gankit generate`` and
    ``gankit bench`` all run their networks under it."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision not in AUTOCAST_DTYPES:
        raise ValueError(f"precision {precision!r}: resolve it first (fp32, bf16 or fp16)")
    return torch.autocast(device.type, dtype=AUTOCAST_DTYPES[precision])
