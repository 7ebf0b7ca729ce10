"""Property tests over what users hand gankit: command-line options, config overrides, dataset.json
files and checkpoint files. Whatever hypothesis makes of them, gankit answers with success or
with one line naming the input (a GankitError; exit code 2 on the command line), never a traceback.

Networks are held to a small memory budget here (the guard that refuses networks larger than the
machine's memory reads it), so an example cannot spend the suite's time building a huge network.
``GANKIT_ROBUSTNESS_SCALE=10 pytest tests/test_robustness.py -s`` hunts with ten times the
examples and prints how many ran and how they ended.
"""
from __future__ import annotations

import os
import json
import shutil
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import gankit
from gankit.errors import GankitError

from .conftest import run_main, write_image

BUDGET = 48 << 20  # bytes of "available memory" the networks may take in these tests
SCALE = float(os.environ.get("GANKIT_ROBUSTNESS_SCALE", "1"))  # more examples for a longer hunt, e.g. 10
# CI draws the same examples every run (a failure there reproduces); elsewhere each run draws new ones
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
                database=None, derandomize=bool(os.environ.get("CI")))
STATS: dict[str, dict[str, int]] = {}


@pytest.fixture(autouse=True)
def small_memory(monkeypatch):
    monkeypatch.setattr("gankit.models.family.available_memory", lambda: BUDGET)


def _count(kind: str, outcome: str) -> None:
    STATS.setdefault(kind, {}).setdefault(outcome, 0)
    STATS[kind][outcome] += 1


def assert_one_line(code: int, err: str, names: list[str]) -> None:
    """Exit 0, or exit 2 with a single line that names one of ``names`` (an option, a value or a file)."""
    assert code in (0, 2), (code, err)
    if code == 0:
        return
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    low = lines[0].lower().replace("_", "-")
    assert any(n.lower().replace("_", "-") in low for n in names if n), (lines[0], names)


# ----------------------------------------------------------------------------- values
NASTY_NUMBERS = [0, -1, 1, 2, 3, 7, 8, 16, 64, -3, 2 ** 31, 2 ** 63, 10 ** 11, 1e11, 0.5, -0.5, 1.5, 1e-300, 1e300,
                 float("nan"), float("inf"), float("-inf"), -0.0]
NASTY_STRINGS = ["", "abc", "1,2", "1,,2", ",", "none", "null", "true", "false", "1e11", "-3", "0x10", "nan", "inf",
                 "-inf", "1e400", "é", "\x00", "0.5,0.999", "0.5", "4,4,4,4,4", "cuda", "cuda:7", "cpu", "meta",
                 "adam", "skip", "batch", "linear-decay", "fp16", "bf16", "fid", "zzz"]
values = st.one_of(st.sampled_from(NASTY_NUMBERS), st.integers(-10, 300), st.floats(allow_nan=True),
                   st.sampled_from(NASTY_STRINGS), st.text(max_size=8))
json_values = st.recursive(st.one_of(st.none(), st.booleans(), st.sampled_from(NASTY_NUMBERS), st.integers(),
                                     st.floats(), st.text(max_size=10)),
                           lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                   st.dictionaries(st.text(max_size=6), inner, max_size=4)),
                           max_leaves=12)


# ----------------------------------------------------------------------------- 1. command-line options
FAMILIES = {"gan": ("cpu-toy", "builtin:ring8?n=256"), "wgan-gp": ("cpu-toy", "builtin:ring8?n=256"),
            "dcgan": ("cpu-digits", "builtin:digits?res=8"), "wgan": ("cpu-toy", "builtin:ring8?n=256"),
            "stylegan2": ("cpu-digits", "builtin:digits?res=8"), "stylegan": ("cpu-digits", "builtin:digits?res=8"),
            "stylegan3": ("cpu-digits", "builtin:digits?res=16")}


def _options(family: str) -> list[str]:
    from gankit.api import get_family
    from gankit.config import apply_overrides, iter_fields
    from gankit.training.config import TrainConfig

    fam = get_family(family)
    names = [f"--model.{n.replace('_', '-')}" for n, _, _ in iter_fields(fam.Config())]
    names += [f"--train.{n.replace('_', '-')}" for n, _, _ in
              iter_fields(apply_overrides(TrainConfig(), fam.train_defaults, "train"))]
    return names + ["--kimg", "--preset"]


OPTIONS = {f: _options(f) for f in FAMILIES}


@st.composite
def train_argv(draw):
    family = draw(st.sampled_from(sorted(FAMILIES)))
    preset, data = FAMILIES[family]
    picked = draw(st.lists(st.sampled_from(OPTIONS[family]), min_size=1, max_size=3, unique=True))
    opts = []
    for name in picked:
        opts += [name, str(draw(values))]
    if draw(st.integers(0, 9)) == 0:  # now and then a bad data spec too
        data = draw(st.sampled_from(["builtin:ring8?n=-5", "builtin:ring8?n=1e11", "builtin:digits?res=abc",
                                     "builtin:shapes?res=3", "builtin:nope", "builtin:ring8?std=nan", "/nonexistent",
                                     "builtin:digits?res=8&zz=1", "builtin:shapes?n=0"]))
    return family, preset, data, opts


@settings(max_examples=int(300 * SCALE), **SETTINGS)
@given(train_argv())
# found by this test: an empty preset's message named neither the option nor the value
@example(("dcgan", "cpu-digits", "builtin:nope", ["--model.resolution", "0", "--preset", "", "--model.channels", "0"]))
def test_train_options_exit_0_or_one_line(case):
    family, preset, data, opts = case
    with tempfile.TemporaryDirectory() as tmp:
        argv = ["train", family, "--data", data, "--out", Path(tmp) / "run", "--dry-run", "--no-progress"]
        if "--preset" not in opts:
            argv += ["--preset", preset]
        code, err = run_main(argv + opts)
        assert not (Path(tmp) / "run").exists()  # a dry run writes nothing
    _count("train options", "accepted" if code == 0 else "refused")
    source, _, query = data.partition("?")
    assert_one_line(code, err, opts + [source, source.removeprefix("builtin:"), query.split("=")[0] or source,
                                       "--model", "--data"])


COMMAND_OPTIONS = {
    "generate": {"--seeds": st.sampled_from(["0-3", "3-1", "-1", "0-99999999999", "1,,2", "x", "0-0", "4294967296"]),
                 "--trunc": values, "--class": values, "--noise": values, "--device": values},
    "mix": {"--rows": st.sampled_from(["0-1", "0-999999", "a", ""]), "--cols": st.sampled_from(["0-1", "5", "-2"]),
            "--styles": st.sampled_from(["coarse", "fine", "0-3", "9-1", "x", "0-99"]), "--trunc": values},
    "eval": {"--num-gen": values, "--batch": values, "--num-real": values, "--trunc": values, "--seed": values,
             "--metrics": st.sampled_from(["fid", "zzz", "", "fid,,kid", "modes"]), "--device": values},
    "export": {"--tolerance": values, "--trunc": values, "--format": st.sampled_from(["torchscript", "zzz"]),
               "--noise": values},
    "interpolate": {"--frames": values, "--fps": values, "--draws": values, "--seeds": st.sampled_from(["0,1", "5"]),
                    "--space": values},
}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A StyleGAN2 run of a few iterations on 8 px digits (for the commands that read a run)."""
    out = tmp_path_factory.mktemp("robust") / "run"
    code, err = run_main(["train", "stylegan2", "--preset", "cpu-digits", "--data", "builtin:digits?res=8", "--out",
                          out, "--kimg", "0.016", "--train.batch-size", "8", "--no-progress", "--train.metrics",
                          "false", "--train.tensorboard", "false", "--model.channel-max", "16"])
    assert code == 0, err
    return out


@settings(max_examples=int(300 * SCALE), **SETTINGS)
@given(st.data())
def test_other_commands_exit_0_or_one_line(tiny_run, data):
    command = data.draw(st.sampled_from(sorted(COMMAND_OPTIONS)))
    picked = data.draw(st.lists(st.sampled_from(sorted(COMMAND_OPTIONS[command])), min_size=1, max_size=2, unique=True))
    opts = []
    for name in picked:
        opts += [name, str(data.draw(COMMAND_OPTIONS[command][name]))]
    with tempfile.TemporaryDirectory() as tmp:
        out = {"generate": "g.png", "mix": "m.png", "eval": "e.json", "export": "g.pt", "interpolate": "v.mp4"}[command]
        argv = [command, tiny_run, "--out", Path(tmp) / out] + opts
        if command == "eval":
            argv += ["--num-gen", "4"] if "--num-gen" not in opts else []
            argv += ["--extractor", "digits", "--no-cache"]
        if command == "interpolate" and "--frames" not in opts:
            argv += ["--frames", "2"]
        for name, default in {"mix": [("--rows", "0-1"), ("--cols", "2-3")], "interpolate": [("--seeds", "0,1")]}.get(
                command, []):
            argv += [name, default] if name not in opts else []
        code, err = run_main(argv)
    _count(f"{command} options", "accepted" if code == 0 else "refused")
    assert_one_line(code, err, opts + ["--out", "--metrics", "--class", "--styles", "--device", "--seeds"])


# ----------------------------------------------------------------------------- 2. config overrides (Python API)
@settings(max_examples=int(300 * SCALE), **SETTINGS)
@given(st.data())
def test_config_overrides_build_or_raise_a_gankit_error(data):
    from gankit.api import get_family, resolve_configs
    from gankit.config import field_names
    from gankit.training.config import TrainConfig

    family = data.draw(st.sampled_from(sorted(FAMILIES)))
    fam = get_family(family)
    model_keys = st.sampled_from(field_names(fam.Config) + ["nope", "z-dim"])
    model = data.draw(st.dictionaries(model_keys, json_values | values, max_size=3))
    train = data.draw(st.dictionaries(st.sampled_from(field_names(TrainConfig) + ["nope"]), json_values | values,
                                      max_size=3))
    try:
        model_cfg, train_cfg = resolve_configs(family, FAMILIES[family][0], {"model": model, "train": train})
        fam.validate(model_cfg)
        with torch.device("meta"):  # the networks' shapes, without their memory
            fam.build_checked(model_cfg)
        outcome = "built"
    except GankitError as e:
        assert "\n" not in str(e)
        outcome = "refused"
    _count("config overrides", outcome)


# ----------------------------------------------------------------------------- 3. dataset.json
@pytest.fixture(scope="module")
def image_names():
    return ["a.png", "b.png", "sub/c.png"]


near_valid_labels = st.builds(
    lambda pairs, extra: {"labels": pairs, **extra},
    st.lists(st.one_of(st.tuples(st.sampled_from(["a.png", "b.png", "sub/c.png", "sub\\c.png", "gone.png", ""]),
                                 st.one_of(st.integers(-3, 70000), st.sampled_from(NASTY_NUMBERS), json_values))
                       .map(list), json_values), max_size=5),
    st.dictionaries(st.text(max_size=5), json_values, max_size=2))


@settings(max_examples=int(300 * SCALE), **SETTINGS)
@given(st.one_of(near_valid_labels, json_values.map(lambda v: {"labels": v}), json_values,
                 st.binary(max_size=64).map(lambda b: ("raw", b))))
@example(doc={"labels": ["\n"]})  # a newline inside an entry once reached the message as written
@example(doc={"labels": [["a.png\n", 0], ["b.png", "1\n"], ["sub/c.png", 0]]})
def test_dataset_json_opens_or_names_the_problem(tmp_path_factory, image_names, doc):
    from gankit.data import open_dataset
    from gankit.data.validate import check
    from gankit.errors import DataError

    root = Path(tempfile.mkdtemp(dir=tmp_path_factory.getbasetemp()))
    try:
        for i, n in enumerate(image_names):
            write_image(root / n, size=(8, 8), seed=i)
        raw = doc[1] if isinstance(doc, tuple) else json.dumps(doc, allow_nan=True).encode()
        (root / "dataset.json").write_bytes(raw)
        try:
            ds = open_dataset(str(root))
            if ds.labels is not None:
                assert len(ds.labels) == 3 and int(ds.labels.min()) >= 0 and ds.info.num_classes == int(ds.labels.max()) + 1
            outcome = "opened"
        except DataError as e:
            assert "\n" not in str(e) and "dataset.json" in str(e)
            outcome = "refused"
        report = check(str(root))  # never raises on a bad dataset.json: it lists the problems
        assert (outcome == "refused") == any(k == "label" for _, k, _ in report.problems)
        _count("dataset.json", outcome)
    finally:
        shutil.rmtree(root, ignore_errors=True)


# ----------------------------------------------------------------------------- 4. checkpoint files
@pytest.fixture(scope="module")
def gan_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ckpt") / "run"
    code, err = run_main(["train", "gan", "--preset", "cpu-toy", "--data", "builtin:ring8?n=256", "--out", out,
                          "--kimg", "0.512", "--no-progress", "--train.metrics", "false", "--train.tensorboard",
                          "false", "--model.g-hidden", "8", "--model.d-hidden", "8"])
    assert code == 0, err
    return out


def _mutate_json(doc, draw):
    """A copy of a JSON document with one value replaced, one key removed, or the whole replaced."""
    how = draw(st.sampled_from(["replace", "drop", "set", "whole"]))
    if how == "whole" or not isinstance(doc, dict):
        return draw(json_values)
    doc = json.loads(json.dumps(doc))
    paths = [(k,) for k in doc] + [(k, j) for k, v in doc.items() if isinstance(v, dict) for j in v]
    path = draw(st.sampled_from(paths))
    target = doc if len(path) == 1 else doc[path[0]]
    if how == "drop":
        del target[path[-1]]
    else:
        target[path[-1]] = draw(json_values | values)
    return doc


def _mutate_state(state: dict, draw) -> dict:
    how = draw(st.sampled_from(["drop", "replace", "rng", "optimizer"]))
    state = dict(state)
    key = draw(st.sampled_from(sorted(state)))
    if how == "drop":
        del state[key]
    elif how == "replace":
        state[key] = draw(st.sampled_from([None, -1, 2 ** 70, "x", [], {}, torch.zeros(3), float("nan"), True]))
    elif how == "rng":
        state["rng"] = draw(st.sampled_from([{}, {"torch": torch.zeros(3), "python": [3, [1], None]},
                                             {"torch": torch.zeros(5056, dtype=torch.uint8), "python": "x"}, None]))
    else:
        state["optimizers"] = draw(st.sampled_from([{}, {"G": {}, "D": {}}, {"G": {"state": {}, "param_groups": []},
                                                                             "D": None}, "x"]))
    return state


def _mutate_weights(tensors: dict, draw) -> dict:
    how = draw(st.sampled_from(["drop", "shape", "dtype", "rename", "nan"]))
    tensors = dict(tensors)
    key = draw(st.sampled_from(sorted(tensors)))
    t = tensors.pop(key)
    if how == "shape":
        tensors[key] = torch.zeros(draw(st.lists(st.integers(0, 5), max_size=3)))
    elif how == "dtype":
        tensors[key] = t.to(draw(st.sampled_from([torch.int64, torch.float16, torch.bool, torch.uint8])))
    elif how == "rename":
        tensors[draw(st.sampled_from(["X." + key, key + "x", "G_ema.extra", "D"]))] = t
    elif how == "nan":
        tensors[key] = torch.full_like(t, float("nan"))
    return tensors


@settings(max_examples=int(400 * SCALE), **SETTINGS)
@given(st.data())
def test_checkpoint_files_load_or_name_the_damage(gan_run, tmp_path_factory, data):
    from safetensors.torch import load_file, save_file

    from gankit.training import checkpoint as ckpt
    from gankit.training.trainer import Trainer

    draw = data.draw
    root = Path(tempfile.mkdtemp(dir=tmp_path_factory.getbasetemp()))
    try:
        run = root / "run"
        shutil.copytree(gan_run, run)
        c = ckpt.list_checkpoints(run)[-1]
        target = draw(st.sampled_from(["config.json", "run config.json", "training_state.pt", "model.safetensors",
                                       "checksums.json", "bytes"]))
        if target in ("config.json", "run config.json"):
            path = c / "config.json" if target == "config.json" else run / "config.json"
            path.write_text(json.dumps(_mutate_json(json.loads(path.read_text()), draw), allow_nan=True))
        elif target == "training_state.pt":
            torch.save(_mutate_state(torch.load(c / "training_state.pt", weights_only=True), draw), c / target)
        elif target == "model.safetensors":
            save_file(_mutate_weights(load_file(str(c / target)), draw), str(c / target))
        elif target == "checksums.json":
            (c / target).write_text(json.dumps(_mutate_json(json.loads((c / target).read_text()), draw)))
        else:  # raw damage: truncation or flipped bytes in any file
            f = c / draw(st.sampled_from(["config.json", "training_state.pt", "model.safetensors", "checksums.json"]))
            b = bytearray(f.read_bytes())
            if draw(st.booleans()):
                b = b[:draw(st.integers(0, len(b)))]
            else:
                for i in draw(st.lists(st.integers(0, len(b) - 1), min_size=1, max_size=4)):
                    b[i] ^= draw(st.integers(1, 255))
            f.write_bytes(bytes(b))
        if target != "checksums.json" and target != "bytes" and draw(st.booleans()):
            ckpt.write_checksums(c)  # as if the file had been written so: the parser, not the checksum, must catch it
        outcomes = []
        try:
            gankit.load(run)
            outcomes.append("loaded")
        except GankitError as e:
            assert "\n" not in str(e)
            outcomes.append("refused")
        try:
            t = Trainer("gan", None, run, resume=True, progress=False)
            t.setup(dry_run=True)
            outcomes.append("resumed")
        except GankitError as e:
            assert "\n" not in str(e)
            outcomes.append("refused")
        code, err = run_main(["generate", run, "--seeds", "0-1", "--out", root / "g.png"])
        assert_one_line(code, err, [str(run), "config.json", "model.safetensors", "training_state.pt", "checksums.json",
                                    "checkpoint"])
        _count(f"checkpoint {target}", "/".join(outcomes))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_zz_print_statistics():
    """Prints how many examples each kind ran and how they ended (run with -s to see it)."""
    for kind, outcomes in sorted(STATS.items()):
        print(f"{kind:32s} {sum(outcomes.values()):5d} examples: {outcomes}")
