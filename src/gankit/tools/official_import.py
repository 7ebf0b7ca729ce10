"""Import of NVIDIA stylegan2-ada-pytorch generators (``.pkl``) into gankit runs, without running
any code from the pickle.

NVIDIA's pickles hold "persistent" objects: each network is stored with the *source code* of its
module, which ``torch_utils.persistence`` executes when the pickle is loaded normally. gankit reads
them with :class:`SafeUnpickler`, which knows a short list of globals and rebuilds only data:

* tensors and parameters (``torch._utils._rebuild_tensor_v2`` / ``_rebuild_parameter``; storages
  through ``torch.load(weights_only=True)``), ``collections.OrderedDict``, ``dnnlib.EasyDict``;
* ``torch_utils.persistence._reconstruct_persistent_obj``: the object's saved ``__dict__`` becomes
  a :class:`PersistentStub` (its ``module_src`` is kept as a string and never executed).

Any other global (``os.system``, ``builtins.eval``, ...) is refused with :class:`UnsafePickleError`
before anything runs. Parameter names then map one to one onto gankit's StyleGAN2 (which uses
NVIDIA's names); the only renaming is the noise inputs, which gankit keeps in a ``noise`` child:
``...convN.noise_const`` -> ``...convN.noise.noise_const`` (and ``noise_strength``).
"""
from __future__ import annotations

import collections
import io
import json
import pickle
from pathlib import Path

import torch

from ..errors import CheckpointError, GankitError


class UnsafePickleError(GankitError):
    """A pickle that asks for code gankit will not run."""


class PersistentStub:
    """Data of one NVIDIA persistent object: ``class_name``, ``module_src`` (text, not run) and ``state``."""

    def __init__(self, meta: dict):
        self.class_name = meta.get("class_name")
        self.module_src = meta.get("module_src")
        self.state = meta.get("state") or {}

    def tensors(self, prefix: str = "") -> dict[str, torch.Tensor]:
        """Parameters and buffers of this object and its children, by dotted name."""
        out = {}
        for key in ("_parameters", "_buffers"):
            for name, t in (self.state.get(key) or {}).items():
                if isinstance(t, torch.Tensor):
                    out[prefix + name] = t.detach()
        for name, child in (self.state.get("_modules") or {}).items():
            if isinstance(child, PersistentStub):
                out.update(child.tensors(f"{prefix}{name}."))
            elif child is not None:
                raise CheckpointError(f"module {prefix}{name} is a {type(child).__name__}, not network data")
        return out

    @property
    def init_kwargs(self) -> dict:
        """The constructor's keyword arguments, which NVIDIA's persistence keeps as ``_init_kwargs``."""
        return dict(self.state.get("_init_kwargs") or self.state.get("init_kwargs") or {})


def _load_storage(b: bytes):
    return torch.load(io.BytesIO(b), map_location="cpu", weights_only=True)


def _rebuild_parameter(data, requires_grad, backward_hooks, *rest):
    return torch.nn.Parameter(data, requires_grad)


class _EasyDict(dict):
    pass


class SafeUnpickler(pickle.Unpickler):
    """Resolves only the globals in ``ALLOWED``; anything else raises :class:`UnsafePickleError`."""

    ALLOWED = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch.storage", "_load_from_bytes"): _load_storage,
        ("dnnlib.util", "EasyDict"): _EasyDict,
        ("torch_utils.persistence", "_reconstruct_persistent_obj"): PersistentStub,
        ("builtins", "set"): set,
    }
    try:  # numpy arrays and scalars (training options in some pickles): data constructors only
        import numpy as np

        _mm = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray
        for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
            ALLOWED[(mod, "_reconstruct")] = _mm._reconstruct
            ALLOWED[(mod, "scalar")] = _mm.scalar
        ALLOWED[("numpy", "ndarray")] = np.ndarray
        ALLOWED[("numpy", "dtype")] = np.dtype
    except (ImportError, AttributeError):  # pragma: no cover
        pass

    def __init__(self, file, source: str):
        super().__init__(file)
        self.source = source

    def find_class(self, module: str, name: str):
        fn = self.ALLOWED.get((module, name))
        if fn is None:
            raise UnsafePickleError(f"{self.source}: the pickle asks for {module}.{name}, which gankit will not run; "
                                    f"only NVIDIA stylegan2-ada-pytorch network pickles are read (data only)")
        return fn


def read_pickle(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file; give an NVIDIA .pkl")
    import zipfile

    if zipfile.is_zipfile(path):
        raise CheckpointError(f"{path}: a torch.save archive (rosinality's stylegan2-pytorch .pt?); gankit imports "
                              f"NVIDIA stylegan2-ada-pytorch .pkl files, not these yet")
    try:
        with open(path, "rb") as f:
            data = SafeUnpickler(f, str(path)).load()
    except UnsafePickleError:
        raise
    except Exception as e:
        raise CheckpointError(f"{path}: not a readable network pickle ({type(e).__name__}: {str(e)[:200]})") from None
    if not isinstance(data, dict) or not any(isinstance(data.get(k), PersistentStub) for k in ("G_ema", "G")):
        raise CheckpointError(f"{path}: no G or G_ema network in this pickle")
    return data


def nvidia_config(G: PersistentStub, D: PersistentStub | None) -> dict:
    """gankit ``stylegan2`` model config from the networks' ``init_kwargs`` (NVIDIA's defaults where absent)."""
    g = G.init_kwargs
    if G.class_name not in (None, "Generator") or "synthesis_kwargs" not in g and "img_resolution" not in g:
        raise CheckpointError(f"network class {G.class_name!r} is not a stylegan2-ada Generator "
                              f"(StyleGAN3 pickles are not supported yet)")
    syn, mp = dict(g.get("synthesis_kwargs") or {}), dict(g.get("mapping_kwargs") or {})
    if "channel_base" not in syn and any(k.startswith("conv_kernel") or k == "num_layers" for k in syn):
        raise CheckpointError("this pickle's synthesis network is StyleGAN3's, which gankit does not have yet")
    d = D.init_kwargs if D is not None else {}
    epi = dict(d.get("epilogue_kwargs") or {})
    c_dim = int(g.get("c_dim", 0))
    return {"resolution": int(g["img_resolution"]), "channels": int(g.get("img_channels", 3)),
            "z_dim": int(g.get("z_dim", 512)), "w_dim": int(g.get("w_dim", 512)),
            "conditional": c_dim > 0, "c_dim": c_dim,
            "mapping_layers": int(mp.get("num_layers", 8)), "mapping_lr_mul": float(mp.get("lr_multiplier", 0.01)),
            "w_avg_beta": float(mp.get("w_avg_beta", 0.995)),
            "channel_base": int(syn.get("channel_base", 32768)), "channel_max": int(syn.get("channel_max", 512)),
            "g_architecture": syn.get("architecture", "skip"), "d_architecture": d.get("architecture", "resnet"),
            "conv_clamp": float(syn.get("conv_clamp") or 0.0),
            "mbstd_group": int(epi.get("mbstd_group_size", 4) or 1),
            "mbstd_channels": int(epi.get("mbstd_num_channels", 1))}


def map_nvidia_keys(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """NVIDIA parameter names -> gankit's (noise inputs move into their ``noise`` child)."""
    out = {}
    for k, v in tensors.items():
        head, _, leaf = k.rpartition(".")
        if leaf in ("noise_const", "noise_strength"):
            k = f"{head}.noise.{leaf}" if head else f"noise.{leaf}"
        out[k] = v
    return out


GANKIT_ONLY = ("pl_mean",)  # training state gankit keeps in G (NVIDIA keeps it in the loss): starts at 0


def load_matching(module: torch.nn.Module, tensors: dict[str, torch.Tensor], what: str) -> None:
    """Loads ``tensors`` into ``module``: every entry of the module must be present with its shape;
    extra entries must be fixed buffers that equal gankit's (e.g. resampling filters)."""
    own = module.state_dict()
    tensors = {**{k: own[k] for k in GANKIT_ONLY if k in own}, **tensors}
    missing = [k for k in own if k not in tensors]
    bad = [k for k in own if k in tensors and tuple(tensors[k].shape) != tuple(own[k].shape)]
    if missing or bad:
        raise CheckpointError(f"{what}: does not fit gankit's network (missing {missing[:3]}, wrong shapes {bad[:3]})")
    extra = [k for k in tensors if k not in own]
    for k in extra:
        if not k.endswith("resample_filter"):
            raise CheckpointError(f"{what}: has {k}, which gankit's network does not have")
    module.load_state_dict({k: tensors[k].to(own[k].dtype) for k in own})


def import_nvidia(pkl: str | Path, out: str | Path) -> Path:
    """Converts an NVIDIA stylegan2-ada-pytorch ``.pkl`` into a gankit run folder; returns the checkpoint."""
    import gankit

    from ..api import resolve_configs
    from ..config import to_dict
    from ..training import checkpoint as ckpt

    data = read_pickle(pkl)
    G_src = data.get("G_ema") or data.get("G")
    cfg = nvidia_config(G_src, data.get("D"))
    bundle = gankit.create("stylegan2", **cfg)
    nets = {"G_ema": G_src, "G": data.get("G") or G_src, "D": data.get("D")}
    tensors = {}
    G_ema = gankit.create("stylegan2", **cfg).G
    for name, module in (("G", bundle.G), ("G_ema", G_ema), ("D", bundle.D)):
        src = nets[name]
        if src is None:  # a pickle without D: keep gankit's initial D so the run still loads
            tensors.update(ckpt.state_tensors(name, module))
            continue
        load_matching(module, map_nvidia_keys(src.tensors()), f"{pkl} {name}")
        tensors.update(ckpt.state_tensors(name, module))
    _, train_cfg = resolve_configs("stylegan2", None, {"model": cfg})
    config = {"format": "gankit-run/1", "family": "stylegan2", "preset": None, "gankit_version": gankit.__version__,
              "model": to_dict(bundle.config), "train": to_dict(train_cfg),
              "imported_from": {"file": str(pkl), "format": "stylegan2-ada-pytorch pkl"}}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt.atomic_write_text(out / "config.json", json.dumps(config, indent=2))
    nimg = int(data.get("progress", {}).get("cur_nimg", 0)) if isinstance(data.get("progress"), dict) else 0
    return ckpt.save_checkpoint(out, nimg, tensors, {"imported": True}, config)
