"""Import of NVIDIA stylegan2-ada-pytorch pickles: round trip through the foreign layout, refusal of
pickles that would run code."""
import collections
import os
import pickle
import sys
import types

import pytest
import torch

import gankit
from gankit.tools.official_import import UnsafePickleError, import_nvidia

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


def to_nvidia(module, fn, easydict, marker, init_kwargs=None):
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
    return Persistent(fn, {"type": "class", "version": 4, "module_src": src, "class_name": type(module).__name__,
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
    torch.save({"g_ema": {}}, tmp_path / "rosinality.pt")
    p = run_cli("import", tmp_path / "rosinality.pt", "--out", tmp_path / "run3")
    assert p.returncode == 2 and "not these yet" in p.stderr
