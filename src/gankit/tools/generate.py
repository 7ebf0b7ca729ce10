"""Images by seed: the same seed gives the same image whatever the batch, device or other seeds.

z for seed s is ``torch.randn(z_dim)`` from a CPU generator seeded with s (so it is identical on
every device). With ``noise_mode="const"`` (the default, as NVIDIA's generate.py) the noise
inputs are the generator's fixed buffers; ``"random"`` draws them from a generator seeded with s
as well, one image at a time; ``"none"`` switches them off.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import ConfigError

NOISE_MODES = ("const", "random", "none")


def is_style_generator(G) -> bool:
    return hasattr(G, "mapping") and hasattr(G, "synthesis")


def seed_latents(G, seeds) -> torch.Tensor:
    """(len(seeds), z_dim) latents, one CPU-seeded draw per seed."""
    return torch.stack([torch.randn(G.z_dim, generator=torch.Generator().manual_seed(int(s))) for s in seeds])


def class_labels(G, class_idx: int | None, n: int, device) -> torch.Tensor | None:
    """One-hot labels for a conditional G (``class_idx`` required), None for an unconditional one."""
    c_dim = getattr(G, "c_dim", 0)
    if c_dim == 0:
        if class_idx is not None:
            raise ConfigError(f"--class {class_idx}: this generator is not conditional")
        return None
    if class_idx is None:
        raise ConfigError(f"this generator is conditional on {c_dim} classes: give --class 0..{c_dim - 1}")
    if not 0 <= class_idx < c_dim:
        raise ConfigError(f"--class {class_idx}: choose a class in 0..{c_dim - 1}")
    return F.one_hot(torch.full((n,), class_idx, device=device), c_dim).float()


def check_style_options(G, truncation_psi: float, noise_mode: str) -> None:
    if noise_mode not in NOISE_MODES:
        raise ConfigError(f"--noise {noise_mode}: choose one of {', '.join(NOISE_MODES)}")
    if not is_style_generator(G) and truncation_psi != 1.0:
        raise ConfigError(f"--trunc {truncation_psi}: truncation needs a mapping network (stylegan, stylegan2, stylegan3); "
                          f"this generator is {type(G).__name__}")


def synthesize(G, ws: torch.Tensor, noise_mode: str = "const", seeds=None) -> torch.Tensor:
    """Images (clamped to [-1, 1]) from ws; ``random`` noise is drawn per seed when seeds are given."""
    if noise_mode == "random" and seeds is not None:
        out = []
        for w, s in zip(ws, seeds):
            with torch.random.fork_rng(devices=[ws.device] if ws.is_cuda else []):
                torch.manual_seed(int(s))
                out.append(G.synthesis(w[None], noise_mode="random"))
        return torch.cat(out).clamp(-1, 1)
    return G.synthesis(ws, noise_mode=noise_mode).clamp(-1, 1)


def precision_context(precision: str, device):
    """Autocast for ``--precision`` (``fp32``: none; ``bf16``; ``fp16``, CUDA only; ``auto``: bf16 on a
    CPU with native bf16, else fp32) on ``device``."""
    from ..nn.precision import autocast_context, resolve_precision

    device = torch.device(device)
    if precision not in ("fp32", "bf16", "fp16", "auto"):
        raise ConfigError(f"--precision {precision}: use fp32, bf16, fp16 or auto")
    name, _ = resolve_precision(precision, device)
    if name == "fp16" and device.type != "cuda":
        raise ConfigError(f"--precision fp16 needs a CUDA device (this is {device.type}); use bf16 or fp32")
    return autocast_context(name, device)


@torch.no_grad()
def generate(G, seeds, truncation_psi: float = 1.0, class_idx: int | None = None, noise_mode: str = "const",
             batch: int = 1, device=None, family=None, precision: str = "fp32") -> torch.Tensor:
    """Images (N, C, H, W) in [-1, 1] on the CPU, one per seed.

    ``batch=1`` (the default, as NVIDIA's generate.py) makes each image bit-identical whatever the
    other seeds; larger batches are faster and agree to float rounding (convolution kernels
    differ by batch size). A StyleGAN generator runs its mapping (with ``truncation_psi``) and its
    synthesis (with ``noise_mode``); any other network is sampled through its ``family``
    (``family.sample(G, 1, seed, condition=class_idx)``: the same z for a seed), or as ``G(z [, c])``
    when no family is given.

    ``precision="bf16"`` runs the networks under bf16 autocast (``"auto"``: bf16 on a CPU with
    native bf16): faster on such CPUs, with images that differ from fp32 by bf16 rounding, so
    the same seed no longer gives bitwise the same image; the result is fp32 either way.

    Example:
        >>> G = gankit.load("runs/quickstart")                   # doctest: +SKIP
        >>> imgs = generate(G, range(8), truncation_psi=0.7)     # doctest: +SKIP
    """
    check_style_options(G, truncation_psi, noise_mode)
    seeds = [int(s) for s in seeds]
    device = torch.device(device or next(G.parameters()).device)
    amp = precision_context(precision, device)
    if family is not None and not is_style_generator(G):
        class_labels(G, class_idx, 1, "cpu")  # the class is checked as below
        with amp:
            return torch.cat([family.sample(G, 1, s, condition=class_idx).float().cpu() for s in seeds])
    z = seed_latents(G, seeds)
    out = []
    for i in range(0, len(seeds), batch):
        zb = z[i:i + batch].to(device)
        c = class_labels(G, class_idx, len(zb), device)
        with amp:
            if is_style_generator(G):
                ws = G.mapping(zb, c, truncation_psi=truncation_psi, update_w_avg=False)
                x = synthesize(G, ws, noise_mode, seeds[i:i + batch])
            else:
                x = G(zb, c) if c is not None else G(zb)
        out.append(x.float().cpu())
    return torch.cat(out)
