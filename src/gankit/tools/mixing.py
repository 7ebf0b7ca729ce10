"""The style-mixing figure of StyleGAN (Karras et al. 2019, section 3.1, Figure 3): source images
across the top, destination images down the left; each cell takes the destination's w for all
layers except the chosen ones, which come from the source.

Layer ranges follow the paper's figure at 1024 px (18 ws): coarse 0-3 (4-8 px), middle 4-7
(16-32 px), fine 8 and up (64-1024 px). The indices mean the same resolutions at any size, so a
32 px generator (8 ws) has coarse and middle styles but no fine ones.
"""
from __future__ import annotations

import torch

from ..errors import ConfigError
from .generate import check_style_options, class_labels, is_style_generator, seed_latents, synthesize


def style_ranges(G) -> dict[str, list[int]]:
    """``coarse``, ``middle`` and ``fine`` as lists of w indices for this generator (Figure 3)."""
    n = G.num_ws
    return {"coarse": [i for i in range(n) if i < 4], "middle": [i for i in range(n) if 4 <= i < 8],
            "fine": [i for i in range(n) if i >= 8]}


def parse_styles(text: str, G) -> list[int]:
    """'coarse', 'middle', 'fine' (comma-combinable) or index ranges like '0-3' or '4,5'."""
    ranges = style_ranges(G)
    out: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        if part in ranges:
            if not ranges[part]:
                raise ConfigError(f"--styles {part}: a {G.img_resolution} px generator has no {part} layers "
                                  f"(it has ws 0..{G.num_ws - 1})")
            out += ranges[part]
        else:
            try:
                a, _, b = part.partition("-")
                out += list(range(int(a), int(b) + 1)) if b else [int(a)]
            except ValueError:
                raise ConfigError(f"--styles {text!r}: use coarse, middle, fine or ranges like 0-3") from None
    if not out or min(out) < 0 or max(out) >= G.num_ws:
        raise ConfigError(f"--styles {text!r}: this generator has ws 0..{G.num_ws - 1}")
    return sorted(set(out))


@torch.no_grad()
def style_mix_grid(G, row_seeds, col_seeds, styles, truncation_psi: float = 1.0, class_idx: int | None = None,
                   noise_mode: str = "const") -> torch.Tensor:
    """The mixing figure as images (1 + rows, 1 + cols, C, H, W) in [-1, 1]: cell [0, 0] is blank
    (-1), row 0 holds the sources (``col_seeds``), column 0 the destinations (``row_seeds``), and
    cell [i, j] the destination i with the layers ``styles`` copied from source j."""
    if not is_style_generator(G):
        raise ConfigError(f"style mixing needs a mapping network (stylegan, stylegan2, stylegan3); this is {type(G).__name__}")
    check_style_options(G, truncation_psi, noise_mode)
    styles = parse_styles(styles, G) if not isinstance(styles, (list, tuple)) else list(styles)
    dev = next(G.parameters()).device
    rows, cols = [int(s) for s in row_seeds], [int(s) for s in col_seeds]
    seeds = rows + cols
    z = seed_latents(G, seeds).to(dev)
    ws = G.mapping(z, class_labels(G, class_idx, len(seeds), dev), truncation_psi=truncation_psi,
                   update_w_avg=False)
    w_row, w_col = ws[:len(rows)], ws[len(rows):]
    mixed = w_row[:, None].repeat(1, len(cols), 1, 1)  # (R, C, num_ws, w_dim): destinations
    mixed[:, :, styles] = w_col[None, :, styles]  # chosen layers from the sources
    dst = synthesize(G, w_row, noise_mode, rows)
    src = synthesize(G, w_col, noise_mode, cols)
    cells = synthesize(G, mixed.flatten(0, 1), noise_mode, [r for r in rows for _ in cols])
    C, H, W = dst.shape[1:]
    grid = torch.full((len(rows) + 1, len(cols) + 1, C, H, W), -1.0)
    grid[0, 1:] = src.cpu()
    grid[1:, 0] = dst.cpu()
    grid[1:, 1:] = cells.cpu().view(len(rows), len(cols), C, H, W)
    return grid


def grid_image(grid: torch.Tensor, pad: int = 0, min_cell: int = 64):
    """A (R, C, ch, H, W) grid in [-1, 1] as one PIL image, rows and columns as laid out."""
    from ..visual import image_grid

    return image_grid(grid.flatten(0, 1), cols=grid.shape[1], pad=pad, min_cell=min_cell)
