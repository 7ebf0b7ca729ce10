"""What every benchmark script writes: the machine's facts and a JSON file of rows."""
from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import torch


def machine(threads: int | None = None) -> dict:
    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "threads": threads or torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version()}


def write_results(path: str | Path, rows: list, threads: int | None = None) -> None:
    """Writes ``{"machine": ..., "results": rows}`` to ``path`` and says so."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"machine": machine(threads), "results": rows}, indent=2))
    print(f"wrote {path}")


def earlier_results(path: str | Path) -> list:
    """The rows already in ``path`` (a file :func:`write_results` wrote), or none: scripts that append."""
    path = Path(path)
    return json.loads(path.read_text())["results"] if path.exists() else []
