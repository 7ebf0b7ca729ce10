import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config):
    """With pytest-xdist (`make test` runs one worker per core), the workers start after this hook
    and inherit this environment: one OpenMP thread each. Set before torch loads, it reaches every
    thread a worker makes and every program it starts, so two workers never share a core."""
    if getattr(config.option, "numprocesses", None) and not os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ["OMP_NUM_THREADS"] = "1"
    # torch.compile's cache goes to a folder of this session (removed at the end), not to a shared
    # /tmp/torchinductor_USER that grows by gigabytes over repeated runs on one machine.
    if not os.environ.get("PYTEST_XDIST_WORKER") and "TORCHINDUCTOR_CACHE_DIR" not in os.environ:
        import tempfile
        config._gankit_inductor_dir = tempfile.mkdtemp(prefix="gankit-inductor-")
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = config._gankit_inductor_dir


def pytest_unconfigure(config):
    d = getattr(config, "_gankit_inductor_dir", None)
    if d:
        import shutil
        shutil.rmtree(d, ignore_errors=True)
        os.environ.pop("TORCHINDUCTOR_CACHE_DIR", None)


def run_cli(*args, timeout=600, **kw):
    """Runs `python -m gankit ARGS` in a subprocess; returns CompletedProcess with text output."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", "gankit", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env, **kw)


def run_inproc(argv) -> tuple[int, str, str]:
    """``gankit ARGV`` in this process (fast, for many calls): (exit code, stdout, stderr). Exceptions
    other than SystemExit escape, so a traceback fails the test."""
    import contextlib
    import io

    from gankit.cli import main

    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as e:  # argparse
            code = e.code if isinstance(e.code, int) else 2
    return code, out.getvalue(), err.getvalue()


def run_main(argv) -> tuple[int, str]:
    """:func:`run_inproc` without stdout: (exit code, stderr)."""
    code, _, err = run_inproc(argv)
    return code, err


def kill_after_first_checkpoint(proc: subprocess.Popen, run: Path, delay: float) -> bool:
    """Waits (up to 120 s) for ``run``'s first checkpoint, then ``delay`` seconds more, and SIGKILLs
    ``proc`` if it is still running; True when it was killed. Checkpoints are frequent in the callers'
    configs, so the kill often lands mid-write."""
    import signal
    import time

    from gankit.training import checkpoint as ckpt

    deadline = time.time() + 120
    while not ckpt.list_checkpoints(run) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(delay)
    killed = proc.poll() is None
    if killed:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    return killed


def write_image(path: Path, size=(16, 16), mode="RGB", seed=0, fmt=None):
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode] if mode in ("RGB", "RGBA", "L") else 3
    arr = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    img = Image.fromarray(arr[:, :, 0] if channels == 1 else arr, "L" if channels == 1 else ("RGBA" if channels == 4 else "RGB"))
    if mode == "P":
        img = img.convert("P")
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format=fmt)
    return path


@pytest.fixture
def image_folder(tmp_path):
    root = tmp_path / "imgs"
    for i in range(6):
        write_image(root / ("sub" if i % 2 else "") / f"img{i}.png", seed=i)
    write_image(root / "a.jpg", seed=10)
    write_image(root / "b.webp", seed=11)
    write_image(root / "c.bmp", seed=12)
    (root / "notes.txt").write_text("not an image")
    return root


def png_bytes(arr: np.ndarray) -> bytes:
    """A PNG file of a uint8 or uint16 array H x W [x C] (C: 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA),
    written by hand so 16-bit colour images can be made (Pillow writes only 16-bit grayscale)."""
    import struct
    import zlib

    if arr.ndim == 2:
        arr = arr[:, :, None]
    h, w, c = arr.shape
    depth = 16 if arr.dtype == np.uint16 else 8
    raw = arr.astype(">u2" if depth == 16 else "u1").tobytes()
    stride = w * c * depth // 8
    rows = b"".join(b"\x00" + raw[i * stride:(i + 1) * stride] for i in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, depth, {1: 0, 2: 4, 3: 2, 4: 6}[c], 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
