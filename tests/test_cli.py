"""The command line: bad input gives one clear line and exit code 2; generate and dataset check work."""
from PIL import Image

from .conftest import run_cli, write_image

TINY = ["--model.ngf", "8", "--model.ndf", "8", "--train.batch-size", "16", "--train.tensorboard", "false",
        "--train.metrics", "false", "--no-progress"]


def one_line_error(p, *needles):
    assert p.returncode == 2, (p.stdout, p.stderr)
    lines = [l for l in p.stderr.strip().splitlines() if l.strip()]
    assert len(lines) == 1, p.stderr
    assert "Traceback" not in p.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def test_bad_inputs_give_one_clear_line(tmp_path):
    out = str(tmp_path / "run")
    one_line_error(run_cli("train", "dcgan", "--data", tmp_path / "missing", "--out", out), "missing", "no such file")
    (tmp_path / "empty").mkdir()
    one_line_error(run_cli("train", "dcgan", "--data", tmp_path / "empty", "--out", out), "no images found")
    bad = tmp_path / "bad"
    write_image(bad / "ok.png", size=(16, 16))
    full = write_image(bad / "cut.png", size=(16, 16), seed=2).read_bytes()
    (bad / "cut.png").write_bytes(full[:60])
    one_line_error(run_cli("train", "dcgan", "--data", bad, "--out", out, *TINY), "cut.png", "dataset check")
    one_line_error(run_cli("train", "dcgn", "--data", "builtin:digits", "--out", out), "unknown family 'dcgn'", "dcgan")
    one_line_error(run_cli("train", "dcgan", "--data", "builtin:digits", "--out", out, "--preset", "huge"),
                   "unknown preset 'huge'", "cpu-digits")
    one_line_error(run_cli("train", "dcgan", "--data", "builtin:digits", "--out", out, "--model.ngff", "3"),
                   "--model.ngff", "--help")
    one_line_error(run_cli("train", "dcgan", "--data", "builtin:digits", "--out", out, "--model.ngf", "many"),
                   "model.ngf", "whole number")
    one_line_error(run_cli("train", "dcgan", "--data", "builtin:shapes?res=48", "--out", out), "res=48", "power of two")
    one_line_error(run_cli("train", "dcgan", "--data", "builtin:fashion-mnist?res=28&path=/nonexistent", "--out", out),
                   "fashion-mnist")
    odd = tmp_path / "odd"
    write_image(odd / "a.png", size=(48, 48))
    one_line_error(run_cli("train", "dcgan", "--data", odd, "--out", out), "48x48", "?res=")
    one_line_error(run_cli("train", "gan", "--data", "builtin:ring8", "--out", out, "--model.data-shape", "3"),
                   "conflicts with the dataset")
    one_line_error(run_cli("generate", tmp_path / "norun", "--out", tmp_path / "g.png"), "no such run")
    one_line_error(run_cli("generate", tmp_path / "empty", "--out", tmp_path / "g.png", "--seeds", "x-y"), "--seeds")


def test_checkpoint_from_another_family(tmp_path):
    run = tmp_path / "run"
    p = run_cli("train", "gan", "--data", "builtin:ring8?n=256", "--out", run, "--kimg", "0.2", "--preset", "cpu-toy",
                "--train.tensorboard", "false", "--no-progress")
    assert p.returncode == 0, p.stderr
    assert "metrics:" in p.stdout and "checkpoint:" in p.stdout
    one_line_error(run_cli("train", "dcgan", "--data", "builtin:ring8?n=256", "--out", run, "--resume"),
                   "holds a 'gan' run", "gankit train gan")
    one_line_error(run_cli("train", "gan", "--data", "builtin:ring8?n=256", "--out", run), "already holds a run",
                   "--resume")
    one_line_error(run_cli("train", "gan", "--data", "builtin:ring8?n=256", "--out", run, "--resume",
                           "--train.batch-size", "7"), "--train.batch_size")
    # a damaged weights file is named, not a traceback
    ck = sorted((run / "checkpoints").iterdir())[-1]
    (ck / "model.safetensors").write_bytes(b"\x00" * 20)
    one_line_error(run_cli("generate", run, "--out", tmp_path / "g.png"), "model.safetensors", "damaged")


def test_generate_is_deterministic_per_seed(tmp_path):
    run = tmp_path / "run"
    p = run_cli("train", "dcgan", "--data", "builtin:digits?res=8", "--out", run, "--kimg", "0.1", *TINY)
    assert p.returncode == 0, p.stderr
    assert run_cli("generate", run, "--seeds", "0-3", "--out", tmp_path / "a.png").returncode == 0
    assert run_cli("generate", run, "--seeds", "2,3", "--out", tmp_path / "dir").returncode == 0
    assert run_cli("generate", run, "--seeds", "0-3", "--out", tmp_path / "b.png").returncode == 0
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert run_cli("generate", run, "--seeds", "0-3", "--precision", "bf16", "--out", tmp_path / "c.png").returncode == 0
    assert Image.open(tmp_path / "c.png").size == Image.open(tmp_path / "a.png").size
    a = Image.open(tmp_path / "dir" / "seed0002.png")
    assert a.size == (8, 8)
    import numpy as np
    grid = np.asarray(Image.open(tmp_path / "a.png"))
    assert grid.shape[0] > 8  # a 2x2 grid


def test_models_and_help(tmp_path):
    p = run_cli("models")
    assert p.returncode == 0
    for fam in ("gan", "dcgan", "wgan", "wgan-gp", "stylegan", "stylegan2"):
        assert fam in p.stdout
    p = run_cli("models", "stylegan2")
    assert p.returncode == 0 and "config-e" in p.stdout and "no growing" in p.stdout
    h = run_cli("train", "wgan-gp", "--help")
    assert h.returncode == 0 and "--model.gp-lambda" in h.stdout and "--train.n-critic" in h.stdout
    assert "(default: 10.0)" in h.stdout


def test_dataset_check_cli(tmp_path):
    d = tmp_path / "d"
    write_image(d / "a.png")
    (d / "b.png").write_bytes(b"nope")
    p = run_cli("dataset", "check", d)
    assert p.returncode == 1
    assert "unreadable" in p.stdout and "b.png" in p.stdout and "2 files checked" in p.stdout
    (d / "b.png").unlink()
    assert run_cli("dataset", "check", d).returncode == 0


def test_train_on_a_labelled_zip_of_images(tmp_path):
    import json
    import zipfile

    zp = tmp_path / "faces.zip"
    with zipfile.ZipFile(zp, "w") as z:
        for i in range(12):
            p = write_image(tmp_path / "src" / f"{i:03d}.png", size=(24, 20), seed=i)
            z.write(p, f"00000/{i:03d}.png")
        z.writestr("dataset.json", json.dumps({"labels": [[f"00000/{i:03d}.png", i % 2] for i in range(12)]}))
    run = tmp_path / "run"
    p = run_cli("train", "dcgan", "--data", f"{zp}?res=8&mode=gray", "--out", run, "--kimg", "0.05", *TINY)
    assert p.returncode == 0, p.stderr
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["model"]["resolution"] == 8 and cfg["model"]["channels"] == 1
    assert cfg["data"]["info"]["num_classes"] == 2
    assert (run / "samples" / "reals.png").exists()


def test_the_issue_examples_give_one_line(tmp_path, monkeypatch):
    """Each input the hardening issue found raising a traceback (or accepted though wrong): now one line, exit 2."""
    import json

    import torch

    from gankit.training import checkpoint as ckpt

    from .conftest import run_main

    run = tmp_path / "run"
    base = ["train", "gan", "--data", "builtin:ring8?n=256", "--preset", "cpu-toy", "--no-progress",
            "--train.tensorboard", "false", "--train.metrics", "false"]
    assert run_main(base + ["--out", run, "--kimg", "0.256"])[0] == 0

    def refused(argv, *needles):
        code, err = run_main(argv)
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert code == 2 and len(lines) == 1, (argv, code, err)
        for n in needles:
            assert n in lines[0], (n, lines[0])

    new = ["--out", tmp_path / "new"]
    refused(base + new + ["--kimg", "nan"], "--kimg nan")
    refused(base + new + ["--kimg", "inf"], "--kimg inf")
    refused(base + new + ["--kimg", "-1"], "--kimg -1", "> 0")
    refused(base + new + ["--model.z-dim", "-3"], "--model.z-dim -3")
    refused(base + new + ["--model.z-dim", "1e11"], "--model.z-dim")
    refused(base + new + ["--model.z-dim", "0"], "--model.z-dim 0")
    refused(base + new + ["--train.g-lr", "nan"], "--train.g-lr nan")
    refused(base + new + ["--train.betas", "0.5"], "--train.betas", "two values")
    refused(base + new + ["--train.device", "gpu7"], "--train.device 'gpu7'")
    (tmp_path / "file").write_text("x")
    refused(base + ["--out", tmp_path / "file"], "is a file")
    refused(base + ["--out", tmp_path / "file" / "run"], "is a file")
    monkeypatch.setattr("os.access", lambda *a, **k: False)
    refused(base + new, "not writable")
    monkeypatch.undo()
    refused(["generate", run, "--seeds", "0-99999999999", "--out", tmp_path / "g.png"], "--seeds", "at most")
    refused(["export", run, "--tolerance", "nan", "--out", tmp_path / "g.pt"], "--tolerance nan")
    c = ckpt.list_checkpoints(run)[-1]
    # a checkpoint config.json that holds a list (written as if gankit had, checksums and all)
    saved = (c / "config.json").read_text()
    (c / "config.json").write_text("[1, 2]")
    ckpt.write_checksums(c)
    refused(["generate", run, "--out", tmp_path / "g.png"], "config.json", "not a gankit run config")
    (c / "config.json").write_text(saved)
    ckpt.write_checksums(c)
    # a run config.json that is not JSON, or lacks a key
    cfg = (run / "config.json").read_text()
    (run / "config.json").write_text("{not json")
    refused(base + ["--out", run, "--resume", "--kimg", "0.512"], "config.json", "not valid JSON")
    (run / "config.json").write_text(json.dumps({k: v for k, v in json.loads(cfg).items() if k != "train"}))
    refused(base + ["--out", run, "--resume", "--kimg", "0.512"], "config.json", '"train" is missing')
    (run / "config.json").write_text(cfg)
    # a training_state.pt with missing keys
    state = torch.load(c / "training_state.pt", weights_only=True)
    torch.save({k: v for k, v in state.items() if k != "rng"}, c / "training_state.pt")
    ckpt.write_checksums(c)
    refused(base + ["--out", run, "--resume", "--kimg", "0.512"], "training_state.pt", "missing 'rng'")
    torch.save(state, c / "training_state.pt")
    ckpt.write_checksums(c)
    # a binary line in log.jsonl: dropped, the run resumes
    with open(run / "log.jsonl", "ab") as f:
        f.write(b"\xff\xfe\x00garbage\n")
    code, err = run_main(base + ["--out", run, "--resume", "--kimg", "0.512"])
    assert code == 0, err
    assert all(json.loads(ln) for ln in (run / "log.jsonl").read_text().splitlines())
