"""Import of NVIDIA stylegan2-ada-pytorch pickles and rosinality stylegan2-pytorch checkpoints: round
trips through each foreign layout, refusal of files that would run code."""
import argparse
import collections
import os
import pickle
import sys
import types

import pytest
import torch

import gankit
from gankit.tools.official_import import UnsafePickleError, import_checkpoint, import_nvidia

from .conftest import run_cli


@pytest.fixture
def nvidia_modules(monkeypatch):
    """Stand-ins for NVIDIA's ``torch_utils.persistence`` and ``dnnlib.util`` while the test writes a
    pickle in their layout (the importer never imports them)."""
    tu, pers = types.ModuleType("torch_utils"), types.ModuleType("torch_utils.persistence")
    dn, util = types.ModuleType("dnnlib"), types.ModuleType("dnnlib.util")

    def _reconstruct_persistent_obj(meta):  # pragma: no cover - only its name is pickled
        raise AssertionError

    class EasyDict(dict):
        pass

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    EasyDict.__module__, EasyDict.__qualname__ = "dnnlib.util", "EasyDict"
    pers._reconstruct_persistent_obj, util.EasyDict = _reconstruct_persistent_obj, EasyDict
    for name, mod in (("torch_utils", tu), ("torch_utils.persistence", pers), ("dnnlib", dn), ("dnnlib.util", util)):
        monkeypatch.setitem(sys.modules, name, mod)
    return pers, util


class Persistent:
    def __init__(self, fn, meta):
        self.fn, self.meta = fn, meta

    def __reduce__(self):
        return self.fn, (self.meta,)


def to_nvidia(module, fn, easydict, marker, init_kwargs=None, class_name=None):
    """Our module as NVIDIA's persistent object: same names, noise inputs on the layer itself, and
    module source that would create ``marker`` if anything ran it."""
    params, buffers = collections.OrderedDict(module._parameters), collections.OrderedDict(module._buffers)
    children = collections.OrderedDict()
    for name, child in module._modules.items():
        if type(child).__name__ == "NoiseInput":
            params["noise_strength"], buffers["noise_const"] = child.noise_strength, child.noise_const
        else:
            children[name] = to_nvidia(child, fn, easydict, marker)
    state = {"training": False, "_parameters": params, "_buffers": buffers, "_modules": children,
             "_init_args": (), "_init_kwargs": easydict(init_kwargs or {})}
    src = f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"
    return Persistent(fn, {"type": "class", "version": 4, "module_src": src,
                           "class_name": class_name or type(module).__name__,
                           "state": state})


def test_import_round_trips_an_nvidia_pickle(tmp_path, nvidia_modules):
    pers, util = nvidia_modules
    cfg = dict(resolution=16, z_dim=32, w_dim=32, mapping_layers=2, channel_base=512, channel_max=32,
               conditional=True, c_dim=3, conv_clamp=256.0)
    torch.manual_seed(0)
    m = gankit.create("stylegan2", **cfg)
    G_ema = gankit.create("stylegan2", **cfg).G
    for p in G_ema.parameters():  # distinct EMA weights, so G and G_ema are told apart
        p.data.add_(0.01 * torch.randn_like(p))
    G_ema.mapping.w_avg.normal_()
    marker = tmp_path / "code-ran"
    g_kwargs = {"z_dim": 32, "c_dim": 3, "w_dim": 32, "img_resolution": 16, "img_channels": 3,
                "mapping_kwargs": {"num_layers": 2},
                "synthesis_kwargs": {"channel_base": 512, "channel_max": 32, "num_fp16_res": 0, "conv_clamp": 256}}
    d_kwargs = {"c_dim": 3, "img_resolution": 16, "img_channels": 3, "architecture": "resnet",
                "channel_base": 512, "channel_max": 32, "conv_clamp": 256,
                "epilogue_kwargs": {"mbstd_group_size": 4}}
    fn = pers._reconstruct_persistent_obj
    data = {"G": to_nvidia(m.G, fn, util.EasyDict, marker, g_kwargs),
            "D": to_nvidia(m.D, fn, util.EasyDict, marker, d_kwargs),
            "G_ema": to_nvidia(G_ema, fn, util.EasyDict, marker, g_kwargs),
            "training_set_kwargs": util.EasyDict(resolution=16), "augment_pipe": None}
    pkl = tmp_path / "network-snapshot.pkl"
    with open(pkl, "wb") as f:
        pickle.dump(data, f)

    p = run_cli("import", pkl, "--out", tmp_path / "run")
    assert p.returncode == 0, p.stderr
    assert not marker.exists()  # the module source in the pickle never ran
    G = gankit.load(tmp_path / "run")
    z, c = torch.randn(4, 32), torch.eye(3)[[0, 1, 2, 0]]
    G_ema.eval()
    with torch.no_grad():
        for psi in (1.0, 0.7):
            ref = G_ema(z, c, truncation_psi=psi, noise_mode="const")
            assert torch.equal(G(z, c, truncation_psi=psi, noise_mode="const"), ref)  # the EMA generator, exactly
    from gankit.api import load_bundle

    bundle, _, config = load_bundle(tmp_path / "run")
    assert config["imported_from"]["format"].startswith("stylegan2-ada")
    assert all(torch.equal(a, b) for a, b in zip(bundle.D.state_dict().values(), m.D.state_dict().values()))


def test_import_refuses_a_pickle_that_runs_code(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    pkl = tmp_path / "evil.pkl"
    pkl.write_bytes(pickle.dumps({"G_ema": Evil()}))
    with pytest.raises(UnsafePickleError, match="system"):
        import_nvidia(pkl, tmp_path / "run")
    p = run_cli("import", pkl, "--out", tmp_path / "run")
    assert p.returncode == 2 and "will not run" in p.stderr and "Traceback" not in p.stderr
    assert not marker.exists() and not (tmp_path / "run").exists()
    (tmp_path / "junk.pkl").write_bytes(b"not a pickle")
    p = run_cli("import", tmp_path / "junk.pkl", "--out", tmp_path / "run2")
    assert p.returncode == 2 and "junk.pkl" in p.stderr
    torch.save({"g_ema": {"input.input": torch.zeros(1, 8, 4, 4)}}, tmp_path / "partial.pt")
    p = run_cli("import", tmp_path / "partial.pt", "--out", tmp_path / "run3")
    assert p.returncode == 2 and "partial.pt" in p.stderr and "Traceback" not in p.stderr


def test_import_refuses_a_torch_archive_that_runs_code(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    torch.save({"g_ema": {"input.input": torch.zeros(1)}, "args": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(UnsafePickleError, match="system"):
        import_checkpoint(tmp_path / "evil.pt", tmp_path / "run")
    assert not marker.exists() and not (tmp_path / "run").exists()


def to_rosinality(G, D, style_dim):
    """gankit G and D state as rosinality's stylegan2-pytorch ``Generator`` / ``Discriminator`` state
    dicts, written from their module structure (model.py): ``style`` Sequential with PixelNorm at 0,
    weights with a leading 1, FusedLeakyReLU biases, (1,) noise weights, noise buffers in ``noises``,
    blur kernels, and ConvLayer Sequentials in D."""
    g, d = G.state_dict(), D.state_dict()
    blur = torch.tensor([1.0, 3, 3, 1])
    blur = torch.outer(blur, blur) / 64
    out = {}
    for i in range(G.mapping.num_layers):
        out[f"style.{i + 1}.weight"], out[f"style.{i + 1}.bias"] = g[f"mapping.fc{i}.weight"], g[f"mapping.fc{i}.bias"]
    out["input.input"] = g["synthesis.b4.const"][None]

    def styled(theirs, ours, noise_index, up):
        out[f"{theirs}.conv.weight"] = g[f"{ours}.weight"][None]
        out[f"{theirs}.conv.modulation.weight"] = g[f"{ours}.affine.weight"]
        out[f"{theirs}.conv.modulation.bias"] = g[f"{ours}.affine.bias"]
        out[f"{theirs}.noise.weight"] = g[f"{ours}.noise.noise_strength"].reshape(1)
        out[f"{theirs}.activate.bias"] = g[f"{ours}.bias"]
        out[f"noises.noise_{noise_index}"] = g[f"{ours}.noise.noise_const"][None, None]
        if up:
            out[f"{theirs}.conv.blur.kernel"] = blur * 4

    def torgb(theirs, ours, up):
        out[f"{theirs}.conv.weight"] = g[f"{ours}.weight"][None]
        out[f"{theirs}.conv.modulation.weight"] = g[f"{ours}.affine.weight"]
        out[f"{theirs}.conv.modulation.bias"] = g[f"{ours}.affine.bias"]
        out[f"{theirs}.bias"] = g[f"{ours}.bias"].view(1, -1, 1, 1)
        if up:
            out[f"{theirs}.upsample.kernel"] = blur * 4

    styled("conv1", "synthesis.b4.conv1", 0, False)
    torgb("to_rgb1", "synthesis.b4.torgb", False)
    res = G.synthesis.block_resolutions[1:]
    for j, r in enumerate(res):
        styled(f"convs.{2 * j}", f"synthesis.b{r}.conv0", 2 * j + 1, True)
        styled(f"convs.{2 * j + 1}", f"synthesis.b{r}.conv1", 2 * j + 2, False)
        torgb(f"to_rgbs.{j}", f"synthesis.b{r}.torgb", True)
    size = res[-1]
    dd = {"convs.0.0.weight": d[f"b{size}.fromrgb.weight"], "convs.0.1.bias": d[f"b{size}.fromrgb.bias"]}
    for k, r in enumerate(reversed(res), start=1):
        dd.update({f"convs.{k}.conv1.0.weight": d[f"b{r}.conv0.weight"], f"convs.{k}.conv1.1.bias": d[f"b{r}.conv0.bias"],
                   f"convs.{k}.conv2.0.kernel": blur, f"convs.{k}.conv2.1.weight": d[f"b{r}.conv1.weight"],
                   f"convs.{k}.conv2.2.bias": d[f"b{r}.conv1.bias"], f"convs.{k}.skip.0.kernel": blur,
                   f"convs.{k}.skip.1.weight": d[f"b{r}.skip.weight"]})
    dd.update({"final_conv.0.weight": d["b4.conv.weight"], "final_conv.1.bias": d["b4.conv.bias"],
               "final_linear.0.weight": d["b4.fc.weight"], "final_linear.0.bias": d["b4.fc.bias"],
               "final_linear.1.weight": d["b4.out.weight"], "final_linear.1.bias": d["b4.out.bias"]})
    return {k: v.clone() for k, v in out.items()}, {k: v.clone() for k, v in dd.items()}


@pytest.mark.parametrize("with_latent_avg", [True, False])
def test_import_round_trips_a_rosinality_checkpoint(tmp_path, with_latent_avg):
    # widths min(1024 / r, 64): 64 up to 16 px, 32 at 32 px, so the importer must recover base and cap
    cfg = dict(resolution=32, z_dim=16, w_dim=16, mapping_layers=3, channel_base=1024, channel_max=64)
    torch.manual_seed(1)
    m = gankit.create("stylegan2", **cfg)
    G_ema = gankit.create("stylegan2", **cfg).G
    for net in (m.G, G_ema, m.D):
        for p in net.parameters():
            p.data.add_(0.05 * torch.randn_like(p))
    for net in (m.G, G_ema):
        for mod in net.modules():
            if type(mod).__name__ == "NoiseInput":
                mod.noise_strength.data.fill_(0.2)
    G_ema.mapping.w_avg.normal_()
    g, d = to_rosinality(m.G, m.D, 16)
    g_ema, _ = to_rosinality(G_ema, m.D, 16)
    args = argparse.Namespace(size=32, latent=16, n_mlp=3, channel_multiplier=1, batch=16, path="data.lmdb")
    ckpt = {"g": g, "d": d, "g_ema": g_ema, "g_optim": {"state": {}, "param_groups": [{"lr": 0.002}]},
            "d_optim": {"state": {}, "param_groups": []}, "args": args, "ada_aug_p": 0.0}
    if with_latent_avg:
        ckpt["latent_avg"] = G_ema.mapping.w_avg.clone()[None]
    torch.save(ckpt, tmp_path / "050000.pt")

    p = run_cli("import", tmp_path / "050000.pt", "--out", tmp_path / "run")
    assert p.returncode == 0, p.stderr
    from gankit.api import load_bundle

    bundle, _, config = load_bundle(tmp_path / "run")
    assert config["imported_from"]["options"]["path"] == "data.lmdb"
    assert (config["model"]["channel_base"], config["model"]["channel_max"]) == (1024, 64)
    G = gankit.load(tmp_path / "run")
    z = torch.randn(4, 16)
    G_ema.eval()
    with torch.no_grad():
        if with_latent_avg:
            assert torch.equal(G.mapping.w_avg, G_ema.mapping.w_avg)
        else:  # the mean of 10,000 w: within 5 standard errors of the mean of another 20,000
            ref = G_ema.mapping(torch.randn(20000, 16), None, update_w_avg=False)[:, 0]
            tol = 5 * ref.std(0) * (1 / 10000 + 1 / 20000) ** 0.5
            assert ((G.mapping.w_avg - ref.mean(0)).abs() < tol).all()
            assert (ref.mean(0).abs() > tol).any()  # a zero w_avg would fail
        G_ema.mapping.w_avg.copy_(G.mapping.w_avg)
        for psi in (1.0, 0.6):
            ref = G_ema(z, truncation_psi=psi, noise_mode="const")
            assert torch.equal(G(z, truncation_psi=psi, noise_mode="const"), ref)
        x = torch.randn(4, 3, 32, 32)
        assert torch.equal(bundle.D(x), m.D(x))
        assert torch.equal(bundle.G.synthesis.b16.conv0.weight, m.G.synthesis.b16.conv0.weight)  # G, not G_ema


def test_import_round_trips_a_stylegan3_pickle(tmp_path, nvidia_modules):
    pers, util = nvidia_modules
    cfg = dict(resolution=16, z_dim=16, w_dim=16, channel_base=512, channel_max=16, num_layers=4, margin_size=2,
               d_channel_base=256, d_channel_max=16, conv_kernel=1, use_radial_filters=True)
    torch.manual_seed(2)
    m = gankit.create("stylegan3", **cfg)
    for p in m.G.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    with torch.no_grad():
        m.G.synthesis(m.G.mapping(torch.randn(8, 16), None), update_emas=True)  # magnitudes away from 1
    m.G.mapping.w_avg.normal_()
    g_kwargs = {"z_dim": 16, "c_dim": 0, "w_dim": 16, "img_resolution": 16, "img_channels": 3,
                "mapping_kwargs": {"num_layers": 2}, "channel_base": 512, "channel_max": 16, "num_layers": 4,
                "margin_size": 2, "conv_kernel": 1, "use_radial_filters": True, "magnitude_ema_beta": 0.999,
                "num_fp16_res": 4, "conv_clamp": 256}
    d_kwargs = {"c_dim": 0, "img_resolution": 16, "img_channels": 3, "channel_base": 256, "channel_max": 16,
                "conv_clamp": 256, "epilogue_kwargs": {"mbstd_group_size": 4}}
    fn, marker = pers._reconstruct_persistent_obj, tmp_path / "code-ran"
    G_nv = to_nvidia(m.G, fn, util.EasyDict, marker, g_kwargs, class_name="Generator")
    data = {"G": G_nv, "D": to_nvidia(m.D, fn, util.EasyDict, marker, d_kwargs), "G_ema": G_nv, "augment_pipe": None}
    with open(tmp_path / "sg3.pkl", "wb") as f:
        pickle.dump(data, f)
    p = run_cli("import", tmp_path / "sg3.pkl", "--out", tmp_path / "run")
    assert p.returncode == 0, p.stderr
    assert not marker.exists()
    from gankit.api import load_bundle

    bundle, _, config = load_bundle(tmp_path / "run")
    assert config["family"] == "stylegan3" and config["model"]["conv_kernel"] == 1
    G = gankit.load(tmp_path / "run")
    z = torch.randn(4, 16)
    m.G.eval()
    with torch.no_grad():
        for psi in (1.0, 0.5):
            assert torch.equal(G(z, truncation_psi=psi), m.G(z, truncation_psi=psi))
        x = torch.randn(4, 3, 16, 16)
        assert torch.equal(bundle.D(x), m.D(x))


class _Reduce:
    """Pickles as ``fn(*args)`` followed by BUILD ``state``: hand-made pickles of numpy internals."""

    def __init__(self, fn, args, state=None):
        self.fn, self.args, self.state = fn, args, state

    def __reduce__(self):
        return (self.fn, self.args) if self.state is None else (self.fn, self.args, self.state)


def _numpy_attacks():
    """Pickles that make numpy read memory at an address the file chooses, or hand out memory
    the file never filled (each crashed or misbehaved with numpy's own reconstructors)."""
    import numpy as np

    mm = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray
    pointer = (0x4141414141414141).to_bytes(8, "little")
    obj = _Reduce(np.dtype, ("O8", False, True), (3, "|", None, None, None, -1, -1, 0x3F))
    hidden = _Reduce(np.dtype, ("V8", False, True), (3, "|", None, ("a",), {"a": (obj, 0)}, 8, 1, 0))
    flagged = _Reduce(np.dtype, ("f8", False, True), (3, "<", None, None, None, -1, -1, 0x3F))
    array = lambda dt: _Reduce(mm._reconstruct, (np.ndarray, (0,), b"b"), (1, (1,), dt, False, pointer))  # noqa: E731
    return {"structured dtype hiding an object field": array(hidden),
            "object dtype": array(obj),
            "dtype with flags": array(flagged),
            "object scalar": _Reduce(mm.scalar, (obj, pointer))}


@pytest.mark.parametrize("attack", list(_numpy_attacks()))
def test_import_refuses_numpy_objects_built_from_raw_bytes(tmp_path, attack):
    pkl = tmp_path / "attack.pkl"
    pkl.write_bytes(pickle.dumps({"G_ema": {}, "progress": {"cur_nimg": _numpy_attacks()[attack]}}, protocol=4))
    p = run_cli("import", pkl, "--out", tmp_path / "run")  # a subprocess: a crash fails the test, not pytest
    assert p.returncode == 2, (p.returncode, p.stderr[-2000:])
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "attack.pkl" in lines[0] and "numpy dtype" in lines[0], p.stderr
    assert not (tmp_path / "run").exists()


def test_import_reads_plain_numpy_values_and_bounds_tensor_views():
    import io

    import numpy as np

    from gankit.tools.official_import import SafeUnpickler, UnsafePickleError, plain_data

    data = {"f": np.float64(1.5), "i": np.arange(6, dtype=">i2").reshape(2, 3), "b": np.bool_(True),
            "F": np.asfortranarray(np.ones((2, 3), np.float32)), "t": torch.arange(5.0)}
    for protocol in (3, 4, 5):
        out = plain_data(SafeUnpickler(io.BytesIO(pickle.dumps(data, protocol=protocol)), "x").load())
        assert all(np.array_equal(out[k], data[k]) for k in "fibF") and torch.equal(out["t"], data["t"])
        assert out["i"].dtype == np.dtype(">i2") and isinstance(out["f"], np.float64)
    # a view that reaches past its storage would make torch grow the storage with memory the file never filled
    t = torch.arange(4.0)
    blob = pickle.dumps({"t": t}, protocol=4)
    storage = torch._utils._rebuild_tensor_v2
    evil = pickle.dumps({"t": _Reduce(storage, (t.storage(), 0, (4,), (1000,), False, collections.OrderedDict()))},
                        protocol=4)
    assert torch.equal(plain_data(SafeUnpickler(io.BytesIO(blob), "x").load())["t"], t)
    with pytest.raises(UnsafePickleError, match="reaches element"):
        SafeUnpickler(io.BytesIO(evil), "x").load()


def _tiny_nvidia_pickle(tmp_path, pers, util, g_changes=None, progress=None):
    cfg = dict(resolution=8, z_dim=8, w_dim=8, mapping_layers=1, channel_base=64, channel_max=8)
    m = gankit.create("stylegan2", **cfg)
    g_kwargs = {"z_dim": 8, "c_dim": 0, "w_dim": 8, "img_resolution": 8, "img_channels": 3,
                "mapping_kwargs": {"num_layers": 1}, "synthesis_kwargs": {"channel_base": 64, "channel_max": 8},
                **(g_changes or {})}
    fn = pers._reconstruct_persistent_obj
    data = {"G_ema": to_nvidia(m.G, fn, util.EasyDict, tmp_path / "ran", g_kwargs), "progress": progress or {}}
    pkl = tmp_path / "net.pkl"
    with open(pkl, "wb") as f:
        pickle.dump(data, f)
    return pkl


@pytest.mark.parametrize("change, needle", [
    ({"g": {"img_resolution": 2 ** 20}}, "resolution"),
    ({"g": {"img_resolution": 0}}, "resolution"),
    ({"g": {"z_dim": "512"}}, "z_dim"),
    ({"g": {"mapping_kwargs": [1, 2]}}, "mapping_kwargs"),
    ({"progress": {"cur_nimg": -5}}, "cur_nimg"),
    ({"progress": {"cur_nimg": float("nan")}}, "cur_nimg"),
])
def test_import_checks_every_value_it_takes_from_the_file(tmp_path, nvidia_modules, change, needle):
    pers, util = nvidia_modules
    pkl = _tiny_nvidia_pickle(tmp_path, pers, util, change.get("g"), change.get("progress"))
    from gankit.errors import CheckpointError

    with pytest.raises(CheckpointError, match=needle):
        import_nvidia(pkl, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_import_into_a_non_empty_folder_needs_force(tmp_path, nvidia_modules):
    pers, util = nvidia_modules
    pkl = _tiny_nvidia_pickle(tmp_path, pers, util)
    run = tmp_path / "run"
    p = run_cli("train", "gan", "--data", "builtin:ring8?n=256", "--out", run, "--kimg", "0.1", "--preset", "cpu-toy",
                "--train.tensorboard", "false", "--train.metrics", "false", "--no-progress")
    assert p.returncode == 0, p.stderr
    before = {q: q.read_bytes() for q in run.rglob("*") if q.is_file()}
    p = run_cli("import", pkl, "--out", run)
    assert p.returncode == 2 and "not empty" in p.stderr and "--force" in p.stderr, p.stderr
    assert {q: q.read_bytes() for q in run.rglob("*") if q.is_file()} == before  # the run is untouched
    p = run_cli("import", pkl, "--out", run, "--force")
    assert p.returncode == 0, p.stderr
    import json

    assert json.loads((run / "config.json").read_text())["family"] == "stylegan2"
    assert not (run / "log.jsonl").exists() and len(list((run / "checkpoints").iterdir())) == 1  # replaced whole
    assert not [q for q in tmp_path.iterdir() if q.name.startswith(".run.")]  # no temporary folders left
    (tmp_path / "empty").mkdir()
    assert run_cli("import", pkl, "--out", tmp_path / "empty").returncode == 0  # an empty folder is fine
