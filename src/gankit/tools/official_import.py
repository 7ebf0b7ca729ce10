"""Import of foreign StyleGAN2 checkpoints into gankit runs, without running any code from them:
NVIDIA stylegan2-ada-pytorch network pickles (``.pkl``) and rosinality's stylegan2-pytorch
checkpoints (``.pt``). :func:`import_checkpoint` tells them apart and writes a gankit run.

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

rosinality's ``.pt`` files are ``torch.save`` archives of state dicts plus the training options
(an ``argparse.Namespace``); they are read with ``torch.load(weights_only=True)``, which is
allowed to rebuild that one class as plain data. :data:`ROSINALITY_G` and :data:`ROSINALITY_D`
document the key mapping.
"""
from __future__ import annotations

import collections
import io
import json
import math
import os
import pickle
import shutil
import tempfile
import warnings
from pathlib import Path

import torch

from ..errors import CheckpointError, GankitError


class UnsafePickleError(GankitError):
    """A pickle that asks for code gankit will not run."""


class PersistentStub:
    """Data of one NVIDIA persistent object: ``class_name``, ``module_src`` (text, not run) and ``state``."""

    def __init__(self, meta: dict):
        if not isinstance(meta, dict):
            raise UnsafePickleError(f"a persistent object's data is a {type(meta).__name__}, not a dict")
        self.class_name = meta.get("class_name")
        self.module_src = meta.get("module_src")
        self.state = meta.get("state") or {}
        if not isinstance(self.class_name, (str, type(None))) or not isinstance(self.module_src, (str, type(None))) \
                or not isinstance(self.state, dict):
            raise UnsafePickleError("a persistent object's class name, source or state has the wrong type")

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
        return _mapping(self.state.get("_init_kwargs") or self.state.get("init_kwargs"), "init_kwargs")


def _load_storage(b: bytes):
    if not isinstance(b, (bytes, bytearray)):
        raise UnsafePickleError("a tensor storage is not bytes")
    storage = torch.load(io.BytesIO(b), map_location="cpu", weights_only=True)
    if not isinstance(storage, (torch.TypedStorage, torch.UntypedStorage)):
        raise UnsafePickleError(f"a tensor storage holds a {type(storage).__name__}")
    return storage


def _rebuild_tensor(storage, offset, size, stride, requires_grad=False, backward_hooks=None, *rest):
    """``torch._utils._rebuild_tensor_v2`` for data only: the view must lie inside its storage (torch
    would grow the storage instead, handing out uninitialised memory or allocating what the file
    asks), and no backward hooks are kept."""
    if not isinstance(storage, (torch.TypedStorage, torch.UntypedStorage)):
        raise UnsafePickleError(f"a tensor is built on a {type(storage).__name__}, not a storage")
    ints = lambda xs: isinstance(xs, (tuple, list)) and all(type(v) is int and v >= 0 for v in xs)  # noqa: E731
    if type(offset) is not int or offset < 0 or not ints(size) or not ints(stride) or len(size) != len(stride) \
            or len(size) > 16:
        raise UnsafePickleError("a tensor's offset, sizes or strides are not non-negative integers")
    with warnings.catch_warnings():  # TypedStorage's deprecation notice
        warnings.simplefilter("ignore")
        numel = storage.size() if isinstance(storage, torch.TypedStorage) else storage.nbytes()
    last = offset + sum((n - 1) * st for n, st in zip(size, stride)) if all(size) else offset - 1
    if last >= numel or (not all(size) and offset > numel):
        raise UnsafePickleError(f"a tensor reaches element {last:,} of a storage of {numel:,}")
    return torch._utils._rebuild_tensor_v2(storage, offset, tuple(size), tuple(stride), False, collections.OrderedDict())


def _rebuild_parameter(data, requires_grad, backward_hooks, *rest):
    if not isinstance(data, torch.Tensor):
        raise UnsafePickleError(f"a parameter holds a {type(data).__name__}, not a tensor")
    return torch.nn.Parameter(data, bool(requires_grad))


class _EasyDict(dict):
    pass


# ----------------------------------------------------------------------------- numpy, as plain numbers only
# NVIDIA's pickles keep a few numpy scalars and arrays among their training options. numpy's own
# reconstructors trust the file: a dtype's pickled state may declare fields of object type with
# flags that hide them, and the array's raw bytes are then taken as pointers (reading memory at
# an address the file chooses). gankit never hands the file's state to numpy: dtypes are rebuilt
# from their name (plain booleans, integers, floats and complex numbers only, no fields, no
# sub-arrays, no flags) and arrays from bytes of exactly the right length.
PLAIN_DTYPES = frozenset(["b1", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8", "c8", "c16"])
MAX_ARRAY = 1 << 28  # elements


class _Dtype:
    """A numpy dtype named by the file, made real only after its state proves it plain."""

    def __init__(self, name, align=False, copy=True):
        if not isinstance(name, str) or name not in PLAIN_DTYPES:
            raise UnsafePickleError(f"a numpy dtype {name!r} is not a plain number type")
        import numpy as np

        self.dtype = np.dtype(name)

    def __setstate__(self, state):
        # numpy's state: (version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata])
        ok = isinstance(state, tuple) and len(state) in (8, 9) and state[0] in (3, 4) and state[1] in "<>|=" \
            and state[1] != "" and state[2] is None and state[3] is None and state[4] is None \
            and state[5] in (-1, self.dtype.itemsize) and state[7] == 0 and (len(state) == 8 or state[8] is None)
        if not ok:
            raise UnsafePickleError("a numpy dtype carries fields, sub-arrays or flags; only plain numbers are read")
        self.dtype = self.dtype.newbyteorder(state[1]) if state[1] in "<>" else self.dtype


def _plain(dtype) -> "object":
    if not isinstance(dtype, _Dtype):
        raise UnsafePickleError(f"a numpy array or scalar has a {type(dtype).__name__} for its dtype")
    return dtype.dtype


class _Array:
    """A numpy array rebuilt from its shape, plain dtype and raw bytes; :func:`plain_data` swaps it
    for the array."""

    def __init__(self, cls=None, shape=None, typecode=None):
        if cls is not _NDARRAY:
            raise UnsafePickleError(f"a numpy array of class {cls!r}; only numpy.ndarray is read")
        self.array = None

    def __setstate__(self, state):
        if not (isinstance(state, tuple) and len(state) == 5 and state[0] == 1):
            raise UnsafePickleError("a numpy array's state is not (1, shape, dtype, fortran, bytes)")
        _, shape, dtype, fortran, raw = state
        self.array = _array(raw, _plain(dtype), shape, "F" if fortran is True else "C")


def _array(raw, dtype, shape, order):
    import numpy as np

    if not isinstance(shape, tuple) or not all(type(n) is int and 0 <= n <= MAX_ARRAY for n in shape) or len(shape) > 32:
        raise UnsafePickleError(f"a numpy array's shape {shape!r} is not a tuple of sizes")
    numel = int(np.prod(shape, dtype=np.float64))
    if numel > MAX_ARRAY:
        raise UnsafePickleError(f"a numpy array of {numel:,} elements; at most {MAX_ARRAY:,} are read")
    if isinstance(raw, pickle.PickleBuffer):
        raw = bytes(raw.raw())
    if not isinstance(raw, (bytes, bytearray)) or len(raw) != numel * dtype.itemsize:
        raise UnsafePickleError(f"a numpy array's data is not {numel * dtype.itemsize:,} bytes")
    return np.frombuffer(bytes(raw), dtype=dtype).reshape(shape, order=order).copy(order="K")


def _frombuffer(buf, dtype, shape, order):  # numpy's pickle protocol 5 path
    if order not in ("C", "F"):
        raise UnsafePickleError(f"a numpy array's order {order!r} is not C or F")
    return _array(buf, _plain(dtype), shape, order)


def _scalar(dtype, data):
    import numpy as np

    dt = _plain(dtype)
    if not isinstance(data, (bytes, bytearray)) or len(data) != dt.itemsize:
        raise UnsafePickleError(f"a numpy scalar's data is not {dt.itemsize} bytes")
    return np.frombuffer(bytes(data), dtype=dt)[0]


class _NDARRAY:  # what the pickle's ``numpy.ndarray`` global stands for: a marker, never called
    pass


def plain_data(obj, depth: int = 0):
    """Replaces rebuilt numpy arrays (and dtypes) in containers and stubs by plain numpy objects."""
    if depth > 200:
        raise UnsafePickleError("the pickle nests deeper than 200 levels")
    if isinstance(obj, _Array):
        if obj.array is None:
            raise UnsafePickleError("a numpy array without its data")
        return obj.array
    if isinstance(obj, _Dtype):
        return obj.dtype
    if isinstance(obj, PersistentStub):
        obj.state = plain_data(obj.state, depth + 1)
        return obj
    if isinstance(obj, dict):
        for k in list(obj):
            obj[k] = plain_data(obj[k], depth + 1)
        return obj
    if isinstance(obj, list):
        obj[:] = [plain_data(v, depth + 1) for v in obj]
        return obj
    if isinstance(obj, tuple):
        return tuple(plain_data(v, depth + 1) for v in obj)
    return obj


class SafeUnpickler(pickle.Unpickler):
    """Resolves only the globals in ``ALLOWED``; anything else raises :class:`UnsafePickleError`.
    Every allowed global is gankit's own data constructor, which checks what it is given."""

    ALLOWED = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch.storage", "_load_from_bytes"): _load_storage,
        ("dnnlib.util", "EasyDict"): _EasyDict,
        ("torch_utils.persistence", "_reconstruct_persistent_obj"): PersistentStub,
        ("builtins", "set"): set,
        ("numpy", "ndarray"): _NDARRAY,
        ("numpy", "dtype"): _Dtype,
    }
    for _mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        ALLOWED[(_mod, "_reconstruct")] = _Array
        ALLOWED[(_mod, "scalar")] = _scalar
    for _mod in ("numpy.core.numeric", "numpy._core.numeric"):
        ALLOWED[(_mod, "_frombuffer")] = _frombuffer

    def __init__(self, file, source: str):
        super().__init__(file)
        self.source = source

    def find_class(self, module: str, name: str):
        fn = self.ALLOWED.get((module, name))
        if fn is None:
            raise UnsafePickleError(f"{self.source}: the pickle asks for {module}.{name}, which gankit will not run; "
                                    f"only NVIDIA stylegan2-ada-pytorch and stylegan3 network pickles are read (data only)")
        return fn

    def persistent_load(self, pid):
        raise UnsafePickleError(f"{self.source}: the pickle refers to external objects; gankit reads self-contained "
                                f"network pickles only")


def read_pickle(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file; give an NVIDIA .pkl")
    import zipfile

    if zipfile.is_zipfile(path):
        raise CheckpointError(f"{path}: a torch.save archive, not an NVIDIA pickle; use import_checkpoint")
    try:
        with open(path, "rb") as f:
            data = plain_data(SafeUnpickler(f, str(path)).load())
    except UnsafePickleError as e:
        msg = str(e)
        raise UnsafePickleError(msg if msg.startswith(str(path)) else f"{path}: {msg}; gankit reads tensors, plain "
                                f"numbers and containers only") from None
    except RecursionError:
        raise UnsafePickleError(f"{path}: the pickle nests too deeply to be network data") from None
    except Exception as e:
        raise CheckpointError(f"{path}: not a readable network pickle ({type(e).__name__}: {str(e)[:200]})") from None
    if not isinstance(data, dict) or not any(isinstance(data.get(k), PersistentStub) for k in ("G_ema", "G")):
        raise CheckpointError(f"{path}: no G or G_ema network in this pickle")
    return data


def _mapping(value, what: str) -> dict:
    """A dict from the file (None -> {}), or CheckpointError naming it."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise CheckpointError(f"{what} is a {type(value).__name__}, not a dict of named options")
    return dict(value)


def foreign_value(d: dict, key: str, default, kind: type, what: str):
    """``d[key]`` (``default`` when absent or None) as a plain ``kind`` (int, float, bool or str), or
    CheckpointError naming it: numpy scalars and 0-d arrays are taken for their number, nothing
    else is converted. Ranges are the gankit config's, checked when the config is built."""
    import numbers

    import numpy as np

    v = d.get(key)
    if v is None:
        return default
    if isinstance(v, np.ndarray) and v.ndim == 0 and v.dtype.kind in "biuf":
        v = v.item()
    if isinstance(v, np.generic) and v.dtype.kind in "biuf":
        v = v.item()
    number = isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)
    ok = {int: number and float(v).is_integer(), float: number, bool: isinstance(v, bool) or v in (0, 1),
          str: isinstance(v, str) and len(v) < 256}[kind]
    if not ok:
        what_kind = "a whole number" if kind is int else f"a {kind.__name__}"
        raise CheckpointError(f"{what}.{key} is {str(v)[:60]!r}, not {what_kind}")
    return kind(v)


def nvidia_config(G: PersistentStub, D: PersistentStub | None) -> tuple[str, dict]:
    """(gankit family, model config) from the networks' ``init_kwargs`` (NVIDIA's defaults where
    absent): ``stylegan2`` for stylegan2-ada-pytorch, ``stylegan3`` for stylegan3 generators. Every
    value is type-checked here; the family's config checks its range when it is built."""
    g = G.init_kwargs
    if G.class_name not in (None, "Generator") or "img_resolution" not in g:
        raise CheckpointError(f"network class {G.class_name!r} is not an NVIDIA StyleGAN2-ADA or StyleGAN3 Generator")
    d = D.init_kwargs if D is not None else {}
    epi = _mapping(d.get("epilogue_kwargs"), "D.epilogue_kwargs")
    mp = _mapping(g.get("mapping_kwargs"), "G.mapping_kwargs")
    val = foreign_value
    c_dim = val(g, "c_dim", 0, int, "G")
    common = {"resolution": val(g, "img_resolution", None, int, "G"), "channels": val(g, "img_channels", 3, int, "G"),
              "z_dim": val(g, "z_dim", 512, int, "G"), "w_dim": val(g, "w_dim", 512, int, "G"),
              "conditional": c_dim > 0, "c_dim": c_dim,
              "mapping_lr_mul": val(mp, "lr_multiplier", 0.01, float, "G.mapping_kwargs"),
              "d_architecture": val(d, "architecture", "resnet", str, "D"),
              "mbstd_group": val(epi, "mbstd_group_size", 4, int, "D.epilogue_kwargs") or 1,
              "mbstd_channels": val(epi, "mbstd_num_channels", 1, int, "D.epilogue_kwargs")}
    if "synthesis.input.freqs" in G.tensors():  # StyleGAN3: synthesis kwargs are the Generator's own
        defaults = {"channel_base": 32768, "channel_max": 512, "num_layers": 14, "num_critical": 2,
                    "first_cutoff": 2.0, "first_stopband": 2 ** 2.1, "last_stopband_rel": 2 ** 0.3, "margin_size": 10,
                    "output_scale": 0.25, "conv_kernel": 3, "filter_size": 6, "lrelu_upsampling": 2,
                    "use_radial_filters": False}
        syn = {k: val(g, k, v, type(v), "G") for k, v in defaults.items()}
        syn["conv_clamp"] = val(g, "conv_clamp", 0.0, float, "G")
        return "stylegan3", {**common, **syn, "mapping_layers": val(mp, "num_layers", 2, int, "G.mapping_kwargs"),
                             "w_avg_beta": val(mp, "w_avg_beta", 0.998, float, "G.mapping_kwargs"),
                             "d_channel_base": val(d, "channel_base", 32768, int, "D"),
                             "d_channel_max": val(d, "channel_max", 512, int, "D"),
                             "d_conv_clamp": val(d, "conv_clamp", 0.0, float, "D")}
    syn = _mapping(g.get("synthesis_kwargs"), "G.synthesis_kwargs")
    return "stylegan2", {**common, "mapping_layers": val(mp, "num_layers", 8, int, "G.mapping_kwargs"),
                         "w_avg_beta": val(mp, "w_avg_beta", 0.995, float, "G.mapping_kwargs"),
                         "channel_base": val(syn, "channel_base", 32768, int, "G.synthesis_kwargs"),
                         "channel_max": val(syn, "channel_max", 512, int, "G.synthesis_kwargs"),
                         "g_architecture": val(syn, "architecture", "skip", str, "G.synthesis_kwargs"),
                         "conv_clamp": val(syn, "conv_clamp", 0.0, float, "G.synthesis_kwargs")}


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


def check_target(out: str | Path, force: bool = False) -> Path:
    """The folder an import writes: new or empty, or (``force``) an existing folder to replace whole."""
    from ..training.checkpoint import check_out_dir

    out = Path(out)
    check_out_dir(out)
    if out.exists() and any(out.iterdir()) and not force:
        raise CheckpointError(f"--out {out}: the folder is not empty (an import never mixes with another run); "
                              f"choose a new folder, or pass --force to replace it")
    return out


def write_run(out: str | Path, cfg: dict, nets: dict, source: str | Path, fmt: str, nimg: int = 0,
              extra: dict | None = None, family: str = "stylegan2", force: bool = False) -> Path:
    """Writes a gankit run of ``family`` from foreign tensors: ``nets`` maps G, G_ema and D to gankit-named
    tensors (or None: G falls back to G_ema, a missing D keeps gankit's initial D). The run is
    written into a temporary folder beside ``out`` and renamed into place; with ``force`` it
    replaces what was at ``out``. Returns the checkpoint."""
    import gankit

    from ..api import resolve_configs
    from ..config import to_dict
    from ..errors import ConfigError
    from ..training import checkpoint as ckpt

    out = check_target(out, force)
    try:
        bundle = gankit.create(family, **cfg)
        G_ema = gankit.create(family, **cfg).G
        _, train_cfg = resolve_configs(family, None, {"model": cfg})
    except ConfigError as e:
        raise CheckpointError(f"{source}: the network's {str(e).replace('--model.', '')}") from None
    nets = {"G": nets.get("G") or nets.get("G_ema"), "G_ema": nets.get("G_ema") or nets.get("G"), "D": nets.get("D")}
    tensors = {}
    for name, module in (("G", bundle.G), ("G_ema", G_ema), ("D", bundle.D)):
        if nets[name] is not None:
            load_matching(module, nets[name], f"{source} {name}")
        tensors.update(ckpt.state_tensors(name, module))
    config = {"format": "gankit-run/1", "family": family, "preset": None, "gankit_version": gankit.__version__,
              "model": to_dict(bundle.config), "train": to_dict(train_cfg),
              "imported_from": {"file": str(source), "format": fmt, **(extra or {})}}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.import-", dir=out.parent))
    try:
        ckpt.atomic_write_text(tmp / "config.json", json.dumps(config, indent=2))
        written = ckpt.save_checkpoint(tmp, nimg, tensors, {"imported": True}, config)
        if out.exists() and any(out.iterdir()):  # --force: the old run goes whole, after the new one is complete
            trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.replaced-", dir=out.parent))
            os.rename(out, trash / "run")
            os.rename(tmp, out)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.rename(tmp, out)  # replaces an empty folder
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out / "checkpoints" / written.name


def import_nvidia(pkl: str | Path, out: str | Path, force: bool = False) -> Path:
    """Converts an NVIDIA stylegan2-ada-pytorch or stylegan3 ``.pkl`` into a gankit run folder; returns
    the checkpoint."""
    check_target(out, force)
    data = read_pickle(pkl)
    G_src = data.get("G_ema") or data.get("G")
    try:
        family, cfg = nvidia_config(G_src, data.get("D") if isinstance(data.get("D"), PersistentStub) else None)
        nimg = foreign_value(_mapping(data.get("progress"), "progress"), "cur_nimg", 0, int, "progress")
    except CheckpointError as e:
        raise CheckpointError(f"{pkl}: {e}") from None
    if not 0 <= nimg <= 2 ** 53:
        raise CheckpointError(f"{pkl}: progress.cur_nimg {nimg} is not a count of images (0 to 2^53)")
    nets = {name: map_nvidia_keys(data[name].tensors()) if isinstance(data.get(name), PersistentStub) else None
            for name in ("G", "G_ema", "D")}
    fmt = "stylegan3 pkl" if family == "stylegan3" else "stylegan2-ada-pytorch pkl"
    return write_run(out, cfg, nets, pkl, fmt, nimg, family=family, force=force)


# ----------------------------------------------------------------------------- rosinality stylegan2-pytorch
# rosinality key -> gankit key, per layer kind. Every tensor of the file must match one rule
# (unknown keys are refused); "kernel" buffers (the [1, 3, 3, 1] blur) are checked and dropped.
ROSINALITY_STYLED = {  # StyledConv -> SynthesisLayer
    "conv.weight": ("weight", "squeeze0"),  # (1, O, I, k, k) -> (O, I, k, k); same scale after demodulation
    "conv.modulation.weight": ("affine.weight", None), "conv.modulation.bias": ("affine.bias", None),
    "noise.weight": ("noise.noise_strength", "scalar"),  # (1,) -> ()
    "activate.bias": ("bias", None),  # FusedLeakyReLU's bias = NVIDIA's bias before lrelu * sqrt(2)
}
ROSINALITY_TORGB = {  # ToRGB -> ToRGBLayer (rosinality scales the weight by 1/sqrt(C), NVIDIA the styles: equal)
    "conv.weight": ("weight", "squeeze0"), "conv.modulation.weight": ("affine.weight", None),
    "conv.modulation.bias": ("affine.bias", None), "bias": ("bias", "flatten"),
}
ROSINALITY_G = "style.{i+1} -> mapping.fc{i}; input.input -> synthesis.b4.const; conv1 / to_rgb1 -> b4.conv1 / " \
    "b4.torgb; convs.{2j}, convs.{2j+1}, to_rgbs.{j} -> b{8*2^j}.conv0, .conv1, .torgb; noises.noise_{n} -> the " \
    "n-th layer's noise.noise_const; latent_avg -> mapping.w_avg"
ROSINALITY_D = "convs.0 -> b{size}.fromrgb; convs.{k}.conv1 / conv2 / skip -> b{size/2^(k-1)}.conv0 / conv1 / " \
    "skip; final_conv -> b4.conv; final_linear.0 / .1 -> b4.fc / b4.out"


def _reshape(t: torch.Tensor, how: str | None) -> torch.Tensor:
    if how == "squeeze0":
        return t.squeeze(0)
    if how == "scalar":
        return t.reshape([])
    if how == "flatten":
        return t.flatten()
    return t


def _check_blur(key: str, k: torch.Tensor, source) -> None:
    ref = torch.tensor([1.0, 3.0, 3.0, 1.0])
    ref = torch.outer(ref, ref) / 64
    if k.shape != ref.shape or not torch.allclose(k / k.sum(), ref, atol=1e-6):
        raise CheckpointError(f"{source}: {key} is not the [1, 3, 3, 1] blur kernel gankit's StyleGAN2 uses")


def _take(sd: dict, used: set, key: str, source) -> torch.Tensor:
    if key not in sd:
        raise CheckpointError(f"{source}: {key} is missing; not a rosinality stylegan2-pytorch state dict")
    used.add(key)
    return sd[key]


def _check_all_used(sd: dict, used: set, what: str, source) -> None:
    for k in sd:
        if k.endswith("kernel"):
            _check_blur(k, sd[k], source)
            used.add(k)
    unknown = sorted(set(sd) - used)
    if unknown:
        raise CheckpointError(f"{source}: {what} has {unknown[:3]}, which gankit's StyleGAN2 has no place for")


def channel_config(widths: dict[int, int], source) -> dict:
    """channel_base / channel_max that give ``widths`` (resolution -> channels) as min(base / r, max)."""
    cap = max(widths.values())
    top = max(widths)
    base = widths[top] * top if widths[top] < cap else cap * top
    if any(min(base // r, cap) != c for r, c in widths.items()):
        raise CheckpointError(f"{source}: channel widths {widths} do not follow min(base / resolution, max), "
                              f"which gankit's StyleGAN2 needs")
    return {"channel_base": base, "channel_max": cap}


def map_rosinality_g(sd: dict, source="checkpoint") -> tuple[dict, dict]:
    """rosinality ``Generator`` state dict -> (gankit config fields, gankit G tensors)."""
    sd = {k: v for k, v in sd.items() if isinstance(v, torch.Tensor)}
    used: set = set()
    n_mlp = sum(1 for k in sd if k.startswith("style.") and k.endswith(".weight"))
    if "input.input" not in sd or n_mlp == 0:
        raise CheckpointError(f"{source}: not a rosinality stylegan2-pytorch generator (no input.input / style.N)")
    n_blocks = sum(1 for k in sd if k.startswith("to_rgbs.") and k.endswith(".conv.weight"))
    out: dict[str, torch.Tensor] = {}
    for i in range(n_mlp):
        for p in ("weight", "bias"):
            out[f"mapping.fc{i}.{p}"] = _take(sd, used, f"style.{i + 1}.{p}", source)
    out["synthesis.b4.const"] = _take(sd, used, "input.input", source)[0]

    def layer(theirs: str, ours: str, rules: dict, noise: int | None = None):
        for k, (name, how) in rules.items():
            out[f"{ours}.{name}"] = _reshape(_take(sd, used, f"{theirs}.{k}", source), how)
        if noise is not None:
            out[f"{ours}.noise.noise_const"] = _take(sd, used, f"noises.noise_{noise}", source)[0, 0]

    layer("conv1", "synthesis.b4.conv1", ROSINALITY_STYLED, 0)
    layer("to_rgb1", "synthesis.b4.torgb", ROSINALITY_TORGB)
    widths = {4: sd["input.input"].shape[1]}
    for j in range(n_blocks):
        r = 8 * 2 ** j
        layer(f"convs.{2 * j}", f"synthesis.b{r}.conv0", ROSINALITY_STYLED, 2 * j + 1)
        layer(f"convs.{2 * j + 1}", f"synthesis.b{r}.conv1", ROSINALITY_STYLED, 2 * j + 2)
        layer(f"to_rgbs.{j}", f"synthesis.b{r}.torgb", ROSINALITY_TORGB)
        widths[r] = sd[f"convs.{2 * j}.conv.weight"].shape[1]
    _check_all_used(sd, used, "generator", source)
    style_dim = sd["style.1.weight"].shape[1]
    cfg = {"resolution": 4 * 2 ** n_blocks, "channels": sd["to_rgb1.conv.weight"].shape[1], "z_dim": style_dim,
           "w_dim": style_dim, "mapping_layers": n_mlp, "mapping_lr_mul": 0.01, "g_architecture": "skip",
           "d_architecture": "resnet", "conv_clamp": 0.0, "mbstd_group": 4, "mbstd_channels": 1,
           **channel_config(widths, source)}
    return cfg, out


def map_rosinality_d(sd: dict, size: int, source="checkpoint") -> dict:
    """rosinality ``Discriminator`` state dict -> gankit D tensors."""
    sd = {k: v for k, v in sd.items() if isinstance(v, torch.Tensor)}
    used: set = set()
    out = {f"b{size}.fromrgb.weight": _take(sd, used, "convs.0.0.weight", source),
           f"b{size}.fromrgb.bias": _take(sd, used, "convs.0.1.bias", source)}
    k, r = 1, size
    while r > 4:
        for theirs, ours in (("conv1.0.weight", "conv0.weight"), ("conv1.1.bias", "conv0.bias"),
                             ("conv2.1.weight", "conv1.weight"), ("conv2.2.bias", "conv1.bias"),
                             ("skip.1.weight", "skip.weight")):
            out[f"b{r}.{ours}"] = _take(sd, used, f"convs.{k}.{theirs}", source)
        k, r = k + 1, r // 2
    for theirs, ours in (("final_conv.0.weight", "conv.weight"), ("final_conv.1.bias", "conv.bias"),
                         ("final_linear.0.weight", "fc.weight"), ("final_linear.0.bias", "fc.bias"),
                         ("final_linear.1.weight", "out.weight"), ("final_linear.1.bias", "out.bias")):
        out[f"b4.{ours}"] = _take(sd, used, theirs, source)
    _check_all_used(sd, used, "discriminator", source)
    return out


def read_torch_archive(path: str | Path) -> dict:
    """A ``torch.save`` file read with ``weights_only=True``; only ``argparse.Namespace`` is added to
    the rebuildable classes (as data: its ``__dict__`` is filled, no constructor runs)."""
    import argparse

    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        import re

        m = re.search(r"(?:Unsupported global|GLOBAL) ([\w.]+)", str(e))
        what = m.group(1) if m else "a global outside torch's weights-only list"
        raise UnsafePickleError(f"{path}: the checkpoint asks for {what}, which gankit will not run; only tensors, "
                                f"plain containers and training options are read") from None
    except Exception as e:
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({type(e).__name__}: {str(e)[:200]})") from None
    if not isinstance(data, dict) or not any(isinstance(data.get(k), dict) for k in ("g_ema", "g")):
        raise CheckpointError(f"{path}: no g_ema or g generator in this file; gankit imports rosinality "
                              f"stylegan2-pytorch checkpoints (keys g, d, g_ema)")
    return data


def mean_w(G: torch.nn.Module, n: int = 10_000, seed: int = 0) -> torch.Tensor:
    """The average w of ``n`` seeded latents, for checkpoints that store none (rosinality's
    generate.py computes it the same way, from 4,096 random latents, at every run)."""
    z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return G.mapping(z, None, update_w_avg=False)[:, 0].mean(0)


def import_rosinality(pt: str | Path, out: str | Path, force: bool = False) -> Path:
    """Converts a rosinality stylegan2-pytorch checkpoint (``g``, ``d``, ``g_ema``, ``args``, or a
    converted file with ``g_ema`` and ``latent_avg``) into a gankit run folder."""
    import argparse

    import gankit

    from ..errors import ConfigError

    check_target(out, force)
    data = read_torch_archive(pt)
    g_key = "g_ema" if isinstance(data.get("g_ema"), dict) else "g"
    cfg, g_ema = map_rosinality_g(data[g_key], f"{pt} {g_key}")
    nets = {"G_ema": g_ema}
    if isinstance(data.get("g"), dict) and g_key != "g":
        other_cfg, nets["G"] = map_rosinality_g(data["g"], f"{pt} g")
        if other_cfg != cfg:
            raise CheckpointError(f"{pt}: g and g_ema have different shapes")
    if isinstance(data.get("d"), dict):
        nets["D"] = map_rosinality_d(data["d"], cfg["resolution"], f"{pt} d")
    avg = data.get("latent_avg")
    for name, tensors in list(nets.items()):
        if name == "D":
            continue
        if isinstance(avg, torch.Tensor) and avg.numel() == cfg["w_dim"]:
            tensors["mapping.w_avg"] = avg.reshape(-1).float()
        else:
            try:
                G = gankit.create("stylegan2", **cfg).G
            except ConfigError as e:
                raise CheckpointError(f"{pt}: the network's {str(e).replace('--model.', '')}") from None
            load_matching(G, {**tensors, "mapping.w_avg": G.mapping.w_avg}, f"{pt} {name}")
            tensors["mapping.w_avg"] = mean_w(G)
    args = data.get("args")
    opts = ({k: v for k, v in vars(args).items() if isinstance(v, (int, float, str, bool)) and
             (not isinstance(v, float) or math.isfinite(v))} if isinstance(args, argparse.Namespace) else {})
    extra = {"w_avg": "latent_avg" if isinstance(avg, torch.Tensor) else "mean of 10,000 seeded latents",
             "options": opts}
    return write_run(out, cfg, nets, pt, "rosinality stylegan2-pytorch pt", 0, extra, force=force)


def import_checkpoint(path: str | Path, out: str | Path, force: bool = False) -> Path:
    """Imports an NVIDIA ``.pkl`` or a rosinality ``.pt`` (told apart by content) into a gankit run
    folder, which must be new or empty unless ``force`` (then it is replaced whole)."""
    import zipfile

    path = Path(path)
    if path.is_file() and zipfile.is_zipfile(path):
        return import_rosinality(path, out, force)
    return import_nvidia(path, out, force)
