"""Run logs: a JSONL file (one record per tick) and, optionally, TensorBoard."""
from __future__ import annotations

import json
import warnings
from pathlib import Path


def _kimg(line: str) -> float | None:
    """The ``kimg`` of one log line, or None when the line is not a log record."""
    try:
        rec = json.loads(line)
    except ValueError:
        return None
    k = rec.get("kimg", 0) if isinstance(rec, dict) else None
    return float(k) if isinstance(k, (int, float)) and not isinstance(k, bool) else None


class RunLogger:
    def __init__(self, run_dir: Path, tensorboard: bool, resume_kimg: float = 0.0, purge_step: int = 0):
        self.path = Path(run_dir) / "log.jsonl"
        if self.path.exists():
            # drop records written after the checkpoint we resume from, so the log reads as one run;
            # lines that are not records (damage, a binary line, a half-written last line) go too
            keep = [ln for ln in self.path.read_bytes().decode("utf-8", "replace").splitlines()
                    if _kimg(ln) is not None and _kimg(ln) <= resume_kimg + 1e-9]
            self.path.write_text("".join(ln + "\n" for ln in keep))
        self.file = open(self.path, "a")
        self.tb = None
        if tensorboard:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    from torch.utils.tensorboard import SummaryWriter
                self.tb = SummaryWriter(str(Path(run_dir) / "tensorboard"), purge_step=purge_step or None)
            except ImportError:  # tensorboard is a dependency, but keep training if it is broken
                self.tb = None

    def log(self, record: dict, step: int) -> None:
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        if self.tb is not None:
            for k, v in record.items():
                if isinstance(v, (int, float)) and k not in ("iteration",):
                    self.tb.add_scalar(k, v, step)

    def image(self, tag: str, path: Path, step: int) -> None:
        if self.tb is not None:
            import numpy as np
            from PIL import Image

            self.tb.add_image(tag, np.asarray(Image.open(path).convert("RGB")), step, dataformats="HWC")

    def close(self) -> None:
        self.file.close()
        if self.tb is not None:
            self.tb.close()
