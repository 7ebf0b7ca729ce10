"""Trainer behaviour: quality on known targets, exact resume after SIGKILL, atomic checkpoints, SIGINT."""
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from gankit.errors import CheckpointError
from gankit.training import checkpoint as ckpt
from gankit.training.trainer import Trainer
from .conftest import kill_after_first_checkpoint

NO_EXTRAS = {"tensorboard": False}


def train(family, data, out, preset, **train):
    t = Trainer(family, data, out, preset=preset, overrides={"train": {**NO_EXTRAS, **train}}, progress=False)
    return t.run()


@pytest.mark.parametrize("family,min_modes", [("wgan-gp", 7), ("gan", 4)])
def test_family_covers_the_ring(family, min_modes, tmp_path):
    # wgan-gp must cover the ring; the original GAN, known to drop modes, must at least learn it
    s = train(family, "builtin:ring8", tmp_path / "r", "cpu-toy")
    m = s["metric_values"]
    print(f"{family} ring8:", {k: v for k, v in m.items() if not isinstance(v, list)})
    assert m["modes_covered"] >= min_modes
    # wgan-gp over seeds 0-7: 46-77% when it covers the ring (about 1 run in 8 collapses, in the
    # random streams before and after the distributed-training change); untrained G: ~0%
    assert m["high_quality_share"] > 0.4


def test_dcgan_makes_recognisable_digits(tmp_path):
    s = train("dcgan", "builtin:digits", tmp_path / "d", "cpu-digits")  # native 8x8
    m = s["metric_values"]
    print("dcgan digits:", {k: v for k, v in m.items() if not isinstance(v, list)})
    assert m["recognised_share"] > 0.55  # a clear majority at p >= 0.9 (real digits: 0.99; noise: 0.09)
    assert m["classes_covered"] >= 8


# ---------------------------------------------------------------- exact resume
RESUME_ARGS = ["train", "dcgan", "--data", "builtin:digits?res=8", "--kimg", "6", "--no-progress",
               "--model.ngf", "8", "--model.ndf", "8", "--model.z-dim", "8", "--train.batch-size", "16",
               "--train.snapshot-kimg", "0.4", "--train.keep", "2", "--train.ema-kimg", "0.5",
               "--train.lr-schedule", "linear-decay", "--train.tensorboard", "false", "--train.metrics", "false",
               "--train.threads", "1"]


def cli(args, **kw):
    return subprocess.Popen([sys.executable, "-m", "gankit", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kw)


def final_tensors(run: Path) -> dict:
    return load_file(str(ckpt.list_checkpoints(run)[-1] / "model.safetensors"))


def test_sigkill_at_any_point_then_resume_is_bitwise_identical(tmp_path):
    ref = tmp_path / "ref"
    p = cli(RESUME_ARGS + ["--out", str(ref)])
    assert p.wait(timeout=300) == 0, p.stderr.read()
    expected = final_tensors(ref)
    rng = random.Random(1234)
    run = tmp_path / "killed"
    kills = 0
    for attempt in range(3):
        resume = ["--resume"] if (run / "config.json").exists() else []
        p = cli(RESUME_ARGS + ["--out", str(run)] + resume)
        # kill at a random moment after the first checkpoint exists (checkpoints every 0.4 kimg, so often mid-write)
        kills += kill_after_first_checkpoint(p, run, rng.uniform(0.0, 1.5))
        for c in ckpt.list_checkpoints(run):  # every checkpoint left behind is complete and loadable
            load_file(str(c / "model.safetensors"))
            ckpt.load_state(c)
    assert kills >= 1
    p = cli(RESUME_ARGS + ["--out", str(run), "--resume"])
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    got = final_tensors(run)
    assert got.keys() == expected.keys()
    for k in expected:
        assert torch.equal(got[k], expected[k]), k
    # the log reads as one run: no duplicate ticks from the killed attempts
    kimgs = [json.loads(l)["kimg"] for l in (run / "log.jsonl").read_text().splitlines()]
    assert kimgs == sorted(set(kimgs))


def test_sigint_saves_and_exits_cleanly(tmp_path):
    run = tmp_path / "r"
    args = [a if a != "6" else "200" for a in RESUME_ARGS] + ["--out", str(run)]
    p = cli(args)
    deadline = time.time() + 120
    while not ckpt.list_checkpoints(run) and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "Traceback" not in err and "interrupted at" in out and "--resume" in out
    assert f"gankit train dcgan --out {run} --resume" in out
    last = ckpt.list_checkpoints(run)[-1]
    state = ckpt.load_state(last)
    assert state["cur_nimg"] == int(last.name.split("-")[1])  # the checkpoint holds the moment of interruption


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    run = tmp_path / "r"
    t = {"a": torch.ones(3)}
    first = ckpt.save_checkpoint(run, 100, t, {"cur_nimg": 100}, {"family": "x"})

    def crash(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(ckpt.torch, "save", crash)
    with pytest.raises(CheckpointError, match="previous checkpoints are unchanged"):
        ckpt.save_checkpoint(run, 200, {"a": torch.zeros(3)}, {"cur_nimg": 200}, {"family": "x"})
    monkeypatch.undo()
    assert ckpt.list_checkpoints(run) == [first]  # no half-written checkpoint, the previous one intact
    assert not list((run / "checkpoints").glob(".tmp-*"))
    assert torch.equal(ckpt.load_tensors(first)["a"], torch.ones(3))
    # a folder left by a kill during the write is ignored and cleaned
    (run / "checkpoints" / ".tmp-dead").mkdir()
    (run / "checkpoints" / ".tmp-dead" / "model.safetensors").write_bytes(b"half")
    assert ckpt.resolve(run) == first
    ckpt.save_checkpoint(run, 300, t, {"cur_nimg": 300}, {"family": "x"}, keep=1)
    assert [p.name for p in ckpt.list_checkpoints(run)] == ["ckpt-000000300"]
    assert not (run / "checkpoints" / ".tmp-dead").exists()


def test_training_state_loads_with_weights_only(tmp_path):
    s = train("gan", "builtin:ring8?n=256", tmp_path / "r", "cpu-toy", kimg=0.5, metrics=False)
    state = torch.load(Path(s["checkpoint"]) / "training_state.pt", weights_only=True)
    assert {"cur_nimg", "iteration", "optimizers", "rng"} <= set(state)
    assert (tmp_path / "r" / "samples" / "reals.png").exists()
    assert len(os.listdir(tmp_path / "r" / "samples")) >= 2


def test_phase_schedule_lr_decay_and_ema(tmp_path):
    from gankit.models.family import Phase
    from gankit.training.ema import ema_beta

    t = Trainer("gan", "builtin:ring8?n=256", tmp_path / "r", preset="cpu-toy",
                overrides={"model": {"g_hidden": (8,), "d_hidden": (8,)},
                           "train": {**NO_EXTRAS, "batch_size": 8, "lr_schedule": "linear-decay",
                                     "lr_decay_start": 0.5, "ema_kimg": 0.1}}, progress=False)
    t.setup()
    calls = []

    def loss(name):
        def f(s):
            calls.append((name, s.iteration, None if s.real is None else s.real.shape[0]))
            return {"loss": s.G(s.z()).sum() * 0 + s.D(s.G(s.z())).mean()}
        return f

    t.phases = [Phase("D", "D", loss("D"), repeat=3, real=True), Phase("Dreg", "D", loss("Dreg"), every=4),
                Phase("G", "G", loss("G"))]
    for _ in range(8):
        t.step(total=10**6)
    names = [c[0] for c in calls]
    assert names.count("D") == 24 and names.count("G") == 8
    assert [c[1] for c in calls if c[0] == "Dreg"] == [0, 4]  # lazy: every 4th iteration
    assert all(c[2] == 8 for c in calls if c[0] == "D") and t.cur_nimg == 8 * 3 * 8  # n_critic batches counted
    # linear decay: full lr before the start, half way between start and end -> half lr
    t.cur_nimg = 750
    t._set_lr(1000)
    assert t.opt["G"].param_groups[0]["lr"] == pytest.approx(t.cfg.g_lr * 0.5)
    # EMA: half-life 0.1 kimg at batch 8 -> beta = 0.5 ** (8 / 100)
    assert ema_beta(8, 10**6, 0.1, 0.0) == pytest.approx(0.5 ** 0.08)


def test_resume_without_data_extends_the_run(tmp_path):
    run = tmp_path / "r"
    s = train("gan", "builtin:ring8?n=256", run, "cpu-toy", kimg=0.3, metrics=False, tensorboard=True)
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))  # TensorBoard scalars and sample images
    records = [json.loads(l) for l in (run / "log.jsonl").read_text().splitlines()]
    assert {"kimg", "img_per_s", "D/loss", "G/loss"} <= set(records[-1])
    t = Trainer("gan", None, run, overrides={"train": {"kimg": 0.6}}, resume=True, progress=False)
    assert t.data_spec == "builtin:ring8?n=256"
    s2 = t.run()
    assert s["kimg"] < 0.6 <= s2["kimg"]


def test_prune_never_leaves_a_half_deleted_checkpoint(tmp_path, monkeypatch):
    """A kill during pruning (simulated by an rmtree that stops after one file) leaves no folder
    under a checkpoint's name; the next prune removes the leftover."""
    import shutil

    real_rmtree = shutil.rmtree
    for nimg in (1000, 2000, 3000):
        ckpt.save_checkpoint(tmp_path, nimg, {"x": torch.zeros(1)}, {}, {}, keep=10)

    def killed_rmtree(path, ignore_errors=False, **kw):
        next(p for p in sorted(Path(path).iterdir())).unlink()
        raise KeyboardInterrupt  # the process dies here

    monkeypatch.setattr(ckpt.shutil, "rmtree", killed_rmtree)
    with pytest.raises(KeyboardInterrupt):
        ckpt.prune(tmp_path, keep=2)
    monkeypatch.setattr(ckpt.shutil, "rmtree", real_rmtree)
    for c in ckpt.list_checkpoints(tmp_path):  # what is listed is complete
        load_file(str(c / "model.safetensors"))
    assert [c.name for c in ckpt.list_checkpoints(tmp_path)] == ["ckpt-000002000", "ckpt-000003000"]
    ckpt.prune(tmp_path, keep=2)
    assert not list((tmp_path / "checkpoints").glob(".tmp-*"))


# ---------------------------------------------------------------- damaged checkpoints and full disks
def _flip_a_weight_byte(ckpt_dir: Path) -> None:
    f = ckpt_dir / "model.safetensors"
    b = bytearray(f.read_bytes())
    b[-7] ^= 0x10  # inside the last tensor's data, past the header: the file still parses
    f.write_bytes(bytes(b))


def test_flipped_weight_byte_is_named_and_resume_falls_back(tmp_path):
    from gankit.api import load_bundle

    args = ["train", "gan", "--data", "builtin:ring8?n=512", "--preset", "cpu-toy", "--no-progress",
            "--train.snapshot-kimg", "0.512", "--train.tensorboard", "false", "--train.metrics", "false",
            "--train.lr-schedule", "constant"]
    ref, run = tmp_path / "ref", tmp_path / "run"
    assert subprocess.run([sys.executable, "-m", "gankit", *args, "--out", ref, "--kimg", "2"]).returncode == 0
    assert subprocess.run([sys.executable, "-m", "gankit", *args, "--out", run, "--kimg", "1.5"]).returncode == 0
    ckpts = ckpt.list_checkpoints(run)
    assert [c.name for c in ckpts] == ["ckpt-000000512", "ckpt-000001024", "ckpt-000001536"]
    _flip_a_weight_byte(ckpts[-1])
    with pytest.raises(CheckpointError, match="model.safetensors: damaged"):
        load_bundle(run)
    g = subprocess.run([sys.executable, "-m", "gankit", "generate", run, "--out", tmp_path / "g.png"],
                       capture_output=True, text=True)
    assert g.returncode == 2 and "ckpt-000001536/model.safetensors: damaged" in g.stderr and "ckpt-000001024" in g.stderr
    assert "Traceback" not in g.stderr and not (tmp_path / "g.png").exists()
    r = subprocess.run([sys.executable, "-m", "gankit", *args, "--out", run, "--kimg", "2", "--resume"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "skipped checkpoint" in r.stderr and "ckpt-000001536" in r.stderr and "resuming from" in r.stderr
    assert (run / "checkpoints" / "ckpt-000001536.damaged").is_dir()  # kept aside for inspection, never loaded
    assert final_tensors(run).keys() == final_tensors(ref).keys()
    assert all(torch.equal(final_tensors(run)[k], final_tensors(ref)[k]) for k in final_tensors(ref))  # bitwise
    # an explicitly chosen older checkpoint: newer ones are set aside, the run continues from the chosen one
    older = ckpt.list_checkpoints(run)[0]
    r = subprocess.run([sys.executable, "-m", "gankit", *args, "--kimg", "2", "--resume", older],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "newer than the checkpoint chosen" in r.stderr and (run / "checkpoints" / "ckpt-000002048.superseded").is_dir()
    assert all(torch.equal(final_tensors(run)[k], final_tensors(ref)[k]) for k in final_tensors(ref))
    bad = subprocess.run([sys.executable, "-m", "gankit", *args, "--resume", tmp_path / "ref"], capture_output=True,
                         text=True)
    assert bad.returncode == 2 and "not a checkpoint folder" in bad.stderr


def test_full_disk_keeps_the_previous_checkpoint_and_says_what_is_needed(tmp_path, monkeypatch):
    import errno
    import shutil

    run = tmp_path / "r"
    t = {"a": torch.ones(1000)}
    first = ckpt.save_checkpoint(run, 100, t, {"cur_nimg": 100}, {"family": "x"})
    real_save = ckpt.save_file

    def enospc(*a, **k):
        real_save(*a, **k)  # part of the checkpoint reaches the disk, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ckpt, "save_file", enospc)
    with pytest.raises(CheckpointError, match=r"not enough disk space.*needs about .* MiB.*MiB free.*is intact"):
        ckpt.save_checkpoint(run, 200, t, {"cur_nimg": 200}, {"family": "x"})
    monkeypatch.setattr(ckpt, "save_file", real_save)
    assert ckpt.list_checkpoints(run) == [first] and not list((run / "checkpoints").glob(".tmp-*"))
    ckpt.verify(first)
    # space for one checkpoint but not for keep + 1: the oldest goes first, the newest stays
    second = ckpt.save_checkpoint(run, 200, t, {"cur_nimg": 200}, {"family": "x"}, keep=2)
    usage = shutil.disk_usage(run)
    monkeypatch.setattr(ckpt.shutil, "disk_usage",
                        lambda p: usage._replace(free=len(ckpt.list_checkpoints(run)) < 2 and 1 << 30 or 1000))
    third = ckpt.save_checkpoint(run, 300, t, {"cur_nimg": 300}, {"family": "x"}, keep=2)
    assert ckpt.list_checkpoints(run) == [second, third]
    # no room even after pruning: refused before writing, with what is needed, and nothing lost
    monkeypatch.setattr(ckpt.shutil, "disk_usage", lambda p: usage._replace(free=1000))
    with pytest.raises(CheckpointError, match="not enough disk space"):
        ckpt.save_checkpoint(run, 400, t, {"cur_nimg": 400}, {"family": "x"}, keep=1)
    assert ckpt.list_checkpoints(run) == [second, third]


def test_training_stops_with_one_line_when_the_disk_fills(tmp_path):
    # a writer that fails like a full disk, in a real training process
    code = ("import errno, sys\nfrom gankit.training import checkpoint as c\n"
            "def full(*a, **k):\n    raise OSError(errno.ENOSPC, 'No space left on device')\n"
            "c.save_file = full\nfrom gankit.cli import main\nsys.exit(main(sys.argv[1:]))\n")
    p = subprocess.run([sys.executable, "-c", code, "train", "gan", "--data", "builtin:ring8?n=256", "--preset",
                        "cpu-toy", "--out", tmp_path / "r", "--kimg", "0.3", "--no-progress", "--train.metrics",
                        "false", "--train.tensorboard", "false"], capture_output=True, text=True)
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode == 2 and len(lines) == 1 and "not enough disk space" in lines[0], p.stderr


def test_step_counts_reach_the_style_phases_and_are_refused_where_a_family_ignores_them(tmp_path):
    from gankit.errors import ConfigError

    tr = Trainer("stylegan2", "builtin:digits?res=8", tmp_path / "s", preset="cpu-digits", progress=False,
                 overrides={"train": {"n_gen": 2, "n_critic": 3, "tensorboard": False}})
    tr.setup()
    repeats = {p.name: p.repeat for p in tr.phases}
    assert repeats["G"] == 2 and repeats["D"] == 3 and repeats.get("Dreg", 1) == 1
    with pytest.raises(ConfigError, match=r"--train.n-gen 2: the pix2pix family takes one G step"):
        Trainer("pix2pix", "builtin:edges2shapes?res=32&n=8", tmp_path / "p", progress=False,
                overrides={"model": {"netG": "unet"}, "train": {"n_gen": 2}}).setup()
