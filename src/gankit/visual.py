"""Pictures of samples: image grids and 2D scatter plots, written as PNG with Pillow."""
from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image, ImageDraw


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] -> (N, H, W, C) uint8."""
    x = images.detach().float().cpu().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).numpy()


def image_grid(images: torch.Tensor, cols: int | None = None, pad: int = 1, min_cell: int = 64) -> Image.Image:
    """Tiles images (N, C, H, W) in [-1, 1] into one picture; small images are enlarged (nearest)."""
    arr = to_uint8(images)
    n, h, w, c = arr.shape
    cols = cols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    scale = max(1, math.ceil(min_cell / h))
    canvas = np.zeros((rows * (h + pad) + pad, cols * (w + pad) + pad, c), dtype=np.uint8)
    for i in range(n):
        r, q = divmod(i, cols)
        canvas[pad + r * (h + pad): pad + r * (h + pad) + h, pad + q * (w + pad): pad + q * (w + pad) + w] = arr[i]
    img = Image.fromarray(canvas[:, :, 0] if c == 1 else canvas)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    return img


def scatter(points: torch.Tensor, reference: torch.Tensor | None = None, size: int = 512,
            extent: float | None = None) -> Image.Image:
    """Draws 2D samples (blue) over reference points (light gray), e.g. mixture centres or real data."""
    pts = points.detach().float().cpu()
    allp = pts if reference is None else torch.cat([pts, reference.float().cpu()])
    ext = extent or float(allp.abs().quantile(0.995)) * 1.15 + 1e-6
    img = Image.new("RGB", (size, size), "white")
    d = ImageDraw.Draw(img)

    def xy(p):
        return ((p[0] / ext + 1) * size / 2, (1 - p[1] / ext) * size / 2)

    d.line([(size / 2, 0), (size / 2, size)], fill=(230, 230, 230))
    d.line([(0, size / 2), (size, size / 2)], fill=(230, 230, 230))
    if reference is not None:
        for p in reference.float().cpu().tolist():
            x, y = xy(p)
            d.ellipse([x - 5, y - 5, x + 5, y + 5], outline=(200, 60, 60), width=2)
    for p in pts.tolist():
        x, y = xy(p)
        d.point((x, y), fill=(30, 60, 200))
    return img


def save_samples(samples: torch.Tensor, path: str, reference: torch.Tensor | None = None,
                 nrow: int | None = None) -> None:
    """Images -> grid PNG (``nrow`` images per row, square by default); 2D vectors -> scatter PNG."""
    if samples.dim() == 4:
        image_grid(samples, cols=nrow).save(path)
    elif samples.dim() == 2 and samples.shape[1] == 2:
        scatter(samples, reference).save(path)
    else:
        raise ValueError(f"cannot draw samples of shape {tuple(samples.shape)}")


@torch.no_grad()
def truncation_strip(G, rows: int = 6, psis=(1.0, 0.75, 0.5, 0.25, 0.0), seed: int = 0) -> Image.Image:
    """The truncation figure of StyleGAN (Figure 8): one seed per row, psi from 1 (left) to 0 (right).

    ``G`` must accept ``truncation_psi``; noise is held constant so only psi changes along a row,
    and the last column is the image of the average w for every row.
    """
    z = torch.randn(rows, G.z_dim, generator=torch.Generator().manual_seed(seed))
    z = z.to(next(G.parameters()).device)
    cells = [G(z, truncation_psi=psi, noise_mode="const") for psi in psis]  # len(psis) x (rows, C, H, W)
    return image_grid(torch.stack(cells, 1).flatten(0, 1).cpu(), cols=len(psis))
