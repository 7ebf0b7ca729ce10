"""Image datasets on disk: a folder (searched recursively) or a zip archive.

Optional labels come from ``dataset.json`` at the root, in the format NVIDIA's
``dataset_tool.py`` writes: ``{"labels": [["00000/img00000000.png", 6], ...]}`` (or ``null``).
"""
from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from . import images
from .base import DatasetInfo, GanDataset, TensorDataset


class FileImageDataset(GanDataset):
    """Common part of folder and zip datasets: file list, labels, policies, lazy decoding."""

    def __init__(self, path: str, res: int | None = None, size: str = "center-crop", mode: str = "rgb"):
        images.check_policy(size, mode, res)
        self.path = str(path)
        self.name = os.path.basename(os.path.normpath(self.path))
        self.size_policy, self.mode, self.meta = size, mode, {}
        self.files = sorted(n for n in self._list_names() if images.is_image_name(n))
        if not self.files:
            raise DataError(f"{self.path}: no images found (looked for {', '.join(images.EXTENSIONS)}, "
                            "recursively); point --data at a folder or zip of images")
        self.labels, num_classes = self._read_labels()
        self.res = res
        first = self._decode(0)
        if res is None:
            h, w = first.shape[:2]
            if h != w or h & (h - 1) or h < 4:
                raise DataError(f"{self._display(0)}: size {w}x{h} is not a square power of two; "
                                f"add ?res=N (for example {self.path}?res=64) to resize")
            res = h
            self.size_policy = "none"
        self.res = res
        self.info = DatasetInfo(kind="image", shape=(first.shape[2], res, res), num_classes=num_classes)

    # -- to implement by subclasses
    def _list_names(self) -> list[str]:
        raise NotImplementedError

    def _read(self, name: str) -> bytes:
        raise NotImplementedError

    def _display(self, i: int) -> str:
        return os.path.join(self.path, self.files[i])

    # --
    def _read_labels(self):
        try:
            raw = self._read("dataset.json")
        except (FileNotFoundError, KeyError):
            return None, 0
        try:
            labels = json.loads(raw).get("labels")
        except (ValueError, AttributeError):
            raise DataError(f"{self.path}: dataset.json is not valid JSON of the form "
                            '{"labels": [["file.png", 0], ...]}') from None
        if labels is None:
            return None, 0
        table = {str(k).replace("\\", "/"): v for k, v in labels}
        missing = [f for f in self.files if f not in table]
        if missing:
            raise DataError(f"{self.path}: dataset.json has no label for {missing[0]} "
                            f"({len(missing)} files unlabeled); label every image or set \"labels\": null")
        values = [table[f] for f in self.files]
        if any(isinstance(v, list) for v in values):
            raise DataError(f"{self.path}: dataset.json holds vector labels; only integer class labels are supported")
        t = torch.tensor(values, dtype=torch.long)
        return t, int(t.max()) + 1

    def _decode(self, i: int) -> np.ndarray:
        try:
            data = self._read(self.files[i])
        except OSError as e:
            raise DataError(f"{self._display(i)}: cannot read ({e.strerror or e})") from None
        return images.decode(data, self._display(i), self.res, self.size_policy, self.mode)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        arr = self._decode(int(i))
        return torch.from_numpy(arr).permute(2, 0, 1).contiguous()

    def get_batch(self, indices: torch.Tensor):
        x = torch.stack([self[int(i)] for i in indices]).float().div_(127.5).sub_(1.0)
        c = self.labels[indices] if self.labels is not None else None
        return x, c

    def fingerprint(self) -> str:
        h = hashlib.sha256(f"{self.res}|{self.size_policy}|{self.mode}".encode())
        for f in self.files:
            h.update(f.encode())
            h.update(str(self._stat(f)).encode())
        return h.hexdigest()[:16]

    def _stat(self, name: str):
        return 0

    def materialize(self, progress: bool = False) -> TensorDataset:
        """Decodes every image once into a uint8 tensor (the decoded cache)."""
        from tqdm import tqdm

        it = range(len(self))
        if progress:
            it = tqdm(it, desc=f"decoding {self.name}", unit="img", leave=False)
        data = torch.stack([self[i] for i in it])
        return TensorDataset(self.name, data, self.labels, self.info.num_classes, meta=self.meta)


class FolderDataset(FileImageDataset):
    """Every png/jpg/webp/bmp file under ``path``, recursively, in sorted order."""

    def _list_names(self) -> list[str]:
        root = Path(self.path)
        return [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]

    def _read(self, name: str) -> bytes:
        with open(os.path.join(self.path, name), "rb") as f:
            return f.read()

    def _stat(self, name: str):
        st = os.stat(os.path.join(self.path, name))
        return st.st_size, st.st_mtime_ns


class ZipDataset(FileImageDataset):
    """Every image inside a zip archive; the archive is opened once per process."""

    _zip = None
    _pid = None

    def _archive(self) -> zipfile.ZipFile:
        if self._zip is None or self._pid != os.getpid():
            try:
                self._zip = zipfile.ZipFile(self.path)
            except (zipfile.BadZipFile, OSError) as e:
                raise DataError(f"{self.path}: not a readable zip archive ({e}); re-create the archive") from None
            self._pid = os.getpid()
        return self._zip

    def _list_names(self) -> list[str]:
        return [n for n in self._archive().namelist() if not n.endswith("/")]

    def _read(self, name: str) -> bytes:
        try:
            return self._archive().read(name)
        except zipfile.BadZipFile as e:
            raise DataError(f"{self.path}/{name}: corrupt zip entry ({e})") from None

    def _display(self, i: int) -> str:
        return f"{self.path}/{self.files[i]}"

    def _stat(self, name: str):
        info = self._archive().getinfo(name)
        return info.file_size, info.CRC

    def __getstate__(self):
        d = dict(self.__dict__)
        d.pop("_zip", None)
        d.pop("_pid", None)
        return d
