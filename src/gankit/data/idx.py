"""A general reader for the IDX format (LeCun's MNIST format, also used by Fashion-MNIST).

Layout: two zero bytes, a type code, the number of dimensions, then one big-endian uint32 per
dimension, then the data in C order, big-endian. Files may be gzip-compressed (``.gz``).
"""
from __future__ import annotations

import gzip
import os

import numpy as np

from ..errors import DataError

_TYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
          0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path: str) -> np.ndarray:
    """Reads an IDX file (optionally ``.gz``) into a numpy array of its stored shape and type."""
    if not os.path.exists(path):
        raise DataError(f"{path}: file not found")
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: cannot read IDX file ({e})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _TYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number)")
    dtype, ndim = _TYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    count = int(np.prod(shape)) if shape else 1
    if len(raw) != header + count * dtype.itemsize:
        raise DataError(f"{path}: IDX header promises shape {shape} but the file holds "
                        f"{len(raw) - header} data bytes (truncated or corrupt)")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path: str, array: np.ndarray) -> None:
    """Writes ``array`` as IDX (used by tests and converters)."""
    codes = {v.newbyteorder("="): k for k, v in _TYPES.items()}
    code = codes.get(array.dtype.newbyteorder("="))
    if code is None:
        raise ValueError(f"dtype {array.dtype} has no IDX type code")
    header = bytes([0, 0, code, array.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    body = array.astype(_TYPES[code]).tobytes()
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + body)


#: the four files of LeCun's MNIST layout, shared by MNIST and Fashion-MNIST
MNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
               "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def read_mnist_layout(name: str, path: str, split: str, how_to_get: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 28, 28) uint8 and labels (N,) int64 of ``split`` (train, test or all) from a folder
    holding the four MNIST-layout IDX files (each may be ``.gz``). ``how_to_get`` ends every error
    message: where the user gets the files."""
    if split not in ("train", "test", "all"):
        raise DataError(f"{name}: split={split!r}; use train, test or all")
    if not path or not os.path.isdir(path):
        raise DataError(f"{name}: folder {path or '(none given)'} not found; {how_to_get}")
    xs, ys = [], []
    for s in (("train", "test") if split == "all" else (split,)):
        found = []
        for stem in MNIST_FILES[s]:
            hits = [os.path.join(path, f) for f in (stem + ".gz", stem) if os.path.exists(os.path.join(path, f))]
            if not hits:
                raise DataError(f"{name}: {stem}(.gz) not found in {path}; {how_to_get}")
            found.append(read_idx(hits[0]))
        x, y = found
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise DataError(f"{name}: {path} holds IDX files of unexpected shapes {x.shape}, {y.shape}")
        xs.append(x)
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ys).astype(np.int64)



def resize_square(x: np.ndarray, res: int) -> np.ndarray:
    """(N, H, H) uint8 images resized to ``res`` with Lanczos (unchanged when already ``res``)."""
    from PIL import Image

    if res == x.shape[-1]:
        return x
    return np.stack([np.asarray(Image.fromarray(im).resize((res, res), Image.LANCZOS)) for im in x])
