"""The StyleGAN toolbox: generation by seed, style mixing, interpolation videos (and, later,
projection, import of official checkpoints and export)."""
from .generate import generate, seed_latents
from .mixing import style_mix_grid

__all__ = ["generate", "seed_latents", "style_mix_grid"]
