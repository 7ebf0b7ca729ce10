"""Training across processes (torchrun, gloo on CPU) and gradient accumulation: both must give the
large batch's result, every process must end with the same weights, and a run must resume onto a
different number of processes."""
import os
import subprocess
import sys

import pytest
import torch

from gankit.api import load_bundle
from gankit.training.trainer import Trainer

RING = "builtin:ring8?n=512"
GAN = ["--model.g-hidden", "32", "--model.d-hidden", "32", "--model.d-dropout", "0"]  # no dropout: z is all the noise
QUIET = ["--train.tensorboard", "false", "--train.metrics", "false", "--train.snapshot-kimg", "100", "--no-progress"]


def torchrun(n: int, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(n),
           "-m", "gankit", "train", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


def weights(run) -> list[torch.Tensor]:
    bundle, G_ema, _ = load_bundle(run)
    return [t.float() for m in (bundle.G, bundle.D, G_ema) for t in m.state_dict().values()]


def max_diff(a, b) -> float:
    return max(float((x - y).abs().max()) for x, y in zip(a, b))


def train(out, family, data, batch, batch_gpu, kimg, model=None):
    over = {"model": model or {}, "train": {"batch_size": batch, "batch_gpu": batch_gpu, "kimg": kimg,
                                            "tensorboard": False, "metrics": False, "snapshot_kimg": 100}}
    return Trainer(family, data, out, overrides=over, progress=False).run()


def test_gradient_accumulation_equals_the_large_batch(tmp_path):
    model = {"g_hidden": (32,), "d_hidden": (32,), "d_dropout": 0.0}
    train(tmp_path / "one", "gan", RING, 32, 0, 0.32, model)
    train(tmp_path / "four", "gan", RING, 32, 8, 0.32, model)  # 4 rounds of 8 per step
    a, b = weights(tmp_path / "one"), weights(tmp_path / "four")
    assert max_diff(a, b) < 1e-6  # measured 9e-8 (summation order)
    assert max_diff(a, weights(tmp_path / "one")) == 0
    with pytest.raises(Exception, match="batch-gpu"):
        train(tmp_path / "bad", "gan", RING, 32, 12, 0.32, model)


def test_two_processes_equal_one_and_agree_with_each_other(tmp_path):
    p = torchrun(2, "gan", "--data", RING, "--out", tmp_path / "ddp", *GAN, "--train.batch-size", 32,
                 "--train.kimg", 0.32, *QUIET)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "processes:  2; largest difference of any weight between processes: 0\n" in p.stdout
    train(tmp_path / "one", "gan", RING, 32, 0, 0.32, {"g_hidden": (32,), "d_hidden": (32,), "d_dropout": 0.0})
    assert max_diff(weights(tmp_path / "ddp"), weights(tmp_path / "one")) < 1e-6


def test_synchronized_batch_norm_makes_two_halves_one_batch(tmp_path):
    """DCGAN's batch norm: 2 processes of 16 with SyncBatchNorm normalize over all 32, as one process does."""
    model = ["--model.ngf", 8, "--model.ndf", 8, "--model.z-dim", 8]
    p = torchrun(2, "dcgan", "--data", "builtin:digits?res=8", "--out", tmp_path / "ddp", *model,
                 "--train.batch-size", 32, "--train.kimg", 0.16, *QUIET)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "between processes: 0\n" in p.stdout
    train(tmp_path / "one", "dcgan", "builtin:digits?res=8", 32, 0, 0.16, {"ngf": 8, "ndf": 8, "z_dim": 8})
    assert max_diff(weights(tmp_path / "ddp"), weights(tmp_path / "one")) < 1e-5


def test_resume_onto_a_different_number_of_processes(tmp_path):
    """StyleGAN2 (lazy R1 and path length, w_avg and pl_mean buffers): 2 processes to 0.32 kimg, then
    one process with 2 accumulation rounds (the same micro-batches) to 0.64 kimg, equals 2 processes
    all the way."""
    model = ["--model.z-dim", 8, "--model.w-dim", 8, "--model.mapping-layers", 1, "--model.channel-base", 64,
             "--model.channel-max", 8]
    common = ["stylegan2", "--data", "builtin:digits?res=8", *model, "--train.batch-size", 16, *QUIET]
    p = torchrun(2, *common, "--out", tmp_path / "straight", "--train.kimg", 0.64)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "between processes: 0\n" in p.stdout
    p = torchrun(2, *common, "--out", tmp_path / "moved", "--train.kimg", 0.32)
    assert p.returncode == 0, p.stderr[-3000:]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-m", "gankit", "train", "stylegan2", "--out", str(tmp_path / "moved"),
                        "--resume", "--kimg", "0.64", "--train.batch-gpu", "8", "--no-progress"],
                       capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr[-3000:]
    assert max_diff(weights(tmp_path / "moved"), weights(tmp_path / "straight")) < 1e-5


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains_without_nan(precision, tmp_path):
    """Autocast on CPU (fp16 with a gradient scaler): finite weights and losses, different from fp32."""
    model = {"z_dim": 8, "w_dim": 8, "mapping_layers": 1, "channel_base": 64, "channel_max": 8}
    over = {"model": model, "train": {"precision": precision, "batch_size": 16, "kimg": 0.32, "tensorboard": False,
                                      "metrics": False, "snapshot_kimg": 100}}
    tr = Trainer("stylegan2", "builtin:digits?res=8", tmp_path / "amp", overrides=over, progress=False)
    assert tr.run()["status"] == "done"
    z = torch.randn(4, 8)
    with torch.no_grad():
        ref = tr.G.synthesis(tr.G.mapping(z, None), noise_mode="const")
        with tr._loss_context(tr.phases[0]):  # the layers really run in reduced precision, close to fp32
            low = tr.G.synthesis(tr.G.mapping(z, None), noise_mode="const").float()
    err = float((low - ref).abs().max() / ref.abs().max())
    assert 0 < err < 0.1, err
    assert all(torch.isfinite(p).all() for p in list(tr.G.parameters()) + list(tr.D.parameters()))
    import json

    logs = [json.loads(line) for line in (tmp_path / "amp" / "log.jsonl").read_text().splitlines()]
    assert logs and all(v == v and abs(v) < 1e6 for rec in logs for k, v in rec.items() if k.endswith("/loss"))
    train(tmp_path / "fp32", "stylegan2", "builtin:digits?res=8", 16, 0, 0.32, model)
    assert max_diff(weights(tmp_path / "amp"), weights(tmp_path / "fp32")) > 0
