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
                                    f"only NVIDIA stylegan2-ada-pytorch and stylegan3 network pickles are read (data only)")
        return fn


def read_pickle(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file; give an NVIDIA .pkl")
    import zipfile

    if zipfile.is_zipfile(path):
        raise CheckpointError(f"{path}: a torch.save archive, not an NVIDIA pickle; use import_checkpoint")
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


def nvidia_config(G: PersistentStub, D: PersistentStub | None) -> tuple[str, dict]:
    """(gankit family, model config) from the networks' ``init_kwargs`` (NVIDIA's defaults where
    absent): ``stylegan2`` for stylegan2-ada-pytorch, ``stylegan3`` for stylegan3 generators."""
    g = G.init_kwargs
    if G.class_name not in (None, "Generator") or "img_resolution" not in g:
        raise CheckpointError(f"network class {G.class_name!r} is not an NVIDIA StyleGAN2-ADA or StyleGAN3 Generator")
    d = D.init_kwargs if D is not None else {}
    epi = dict(d.get("epilogue_kwargs") or {})
    mp = dict(g.get("mapping_kwargs") or {})
    c_dim = int(g.get("c_dim", 0))
    common = {"resolution": int(g["img_resolution"]), "channels": int(g.get("img_channels", 3)),
              "z_dim": int(g.get("z_dim", 512)), "w_dim": int(g.get("w_dim", 512)),
              "conditional": c_dim > 0, "c_dim": c_dim, "mapping_lr_mul": float(mp.get("lr_multiplier", 0.01)),
              "d_architecture": d.get("architecture", "resnet"),
              "mbstd_group": int(epi.get("mbstd_group_size", 4) or 1),
              "mbstd_channels": int(epi.get("mbstd_num_channels", 1))}
    if "synthesis.input.freqs" in G.tensors():  # StyleGAN3: synthesis kwargs are the Generator's own
        defaults = {"channel_base": 32768, "channel_max": 512, "num_layers": 14, "num_critical": 2,
                    "first_cutoff": 2, "first_stopband": 2 ** 2.1, "last_stopband_rel": 2 ** 0.3, "margin_size": 10,
                    "output_scale": 0.25, "conv_kernel": 3, "filter_size": 6, "lrelu_upsampling": 2,
                    "use_radial_filters": False, "conv_clamp": 256}
        syn = {k: type(v)(g.get(k, v)) if g.get(k) is not None else v for k, v in defaults.items()}
        syn["conv_clamp"] = float(g["conv_clamp"]) if g.get("conv_clamp") is not None else 0.0
        return "stylegan3", {**common, **syn, "mapping_layers": int(mp.get("num_layers", 2)),
                             "w_avg_beta": float(mp.get("w_avg_beta", 0.998)),
                             "d_channel_base": int(d.get("channel_base", 32768)),
                             "d_channel_max": int(d.get("channel_max", 512)),
                             "d_conv_clamp": float(d.get("conv_clamp") or 0.0)}
    syn = dict(g.get("synthesis_kwargs") or {})
    return "stylegan2", {**common, "mapping_layers": int(mp.get("num_layers", 8)),
                         "w_avg_beta": float(mp.get("w_avg_beta", 0.995)),
                         "channel_base": int(syn.get("channel_base", 32768)),
                         "channel_max": int(syn.get("channel_max", 512)),
                         "g_architecture": syn.get("architecture", "skip"),
                         "conv_clamp": float(syn.get("conv_clamp") or 0.0)}


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


def write_run(out: str | Path, cfg: dict, nets: dict, source: str | Path, fmt: str, nimg: int = 0,
              extra: dict | None = None, family: str = "stylegan2") -> Path:
    """Writes a gankit run of ``family`` from foreign tensors: ``nets`` maps G, G_ema and D to gankit-named
    tensors (or None: G falls back to G_ema, a missing D keeps gankit's initial D). Returns the checkpoint."""
    import gankit

    from ..api import resolve_configs
    from ..config import to_dict
    from ..training import checkpoint as ckpt

    bundle = gankit.create(family, **cfg)
    G_ema = gankit.create(family, **cfg).G
    nets = {"G": nets.get("G") or nets.get("G_ema"), "G_ema": nets.get("G_ema") or nets.get("G"), "D": nets.get("D")}
    tensors = {}
    for name, module in (("G", bundle.G), ("G_ema", G_ema), ("D", bundle.D)):
        if nets[name] is not None:
            load_matching(module, nets[name], f"{source} {name}")
        tensors.update(ckpt.state_tensors(name, module))
    _, train_cfg = resolve_configs(family, None, {"model": cfg})
    config = {"format": "gankit-run/1", "family": family, "preset": None, "gankit_version": gankit.__version__,
              "model": to_dict(bundle.config), "train": to_dict(train_cfg),
              "imported_from": {"file": str(source), "format": fmt, **(extra or {})}}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt.atomic_write_text(out / "config.json", json.dumps(config, indent=2))
    return ckpt.save_checkpoint(out, nimg, tensors, {"imported": True}, config)


def import_nvidia(pkl: str | Path, out: str | Path) -> Path:
    """Converts an NVIDIA stylegan2-ada-pytorch or stylegan3 ``.pkl`` into a gankit run folder; returns
    the checkpoint."""
    data = read_pickle(pkl)
    G_src = data.get("G_ema") or data.get("G")
    family, cfg = nvidia_config(G_src, data.get("D"))
    nets = {name: map_nvidia_keys(data[name].tensors()) if isinstance(data.get(name), PersistentStub) else None
            for name in ("G", "G_ema", "D")}
    nimg = int(data.get("progress", {}).get("cur_nimg", 0)) if isinstance(data.get("progress"), dict) else 0
    fmt = "stylegan3 pkl" if family == "stylegan3" else "stylegan2-ada-pytorch pkl"
    return write_run(out, cfg, nets, pkl, fmt, nimg, family=family)


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


def import_rosinality(pt: str | Path, out: str | Path) -> Path:
    """Converts a rosinality stylegan2-pytorch checkpoint (``g``, ``d``, ``g_ema``, ``args``, or a
    converted file with ``g_ema`` and ``latent_avg``) into a gankit run folder."""
    import gankit

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
            G = gankit.create("stylegan2", **cfg).G
            load_matching(G, {**tensors, "mapping.w_avg": G.mapping.w_avg}, f"{pt} {name}")
            tensors["mapping.w_avg"] = mean_w(G)
    args = data.get("args")
    opts = {k: v for k, v in vars(args).items() if isinstance(v, (int, float, str, bool))} if args is not None else {}
    extra = {"w_avg": "latent_avg" if isinstance(avg, torch.Tensor) else "mean of 10,000 seeded latents",
             "options": opts}
    return write_run(out, cfg, nets, pt, "rosinality stylegan2-pytorch pt", 0, extra)


def import_checkpoint(path: str | Path, out: str | Path) -> Path:
    """Imports an NVIDIA ``.pkl`` or a rosinality ``.pt`` (told apart by content) into a gankit run."""
    import zipfile

    path = Path(path)
    if path.is_file() and zipfile.is_zipfile(path):
        return import_rosinality(path, out)
    return import_nvidia(path, out)
