"""Local pretrained weights: found by option, environment variable or known cache paths, checked by sha256.

Nothing is ever downloaded. When a file is missing, :class:`WeightsError` says in one message
where to get it and where to put it.
"""
from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import GankitError


class WeightsError(GankitError):
    """Pretrained weights that are missing, of the wrong hash, or of an unknown layout."""


@dataclass(frozen=True)
class WeightsSpec:
    """A pretrained file that gankit reads but does not ship.

    Args:
        what: a short name for messages ("Inception-v3 (FID)").
        env: environment variable naming the file.
        option: the CLI option naming the file.
        filenames: names looked for in the torch hub cache (``$TORCH_HOME/hub/checkpoints``).
        sha256: accepted hashes (any of them).
        url: where a user can get the file (printed, never fetched).
    """

    what: str
    env: str
    option: str
    filenames: tuple[str, ...]
    sha256: tuple[str, ...]
    url: str

    def hub_dir(self) -> Path:
        home = os.environ.get("TORCH_HOME") or os.path.join(
            os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "torch")
        return Path(home) / "hub" / "checkpoints"

    def missing_message(self) -> str:
        return (f"{self.what} weights not found: download {self.url} (sha256 {self.sha256[0][:16]}...) and pass "
                f"{self.option} PATH, or set {self.env}=PATH, or put it in {self.hub_dir()}/ as {self.filenames[0]}")

    def find(self, path: str | os.PathLike | None = None) -> Path | None:
        """The first existing candidate: ``path``, then ``$env``, then the hub cache; None if none exists."""
        if path:
            p = Path(path).expanduser()
            if not p.is_file():
                raise WeightsError(f"{self.option} {p}: no such file. " + self.missing_message())
            return p
        if os.environ.get(self.env):
            p = Path(os.environ[self.env]).expanduser()
            if not p.is_file():
                raise WeightsError(f"{self.env}={p}: no such file. " + self.missing_message())
            return p
        for name in self.filenames:
            p = self.hub_dir() / name
            if p.is_file():
                return p
        return None

    def resolve(self, path: str | os.PathLike | None = None, check_hash: bool = True) -> Path:
        """The verified path, or :class:`WeightsError` with the fix."""
        p = self.find(path)
        if p is None:
            raise WeightsError(self.missing_message())
        if check_hash:
            digest = file_sha256(str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns)
            if digest not in self.sha256:
                raise WeightsError(f"{p}: sha256 {digest[:16]}... is not the {self.what} file gankit expects "
                                   f"({self.sha256[0][:16]}...); " + self.missing_message())
        return p


@functools.lru_cache(maxsize=16)
def file_sha256(path: str, size: int, mtime_ns: int) -> str:
    """sha256 of a file (cached per path, size and modification time)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_state_dict(path: Path, what: str) -> dict[str, torch.Tensor]:
    """A state dict from ``.safetensors`` or a ``.pth`` read with ``weights_only=True`` (no code runs).

    A ``{"state_dict": ...}`` wrapper and a ``module.`` prefix (DataParallel) are accepted."""
    try:
        if str(path).endswith(".safetensors"):
            from safetensors.torch import load_file

            sd = load_file(str(path))
        else:
            sd = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # a corrupt file or a pickle that asks for code
        raise WeightsError(f"{path}: cannot read {what} weights ({type(e).__name__}: {str(e)[:200]})") from None
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise WeightsError(f"{path}: not a state dict of tensors; expected {what} weights")
    return {k.removeprefix("module."): v for k, v in sd.items()}


def load_into(module: torch.nn.Module, sd: dict[str, torch.Tensor], path: Path, what: str) -> None:
    """``load_state_dict`` that ignores BatchNorm's ``num_batches_tracked`` and names the file on mismatch."""
    own = module.state_dict()
    sd = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    missing = [k for k in own if k not in sd and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in sd if k not in own]
    bad = [k for k in sd if k in own and tuple(sd[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or bad:
        raise WeightsError(f"{path}: not a {what} state dict (missing {missing[:3]}, unexpected {unexpected[:3]}, "
                           f"wrong shapes {bad[:3]})")
    module.load_state_dict(sd, strict=False)
