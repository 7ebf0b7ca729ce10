"""Background decoding of upcoming batches for datasets that decode on the fly (``--train.cache false``).

The batch order is a pure function of the images already drawn (:class:`~gankit.data.BatchOrder`),
so the batches to come are known in advance: worker threads decode them while the networks train,
and the training loop takes each one when it is due. What is decoded, and in which order it is
used, is exactly what decoding in the loop gives; only the waiting goes. Pillow and zlib release
the GIL while decoding, so threads run in parallel with each other and with torch.
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import torch

from .base import GanDataset


class Prefetcher:
    """Decodes requested micro-batches in ``workers`` threads; :meth:`get` returns one, decoding
    it in the caller when it was not requested. Keys name a micro-batch: (position, part); a request
    whose indices differ from the ones asked for at :meth:`get` (the batch size changed in between,
    as a family's schedule may do) is dropped and the batch decoded again."""

    def __init__(self, dataset: GanDataset, workers: int, pin_memory: bool = False):
        if workers < 1:
            raise ValueError("Prefetcher needs at least one worker; decode in the loop otherwise")
        self.dataset = dataset
        self.pin_memory = pin_memory
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="gankit-decode")
        self.pending: dict[tuple, tuple[torch.Tensor, Future]] = {}
        self.served = 0  # micro-batches handed over already decoded (or being decoded) by a thread

    def _load(self, indices: torch.Tensor):
        x, c = self.dataset.get_batch(indices)
        if self.pin_memory:  # page-locked, so the copy to the GPU can overlap with compute
            x = x.pin_memory()
        return x, c

    def request(self, key: tuple, indices: torch.Tensor) -> None:
        if key not in self.pending:
            self.pending[key] = (indices.clone(), self.pool.submit(self._load, indices))

    def get(self, key: tuple, indices: torch.Tensor):
        asked, fut = self.pending.pop(key, (None, None))
        if fut is None or not torch.equal(asked, indices):
            if fut is not None:
                fut.cancel()
            return self._load(indices)
        self.served += 1
        return fut.result()

    def drop(self) -> None:
        """Forgets every request (the batch size changed: they name batches that will not come)."""
        for _, fut in self.pending.values():
            fut.cancel()
        self.pending.clear()

    def close(self) -> None:
        self.drop()
        self.pool.shutdown(wait=True, cancel_futures=True)
