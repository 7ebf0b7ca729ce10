"""Projection of a real image into a StyleGAN's latent space (Karras et al. 2020, StyleGAN2,
section 5 and appendix D; NVIDIA's projector.py).

Optimise w (one w for every layer, or one per layer with ``space="w+"``) and the noise maps to
minimise the perceptual distance between G(w) and the target plus a noise regulariser:
* w starts at the mean of 10,000 mapped z, with added Gaussian noise of std
  0.05 * sigma_w * max(0, 1 - t / 0.75)^2 (the noise ramp);
* Adam (0.9, 0.999), lr 0.1 with a 5% linear ramp-up and a 25% cosine ramp-down;
* noise regularisation: for every noise map and its 2x2-pooled pyramid down to 8x8, the squared
  mean of its product with itself shifted by one pixel, in x and in y, weighted 1e5; the maps are
  renormalised to zero mean and unit variance after each step.
The distance is LPIPS-VGG16 when its files are given, otherwise EfficientNet-Lite0 features (see
:mod:`gankit.metrics.perceptual`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError
from .generate import is_style_generator


@dataclass
class Projection:
    """What :func:`project` returns: the final ws (1, num_ws, w_dim), the image, the distance per
    step, and (when asked) the image at every ``frame_every`` steps."""

    ws: torch.Tensor
    image: torch.Tensor
    distances: list[float]
    frames: list[torch.Tensor] = field(default_factory=list)

    @property
    def distance(self) -> float:
        return self.distances[-1]


def noise_regularization(noise_maps: list[torch.Tensor]) -> torch.Tensor:
    """StyleGAN2 appendix D: sum over maps and pyramid levels (down to 8x8) of the squared mean of
    the map times itself shifted by one pixel, horizontally and vertically."""
    reg = 0.0
    for v in noise_maps:
        n = v[None, None]
        while True:
            reg = reg + (n * torch.roll(n, shifts=1, dims=3)).mean() ** 2
            reg = reg + (n * torch.roll(n, shifts=1, dims=2)).mean() ** 2
            if n.shape[2] <= 8:
                break
            n = F.avg_pool2d(n, kernel_size=2)
    return reg


def w_statistics(G, samples: int = 10000, seed: int = 123) -> tuple[torch.Tensor, float]:
    """Mean w (1, 1, w_dim) and sigma_w = sqrt(E ||w - mean||^2) over ``samples`` mapped z."""
    dev = next(G.parameters()).device
    z = torch.randn(samples, G.z_dim, generator=torch.Generator().manual_seed(seed)).to(dev)
    c = None
    if getattr(G, "c_dim", 0):
        c = F.one_hot(torch.randint(0, G.c_dim, (samples,), generator=torch.Generator().manual_seed(seed)),
                      G.c_dim).float().to(dev)
    with torch.no_grad():
        w = G.mapping(z, c, update_w_avg=False)[:, :1]  # (N, 1, w_dim)
    w_avg = w.mean(0, keepdim=True)
    return w_avg, float(((w - w_avg).square().sum() / samples).sqrt())


def _lr_schedule(t: float, lr: float, rampdown: float = 0.25, rampup: float = 0.05) -> float:
    ramp = min(1.0, (1.0 - t) / rampdown)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    return lr * ramp * min(1.0, t / rampup)


def project(G, target: torch.Tensor, distance, steps: int = 1000, space: str = "w", lr: float = 0.1,
            initial_noise_factor: float = 0.05, noise_ramp_length: float = 0.75, noise_weight: float = 1e5,
            w_samples: int = 10000, seed: int = 0, frame_every: int = 0, progress: bool = False) -> Projection:
    """Projects ``target`` (1, C, H, W) in [-1, 1] at G's resolution; ``distance(a, b) -> (N,)``."""
    from tqdm import tqdm

    if not is_style_generator(G):
        raise ConfigError(f"projection needs a mapping network (stylegan, stylegan2, stylegan3); this is {type(G).__name__}")
    if space not in ("w", "w+"):
        raise ConfigError(f"--space {space}: use w or w+")
    if steps < 1:
        raise ConfigError("--steps must be at least 1")
    dev = next(G.parameters()).device
    target = target.to(dev, torch.float32)
    if target.shape[1:] != (G.img_channels, G.img_resolution, G.img_resolution):
        raise ConfigError(f"the target is {tuple(target.shape[1:])}; the generator makes "
                          f"{(G.img_channels, G.img_resolution, G.img_resolution)}")
    G = G.eval().requires_grad_(False)
    gen = torch.Generator().manual_seed(seed)
    w_avg, w_std = w_statistics(G, w_samples)
    num_ws = G.num_ws
    w_opt = (w_avg.repeat(1, num_ws, 1) if space == "w+" else w_avg).clone().requires_grad_(True)
    bufs = [b for n, b in G.named_buffers() if n.endswith("noise_const")]
    saved = [b.clone() for b in bufs]
    for b in bufs:
        b.copy_(torch.randn(b.shape, generator=gen).to(dev))
        b.requires_grad_(True)
    opt = torch.optim.Adam([w_opt] + bufs, betas=(0.9, 0.999), lr=lr)
    dists, frames = [], []
    try:
        for step in tqdm(range(steps), desc="project", unit="step", disable=not progress):
            t = step / steps
            w_noise_scale = w_std * initial_noise_factor * max(0.0, 1.0 - t / noise_ramp_length) ** 2
            for g in opt.param_groups:
                g["lr"] = _lr_schedule(t, lr)
            w_noise = torch.randn(w_opt.shape, generator=gen).to(dev) * w_noise_scale
            ws = w_opt + w_noise
            ws = ws if space == "w+" else ws.repeat(1, num_ws, 1)
            img = G.synthesis(ws, noise_mode="const")
            dist = distance(img, target).sum()
            loss = dist + noise_weight * noise_regularization(bufs)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                for b in bufs:  # renormalise the noise maps (zero mean, unit variance)
                    b -= b.mean()
                    b *= b.square().mean().rsqrt()
            dists.append(float(dist.detach()))
            if frame_every and step % frame_every == 0:
                frames.append(img.detach().clamp(-1, 1).cpu())
        with torch.no_grad():
            ws = w_opt if space == "w+" else w_opt.repeat(1, num_ws, 1)
            img = G.synthesis(ws, noise_mode="const")
            dists.append(float(distance(img, target).sum()))  # on the unclamped image, as during the steps
        return Projection(ws.detach().cpu(), img.clamp(-1, 1).cpu(), dists, frames)
    finally:
        with torch.no_grad():
            for b, s in zip(bufs, saved):
                b.requires_grad_(False)
                b.copy_(s)


def load_target(path, G) -> torch.Tensor:
    """An image file as (1, C, H, W) in [-1, 1], centre-cropped to a square and resized to G's
    resolution (Lanczos, as NVIDIA's projector)."""
    from PIL import Image, UnidentifiedImageError

    try:
        img = Image.open(path)
        img.load()
    except (OSError, UnidentifiedImageError) as e:
        raise ConfigError(f"{path}: cannot read this image ({e})") from None
    img = img.convert("L" if G.img_channels == 1 else "RGB")
    w, h = img.size
    s = min(w, h)
    img = img.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
    img = img.resize((G.img_resolution, G.img_resolution), Image.LANCZOS)
    arr = np.asarray(img, dtype=np.float32)
    arr = arr[:, :, None] if arr.ndim == 2 else arr
    return torch.from_numpy(arr).permute(2, 0, 1)[None] / 127.5 - 1


def own_image_distances(G, distance, k: int = 4, steps: int = 1000, space: str = "w", seed: int = 0,
                        **kwargs) -> list[float]:
    """Final projection distances of ``k`` images that G itself made (seeds 0..k-1, constant noise):
    the reference for "was this image made by this generator" (StyleGAN2 section 5: generated
    images project much closer than real ones)."""
    from .generate import generate

    return [project(G, generate(G, [s]), distance, steps, space, seed=seed, **kwargs).distance for s in range(k)]


def attribution(target_distance: float, own: list[float], margin: float = 1.5) -> str:
    """A verdict from the target's projection distance against the generator's own images'."""
    limit = max(own) * margin
    if target_distance <= limit:
        return f"likely made by this generator (distance {target_distance:.4g} <= {limit:.4g}, 1.5x its own images' worst)"
    return f"likely not made by this generator (distance {target_distance:.4g} > {limit:.4g}, 1.5x its own images' worst)"
