"""Checkpoints: atomic writes, listing, loading and pruning.

A run directory holds ``config.json`` and ``checkpoints/ckpt-NNNNNNNNN/`` (NNN... = images seen),
each with ``model.safetensors`` (``G.``, ``G_ema.``, ``D.`` tensors), ``training_state.pt``
(optimizers, counters, RNG states; loads with ``weights_only=True``) and a copy of ``config.json``,
so a checkpoint folder stands alone. A checkpoint is written into a hidden temporary folder,
every file fsynced, then the folder is renamed into place: a kill at any moment leaves either
the complete new checkpoint or none, and the previous ones stay loadable.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..errors import CheckpointError

CKPT_RE = re.compile(r"^ckpt-(\d{9,})$")


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as f:
        f.flush()
        os.fsync(f.fileno())


def atomic_write_text(path: str | Path, text: str) -> None:
    """Writes a text file via temp file + fsync + rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def state_tensors(prefix: str, module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()}


def save_checkpoint(run_dir: str | Path, nimg: int, tensors: dict[str, torch.Tensor], state: dict,
                    config: dict, keep: int = 3) -> Path:
    """Writes ``checkpoints/ckpt-{nimg}`` atomically, then prunes to the newest ``keep``."""
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"ckpt-{nimg:09d}"
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    try:
        save_file(tensors, str(tmp / "model.safetensors"), metadata={"format": "gankit", "nimg": str(nimg)})
        torch.save(state, tmp / "training_state.pt")
        (tmp / "config.json").write_text(json.dumps(config, indent=2))
        for name in ("model.safetensors", "training_state.pt", "config.json"):
            _fsync_file(tmp / name)
        _fsync_dir(tmp)
        if final.exists():  # same nimg written again (e.g. interrupted right after a snapshot)
            shutil.rmtree(final)
        os.rename(tmp, final)
        _fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    prune(run_dir, keep)
    return final


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Complete checkpoints, oldest first (temporary folders are ignored)."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := CKPT_RE.match(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found)]


def prune(run_dir: str | Path, keep: int) -> None:
    root = Path(run_dir) / "checkpoints"
    for p in root.glob(".tmp-*"):
        shutil.rmtree(p, ignore_errors=True)
    ckpts = list_checkpoints(run_dir)
    for p in ckpts[:-keep] if keep > 0 else []:
        # rename first (atomic), then delete: a kill in the middle of rmtree must never leave a
        # half-deleted folder under a checkpoint's name (the next prune removes the .tmp- leftover)
        doomed = root / f".tmp-del-{p.name}"
        os.rename(p, doomed)
        shutil.rmtree(doomed, ignore_errors=True)


def resolve(path: str | Path) -> Path:
    """A run directory -> its newest checkpoint; a checkpoint folder -> itself."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such run or checkpoint; give a run directory made by `gankit train`")
    if (path / "model.safetensors").is_file():
        return path
    ckpts = list_checkpoints(path)
    if not ckpts:
        raise CheckpointError(f"{path}: holds no checkpoint (no checkpoints/ckpt-*/model.safetensors); "
                              "train first or give a checkpoint folder")
    return ckpts[-1]


def read_config(ckpt: Path) -> dict:
    for p in (ckpt / "config.json", ckpt.parent.parent / "config.json"):
        if p.is_file():
            try:
                return json.loads(p.read_text())
            except ValueError:
                raise CheckpointError(f"{p}: not valid JSON; the checkpoint's config is damaged") from None
    raise CheckpointError(f"{ckpt}: no config.json beside the weights; it is not a gankit checkpoint")


def load_tensors(ckpt: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(ckpt / "model.safetensors"))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{ckpt / 'model.safetensors'}: cannot read ({e}); use an older checkpoint") from None


def load_state(ckpt: Path) -> dict:
    try:
        return torch.load(ckpt / "training_state.pt", map_location="cpu", weights_only=True)
    except Exception as e:  # pickle errors, EOF, unsupported globals
        raise CheckpointError(f"{ckpt / 'training_state.pt'}: cannot read ({str(e).splitlines()[0]}); "
                              "use an older checkpoint") from None


def subset(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    p = prefix + "."
    return {k[len(p):]: v for k, v in tensors.items() if k.startswith(p)}


def load_modules(ckpt: Path, modules: dict[str, torch.nn.Module]) -> None:
    """Loads the ``G.``, ``G_ema.``, ``D.`` ... tensors of a checkpoint into the given modules by prefix."""
    tensors = load_tensors(ckpt)
    for prefix, module in modules.items():
        try:
            module.load_state_dict(subset(tensors, prefix))
        except RuntimeError as e:
            raise CheckpointError(f"{ckpt}: weights do not fit the networks of its config.json "
                                  f"({str(e).splitlines()[0]})") from None
