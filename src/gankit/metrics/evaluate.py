"""Evaluate a generator: the driver behind ``gankit eval`` and the trainer's periodic metrics.

Real-data features are cached on disk (``$GANKIT_CACHE`` or ``~/.cache/gankit/stats``), keyed by
the dataset's fingerprint, the extractor, the resolution and the number of real images.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..registry import METRICS
from .base import to_uint8

FEATURE_METRICS = ("fid", "kid", "is", "pr")
PPL_METRICS = ("ppl-z", "ppl-w", "ppl-z-end", "ppl-w-end")
ALL = FEATURE_METRICS + PPL_METRICS + ("separability",)
CACHE_VERSION = 1


def parse_metrics(text) -> list[str]:
    names = [m.strip() for m in (text.split(",") if isinstance(text, str) else text) if m.strip()]
    for m in names:
        if m not in ALL:
            METRICS.get(m)  # raises with a did-you-mean hint for unknown names
            raise ConfigError(f"--metrics {m}: a mode metric, run at the end of training; "
                              f"gankit eval computes {', '.join(ALL)}")
    if not names:
        raise ConfigError(f"--metrics: give one or more of {', '.join(ALL)}")
    return names


def cache_dir(path=None) -> Path:
    return Path(path or os.environ.get("GANKIT_CACHE") or Path.home() / ".cache" / "gankit" / "stats")


def _real_uint8(ds, n: int, batch: int, seed: int):
    """Batches of ``n`` real images as uint8: all of them in order, or a seeded random subset."""
    idx = torch.arange(len(ds)) if n >= len(ds) else torch.randperm(len(ds), generator=torch.Generator().manual_seed(
        seed))[:n].sort().values
    data = getattr(ds, "data", None)
    for b in idx.split(batch):
        if isinstance(data, torch.Tensor) and data.dtype == torch.uint8:
            yield data[b]
        else:
            x, _ = ds.get_batch(b)
            yield ((x + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)


@torch.no_grad()
def real_features(ds, extractor, num_real: int | None = None, batch: int = 64, seed: int = 0,
                  cache: bool = True, cache_path=None, progress=None) -> torch.Tensor:
    """Features (N, D) of the real images, read from or written to the cache."""
    n = min(num_real or len(ds), len(ds))
    res = ds.info.shape[-1]
    key = json.dumps({"data": ds.fingerprint(), "extractor": extractor.fingerprint, "res": res, "n": n,
                      "seed": seed, "v": CACHE_VERSION}, sort_keys=True)
    name = f"{ds.name.replace('/', '_')[:40]}-{extractor.name}-{res}px-{n}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
    path = cache_dir(cache_path) / f"{name}.npz"
    if cache and path.is_file():
        try:
            with np.load(path) as f:
                if str(f["key"]) == key:
                    return torch.from_numpy(f["features"])
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache file is recomputed and replaced
    dev = next(extractor.parameters()).device
    feats = []
    for x in _real_uint8(ds, n, batch, seed):
        feats.append(extractor(x.to(dev))["features"].float().cpu())
        if progress:
            progress.update(len(x))
    feats = torch.cat(feats)
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}.npz")
        np.savez(tmp, features=feats.numpy(), key=np.array(key))
        os.replace(tmp, path)  # atomic: a reader never sees half a file
    return feats


def _labels_fn(G, generator):
    c_dim = getattr(G, "c_dim", 0)
    if not c_dim:
        return None
    dev = next(G.parameters()).device

    def labels(n):
        return F.one_hot(torch.randint(0, c_dim, (n,), generator=generator), c_dim).float().to(dev)

    return labels


@torch.no_grad()
def generate_images(G, n: int, batch: int, seed: int = 0, truncation_psi: float = 1.0, sampler=None):
    """Yields batches of G's images ([-1, 1]) from ``sampler(n, generator)`` (default: seeded z and
    uniformly drawn classes, :func:`gankit.models.family.latent_sampler`)."""
    from ..models.family import latent_sampler

    g = torch.Generator().manual_seed(seed)
    draw = sampler or latent_sampler(G, None, truncation_psi)
    for i in range(0, n, batch):
        yield draw(min(batch, n - i), g)


def _check_resolution(G, ds):
    if ds.info.kind != "image":
        raise ConfigError(f"{ds.name}: fid, kid and pr compare images; this data is {ds.info.kind}s "
                          f"(2D mixtures have the mode metric, written at the end of training)")
    gres = getattr(G, "img_resolution", None)
    if gres is not None and ds.info.kind == "image" and gres != ds.info.shape[-1]:
        raise ConfigError(f"the generator makes {gres} px images but the data is {ds.info.shape[-1]} px; "
                          f"add ?res={gres} to --data")


def evaluate(G, metrics, data=None, num_gen: int = 50000, num_real: int | None = None, batch: int = 64,
             extractor="auto", distance="auto", attributes: str | None = None, seed: int = 0,
             truncation_psi: float = 1.0, cache: bool = True, cache_path=None, device=None, progress: bool = False,
             weights: dict | None = None, family=None) -> dict:
    """Computes ``metrics`` (names from :data:`ALL`) for generator ``G``; returns a dict of scores.

    Args:
        data: a dataset spec or dataset object (needed by fid, kid and pr, and by separability to
            pick the attribute classifier when ``attributes`` is None).
        num_gen: generated images (and PPL pairs, and separability samples).
        num_real: real images (default: all of them).
        extractor: a name from :mod:`gankit.metrics.features`, ``auto``, or an extractor object.
        distance: the PPL distance (:mod:`gankit.metrics.perceptual`), ``auto`` or an object.
        weights: local weight files: ``inception``, ``effnet``, ``vgg16``, ``lpips`` -> path.
        family: the run's family (:class:`gankit.models.family.Family`): how ``G`` is sampled and
            which real images its outputs are compared with (translations: the target domain).
    """
    names = parse_metrics(metrics)
    was_training, grads = G.training, [p.requires_grad for p in G.parameters()]
    device = torch.device(device or next(G.parameters()).device)
    G.eval().requires_grad_(False).to(device)
    try:
        return _evaluate(G, names, data, num_gen, num_real, batch, extractor, distance, attributes, seed,
                         truncation_psi, cache, cache_path, device, progress, weights or {}, family)
    finally:  # the caller's generator is left as it was given (mode and requires_grad)
        G.train(was_training)
        for p, g in zip(G.parameters(), grads):
            p.requires_grad_(g)


def _evaluate(G, names, data, num_gen, num_real, batch, extractor, distance, attributes, seed, truncation_psi,
              cache, cache_path, device, progress, weights, family=None) -> dict:
    from tqdm import tqdm

    from ..data import open_dataset
    from .features import build_extractor
    from .perceptual import build_distance

    ds = open_dataset(data) if isinstance(data, str) else data
    sampler = None
    if family is not None:
        sampler, ds = family.eval_setup(G, ds, truncation_psi)
    results: dict = {"num_gen": num_gen}
    timings = {}
    feat_names = [m for m in names if m in FEATURE_METRICS]
    if feat_names:
        if not isinstance(extractor, torch.nn.Module):
            ext_w = weights.get("inception") if extractor in ("auto", "inception") else weights.get("effnet")
            extractor = build_extractor(extractor, ext_w, device)
        metric_objs = {m: METRICS.get(m)(extractor, **({"seed": seed} if m == "kid" else {})) for m in feat_names}
        need_real = [m for m in feat_names if metric_objs[m].needs_real]
        if need_real:
            if ds is None:
                raise ConfigError(f"--data is needed for {', '.join(need_real)} (the real images to compare with)")
            _check_resolution(G, ds)
            n_real = min(num_real or len(ds), len(ds))
            t0 = time.perf_counter()
            with tqdm(total=n_real, desc=f"real features ({extractor.name})", disable=not progress,
                      unit="img") as bar:
                rf = real_features(ds, extractor, n_real, batch, seed, cache, cache_path, bar)
            timings["real_s"] = time.perf_counter() - t0
            results["num_real"] = len(rf)
            for m in need_real:
                obj = metric_objs[m]
                if hasattr(obj, "set_real_features"):
                    obj.set_real_features(rf)
                else:
                    obj.update_features(rf, real=True)
        t0 = time.perf_counter()
        with tqdm(total=num_gen, desc=f"generated ({extractor.name})", disable=not progress, unit="img") as bar:
            for img in generate_images(G, num_gen, batch, seed + 1, truncation_psi, sampler):
                out = extractor(to_uint8(img).to(device))
                for obj in metric_objs.values():
                    obj.update_features(out["logits" if getattr(obj, "uses_logits", False) else "features"].cpu())
                bar.update(len(img))
        timings["generated_s"] = time.perf_counter() - t0
        for m in feat_names:
            results.update(_compute(metric_objs[m], m))
        results["extractor"] = extractor.name
    ppl_names = [m for m in names if m in PPL_METRICS]
    if ppl_names:
        _need_mapping(G, "PPL")
        if not isinstance(distance, torch.nn.Module):
            distance = build_distance(distance, weights.get("vgg16"), weights.get("lpips"), weights.get("effnet"),
                                      device)
        tag = "" if distance.name == "lpips" else {"efficientnet-lite0": "effnet"}.get(distance.name, distance.name)
        for m in ppl_names:
            obj = METRICS.get(m)(tag=tag)
            g = torch.Generator().manual_seed(seed + 2)
            t0 = time.perf_counter()
            with tqdm(total=num_gen, desc=m, disable=not progress, unit="pair") as bar:
                for i in range(0, num_gen, batch):
                    b = min(batch, num_gen - i)
                    obj.update(G, distance, b, g, _labels_fn(G, g))
                    bar.update(b)
            timings[f"{m}_s"] = time.perf_counter() - t0
            results.update(_compute(obj, m))
        results["ppl_distance"] = distance.name
    if "separability" in names:
        _need_mapping(G, "separability")
        from .separability import AttributeClassifier, LinearSeparability

        kind = attributes or _attribute_kind(ds)
        clf = AttributeClassifier(kind)
        obj = LinearSeparability()
        g = torch.Generator().manual_seed(seed + 3)
        t0 = time.perf_counter()
        with tqdm(total=num_gen, desc="separability", disable=not progress, unit="img") as bar, torch.no_grad():
            for i in range(0, num_gen, batch):
                b = min(batch, num_gen - i)
                z = torch.randn(b, G.z_dim, generator=g).to(device)
                labels = _labels_fn(G, g)
                ws = G.mapping(z, labels(b) if labels else None, update_w_avg=False)
                img = G.synthesis(ws, noise_mode="random").clamp(-1, 1)
                obj.update({"z": z, "w": ws[:, -1]}, clf(img))
                bar.update(b)
        results.update(_compute(obj, "separability"))
        results["separability_attributes"] = clf.names
        timings["separability_s"] = time.perf_counter() - t0
    results["timings"] = {k: round(v, 2) for k, v in timings.items()}
    return results


def _compute(obj, name: str) -> dict:
    try:
        return obj.compute()
    except ValueError as e:  # too few samples for the protocol
        raise ConfigError(f"{name}: {e}; raise --num-gen (or --num-real)") from None


def _need_mapping(G, what: str):
    if not (hasattr(G, "mapping") and hasattr(G, "synthesis")):
        raise ConfigError(f"{what} needs a generator with a mapping network (stylegan, stylegan2, stylegan3); "
                          f"this one is {type(G).__name__}")


def _attribute_kind(ds) -> str:
    kind = getattr(ds, "mode_metric", None) if ds is not None else None
    if kind in ("shapes", "digits"):
        return kind
    raise ConfigError("separability needs attribute classifiers: use --data builtin:shapes or builtin:digits, "
                      "or --attributes shapes|digits")
