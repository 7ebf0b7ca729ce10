"""Data pipeline: one spec string opens any source.

Specs (the same in Python and on the CLI's ``--data``):
  * ``builtin:NAME?key=value&...``: a built-in dataset, e.g. ``builtin:shapes?res=64``,
    ``builtin:digits?res=32``, ``builtin:ring8``, ``builtin:fashion-mnist?split=train``;
  * ``PATH[?res=N&size=center-crop|resize|none&mode=rgb|gray|rgba]``: a folder of images
    (searched recursively) or a ``.zip`` of images, with optional ``dataset.json`` labels;
  * a two-domain folder (:mod:`gankit.data.pairs`): ``trainA/`` + ``trainB/`` (unpaired), ``A/`` +
    ``B/`` (paired by file name), or ``PATH?layout=aligned`` (``train/`` of A|B images), with
    ``res``, ``load``, ``flip``, ``split`` and ``direction`` options.
"""
from __future__ import annotations

import inspect
import os
import typing
from urllib.parse import parse_qsl

from ..config import coerce
from ..errors import DataError
from ..registry import DATASETS
from . import builtin  # noqa: F401  (registers built-in datasets)
from .base import BatchOrder, DatasetInfo, GanDataset, TensorDataset
from .folder import FolderDataset, ZipDataset

__all__ = ["open_dataset", "parse_spec", "list_datasets", "GanDataset", "TensorDataset", "DatasetInfo",
           "BatchOrder", "FolderDataset", "ZipDataset"]


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """Splits ``"source?k=v&k2=v2"`` into ``("source", {"k": "v", "k2": "v2"})``."""
    source, _, query = str(spec).partition("?")
    return source, dict(parse_qsl(query, keep_blank_values=True))


def list_datasets() -> list[str]:
    return DATASETS.names()


def _call_with_options(fn, options: dict, where: str, **fixed):
    sig = inspect.signature(fn)
    hints = typing.get_type_hints(fn.__init__ if isinstance(fn, type) else fn, include_extras=True)
    kwargs = {}
    for k, v in options.items():
        key = k.replace("-", "_")
        if key not in sig.parameters or key in fixed:
            raise DataError(f"{where}: unknown option '{k}'; valid: {', '.join(sig.parameters)}")
        kwargs[key] = coerce(v, hints.get(key, str), f"{where} option {k}")
    return fn(**fixed, **kwargs)


def open_dataset(spec: str, **options) -> GanDataset:
    """Opens a dataset from a spec string; keyword options override those in the spec.

    Example:
        >>> ds = open_dataset("builtin:digits?res=16")
        >>> len(ds), ds.info.shape
        (1797, (1, 16, 16))
    """
    source, opts = parse_spec(spec)
    opts.update({k: str(v) for k, v in options.items()})
    if source.startswith("builtin:"):
        name = source[len("builtin:"):]
        try:
            fn = DATASETS.get(name)
        except Exception:
            raise DataError(f"unknown built-in dataset '{name}'; choose one of: {', '.join(list_datasets())}") from None
        return _call_with_options(fn, opts, f"builtin:{name}")
    path = os.path.expanduser(source)
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file or folder; give a folder of images, a .zip, or builtin:NAME "
                        f"(built-in: {', '.join(list_datasets())})")
    if os.path.isdir(path):
        from pathlib import Path

        from .pairs import detect_layout, open_folder

        if detect_layout(Path(path), opts.get("layout", "auto")) is not None:  # two domains (pix2pix, CycleGAN)
            return _call_with_options(open_folder, opts, path, root=path)
        opts.pop("layout", None)
    cls = ZipDataset if os.path.isfile(path) else FolderDataset
    if cls is ZipDataset and not path.lower().endswith(".zip"):
        raise DataError(f"{path}: a file that is not a .zip; give a folder of images or a zip archive")
    return _call_with_options(cls, opts, path, path=path)
