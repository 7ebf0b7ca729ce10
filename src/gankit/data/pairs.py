"""Two-domain data for image-to-image families: paired (pix2pix) and unpaired (CycleGAN, CoGAN).

Batches are dicts of named tensors: ``{"A": ..., "B": ...}`` in [-1, 1]. Jitter follows Isola et
al. 2017 (section 6.2) and junyanz's ``resize_and_crop``: resize to a load size (286 for 256 px
crops, scaled for others), take a random crop of the image size and flip horizontally at random.
A pair gets the same crop and flip, so B stays aligned with A; the two images of an unpaired
sample get their own. Every random choice comes from one seed per sample (the trainer draws them
for the global batch), so batches do not depend on how they are split and a resume repeats them.

Layouts on disk (junyanz's):
  * paired, aligned: ``ROOT/train/*.jpg`` (and ``val/``, ``test/``), each file A|B side by side,
    split at half the width; spec ``ROOT?layout=aligned``;
  * paired, two folders: ``ROOT/A/`` and ``ROOT/B/`` with matching file names (optionally with
    ``train/``, ``test/`` inside each);
  * unpaired: ``ROOT/trainA``, ``ROOT/trainB`` (and ``testA``, ``testB``).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import DataError
from .base import DatasetInfo, GanDataset, TensorDataset
from .images import decode, is_image_name


def load_size(res: int) -> int:
    """The load size of a ``res`` crop: 286 for 256 (Isola et al. 2017, section 6.2), in proportion otherwise."""
    return int(round(res * 286 / 256))


def _float(x: torch.Tensor) -> torch.Tensor:
    return x.float().div_(127.5).sub_(1.0) if x.dtype == torch.uint8 else x.float()


class TwoDomainDataset(GanDataset):
    """Shared parts: two uint8 image tensors, the jitter, a held-out split and per-domain views."""

    batch_dicts = True  # get_batch(indices, seeds) -> dict; the trainer passes one seed per sample

    def __init__(self, name: str, A: torch.Tensor, B: torch.Tensor, kind: str, load: int | None = None,
                 flip: bool = True, meta: dict | None = None, held_out: "TwoDomainDataset | None" = None):
        for key, x in (("A", A), ("B", B)):
            if x.dtype != torch.uint8 or x.dim() != 4 or len(x) == 0:
                raise DataError(f"{name}: domain {key} is empty or not (N, C, H, W) uint8 images")
        if A.shape[2:] != B.shape[2:]:
            raise DataError(f"{name}: domain A is {tuple(A.shape[2:])} px and B {tuple(B.shape[2:])} px; "
                            "give both domains one size (?res=N resizes both)")
        self.name, self.A, self.B, self.flip = name, A, B, flip
        self.res = A.shape[-1]
        self.load = self.res if load is None else load
        if self.load < self.res:
            raise DataError(f"{name}: load={self.load} is smaller than the image size {self.res}; use load >= res "
                            f"(the paper's is {load_size(self.res)})")
        self.info = DatasetInfo(kind=kind, shape=tuple(B.shape[1:]), source_shape=tuple(A.shape[1:]))
        self.mode_metric = None
        self.meta = meta or {}
        self._held_out = held_out

    def held_out(self) -> "TwoDomainDataset":
        """The test split (val for aligned data that has no test); the training data itself when there is none."""
        return self._held_out if self._held_out is not None else self

    def domain(self, key: str) -> TensorDataset:
        """One domain's images as an image dataset (for fd / kd against translated images)."""
        return TensorDataset(f"{self.name}-{key}", getattr(self, key))

    def fingerprint(self) -> str:
        h = hashlib.sha256(self.name.encode())
        for x in (self.A, self.B):
            h.update(x.contiguous().numpy().tobytes())
        h.update(f"{self.load},{self.flip}".encode())
        return h.hexdigest()[:16]

    def _jitter(self, images: list[torch.Tensor], gens: list[torch.Generator | None]) -> torch.Tensor:
        """Resize to the load size, crop ``res`` at a random offset and maybe flip: one draw per image from its generator."""
        x = _float(torch.stack(images))
        if all(g is None for g in gens):
            return x
        if self.load > self.res:
            x = F.interpolate(x, size=(self.load, self.load), mode="bicubic", align_corners=False).clamp_(-1, 1)
        out = []
        for xi, g in zip(x, gens):
            m = self.load - self.res
            i, j = (torch.randint(0, m + 1, (2,), generator=g).tolist() if m else (0, 0))
            xi = xi[:, i:i + self.res, j:j + self.res]
            if self.flip and bool(torch.rand((), generator=g) < 0.5):
                xi = xi.flip(-1)
            out.append(xi)
        return torch.stack(out)


class PairedDataset(TwoDomainDataset):
    """Aligned pairs: sample i is (A[i], B[i]); a pair is cropped and flipped together."""

    def __init__(self, name: str, A: torch.Tensor, B: torch.Tensor, **kw):
        if len(A) != len(B):
            raise DataError(f"{name}: {len(A)} A images but {len(B)} B images; every A needs its B")
        super().__init__(name, A, B, "paired", **kw)

    def __len__(self) -> int:
        return len(self.A)

    def get_batch(self, indices: torch.Tensor, seeds: list[int] | None = None) -> dict[str, torch.Tensor]:
        idx = torch.as_tensor(indices).long()
        if seeds is None:
            return {"A": _float(self.A[idx]), "B": _float(self.B[idx])}
        both = [torch.cat([self.A[i], self.B[i]]) for i in idx.tolist()]  # one crop and flip for the pair
        x = self._jitter(both, [torch.Generator().manual_seed(int(s)) for s in seeds])
        ca = self.A.shape[1]
        return {"A": x[:, :ca].contiguous(), "B": x[:, ca:].contiguous()}


class UnpairedDataset(TwoDomainDataset):
    """Two unaligned domains. Sample i takes A[i mod len(A)] and, as junyanz's unaligned dataset, a B
    drawn at random from its own seed (its own order, independent of A's); each image is jittered
    on its own. ``truth`` optionally holds the true B of each A (built-in data with ground truth)."""

    def __init__(self, name: str, A: torch.Tensor, B: torch.Tensor, truth: torch.Tensor | None = None, **kw):
        super().__init__(name, A, B, "unpaired", **kw)
        if truth is not None and truth.shape != A.shape[:1] + B.shape[1:]:
            raise DataError(f"{name}: the true partners must match A in number and B in shape")
        self.truth = truth

    def __len__(self) -> int:
        return max(len(self.A), len(self.B))

    def get_batch(self, indices: torch.Tensor, seeds: list[int] | None = None) -> dict[str, torch.Tensor]:
        idx = torch.as_tensor(indices).long()
        ia = idx % len(self.A)
        if seeds is None:
            return {"A": _float(self.A[ia]), "B": _float(self.B[idx % len(self.B)])}
        gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
        ib = [int(torch.randint(0, len(self.B), (), generator=g)) for g in gens]
        a = self._jitter([self.A[i] for i in ia.tolist()], gens)
        b = self._jitter([self.B[i] for i in ib], gens)
        return {"A": a, "B": b}


# ----------------------------------------------------------------------------- folders
def _images(folder: Path, res: int | None, mode: str) -> tuple[list[str], list[np.ndarray]]:
    names = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and is_image_name(p.name))
    arrays = [decode((folder / n).read_bytes(), str(folder / n), None, "none", mode) for n in names]
    return names, arrays


def _resize(arr: np.ndarray, res: int) -> np.ndarray:
    from PIL import Image

    img = Image.fromarray(arr.squeeze(-1) if arr.shape[-1] == 1 else arr)
    out = np.asarray(img.resize((res, res), Image.BICUBIC))
    return out[..., None] if out.ndim == 2 else out


def _stack(arrays: list[np.ndarray], res: int) -> torch.Tensor:
    return torch.from_numpy(np.stack([_resize(a, res) for a in arrays])).permute(0, 3, 1, 2).contiguous()


def problems(root: str, layout: str = "auto") -> list[tuple[str, str]]:
    """(path, problem) for two-domain folders: missing partners, unequal sizes, empty domains; [] if fine."""
    root_p = Path(root)
    out: list[tuple[str, str]] = []
    kind = detect_layout(root_p, layout)
    if kind == "unpaired":
        for d in ("trainA", "trainB"):
            if not any(is_image_name(p.name) for p in (root_p / d).rglob("*") if p.is_file()):
                out.append((str(root_p / d), "empty domain: no images"))
    elif kind == "paired-folders":
        for split in _splits(root_p / "A") or [""]:
            a, b = root_p / "A" / split, root_p / "B" / split
            na = {str(p.relative_to(a)) for p in a.rglob("*") if p.is_file() and is_image_name(p.name)}
            nb = {str(p.relative_to(b)) for p in b.rglob("*") if p.is_file() and is_image_name(p.name)} \
                if b.is_dir() else set()
            for n in sorted(na - nb):
                out.append((str(a / n), f"missing partner: no {b / n}"))
            for n in sorted(nb - na):
                out.append((str(b / n), f"missing partner: no {a / n}"))
            if not na and not nb:
                out.append((str(a), "empty domain: no images"))
            for n in sorted(na & nb):
                from PIL import Image

                try:
                    with Image.open(a / n) as ia, Image.open(b / n) as ib:
                        if ia.size != ib.size:
                            out.append((str(b / n), f"unequal sizes: {ia.size[0]}x{ia.size[1]} in A, "
                                                    f"{ib.size[0]}x{ib.size[1]} in B"))
                except OSError as e:
                    out.append((str(a / n), f"unreadable: {e}"))
    elif kind == "aligned":
        from PIL import Image

        for split in ("train", "val", "test"):
            for p in sorted((root_p / split).rglob("*")) if (root_p / split).is_dir() else []:
                if p.is_file() and is_image_name(p.name):
                    try:
                        with Image.open(p) as im:
                            if im.size[0] % 2:
                                out.append((str(p), f"odd width {im.size[0]}: an aligned A|B image splits at half"))
                    except OSError as e:
                        out.append((str(p), f"unreadable: {e}"))
        if not (root_p / "train").is_dir():
            out.append((str(root_p / "train"), "empty domain: no train/ folder of A|B images"))
    return out


def _splits(folder: Path) -> list[str]:
    return [s for s in ("train", "val", "test") if (folder / s).is_dir()]


def detect_layout(root: Path, layout: str = "auto") -> str | None:
    """'unpaired' (trainA/trainB), 'paired-folders' (A/, B/), 'aligned' (asked for) or None (a plain image folder)."""
    if layout == "aligned":
        return "aligned"
    if layout not in ("auto", "images"):
        raise DataError(f"{root}: layout={layout!r}; use auto, aligned or images")
    if layout == "images":
        return None
    if (root / "trainA").is_dir() or (root / "trainB").is_dir():
        return "unpaired"
    if (root / "A").is_dir() and (root / "B").is_dir():
        return "paired-folders"
    return None


def open_folder(root: str, layout: str = "auto", split: str = "train", res: int = 256, load: int | None = None,
                flip: bool = True, direction: str = "AtoB", mode: str = "rgb") -> TwoDomainDataset:
    """Opens a two-domain folder (see the module docstring) resized to ``res`` x ``res`` (junyanz resizes to a
    square as well); ``load`` defaults to the paper's 286/256 of ``res``."""
    root_p = Path(root)
    kind = detect_layout(root_p, layout)
    if direction not in ("AtoB", "BtoA"):
        raise DataError(f"{root}: direction={direction!r}; use AtoB or BtoA")
    if split not in ("train", "val", "test"):
        raise DataError(f"{root}: split={split!r}; use train, val or test")
    bad = problems(root, layout)
    if bad:
        where, what = bad[0]
        more = f" (and {len(bad) - 1} more; gankit dataset check {root} lists them)" if len(bad) > 1 else ""
        raise DataError(f"{where}: {what}{more}")
    load = load_size(res) if load is None else load
    swap = direction == "BtoA"

    def build(sp: str, held_out=None):
        name = f"{root_p.name}-{sp}-{res}{'-BtoA' if swap else ''}"
        if kind == "unpaired":
            a_dir, b_dir = root_p / f"{sp}A", root_p / f"{sp}B"
            if not a_dir.is_dir() or not b_dir.is_dir():
                return None
            A = _stack(_images(a_dir, res, mode)[1], res)
            B = _stack(_images(b_dir, res, mode)[1], res)
            if swap:
                A, B = B, A
            return UnpairedDataset(name, A, B, load=load, flip=flip, held_out=held_out)
        if kind == "paired-folders":
            a_dir, b_dir = (root_p / "A" / sp, root_p / "B" / sp) if _splits(root_p / "A") else \
                (root_p / "A", root_p / "B")
            if not a_dir.is_dir():
                return None
            names, arrays_a = _images(a_dir, res, mode)
            arrays_b = [decode((b_dir / n).read_bytes(), str(b_dir / n), None, "none", mode) for n in names]
        else:
            folder = root_p / sp
            if not folder.is_dir():
                return None
            names, both = _images(folder, res, mode)
            arrays_a = [x[:, :x.shape[1] // 2] for x in both]
            arrays_b = [x[:, x.shape[1] // 2:] for x in both]
        A, B = _stack(arrays_a, res), _stack(arrays_b, res)
        if swap:
            A, B = B, A
        return PairedDataset(name, A, B, load=load, flip=flip, held_out=held_out,
                             meta={"files": [os.fspath(n) for n in names]})

    test = build("test") or build("val") if split == "train" else None
    ds = build(split, test)
    if ds is None:
        raise DataError(f"{root}: no {split} split here; the layouts are ROOT/train (aligned A|B), ROOT/A + ROOT/B, "
                        "or ROOT/trainA + ROOT/trainB")
    return ds
