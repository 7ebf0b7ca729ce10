"""Perceptual path length (Karras et al. 2019, StyleGAN, section 4.1, eqs. 2 and 3).

l = E[ d(g(lerp/slerp(a, b; t)), g(lerp/slerp(a, b; t + eps))) / eps^2 ], eps = 1e-4,
with t ~ U(0, 1) ("full") or t = 0 ("end"), slerp between z's (eq. 2) or lerp between w's (eq. 3).
Both images of a pair share one noise draw. The mean is taken over the samples between the 1st and
99th percentiles (NVIDIA's code). The paper's distance is LPIPS-VGG16; other distances tag the
score (``ppl-w-effnet``) so it is not compared with published figures.
"""
from __future__ import annotations

import numpy as np
import torch

from ..registry import register_metric
from .base import Metric


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between the directions of a and b (unit-length result), eq. 2's slerp."""
    a = a / a.norm(dim=-1, keepdim=True)
    b = b / b.norm(dim=-1, keepdim=True)
    d = (a * b).sum(-1, keepdim=True)
    p = t * torch.acos(d.clamp(-1, 1))
    c = b - d * a
    c = c / c.norm(dim=-1, keepdim=True)
    out = a * torch.cos(p) + c * torch.sin(p)
    return out / out.norm(dim=-1, keepdim=True)


def filtered_mean(dist: np.ndarray) -> float:
    """Mean of the values within [1st, 99th] percentile (NVIDIA: 'lower' and 'higher' interpolation)."""
    lo = np.percentile(dist, 1, method="lower")
    hi = np.percentile(dist, 99, method="higher")
    return float(dist[(dist >= lo) & (dist <= hi)].mean())


class _NoiseDraw:
    """Sets every ``noise_const`` buffer of G to a fresh draw, and restores them afterwards."""

    def __init__(self, G, generator):
        self.bufs = [b for n, b in G.named_buffers() if n.endswith("noise_const")]
        self.saved = [b.clone() for b in self.bufs]
        self.g = generator

    def redraw(self):
        for b in self.bufs:
            b.copy_(torch.randn(b.shape, generator=self.g).to(b.device))

    def restore(self):
        for b, s in zip(self.bufs, self.saved):
            b.copy_(s)


@torch.no_grad()
def path_length_samples(G, distance, space: str, sampling: str, batch: int, generator: torch.Generator,
                        epsilon: float = 1e-4, labels=None) -> torch.Tensor:
    """One batch of d(g(t), g(t + eps)) / eps^2 for a G with ``mapping`` and ``synthesis``."""
    p = next(G.parameters())
    t = torch.rand(batch, generator=generator) * (1.0 if sampling == "full" else 0.0)
    z0, z1 = torch.randn(2 * batch, G.z_dim, generator=generator).chunk(2)
    t, z0, z1 = (v.to(p.device, p.dtype) for v in (t, z0, z1))
    c = labels(batch) if labels is not None else None
    cc = torch.cat([c, c]) if c is not None else None
    if space == "w":
        w0, w1 = G.mapping(torch.cat([z0, z1]), cc, update_w_avg=False).chunk(2)
        tt = t.view(-1, 1, 1)
        wt0, wt1 = w0.lerp(w1, tt), w0.lerp(w1, tt + epsilon)  # eq. 3: lerp in W
    else:
        zt0, zt1 = slerp(z0, z1, t[:, None]), slerp(z0, z1, t[:, None] + epsilon)  # eq. 2: slerp in Z
        wt0, wt1 = G.mapping(torch.cat([zt0, zt1]), cc, update_w_avg=False).chunk(2)
    img = G.synthesis(torch.cat([wt0, wt1]), noise_mode="const")
    if img.shape[-1] > 256:  # NVIDIA: box-downsample to 256 px before LPIPS
        f = img.shape[-1] // 256
        img = img.reshape(*img.shape[:2], 256, f, 256, f).mean((3, 5))
    a, b = img.chunk(2)
    return (distance(a, b) / epsilon ** 2).float().cpu()


class PerceptualPathLength(Metric):
    """Streaming PPL: ``update_distances(d)`` takes per-pair values (from :func:`path_length_samples`);
    ``compute()`` returns the percentile-filtered mean under ``name``."""

    def __init__(self, space: str = "w", sampling: str = "full", epsilon: float = 1e-4, tag: str = ""):
        if space not in ("z", "w") or sampling not in ("full", "end"):
            raise ValueError("space is 'z' or 'w'; sampling is 'full' or 'end'")
        self.space, self.sampling, self.epsilon = space, sampling, epsilon
        self.name = f"ppl-{space}" + ("-end" if sampling == "end" else "") + (f"-{tag}" if tag else "")
        super().__init__()

    def reset(self):
        self.dist = []

    def update_distances(self, d: torch.Tensor) -> None:
        self.dist.append(d.detach().double().cpu())

    @torch.no_grad()
    def update(self, G, distance, batch: int, generator: torch.Generator, labels=None) -> None:
        """Samples ``batch`` pairs from G and adds their distances."""
        draw = _NoiseDraw(G, generator)
        try:
            draw.redraw()
            self.update_distances(path_length_samples(G, distance, self.space, self.sampling, batch, generator,
                                                      self.epsilon, labels))
        finally:
            draw.restore()

    def values(self) -> np.ndarray:
        return torch.cat(self.dist).numpy()

    def compute(self) -> dict:
        return {self.name: filtered_mean(self.values()), f"{self.name}_samples": int(sum(len(d) for d in self.dist))}


for _space in ("z", "w"):
    for _sampling in ("full", "end"):
        def _make(space=_space, sampling=_sampling):
            def factory(**kwargs):
                return PerceptualPathLength(space, sampling, **kwargs)
            factory.__doc__ = f"PPL in {space.upper()}, {sampling} sampling (StyleGAN section 4.1)."
            return factory
        register_metric(f"ppl-{_space}" + ("-end" if _sampling == "end" else ""))(_make())
