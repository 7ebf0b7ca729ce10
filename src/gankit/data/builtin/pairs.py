"""Built-in two-domain data with ground truth, so the translation families train and are measured here.

Paired (pix2pix):
  * ``edges2shapes``: the outline of a shape (black on white, as edges2shoes) -> the filled shape on
    black; each shape has its own colour (circle red, square green, triangle blue, diamond yellow), so
    the target is a function of the edges and the shapes classifier can check the output.
  * ``edges2digits``: a digit's edges (3x3 dilation minus the digit, CoGAN's edge images) -> the digit.
Unpaired (CycleGAN, CoGAN):
  * ``shapes-colorswap``: shapes in red / green / blue (A) and, drawn independently, the same
    distribution in the negative palette (B: cyan / magenta / yellow on light backgrounds); the true
    map is the colour negative (red -> cyan, green -> magenta, blue -> yellow; shape, size and place
    kept). ``truth`` holds it for held-out A images.
  * ``digits-invert`` / ``fashion-invert``: the images (A) and negatives (B) of two disjoint halves
    (CoGAN's "digits and negative digits"), ``digits-edges``: digits and the edge images of the
    other half.
Each has a held-out split (``held_out()``) of images not in training, with their true partners.
"""
from __future__ import annotations

from typing import Annotated

import numpy as np
import torch
import torch.nn.functional as F

from ...config import Range, Seed
from ...errors import DataError
from ...registry import register_dataset
from ..pairs import PairedDataset, UnpairedDataset, load_size
from . import digits as digits_mod
from . import shapes as shapes_mod

SHAPE_COLOUR = {"circle": "red", "square": "green", "triangle": "blue", "diamond": "yellow"}
SWAP = {"red": "cyan", "green": "magenta", "blue": "yellow"}

Res = Annotated[int, Range(8, 256)]
Count = Annotated[int, Range(1, 1_000_000)]


def _check_res(name: str, res: int) -> None:
    if res & (res - 1) or not 8 <= res <= 256:
        raise DataError(f"{name}: res={res} is not a power of two from 8 to 256; use for example res=32")


def _load(res: int, jitter: bool) -> int:
    return load_size(res) if jitter else res


def edges_of(x: torch.Tensor) -> torch.Tensor:
    """CoGAN's edge images: the 3x3 dilation of a [0, 255] image minus the image (uint8)."""
    f = x.float()
    return (F.max_pool2d(f, 3, stride=1, padding=1) - f).clamp(0, 255).round().to(torch.uint8)


def _shape_images(n: int, seed: int, res: int, colour_of, black: bool = False) -> tuple[torch.Tensor, dict]:
    """Shapes of the shapes generator with the colour ``colour_of(shape name, factors, i)`` (and a black
    background with ``black``): (uint8 images, factors)."""
    f = shapes_mod.sample_factors(n, seed)
    if black:
        f["background"][:] = 0
    imgs = np.empty((n, res, res, 3), dtype=np.uint8)
    for i in range(n):
        shape = shapes_mod.SHAPES[f["shape"][i]]
        background = tuple(shapes_mod.BACKGROUNDS)[f["background"][i]]
        size = tuple(shapes_mod.SIZES)[f["size"][i]]
        imgs[i] = shapes_mod.render(shape, colour_of(shape, f, i), size, float(f["x"][i]), float(f["y"][i]),
                                    background, res)
    return torch.from_numpy(imgs).permute(0, 3, 1, 2).contiguous(), f


@register_dataset("edges2shapes")
def edges2shapes(res: Res = 32, n: Count = 2000, n_test: Count = 200, seed: Seed = 0,
                 jitter: bool = True) -> PairedDataset:
    """Paired: outline of a shape (A) -> the shape filled with its colour on black (B), ``res`` px."""
    _check_res("edges2shapes", res)

    def make(count: int, s: int, held_out=None) -> PairedDataset:
        B, f = _shape_images(count, s, res, lambda shape, f, i: SHAPE_COLOUR[shape], black=True)
        m = (B.max(1, keepdim=True).values >= 100).float()  # the shape (every colour is bright on black)
        edge = (m - (-F.max_pool2d(-m, 3, stride=1, padding=1))).clamp(0, 1)  # the mask minus its erosion
        A = (255 * (1 - edge)).to(torch.uint8).expand(-1, 3, -1, -1).contiguous()
        return PairedDataset(f"edges2shapes-{res}-{count}-{s}", A, B, load=_load(res, jitter), held_out=held_out,
                             meta={"factors": f, "classes": "shapes"})

    return make(n, seed, make(n_test, seed + 1_000_003))


def _digit_halves(res: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The 1,797 digits upscaled to ``res``: the first 1,500 (train) and the last 297 (test), with labels."""
    imgs, labels = digits_mod.load_digits_8x8()
    x = torch.from_numpy(digits_mod.upscale(imgs, res)).unsqueeze(1)
    y = torch.from_numpy(labels)
    return x[:1500], y[:1500], x[1500:], y[1500:]


@register_dataset("edges2digits")
def edges2digits(res: Res = 16, jitter: bool = False) -> PairedDataset:
    """Paired: a digit's edge image (A) -> the digit (B); 1,500 train pairs, 297 held out."""
    _check_res("edges2digits", res)
    xtr, ytr, xte, yte = _digit_halves(res)
    load = _load(res, jitter)
    test = PairedDataset(f"edges2digits-{res}-test", edges_of(xte), xte, load=load, meta={"labels": yte,
                                                                                          "classes": "digits"})
    return PairedDataset(f"edges2digits-{res}", edges_of(xtr), xtr, load=load, held_out=test,
                         meta={"labels": ytr, "classes": "digits"})


@register_dataset("shapes-colorswap")
def shapes_colorswap(res: Res = 32, n: Count = 3000, n_test: Count = 300, seed: Seed = 0,
                     jitter: bool = False) -> UnpairedDataset:
    """Unpaired: red / green / blue shapes on black, gray or navy (A) and, drawn independently, shapes of
    the same distribution in the inverted palette (B: cyan / magenta / yellow on white, light gray or
    light yellow). The true map is the colour negative, so red -> cyan, green -> magenta, blue -> yellow."""
    _check_res("shapes-colorswap", res)
    src = tuple(SWAP)

    def palette_a(shape, f, i):
        return src[f["colour"][i] % 3]

    load = _load(res, jitter)

    def split(count: int, s: int, held_out=None) -> UnpairedDataset:
        A, fa = _shape_images(count, s, res, palette_a)
        B = invert(_shape_images(count, s + 7, res, palette_a)[0])
        return UnpairedDataset(f"shapes-colorswap-{res}-{count}-{s}", A, B, truth=invert(A), load=load,
                               held_out=held_out, meta={"factors": fa, "classes": "shapes", "undo": "invert",
                                                        "transform": "invert", "swap": dict(SWAP)})

    return split(n, seed, split(n_test, seed + 1_000_003))


def _halves(name: str, xtr: torch.Tensor, ytr: torch.Tensor, xte: torch.Tensor, yte: torch.Tensor, fn,
            load: int, classes: str | None = "digits") -> UnpairedDataset:
    """Two disjoint halves of the training images: the first as A, ``fn`` of the second as B. ``undo``
    (in meta) names the inverse of ``fn`` where there is one, so a classifier of A can judge B."""
    h = len(xtr) // 2
    meta = {"classes": classes, "undo": "invert" if fn is invert else None,
            "transform": "invert" if fn is invert else "edges" if fn is edges_of else None}
    test = UnpairedDataset(f"{name}-test", xte, fn(xte), truth=fn(xte), load=load, meta={"labels": yte, **meta})
    return UnpairedDataset(name, xtr[:h], fn(xtr[h:]), load=load, held_out=test,
                           meta={"labels": ytr[:h], "labels_B": ytr[h:], **meta})


def invert(x: torch.Tensor) -> torch.Tensor:
    return 255 - x


@register_dataset("digits-invert")
def digits_invert(res: Res = 16, jitter: bool = False) -> UnpairedDataset:
    """Unpaired: digits (A) and the negatives of the other half of the digits (B)."""
    _check_res("digits-invert", res)
    return _halves(f"digits-invert-{res}", *_digit_halves(res), invert, _load(res, jitter))


@register_dataset("digits-edges")
def digits_edges(res: Res = 16, jitter: bool = False) -> UnpairedDataset:
    """Unpaired: digits (A) and the edge images of the other half (B), CoGAN's second digit task."""
    _check_res("digits-edges", res)
    return _halves(f"digits-edges-{res}", *_digit_halves(res), edges_of, _load(res, jitter), classes=None)


@register_dataset("fashion-invert")
def fashion_invert(res: Res = 32, n: Count = 20000, jitter: bool = False) -> UnpairedDataset:
    """Unpaired: Fashion-MNIST (A) and the negatives of a disjoint half (B); needs the Debian
    dataset-fashion-mnist package (see builtin:fashion-mnist)."""
    from .fashion_mnist import fashion_mnist

    _check_res("fashion-invert", res)
    train, test = fashion_mnist(split="train", res=res), fashion_mnist(split="test", res=res)
    m = min(2 * n, len(train))
    return _halves(f"fashion-invert-{res}-{n}", train.data[:m], train.labels[:m], test.data[:1000],
                   test.labels[:1000], invert, _load(res, jitter), classes=None)
