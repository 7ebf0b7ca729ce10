"""Image datasets on disk: a folder (searched recursively) or a zip archive.

Optional labels come from ``dataset.json`` at the root, in the format NVIDIA's
``dataset_tool.py`` writes: ``{"labels": [["00000/img00000000.png", 6], ...]}`` (or ``null``).
"""
from __future__ import annotations

import hashlib
import json
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from . import images
from .base import DatasetInfo, GanDataset, TensorDataset


LABELS_FORM = '{"labels": [["file.png", 0], ...]}'
MAX_LABEL = 1 << 16  # classes


def _shown(value, limit: int) -> str:
    """``value`` as JSON writes it (newlines and control characters escaped), cut to ``limit``."""
    return json.dumps(value, ensure_ascii=False, allow_nan=True)[:limit]


def parse_labels(raw: bytes, files: list[str], root: str) -> tuple[list[int] | None, list[tuple[str, str]], list[str]]:
    """Reads ``dataset.json`` (NVIDIA's format) for ``files``: (one class per file or None for
    ``"labels": null``, problems as (where, why), notes). Every problem is listed, not only the first."""
    where = f"{root}/dataset.json"
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None, [(where, f"not valid JSON; write it as {LABELS_FORM}")], []
    if not isinstance(doc, dict):
        return None, [(where, f"a JSON {type(doc).__name__}, not an object; write it as {LABELS_FORM}")], []
    entries = doc.get("labels")
    if entries is None:
        return None, [], []
    if not isinstance(entries, list):
        return None, [(where, f'"labels" is a {type(entries).__name__}, not a list of [file, class] pairs')], []
    problems, table, mentioned = [], {}, set()
    for i, e in enumerate(entries):
        if not (isinstance(e, list) and len(e) == 2 and isinstance(e[0], str)):
            problems.append((where, f"entry {i} ({_shown(e, 60)}) is not a [file, class] pair"))
            continue
        name, value = e[0].replace("\\", "/"), e[1]
        mentioned.add(name)
        shown = name if name.isprintable() else _shown(name, 80)  # messages stay on one line
        if isinstance(value, list):
            problems.append((where, f"{shown}: a vector label; only integer class labels are supported"))
            continue
        whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        if isinstance(value, bool) or not whole:
            problems.append((where, f"{shown}: label {_shown(value, 40)} is not a whole number"))
            continue
        if not 0 <= value < MAX_LABEL:
            problems.append((where, f"{shown}: label {int(value)} is out of range (classes are 0 to {MAX_LABEL - 1})"))
            continue
        if name in table and table[name] != int(value):
            problems.append((where, f"{shown}: labelled twice ({table[name]} and {int(value)})"))
            continue
        table[name] = int(value)
    missing = [f for f in files if f not in mentioned]
    if missing and not problems:
        problems.append((where, f"no label for {missing[0]} ({len(missing)} files unlabeled); label every image "
                                f'or set "labels": null'))
    elif missing:
        problems.extend((where, f"no label for {f}") for f in missing[:20])
    known = set(files)
    notes = [f"dataset.json labels {n}, which is not among the images" for n in table if n not in known][:20]
    return (None if problems else [table[f] for f in files]), problems, notes


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
        raw = self._read_label_file()
        if raw is None:
            return None, 0
        labels, problems, _ = parse_labels(raw, self.files, self.path)
        if problems:
            where, why = problems[0]
            more = f" ({len(problems) - 1} more problems; `gankit dataset check {self.path}` lists them)" \
                if len(problems) > 1 else ""
            raise DataError(f"{where}: {why}{more}")
        if labels is None:
            return None, 0
        t = torch.tensor(labels, dtype=torch.long)
        return t, int(t.max()) + 1

    def _read_label_file(self) -> bytes | None:
        """The bytes of ``dataset.json`` at the root, or None when there is none."""
        try:
            return self._read("dataset.json")
        except (FileNotFoundError, KeyError):
            return None
        except IsADirectoryError:
            raise DataError(f"{self.path}/dataset.json: a folder, not a file; remove it or put the labels file "
                            "there") from None
        except OSError as e:
            raise DataError(f"{self.path}/dataset.json: cannot read ({e.strerror or e})") from None

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
        except KeyError:
            raise
        except zipfile.BadZipFile as e:
            raise DataError(f"{self.path}/{name}: corrupt zip entry ({e})") from None
        except RuntimeError as e:  # encrypted members
            raise DataError(f"{self.path}/{name}: cannot read ({e}); gankit reads unencrypted zips") from None
        except NotImplementedError as e:  # compression methods zipfile lacks
            raise DataError(f"{self.path}/{name}: cannot read ({e}); re-create the zip with deflate or no "
                            "compression") from None
        except (OSError, EOFError, ValueError, zlib.error) as e:
            raise DataError(f"{self.path}/{name}: cannot read the zip entry ({e})") from None

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
