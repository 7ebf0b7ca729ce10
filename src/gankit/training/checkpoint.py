"""Checkpoints: atomic writes, checksums, listing, loading and pruning.

A run directory holds ``config.json`` and ``checkpoints/ckpt-NNNNNNNNN/`` (NNN... = images seen),
each with ``model.safetensors`` (``G.``, ``G_ema.``, ``D.`` tensors), ``training_state.pt``
(optimizers, counters, RNG states; loads with ``weights_only=True``), a copy of ``config.json``,
so a checkpoint folder stands alone, and ``checksums.json``: the sha256 and size of each of
those files, taken when they were written, and a sha256 of that list itself. Every read checks
its file against it, so a flipped byte, a truncated file or a damaged list is named, never
loaded (checkpoints written before checksums existed load unverified).

A checkpoint is written into a hidden temporary folder, every file fsynced, then the folder is
renamed into place: a kill at any moment leaves either the complete new checkpoint or none, and
the previous ones stay loadable. A full disk leaves the previous checkpoints as they were and
says how much space the checkpoint needs; when space is short and more than one checkpoint is
kept, the oldest is pruned *before* the new one is written instead of after.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..errors import CheckpointError, ConfigError

CKPT_RE = re.compile(r"^ckpt-(\d{9,})$")
FILES = ("model.safetensors", "training_state.pt", "config.json")
CHECKSUMS = "checksums.json"
CHECKSUMS_FORMAT = "gankit-checksums/1"
#: extra bytes beyond the tensors' own a checkpoint takes (headers, pickled containers, config)
SLACK = 1 << 20


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


def check_out_dir(out: Path, option: str = "--out") -> None:
    """Refuses an output folder that is a file, lies under a file, or cannot be written, by name."""
    for p in (out, *out.parents):
        if p.exists():
            if not p.is_dir():
                raise ConfigError(f"{option} {out}: {p} is a file, not a folder; choose another {option}")
            if not os.access(p, os.W_OK | os.X_OK):
                raise ConfigError(f"{option} {out}: {p} is not writable; choose another {option} or fix its permissions")
            return


def state_tensors(prefix: str, module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()}


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _listing_digest(files: dict) -> str:
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()


def write_checksums(folder: Path, names=FILES) -> None:
    """Writes ``checksums.json`` for the files ``names`` of ``folder`` (sha256 and size of each)."""
    files = {n: {"sha256": file_sha256(folder / n), "bytes": (folder / n).stat().st_size} for n in names}
    doc = {"format": CHECKSUMS_FORMAT, "files": files, "listing_sha256": _listing_digest(files)}
    (folder / CHECKSUMS).write_text(json.dumps(doc, indent=2))


def read_checksums(ckpt: Path) -> dict | None:
    """The checksum list of a checkpoint, or None for a checkpoint written before gankit kept them."""
    path = Path(ckpt) / CHECKSUMS
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_bytes())
        files = doc["files"]
        ok = (doc.get("format") == CHECKSUMS_FORMAT and isinstance(files, dict) and
              doc.get("listing_sha256") == _listing_digest(files) and
              all(isinstance(v, dict) and isinstance(v.get("sha256"), str) and isinstance(v.get("bytes"), int)
                  for v in files.values()))
    except (ValueError, TypeError, KeyError, AttributeError, UnicodeDecodeError):
        ok = False
    if not ok:
        raise CheckpointError(f"{path}: damaged (its own checksum does not match); the checkpoint cannot be "
                              f"verified: {older_hint(Path(ckpt))}")
    return files


def older_hint(ckpt: Path) -> str:
    """'use an older checkpoint: PATH' naming the checkpoint before ``ckpt`` in its run, when there is one."""
    ckpt = Path(ckpt)
    older = [c for c in list_checkpoints(ckpt.parent.parent) if c.name < ckpt.name and len(c.name) <= len(ckpt.name)]
    where = f": {older[-1]}" if older else ""
    return f"use an older checkpoint{where} (gankit train --resume skips damaged ones)"


_VERIFIED: set[tuple] = set()  # (path, size, mtime, sha256) of files that passed


def verify_file(ckpt: Path, name: str) -> None:
    """Checks ``ckpt/name`` against the checkpoint's checksums; raises CheckpointError naming the file."""
    files = read_checksums(ckpt)
    if files is None:
        return
    path = Path(ckpt) / name
    entry = files.get(name)
    if entry is None:
        raise CheckpointError(f"{path}: not listed in {CHECKSUMS}; the checkpoint is not one gankit wrote")
    if not path.is_file():
        raise CheckpointError(f"{path}: missing; the checkpoint is incomplete: {older_hint(ckpt)}")
    st = path.stat()
    if st.st_size != entry["bytes"]:
        raise CheckpointError(f"{path}: damaged ({st.st_size:,} bytes, written as {entry['bytes']:,}); {older_hint(ckpt)}")
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, entry["sha256"])
    if key in _VERIFIED:  # hashed already in this process (resume checks a checkpoint, then reads it)
        return
    if file_sha256(path) != entry["sha256"]:
        raise CheckpointError(f"{path}: damaged (its sha256 differs from the one stored when it was written); "
                              f"{older_hint(ckpt)}")
    _VERIFIED.add(key)


def verify(ckpt: Path) -> None:
    """Checks every file of a checkpoint (checksums, or for an old checkpoint without them, that each
    file can be read); raises CheckpointError naming the first damaged file."""
    ckpt = Path(ckpt)
    if read_checksums(ckpt) is None:
        read_config(ckpt)
        load_tensors(ckpt)
        load_state(ckpt)
        return
    for name in FILES:
        verify_file(ckpt, name)


def _nbytes(obj) -> int:
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(_nbytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_nbytes(v) for v in obj)
    return 0


def _mib(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB"


def _no_space(root: Path, need: int) -> CheckpointError:
    free = shutil.disk_usage(root).free
    last = list_checkpoints(root.parent)
    kept = f"the previous checkpoint {last[-1]} is intact" if last else "no checkpoint was written"
    return CheckpointError(f"{root}: not enough disk space for a checkpoint: it needs about {_mib(need)}, "
                           f"{_mib(free)} free; free {_mib(max(need - free, 0))} or more, or lower --train.keep "
                           f"({kept})")


def save_checkpoint(run_dir: str | Path, nimg: int, tensors: dict[str, torch.Tensor], state: dict,
                    config: dict, keep: int = 3) -> Path:
    """Writes ``checkpoints/ckpt-{nimg}`` atomically with its checksums, then prunes to the newest ``keep``.

    Pruning needs room for ``keep + 1`` checkpoints while the new one is written; when the disk
    has less than one checkpoint free and ``keep >= 2``, the oldest are pruned first (never the
    last one). A full disk raises CheckpointError with the space needed; what was there stays.
    """
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    need = _nbytes(tensors) + _nbytes(state) + SLACK
    if shutil.disk_usage(root).free < need:
        if keep >= 2:
            prune(run_dir, keep - 1)
        if shutil.disk_usage(root).free < need:
            raise _no_space(root, need)
    final = root / f"ckpt-{nimg:09d}"
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    try:
        save_file(tensors, str(tmp / "model.safetensors"), metadata={"format": "gankit", "nimg": str(nimg)})
        torch.save(state, tmp / "training_state.pt")
        (tmp / "config.json").write_text(json.dumps(config, indent=2))
        write_checksums(tmp)
        for name in (*FILES, CHECKSUMS):
            _fsync_file(tmp / name)
        _fsync_dir(tmp)
        if final.exists():  # same nimg written again (e.g. interrupted right after a snapshot)
            shutil.rmtree(final)
        os.rename(tmp, final)
        _fsync_dir(root)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        full = isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT)
        full = full or (isinstance(e, RuntimeError) and "No space left" in str(e))  # torch.save's own writer
        if full:
            raise _no_space(root, need) from None
        if isinstance(e, OSError):
            raise CheckpointError(f"{e.filename or root}: cannot write the checkpoint ({e.strerror or e}); "
                                  f"the previous checkpoints are unchanged") from None
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
    """The checkpoint's ``config.json`` (or its run's, for a checkpoint that has none), checked and parsed."""
    for p in (ckpt / "config.json", ckpt.parent.parent / "config.json"):
        if p.is_file():
            if p.parent == ckpt:
                verify_file(ckpt, "config.json")
            try:
                config = json.loads(p.read_bytes())
            except (ValueError, UnicodeDecodeError):
                raise CheckpointError(f"{p}: not valid JSON; the checkpoint's config is damaged") from None
            if not isinstance(config, dict) or not isinstance(config.get("family"), str) \
                    or not isinstance(config.get("model", {}), dict):
                raise CheckpointError(f"{p}: not a gankit run config (a JSON object with \"family\" and \"model\")")
            return config
    raise CheckpointError(f"{ckpt}: no config.json beside the weights; it is not a gankit checkpoint")


def load_tensors(ckpt: Path) -> dict[str, torch.Tensor]:
    verify_file(ckpt, "model.safetensors")
    try:
        return load_file(str(ckpt / "model.safetensors"))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{ckpt / 'model.safetensors'}: cannot read ({str(e).splitlines()[0][:200] if str(e) else type(e).__name__}); "
                              "use an older checkpoint") from None


def load_state(ckpt: Path) -> dict:
    verify_file(ckpt, "training_state.pt")
    try:
        state = torch.load(ckpt / "training_state.pt", map_location="cpu", weights_only=True)
    except Exception as e:  # pickle errors, EOF, unsupported globals
        msg = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise CheckpointError(f"{ckpt / 'training_state.pt'}: cannot read ({msg}); use an older checkpoint") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{ckpt / 'training_state.pt'}: not a gankit training state (a dict)")
    return state


def subset(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    p = prefix + "."
    return {k[len(p):]: v for k, v in tensors.items() if k.startswith(p)}


def load_modules(ckpt: Path, modules: dict[str, torch.nn.Module]) -> None:
    """Loads the ``G.``, ``G_ema.``, ``D.`` ... tensors of a checkpoint into the given modules by prefix."""
    tensors = load_tensors(ckpt)
    for prefix, module in modules.items():
        try:
            module.load_state_dict(subset(tensors, prefix))
        except (RuntimeError, ValueError, TypeError) as e:
            raise CheckpointError(f"{ckpt}: weights do not fit the networks of its config.json "
                                  f"({str(e).splitlines()[0]})") from None
