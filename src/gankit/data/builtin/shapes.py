"""Procedural shapes with known factors of variation, labels and English captions.

Every image shows one shape on a plain background. Factors (all stored in ``meta["factors"]``):
shape, colour, size, x and y position (continuous, in [0, 1] of the canvas, plus named thirds),
and background. Each image is a pure function of (seed, index), so the dataset is identical on
every machine. Captions read like "a small red circle at the top left on a black background".
Rendered at up to 4x supersampling and box-filtered down for anti-aliasing.
"""
from __future__ import annotations

from typing import Annotated

import math

import numpy as np
import torch
from PIL import Image, ImageDraw

from ...config import Range, Seed

from ...errors import DataError
from ...registry import register_dataset
from ..base import TensorDataset

SHAPES = ("circle", "square", "triangle", "diamond")
COLOURS = {"red": (230, 40, 40), "green": (40, 200, 60), "blue": (50, 90, 240), "yellow": (240, 220, 40),
           "magenta": (220, 50, 220), "cyan": (40, 220, 230)}
SIZES = {"small": 0.12, "medium": 0.19, "large": 0.27}  # radius as a fraction of the canvas
BACKGROUNDS = {"black": (0, 0, 0), "gray": (110, 110, 110), "navy": (20, 25, 80)}
COLS = ("left", "center", "right")
ROWS = ("top", "middle", "bottom")
FACTORS = ("shape", "colour", "size", "background", "row", "col")
LABELS = (*FACTORS, "pair")  # "pair": shape x colour, 24 classes (shape * 6 + colour), the pairs the shapes metric counts
PLACES = ("random", "centre")


def _where(row: str, col: str) -> str:
    if row == "middle":
        return "in the center" if col == "center" else f"on the {col}"
    return f"at the {row}" if col == "center" else f"at the {row} {col}"


def caption(shape: str, colour: str, size: str, row: str, col: str, background: str) -> str:
    return f"a {size} {colour} {shape} {_where(row, col)} on a {background} background"


def _polygon(shape: str, cx: float, cy: float, r: float):
    if shape == "square":
        s = r / math.sqrt(2) * 1.15
        return [(cx - s, cy - s), (cx + s, cy - s), (cx + s, cy + s), (cx - s, cy + s)]
    if shape == "triangle":
        return [(cx + r * math.cos(a), cy + r * math.sin(a)) for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)]
    if shape == "diamond":
        return [(cx, cy - r), (cx + r * 0.8, cy), (cx, cy + r), (cx - r * 0.8, cy)]
    raise ValueError(shape)


def render(shape: str, colour: str, size: str, x: float, y: float, background: str, res: int) -> np.ndarray:
    """Draws one image (H x W x 3 uint8); x, y are the shape's centre in [0, 1]."""
    ss = max(1, min(4, 512 // res))
    n = res * ss
    img = Image.new("RGB", (n, n), BACKGROUNDS[background])
    draw = ImageDraw.Draw(img)
    r = SIZES[size] * n
    cx, cy = x * n, y * n
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=COLOURS[colour])
    else:
        draw.polygon(_polygon(shape, cx, cy, r), fill=COLOURS[colour])
    if ss > 1:
        img = img.resize((res, res), Image.BOX)
    return np.asarray(img, dtype=np.uint8)


def sample_factors(n: int, seed: int, place: str = "random") -> dict[str, np.ndarray]:
    """The factors of ``n`` images; ``place="centre"`` puts every shape at the canvas's centre."""
    rng = np.random.default_rng(seed)
    f = {"shape": rng.integers(0, len(SHAPES), n), "colour": rng.integers(0, len(COLOURS), n),
         "size": rng.integers(0, len(SIZES), n), "background": rng.integers(0, len(BACKGROUNDS), n)}
    radius = np.array(list(SIZES.values()))[f["size"]]
    if place == "centre":
        f["x"], f["y"] = np.full(n, 0.5), np.full(n, 0.5)
    else:  # centres keep the whole shape on the canvas
        f["x"] = radius + rng.random(n) * (1 - 2 * radius)
        f["y"] = radius + rng.random(n) * (1 - 2 * radius)
    f["col"] = np.minimum((f["x"] * 3).astype(np.int64), 2)
    f["row"] = np.minimum((f["y"] * 3).astype(np.int64), 2)
    return f


@register_dataset("shapes")
def shapes(res: Annotated[int, Range(4, 1024)] = 64, n: Annotated[int, Range(1, 1_000_000)] = 10_000, seed: Seed = 0,
           label: str = "shape", place: str = "random") -> TensorDataset:
    """``n`` RGB images at ``res`` (power of two, 8..256); ``label`` picks the factor used as class label
    (``pair``: shape and colour together, 24 classes);
    ``place`` is ``random`` (anywhere the shape fits) or ``centre`` (every shape centred)."""
    if res & (res - 1) or not 8 <= res <= 256:
        raise DataError(f"shapes: res={res} is not a power of two from 8 to 256; use for example res=64")
    if label not in LABELS:
        raise DataError(f"shapes: label={label!r}; use one of {', '.join(LABELS)}")
    if place not in PLACES:
        raise DataError(f"shapes: place={place!r}; use place=random (the default) or place=centre")
    f = sample_factors(n, seed, place)
    names = {"shape": SHAPES, "colour": tuple(COLOURS), "size": tuple(SIZES), "background": tuple(BACKGROUNDS),
             "row": ROWS, "col": COLS}
    names["pair"] = tuple(f"{c} {s}" for s in SHAPES for c in COLOURS)
    imgs = np.empty((n, res, res, 3), dtype=np.uint8)
    captions = []
    for i in range(n):
        s, c, z, b = (names[k][f[k][i]] for k in ("shape", "colour", "size", "background"))
        imgs[i] = render(s, c, z, float(f["x"][i]), float(f["y"][i]), b, res)
        captions.append(caption(s, c, z, ROWS[f["row"][i]], COLS[f["col"][i]], b))
    data = torch.from_numpy(imgs).permute(0, 3, 1, 2).contiguous()
    lab = f["shape"] * len(COLOURS) + f["colour"] if label == "pair" else f[label]
    labels = torch.from_numpy(lab.astype(np.int64))
    name = f"shapes-{res}-{n}-{seed}" + ("" if place == "random" else f"-{place}")
    return TensorDataset(name, data, labels, num_classes=len(names[label]),
                         mode_metric="shapes", meta={"factors": f, "factor_names": names, "captions": captions, "label": label})
