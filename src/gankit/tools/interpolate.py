"""Interpolation videos and the stochastic-variation figure.

* Z: spherical interpolation between the seeds' z (StyleGAN section 4.1 uses slerp in Z because z
  is normalised; the mapping network's pixel norm makes only the direction matter).
* W: linear interpolation between the seeds' w (eq. 3's lerp).
* Stochastic variation (StyleGAN section 3.2, Figure 4): one w, many noise draws, and the per-pixel
  standard deviation over the draws.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError
from ..metrics.ppl import slerp
from .generate import class_labels, is_style_generator, seed_latents, synthesize


def _need_style(G, what: str):
    if not is_style_generator(G):
        raise ConfigError(f"{what} needs a mapping network (stylegan, stylegan2, stylegan3); "
                          f"this is {type(G).__name__}")


def has_noise_inputs(G) -> bool:
    """Whether G draws per-pixel noise (StyleGAN, StyleGAN2; StyleGAN3 has none, config C)."""
    from ..nn import NoiseInput

    return any(isinstance(m, NoiseInput) for m in G.modules())


@torch.no_grad()
def interpolation_ws(G, seeds, space: str = "w", frames: int = 30, truncation_psi: float = 1.0,
                     class_idx: int | None = None) -> torch.Tensor:
    """ws (T, num_ws, w_dim) through the seeds in order: ``frames`` steps per pair, then the last seed."""
    _need_style(G, "interpolation")
    if space not in ("z", "w"):
        raise ConfigError(f"--space {space}: use z or w")
    if len(seeds) < 2 or frames < 1:
        raise ConfigError("--seeds: interpolation needs at least two seeds (and --frames >= 1)")
    dev = next(G.parameters()).device
    z = seed_latents(G, seeds).to(dev)
    t = torch.arange(frames, device=dev, dtype=z.dtype) / frames

    def mapping(zz):
        return G.mapping(zz, class_labels(G, class_idx, len(zz), dev), truncation_psi=truncation_psi,
                         update_w_avg=False)

    if space == "z":
        path = [slerp(z[i:i + 1].expand(frames, -1), z[i + 1:i + 2].expand(frames, -1), t[:, None])
                for i in range(len(seeds) - 1)]
        return mapping(torch.cat(path + [z[-1:]]))
    w = mapping(z)
    path = [torch.lerp(w[i:i + 1], w[i + 1:i + 2], t.view(-1, 1, 1)) for i in range(len(seeds) - 1)]
    return torch.cat(path + [w[-1:]])


@torch.no_grad()
def render(G, ws: torch.Tensor, noise_mode: str = "const", batch: int = 16, progress: bool = False) -> torch.Tensor:
    """Images (T, C, H, W) in [-1, 1] for ws, with a progress bar when asked."""
    from tqdm import tqdm

    out = []
    with tqdm(total=len(ws), desc="frames", unit="frame", disable=not progress) as bar:
        for chunk in ws.split(batch):
            out.append(synthesize(G, chunk, noise_mode).cpu())
            bar.update(len(chunk))
    return torch.cat(out)


def to_frames(images: torch.Tensor, min_size: int = 256) -> list[np.ndarray]:
    """uint8 HxWx3 frames, enlarged (nearest) to at least ``min_size`` px so small images are visible
    and video codecs get sizes divisible by 16."""
    from ..visual import to_uint8

    arr = to_uint8(images)  # (T, H, W, C)
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    scale = max(1, -(-min_size // arr.shape[1]))
    return [np.kron(a, np.ones((scale, scale, 1), dtype=np.uint8)) for a in arr]


def write_video(frames: list[np.ndarray], path: str | Path, fps: int = 30) -> Path:
    """An H.264 MP4 through imageio-ffmpeg (which ships its own ffmpeg)."""
    import imageio.v2 as imageio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with imageio.get_writer(str(path), fps=fps, codec="libx264", quality=8, macro_block_size=16,
                            ffmpeg_log_level="error") as w:
        for f in frames:
            w.append_data(f)
    return path


def write_gif(frames: list[np.ndarray], path: str | Path, fps: int = 30) -> Path:
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    imgs = [Image.fromarray(f) for f in frames]
    imgs[0].save(path, save_all=True, append_images=imgs[1:], duration=max(20, round(1000 / fps)), loop=0)
    return path


@torch.no_grad()
def stochastic_variation(G, seed: int, draws: int = 8, truncation_psi: float = 1.0,
                         class_idx: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(images (draws, C, H, W) of one w under ``draws`` noise draws, per-pixel std (H, W) over
    them, averaged over channels), as in StyleGAN Figure 4."""
    _need_style(G, "stochastic variation")
    if not has_noise_inputs(G):
        raise ConfigError("stochastic variation needs noise inputs; this generator has none (StyleGAN3)")
    dev = next(G.parameters()).device
    z = seed_latents(G, [seed]).to(dev)
    w = G.mapping(z, class_labels(G, class_idx, 1, dev), truncation_psi=truncation_psi, update_w_avg=False)
    imgs = synthesize(G, w.expand(draws, -1, -1), "random", [seed * 1000 + i for i in range(draws)]).cpu()
    return imgs, imgs.std(0).mean(0)


def variation_figure(images: torch.Tensor, std: torch.Tensor):
    """One row: the draws, then the std map (scaled to its maximum, white = most variation)."""
    from ..visual import image_grid

    s = std / std.max().clamp_min(1e-8) * 2 - 1
    s = s.expand(images.shape[1], -1, -1)[None]
    return image_grid(torch.cat([images, s]), cols=len(images) + 1, pad=1, min_cell=64)

