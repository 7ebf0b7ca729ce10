"""Dataset protocol shared by every source, and the deterministic batch order used by the trainer."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Iterator

import torch


@dataclass
class DatasetInfo:
    """What a family needs to know to fit its networks to a dataset.

    Args:
        kind: ``"image"`` (x is N x C x H x W in [-1, 1]), ``"vector"`` (x is N x D), or two domains
            of images, ``"paired"`` or ``"unpaired"`` (batches are dicts with ``A`` and ``B``).
        shape: per-sample shape, ``(C, H, W)`` or ``(D,)``; for two domains, domain B's (the target).
        num_classes: number of label classes, 0 when unlabeled.
        source_shape: for two domains, domain A's shape (the source); () otherwise.
    """

    kind: str
    shape: tuple
    num_classes: int = 0
    source_shape: tuple = ()


class GanDataset:
    """Base class: a sized collection that returns batches by index.

    Subclasses implement ``__len__`` and ``get_batch(indices) -> (x, c)`` where ``x`` is a float
    tensor (images scaled to [-1, 1]) and ``c`` a long tensor of labels or ``None``.
    """

    name: str = "dataset"
    info: DatasetInfo
    #: which mode metric applies to this data (see gankit.metrics.modes), or None
    mode_metric: str | None = None
    #: extra facts (mode centres, factors, captions) kept for metrics and later families
    meta: dict[str, Any]

    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def get_batch(self, indices: torch.Tensor):  # pragma: no cover - abstract
        raise NotImplementedError

    def fingerprint(self) -> str:
        """A short hash identifying the data (used in config.json and later metric caches)."""
        return hashlib.sha256(self.name.encode()).hexdigest()[:16]

    def materialize(self) -> "GanDataset":
        """Returns an in-memory version (decoded once) when the source is lazy."""
        return self


class TensorDataset(GanDataset):
    """Data held in memory: images as uint8 N x C x H x W (decoded once), or float vectors N x D."""

    def __init__(self, name: str, data: torch.Tensor, labels: torch.Tensor | None = None,
                 num_classes: int = 0, mode_metric: str | None = None, meta: dict | None = None):
        self.name = name
        self.data = data
        self.labels = labels
        kind = "image" if data.dtype == torch.uint8 else "vector"
        self.info = DatasetInfo(kind=kind, shape=tuple(data.shape[1:]), num_classes=num_classes)
        self.mode_metric = mode_metric
        self.meta = meta or {}

    def __len__(self) -> int:
        return self.data.shape[0]

    def get_batch(self, indices: torch.Tensor):
        x = self.data[indices]
        if x.dtype == torch.uint8:
            x = x.float().div_(127.5).sub_(1.0)  # [0, 255] -> [-1, 1]
        c = self.labels[indices] if self.labels is not None else None
        return x, c

    def fingerprint(self) -> str:
        h = hashlib.sha256(self.name.encode())
        h.update(self.data.contiguous().numpy().tobytes())
        if self.labels is not None:
            h.update(self.labels.contiguous().numpy().tobytes())
        return h.hexdigest()[:16]


@dataclass
class BatchOrder:
    """Deterministic infinite batch order: a fresh permutation per epoch, seeded by (seed, epoch).

    The order is a pure function of the number of samples already consumed, so a resumed run
    draws exactly the batches an uninterrupted run would have drawn.
    """

    n: int
    batch_size: int
    seed: int = 0
    position: int = 0
    shuffle: bool = True
    _cache: dict = field(default_factory=dict, repr=False)

    def _perm(self, epoch: int) -> torch.Tensor:
        if epoch not in self._cache:  # keeps the neighbouring epoch: peeks cross epoch boundaries
            self._cache = {e: p for e, p in self._cache.items() if abs(e - epoch) <= 1}
            if not self.shuffle:
                self._cache[epoch] = torch.arange(self.n)
            else:
                g = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) % (2**63))
                self._cache[epoch] = torch.randperm(self.n, generator=g)
        return self._cache[epoch]

    def _batch_at(self, position: int) -> torch.Tensor:
        out = []
        need = self.batch_size
        while need > 0:
            epoch, offset = divmod(position, self.n)
            take = min(need, self.n - offset)
            out.append(self._perm(epoch)[offset:offset + take])
            position += take
            need -= take
        return torch.cat(out)

    def next(self) -> torch.Tensor:
        out = self._batch_at(self.position)
        self.position += self.batch_size
        return out

    def peek(self, ahead: int = 0) -> tuple[int, torch.Tensor]:
        """(position, indices) of the batch ``ahead`` batches after the next one, without drawing it."""
        position = self.position + ahead * self.batch_size
        return position, self._batch_at(position)

    def __iter__(self) -> Iterator[torch.Tensor]:
        while True:
            yield self.next()
