"""The generic training loop: phases from the family's recipe, run in order every iteration.

Determinism: every random generator (torch, Python) is seeded from (seed, iteration, phase,
micro-batch) before each pass, and real batches come from :class:`~gankit.data.BatchOrder`, a
pure function of images already seen. A run resumed from any checkpoint therefore repeats exactly
the steps an uninterrupted run takes, and on CPU reaches bitwise-identical weights.

Batches: each phase step sees the global batch ``batch_size``, split into micro-batches of
``batch_gpu`` over the processes (``torchrun``, :mod:`gankit.training.distributed`) and
accumulation rounds; gradients are summed over rounds and averaged over processes, so the step is
the large batch's. Latents and sampled labels are drawn for the global batch and sliced
(:class:`~gankit.models.family.Step`), so they do not depend on the split.
"""
from __future__ import annotations

import dataclasses
import json
import os
import random
import signal
import sys
import time
from pathlib import Path

import torch

from .. import __version__
from ..config import apply_overrides, from_dict, to_dict
from ..data import BatchOrder, GanDataset, open_dataset
from ..data.prefetch import Prefetcher
from ..errors import CheckpointError, ConfigError
from ..models.family import Phase, Step
from ..visual import save_samples
from . import checkpoint as ckpt
from . import distributed
from .config import TrainConfig, check_device, validate_train
from .ema import ema_beta, make_ema, update_ema
from .logging import RunLogger

RUN_FORMAT = "gankit-run/1"


def iteration_seed(seed: int, iteration: int) -> int:
    return (seed * 6364136223846793005 + iteration * 1442695040888963407 + 1) % (2**63 - 1)


def reseed(seed: int, device: torch.device) -> None:
    """Seeds Python's and torch's generators for ``device``: the streams ``torch.manual_seed`` gives.

    ``torch.manual_seed`` also queues a lazy seeding of every accelerator backend, formatting a
    stack trace for each (0.2-0.8 ms a call); the WGAN-GP ring test, 7 reseeds per iteration, took
    89 s with it and 72 s without.
    """
    random.seed(seed)
    torch.default_generator.manual_seed(seed)
    if device.type == "cuda":
        torch.cuda.manual_seed_all(seed)


def _same(saved, given) -> bool:
    """Whether a CLI value equals the value stored in config.json (types differ: '0.5' vs 0.5, lists vs tuples)."""
    if saved is None:
        return False
    if isinstance(saved, list):
        parts = given.split(",") if isinstance(given, str) else list(given)
        return len(parts) == len(saved) and all(_same(a, b) for a, b in zip(saved, parts))
    if isinstance(saved, bool):
        return str(given).lower() in (("true", "1", "yes", "on") if saved else ("false", "0", "no", "off"))
    try:
        return type(saved)(given) == saved
    except (TypeError, ValueError):
        return False


class _NoLogger:
    """The logger of processes other than 0, which write nothing."""

    def log(self, *args, **kwargs):
        pass

    def image(self, *args, **kwargs):
        pass

    def close(self):
        pass


def pick_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("cpu")
    check_device(name)
    dev = torch.device(name)
    if dev.type == "cuda" and (not torch.cuda.is_available() or (dev.index or 0) >= torch.cuda.device_count()):
        raise ConfigError(f"--train.device {name}: no such CUDA device here "
                          f"({torch.cuda.device_count()} found); use cpu or auto")
    if dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ConfigError(f"--train.device {name}: MPS is not available here; use cpu or auto")
    return dev


#: devices whose parameters Adam updates with torch's fused kernel (others: its per-tensor loop)
FUSED_ADAM_DEVICES = {"cpu", "cuda"}


def make_optimizer(params, cfg: TrainConfig, lr: float, ratio: float = 1.0) -> torch.optim.Optimizer:
    """The configured optimizer; ``ratio`` < 1 is the lazy-regularization correction of Adam
    (lr * ratio, betas ** ratio; StyleGAN2 section 3.1 / StyleGAN2-ADA's mb_ratio)."""
    if cfg.optimizer == "adam":
        betas = tuple(b ** ratio for b in cfg.betas[:2])
        params = list(params)
        # --train.fused-adam: one fused kernel per step instead of about ten elementwise passes per
        # tensor; the same update (Kingma & Ba 2015, Algorithm 1) within float rounding
        fused = cfg.fused_adam and bool(params) and all(p.device.type in FUSED_ADAM_DEVICES
                                                        and p.is_floating_point() for p in params)
        return torch.optim.Adam(params, lr=lr, betas=betas, eps=cfg.eps, fused=fused or None)
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, momentum=cfg.momentum, eps=cfg.eps)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum)
    raise ConfigError(f"--train.optimizer {cfg.optimizer}: use adam, rmsprop or sgd")


def lr_factor(cfg: TrainConfig, progress: float) -> float:
    if cfg.lr_schedule == "constant":
        return 1.0
    if cfg.lr_schedule == "linear-decay":
        # constant, then linear decay to 0 (Isola et al. 2017 / Zhu et al. 2017 schedule)
        if progress < cfg.lr_decay_start:
            return 1.0
        return max(0.0, (1.0 - progress) / max(1e-8, 1.0 - cfg.lr_decay_start))
    raise ConfigError(f"--train.lr-schedule {cfg.lr_schedule}: use constant or linear-decay")


def read_run_config(path: Path) -> dict:
    """A run's ``config.json``, checked for the keys resume needs; damage is named, with the fix."""
    hint = "restore it from the newest checkpoint (cp RUN/checkpoints/ckpt-N/config.json RUN/)"
    try:
        saved = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError):
        raise CheckpointError(f"{path}: not valid JSON; {hint}") from None
    if not isinstance(saved, dict):
        raise CheckpointError(f"{path}: not a gankit run config (a JSON object); {hint}")
    for key, kind in (("family", str), ("model", dict), ("train", dict), ("data", dict)):
        if not isinstance(saved.get(key), kind):
            raise CheckpointError(f"{path}: \"{key}\" is missing or not a {kind.__name__}; {hint}")
    if not isinstance(saved["data"].get("spec"), str) or not isinstance(saved["data"].get("fingerprint"), str):
        raise CheckpointError(f"{path}: \"data\" lacks its spec or fingerprint; {hint}")
    return saved


def pick_checkpoint(out: Path, chosen: Path | None) -> tuple[Path | None, list[tuple[Path, str]]]:
    """The checkpoint a resume starts from: ``chosen``, or the newest that passes its checksums.
    Returns it and the newer checkpoints passed over, each with why (damaged, or newer than ``chosen``)."""
    found = ckpt.list_checkpoints(out)
    if chosen is not None:
        chosen = Path(chosen).resolve()
        if chosen not in [c.resolve() for c in found]:
            raise CheckpointError(f"--resume {chosen}: not one of the checkpoints of {out} "
                                  f"({', '.join(c.name for c in found) or 'none'})")
        ckpt.verify(chosen)
        i = [c.resolve() for c in found].index(chosen)
        return found[i], [(c, "newer than the checkpoint chosen by --resume") for c in found[i + 1:]]
    skipped = []
    for c in reversed(found):
        try:
            ckpt.verify(c)
        except CheckpointError as e:
            skipped.append((c, str(e)))
            continue
        return c, skipped
    if found:
        raise CheckpointError(f"{out}: every checkpoint is damaged ({skipped[0][1]}); start a new run")
    return None, []


class Trainer:
    """Trains one family on one dataset into a run directory.

    Args:
        family: registered family name, e.g. ``"dcgan"``.
        data: a dataset spec (``"builtin:digits?res=32"``, a folder, a zip) or an opened dataset;
            None on resume takes the run's own.
        out: run directory.
        preset: name of one of the family's presets, or None for the paper's defaults.
        overrides: ``{"model": {...}, "train": {...}}``.
        resume: continue the newest intact checkpoint in ``out`` (True), or the checkpoint folder given
            (then ``out`` may be None); only ``train.kimg`` and ``train.batch_gpu`` may change.
        progress: show a progress bar.
    """

    def __init__(self, family: str, data, out: str | Path | None, preset: str | None = None,
                 overrides: dict | None = None, resume: bool | str | Path = False, progress: bool = True):
        from ..api import get_family, resolve_configs

        if resume not in (False, True) and resume is not None:  # a checkpoint folder chosen by the user
            chosen = Path(resume)
            if not (chosen / "model.safetensors").is_file() and not (chosen / ckpt.CHECKSUMS).is_file():
                raise CheckpointError(f"--resume {chosen}: not a checkpoint folder (RUN/checkpoints/ckpt-N); "
                                      f"give one, or --resume alone for the newest intact one")
            run_of = chosen.resolve().parent.parent
            if out is not None and Path(out).resolve() != run_of:
                raise CheckpointError(f"--resume {chosen} belongs to the run {run_of}, not --out {out}; "
                                      "drop --out or give that run")
            out, resume = run_of, chosen
        if out is None:
            raise ConfigError("--out is required (the run directory), unless --resume names a checkpoint folder")
        self.out = Path(out)
        ckpt.check_out_dir(self.out)
        self.progress = progress
        overrides = overrides or {}
        cfg_path = self.out / "config.json"
        self.resume_from = None
        self.skipped: list[tuple[Path, str]] = []  # (checkpoint, why) passed over on resume
        if resume:
            if not cfg_path.is_file():
                raise CheckpointError(f"{self.out}: nothing to resume (no config.json); drop --resume to start a new run")
            saved = read_run_config(cfg_path)
            if saved.get("family") != family:
                raise CheckpointError(f"{self.out} holds a '{saved.get('family')}' run, not '{family}'; "
                                      f"resume it with `gankit train {saved.get('family')} ... --resume` "
                                      "or choose another --out")
            free = {("train", "kimg"), ("train", "batch_gpu"), ("train", "batch-gpu")}  # may change on resume
            changed = sorted(f"--{g}.{k}" for g, d in overrides.items() for k, v in d.items()
                             if (g, k) not in free and not _same(saved.get(g, {}).get(k.replace("-", "_")), v))
            if changed or (preset is not None and preset != saved.get("preset")):
                raise ConfigError(f"--resume keeps the run's config; only --kimg may change "
                                  f"(changed: {', '.join(changed) or '--preset'})")
            fam = get_family(family)
            try:
                model_cfg = fam.config(saved["model"])
                train_cfg = from_dict(TrainConfig, saved["train"])
            except ConfigError as e:
                raise CheckpointError(f"{cfg_path}: {e}") from None
            changeable = {k: v for k, v in overrides.get("train", {}).items() if ("train", k) in free}
            train_cfg = validate_train(apply_overrides(train_cfg, changeable, "train"))
            data_spec = saved["data"]["spec"]
            if data is None:
                data = data_spec
            if isinstance(data, str) and data != data_spec:
                raise CheckpointError(f"{self.out} was trained on '{data_spec}', not '{data}'; resume with the same "
                                      "--data or choose another --out")
            self.resume_from, self.skipped = pick_checkpoint(self.out, None if resume is True else resume)
        else:
            if ckpt.list_checkpoints(self.out):
                raise CheckpointError(f"{self.out} already holds a run; pass --resume to continue it or choose a new --out")
            model_cfg, train_cfg = resolve_configs(family, preset, overrides)
            data_spec = data if isinstance(data, str) else getattr(data, "name", "custom")
            fam = get_family(family)

        self.family_name, self.family, self.cfg = family, fam, train_cfg
        self.dataset: GanDataset = open_dataset(data) if isinstance(data, str) else data
        self.model_cfg = fam.fit_to_data(model_cfg, self.dataset.info, overrides.get("model", {}))
        fingerprint = self.dataset.fingerprint()
        if resume and fingerprint != saved["data"]["fingerprint"]:
            raise CheckpointError(f"the data at '{data_spec}' changed since {self.out} started (fingerprint differs); "
                                  "exact resume needs the same data: restore it or start a new --out")
        self.data_spec = data_spec
        self.config = {"format": RUN_FORMAT, "family": family, "preset": preset, "gankit_version": __version__,
                       "model": to_dict(self.model_cfg), "train": to_dict(train_cfg),
                       "data": {"spec": data_spec, "fingerprint": fingerprint,
                                "info": dataclasses.asdict(self.dataset.info)}}
        if resume:
            self.config["preset"] = saved.get("preset")

    # ------------------------------------------------------------------ set-up
    def setup(self, dry_run: bool = False):
        """Builds the networks, optimizers and phases and restores the checkpoint to resume; with
        ``dry_run``, skips decoding the data and starting decoding threads."""
        cfg = self.cfg
        if cfg.threads > 0:
            torch.set_num_threads(cfg.threads)
        self.device = pick_device(cfg.device)
        self.rank, self.world, local_rank = distributed.env_world()
        micro = cfg.batch_gpu or cfg.batch_size // self.world
        if cfg.batch_gpu < 0 or micro < 1 or cfg.batch_size % (self.world * micro):
            raise ConfigError(f"--train.batch-size {cfg.batch_size} is not a multiple of {self.world} process(es) x "
                              f"--train.batch-gpu {micro}; choose sizes that divide it")
        if self.world > 1:
            if self.device.type == "cuda":
                self.device = torch.device("cuda", local_rank)
                torch.cuda.set_device(self.device)
            distributed.init(self.device.type)
        torch.manual_seed(cfg.seed)
        fam, mcfg = self.family, self.model_cfg
        # each network, its EMA copy, its gradients and Adam's two moments: about 5 copies of the weights
        nets = fam.build_checked(mcfg, copies=5)
        if self.world > 1:
            nets = {k: distributed.sync_batchnorm(v, self.device.type) for k, v in nets.items()}
        self.nets = {k: v.to(self.device) for k, v in nets.items()}  # the trained (and frozen) networks
        self.ema_pairs = fam.ema_pairs(mcfg)
        for copy_name, source in self.ema_pairs.items():
            if source not in self.nets or copy_name in self.nets:
                raise ConfigError(f"{self.family_name}: EMA pair {copy_name} <- {source} names an unknown network "
                                  f"or an existing one (networks: {', '.join(self.nets)})")
        self.ema = {k: make_ema(self.nets[src]) for k, src in self.ema_pairs.items()}
        self.inference_name = fam.inference_name(mcfg)
        if cfg.compile:  # in place, after the EMA copy: parameter names and checkpoints are unchanged
            for module in fam.compile_targets(self.nets):
                module.compile()
        self.optims = fam.optimizers(mcfg, cfg)
        for name, o in self.optims.items():
            unknown = [n for n in o.networks if n not in self.nets]
            if unknown or not o.networks:
                raise ConfigError(f"{self.family_name}: optimizer {name!r} names network(s) {', '.join(unknown) or '(none)'}"
                                  f" the family does not build (networks: {', '.join(self.nets)})")
        self.base_lr = {k: o.lr for k, o in self.optims.items()}
        self.opt = {k: make_optimizer([p for n in o.networks for p in self.nets[n].parameters()], cfg, o.lr, o.ratio)
                    for k, o in self.optims.items()}
        optimized = {n for o in self.optims.values() for n in o.networks}
        self.frozen = [n for n in self.nets if n not in optimized]  # in no optimizer: eval mode, never changed
        self.trained = [net for n, net in self.nets.items() if n not in self.frozen]
        for n in self.frozen:
            self.nets[n].eval().requires_grad_(False)
        if cfg.precision not in ("fp32", "bf16", "fp16", "auto"):
            raise ConfigError(f"--train.precision {cfg.precision}: use fp32, bf16, fp16 or auto")
        # fp16 needs loss scaling so small gradients survive (Micikevicius et al. 2018, section 3.2),
        # whether everything runs in it or only StyleGAN2-ADA's highest-resolution blocks
        from ..nn.precision import fp16_active, resolve_precision

        self.precision, why = resolve_precision(cfg.precision, self.device)
        if cfg.precision == "auto" and self.rank == 0:
            print(f"gankit: precision {self.precision} ({why})", file=sys.stderr)

        half_blocks = any(fp16_active(getattr(m, "use_fp16", False), self.device)
                          for net in self.nets.values() for m in net.modules())
        self.scaler = ({k: torch.amp.GradScaler(self.device.type) for k in self.opt}
                       if self.precision == "fp16" or half_blocks else None)
        self.phases: list[Phase] = fam.phases(mcfg, self.nets, cfg)
        for phase in self.phases:
            if phase.optimizer not in self.opt:
                raise ConfigError(f"{self.family_name}: phase {phase.name!r} steps optimizer {phase.optimizer!r}, "
                                  f"which the family does not declare (optimizers: {', '.join(self.opt)})")
        for opt, n, flag in (("D", cfg.n_critic, "--train.n-critic"), ("G", cfg.n_gen, "--train.n-gen")):
            if n != 1 and not any(p.optimizer == opt and p.repeat == n for p in self.phases):
                raise ConfigError(f"{flag} {n}: the {self.family_name} family takes one {opt} step per iteration; "
                                  f"drop {flag} or set it to 1")
        self.cur_nimg, self.iteration, self.elapsed = 0, 0, 0.0
        self._scratch, self._shared, self._last_real = {}, {}, None  # per iteration (see step)
        if self.resume_from is not None:
            self._restore(self.resume_from)
        if cfg.cache and hasattr(self.dataset, "files") and not dry_run:
            self.dataset = self.dataset.materialize(progress=self.progress)
        self.batch_size = self._scheduled_batch(self.cur_nimg)
        self.order = BatchOrder(len(self.dataset), self.batch_size, seed=cfg.seed, position=self.cur_nimg)
        if cfg.workers < 0:
            raise ConfigError(f"--train.workers {cfg.workers}: use 0 (decode in the loop) or a positive number of threads")
        self.prefetch = None
        if hasattr(self.dataset, "files") and cfg.workers > 0 and not dry_run:  # decoded on the fly (--train.cache false)
            self.prefetch = Prefetcher(self.dataset, cfg.workers, pin_memory=self.device.type == "cuda")
        self._nimg_at_start = self.cur_nimg
        self.n_grid = 1000 if self.dataset.info.kind == "vector" else cfg.grid  # vectors are drawn as a scatter plot

    def __getattr__(self, name: str):
        """``trainer.G``, ``trainer.G_ema``, ... : the family's networks by name, once set up."""
        d = self.__dict__
        for group in ("nets", "ema"):
            if name in d.get(group, {}):
                return d[group][name]
        raise AttributeError(name)

    @property
    def modules(self) -> dict[str, torch.nn.Module]:
        """Every network a checkpoint holds, by its tensor prefix: the trained ones and the EMA copies."""
        return {**self.nets, **self.ema}

    @property
    def inference_net(self) -> torch.nn.Module:
        return self.modules[self.inference_name]

    def _scheduled(self, cur_nimg: int):
        return self.family.schedule(self.model_cfg, self.cfg, cur_nimg)

    def _scheduled_batch(self, cur_nimg: int) -> int:
        """The global batch at ``cur_nimg`` (the family's schedule may change it) and its split into
        micro-batches of --train.batch-gpu over processes and accumulation rounds."""
        sched = self._scheduled(cur_nimg)
        bs = sched.batch_size if sched is not None and sched.batch_size else self.cfg.batch_size
        self.micro = min(self.cfg.batch_gpu, bs // self.world) if self.cfg.batch_gpu else bs // self.world
        if self.micro < 1 or bs % (self.world * self.micro):
            raise ConfigError(f"batch size {bs} is not a multiple of {self.world} process(es) x "
                              f"--train.batch-gpu {self.micro}; choose sizes that divide it")
        self.rounds = bs // (self.world * self.micro)
        return bs

    def _restore(self, where: Path):
        ckpt.load_modules(where, self.modules)
        state = ckpt.load_state(where)
        try:
            for k, opt in self.opt.items():
                opt.load_state_dict(state["optimizers"][k])
            if self.scaler is not None and "scalers" in state:
                for k, sc in self.scaler.items():
                    sc.load_state_dict(state["scalers"][k])
            self.family.load_state_dict(state.get("family", {}))
            counters = [state[k] for k in ("cur_nimg", "iteration", "elapsed")]
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 2 ** 62 for v in counters) \
                    or not all(isinstance(v, int) for v in counters[:2]):
                raise ValueError("counters cur_nimg, iteration, elapsed must be non-negative numbers")
            py = state["rng"]["python"]
            torch_state = state["rng"]["torch"]
            if not isinstance(torch_state, torch.Tensor) or torch_state.dtype != torch.uint8:
                raise TypeError("rng.torch is not a byte tensor")
            torch.set_rng_state(torch_state)
            random.setstate((py[0], tuple(py[1]), py[2]))
        except (KeyError, IndexError, TypeError, ValueError, RuntimeError, AttributeError) as e:
            what = f"missing {e}" if isinstance(e, KeyError) else str(e).splitlines()[0][:200] if str(e) else type(e).__name__
            raise CheckpointError(f"{where / 'training_state.pt'}: not a training state of this run ({what}); "
                                  f"resume from another checkpoint (gankit train --resume CHECKPOINT_FOLDER)") from None
        self.cur_nimg, self.iteration, self.elapsed = counters

    def _set_aside(self) -> None:
        """Renames the checkpoints a resume passed over (damaged, or newer than the one chosen) out of
        the run's checkpoint list, so the resumed run never mixes with them: ``ckpt-N.damaged`` or
        ``ckpt-N.superseded``, kept for inspection, never pruned."""
        for c, why in self.skipped:
            tag = "superseded" if why.startswith("newer") else "damaged"
            dest = c.with_name(f"{c.name}.{tag}")
            n = 1
            while dest.exists():
                dest, n = c.with_name(f"{c.name}.{tag}{n}"), n + 1
            os.rename(c, dest)
            print(f"gankit: skipped checkpoint {c} ({why}); moved it to {dest.name}", file=sys.stderr)
        if self.skipped:
            print(f"gankit: resuming from {self.resume_from}", file=sys.stderr)
        self.skipped = []

    # ------------------------------------------------------------------ pieces
    def _save(self) -> Path:
        tensors = {k: v for name, net in self.modules.items() for k, v in ckpt.state_tensors(name, net).items()}
        py = random.getstate()
        family_state = self.family.state_dict()
        state = {"cur_nimg": self.cur_nimg, "iteration": self.iteration, "elapsed": self.elapsed,
                 "optimizers": {k: o.state_dict() for k, o in self.opt.items()},
                 **({"family": family_state} if family_state else {}),
                 **({"scalers": {k: sc.state_dict() for k, sc in self.scaler.items()}} if self.scaler else {}),
                 "rng": {"torch": torch.get_rng_state(), "python": [py[0], list(py[1]), py[2]]}}
        return ckpt.save_checkpoint(self.out, self.cur_nimg, tensors, state, self.config, keep=self.cfg.keep)

    @torch.no_grad()
    def _evaluate(self) -> dict:
        """``cfg.eval_metrics`` of the inference network as a log record; the global RNG streams are left untouched, so
        evaluating never changes the training run (exact resume holds)."""
        from ..metrics.evaluate import evaluate

        cfg = self.cfg
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            net = self.inference_net
            res = evaluate(net, cfg.eval_metrics, data=self.dataset, num_gen=cfg.eval_num_gen,
                           extractor=cfg.eval_extractor, device=self.device, family=self.family)
        return {"kimg": self.cur_nimg / 1000, "iteration": self.iteration,
                **{f"eval/{k}": v for k, v in res.items() if isinstance(v, float)}}

    @torch.no_grad()
    def _sample_grid(self) -> Path:
        """The family's sample grid of the inference network (the same seed every time), as a PNG."""
        net = self.inference_net
        samples, nrow = self.family.grid(net, self.dataset, self.n_grid, self.cfg.seed + 7919, nets=self.modules)
        path = self.out / "samples" / f"fakes{self.cur_nimg // 1000:06d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        if samples.dim() == 4 or samples.shape[1] == 2:
            save_samples(samples.cpu(), str(path), self.dataset.meta.get("centers"), nrow=nrow)
        return path

    def _save_reals(self):
        path = self.out / "samples" / "reals.png"
        if path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        n = 1000 if self.dataset.info.kind == "vector" else self.cfg.grid
        idx = torch.randperm(len(self.dataset), generator=torch.Generator().manual_seed(0))[:n]
        x = self.family.show_reals(self.dataset.get_batch(idx))
        if x is not None and (x.dim() == 4 or x.shape[1] == 2):
            save_samples(x, str(path), self.dataset.meta.get("centers"))

    def _real_part(self, part: int) -> dict[str, torch.Tensor]:
        """Micro-batch ``part`` of the current global real batch as a dict of named tensors (cached for
        phases that reuse it). Random choices of the data (mirror flips, a pair's crop, an unpaired
        partner) are drawn for the global batch from the phase seed, so they do not depend on the split."""
        idx, seed, cache, position = self._last_real
        if part not in cache:
            sl = self._part_slice(part)
            if getattr(self.dataset, "batch_dicts", False):  # paired / unpaired data: jitter per sample
                seeds = torch.randint(0, 2**62, (len(idx),), generator=torch.Generator().manual_seed(seed))
                batch = self.dataset.get_batch(idx[sl], seeds=seeds[sl].tolist())
            else:
                if self.prefetch is not None:
                    x, c = self.prefetch.get((position, part), idx[sl])
                else:
                    x, c = self.dataset.get_batch(idx[sl])
                if self.cfg.mirror and x.dim() == 4:
                    flip = (torch.rand(len(idx), generator=torch.Generator().manual_seed(seed)) < 0.5)[sl]
                    x[flip] = x[flip].flip(3)
                batch = {"image": x} if c is None else {"image": x, "label": c}
            cache[part] = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        return cache[part]

    def _request_ahead(self):
        """Asks the decoding threads for this process's micro-batches of the next batches."""
        if self.prefetch is None:
            return
        for ahead in range(self.cfg.workers):
            position, idx = self.order.peek(ahead)
            for part in range(self.rank * self.rounds, (self.rank + 1) * self.rounds):
                self.prefetch.request((position, part), idx[self._part_slice(part)])

    def _part_slice(self, part: int) -> slice:
        """Where micro-batch ``part`` lies in a global batch."""
        return slice(part * self.micro, (part + 1) * self.micro)

    def _set_lr(self, total: int, factor: float = 1.0):
        f = lr_factor(self.cfg, self.cur_nimg / max(total, 1)) * factor
        for k, opt in self.opt.items():
            for group in opt.param_groups:
                group["lr"] = self.base_lr[k] * f

    def _loss_context(self, phase: Phase):
        """Mixed precision around a loss (bf16 or fp16 autocast, nothing for fp32); with
        ``--train.compile``, a phase that differentiates through a gradient runs eagerly."""
        import contextlib

        from ..nn.precision import autocast_context

        stack = contextlib.ExitStack()
        if self.cfg.compile and phase.higher_order:
            stack.enter_context(torch.compiler.set_stance("force_eager"))
        stack.enter_context(autocast_context(self.precision, self.device))
        return stack

    def _run_phase(self, index: int, phase: Phase, stats: dict):
        """``phase.repeat`` optimizer steps of ``phase.optimizer``; only its networks get gradients.
        Each step sums the gradients of this process's accumulation rounds (loss / rounds) and
        averages them over processes before stepping."""
        names = self.optims[phase.optimizer].networks
        stepped = [self.nets[n] for n in dict.fromkeys(names)]
        for n, net in self.nets.items():
            net.requires_grad_(n in names)
        opt = self.opt[phase.optimizer]
        parts = self.world * self.rounds
        for r in range(phase.repeat):
            seed = iteration_seed(iteration_seed(self.cfg.seed, self.iteration), 1 + index * 1009 + r)
            drawn = phase.real and not (phase.reuse_real and self._last_real is not None)
            if drawn:
                position = self.order.position
                self._last_real = (self.order.next(), seed, {}, position)
                self._request_ahead()
            opt.zero_grad(set_to_none=True)
            rounds = distributed.RoundBuffers(self.trained) if self.rounds > 1 else None
            for a in range(self.rounds):
                part = self.rank * self.rounds + a
                batch = self._real_part(part) if phase.real else None
                part_seed = iteration_seed(seed, part)  # what else the loss draws (noise, mixing): per part
                reseed(part_seed, self.device)
                step = Step(self.modules, batch, self.micro, self.iteration, self.device, part=part, parts=parts,
                            seed=seed, cur_nimg=self._nimg_at_start, scratch=self._scratch.setdefault(part, {}),
                            _all=self._scratch, _shared=self._shared, world=self.world)
                with self._loss_context(phase):
                    out = phase.loss(step)
                loss = out["loss"].float() / self.rounds if self.rounds > 1 else out["loss"].float()
                (self.scaler[phase.optimizer].scale(loss) if self.scaler else loss).backward()
                if rounds is not None:
                    rounds.end_round()
                for k, v in out.items():
                    key = f"{phase.name}/{k}"
                    s = stats.setdefault(key, [0.0, 0])
                    s[0] += float(v.detach()) if torch.is_tensor(v) else float(v)
                    s[1] += 1
            if rounds is not None:
                rounds.finish()
            for net in stepped:
                distributed.all_reduce_mean_grads(net, self.world)
            if self.scaler:  # skips the step when a gradient overflowed, then adapts the scale
                self.scaler[phase.optimizer].step(opt)
                self.scaler[phase.optimizer].update()
            else:
                opt.step()
            if phase.after is not None:
                for net in stepped:
                    phase.after(net)
            if drawn:
                self.cur_nimg += self.batch_size
        for n, net in self.nets.items():
            net.requires_grad_(n not in self.frozen)

    # ------------------------------------------------------------------ loop
    def step(self, total: int, stats: dict | None = None) -> None:
        """One training iteration: the family's schedule, every due phase (each reseeded from (seed,
        iteration, phase, micro-batch)), running statistics averaged over processes, then the EMAs."""
        cfg = self.cfg
        seed = iteration_seed(cfg.seed, self.iteration)
        reseed(seed, self.device)
        sched = self._scheduled(self.cur_nimg)
        if sched is not None:
            bs = self._scheduled_batch(self.cur_nimg)
            if bs != self.batch_size:
                self.batch_size = self.order.batch_size = bs
                if self.prefetch is not None:
                    self.prefetch.drop()
            if sched.callback is not None:
                sched.callback(self.modules)
        self._set_lr(total, sched.lr_factor if sched is not None else 1.0)
        before = self._nimg_at_start = self.cur_nimg
        self._last_real = None
        self._scratch, self._shared = {}, {}  # per-iteration: never outlives the iteration, never saved
        base = distributed.buffer_state(self.trained) if self.world > 1 else None
        for i, phase in enumerate(self.phases):
            if self.iteration % phase.every == 0:
                self._run_phase(i, phase, {} if stats is None else stats)
        distributed.average_buffers(self.trained, base, self.world)
        self._scratch, self._shared = {}, {}
        beta = ema_beta(self.batch_size, self.cur_nimg, cfg.ema_kimg, cfg.ema_rampup)
        for copy_name, source in self.ema_pairs.items():
            update_ema(self.ema[copy_name], self.nets[source], beta)
        self.iteration += 1
        if self.cur_nimg == before:
            raise RuntimeError("no phase consumed real data; a family must have a phase with real=True")

    def run(self) -> dict:
        """Trains until ``train.kimg``; returns a summary (paths, images seen, status)."""
        from tqdm import tqdm

        if "nets" not in self.__dict__:  # set up here unless the caller did
            self.setup()
        cfg = self.cfg
        main = self.rank == 0  # only process 0 writes files (config, log, samples, checkpoints)
        total = int(round(cfg.kimg * 1000))
        if main:
            self._set_aside()
            self.out.mkdir(parents=True, exist_ok=True)
            ckpt.atomic_write_text(self.out / "config.json", json.dumps(self.config, indent=2))
            # records past the checkpoint we start from (a killed attempt's) are dropped from the log
            logger = RunLogger(self.out, cfg.tensorboard, resume_kimg=self.cur_nimg / 1000, purge_step=self.iteration)
            self._save_reals()
            if self.resume_from is None:
                self._sample_grid()
        else:
            logger = _NoLogger()
        stop = {"flag": False}

        def on_sigint(signum, frame):
            if stop["flag"]:
                raise KeyboardInterrupt
            stop["flag"] = True

        old_handler = signal.signal(signal.SIGINT, on_sigint)
        bar = tqdm(total=total, initial=min(self.cur_nimg, total), unit="img", unit_scale=True,
                   disable=not (self.progress and main),
                   desc=f"{self.family_name}", dynamic_ncols=True,
                   mininterval=1.0 if sys.stderr.isatty() else 30.0)  # fewer lines in CI logs
        stats: dict = {}
        tick_start, tick_nimg = time.time(), self.cur_nimg
        last_save = self.cur_nimg if self.resume_from is not None else -1
        status = "done"
        n_log, n_sample, n_snap = (max(1, int(k * 1000)) for k in (cfg.log_kimg, cfg.sample_kimg, cfg.snapshot_kimg))
        n_eval = max(1, int(cfg.eval_kimg * 1000)) if cfg.eval_metrics and cfg.eval_kimg > 0 else 0
        try:
            while self.cur_nimg < total:
                if distributed.any_flag(stop["flag"], self.world, self.device):
                    status = "interrupted"
                    break
                before = self.cur_nimg
                self.step(total, stats)
                bar.update(min(self.cur_nimg, total) - min(before, total))
                now = time.time()
                crossed = lambda n: self.cur_nimg // n > before // n  # noqa: E731
                if crossed(n_log) or self.cur_nimg >= total:
                    dt = now - tick_start
                    self.elapsed += dt
                    rate = (self.cur_nimg - tick_nimg) / max(dt, 1e-9)
                    rec = {"kimg": self.cur_nimg / 1000, "iteration": self.iteration, "time_s": round(self.elapsed, 3),
                           "img_per_s": round(rate, 2),
                           **{k: s[0] / max(s[1], 1) for k, s in stats.items()}}
                    logger.log(rec, self.iteration)
                    bar.set_postfix({"img/s": f"{rate:.0f}",
                                     **{k: f"{s[0] / max(s[1], 1):.3f}" for k, s in stats.items() if k.endswith("/loss")}})
                    stats, tick_start, tick_nimg = {}, time.time(), self.cur_nimg
                if crossed(n_sample) and main:
                    logger.image("samples", self._sample_grid(), self.iteration)
                if crossed(n_snap):
                    if main:
                        self._save()
                    last_save = self.cur_nimg
                if n_eval and crossed(n_eval) and self.cur_nimg < total and main:
                    logger.log(self._evaluate(), self.iteration)
        finally:
            signal.signal(signal.SIGINT, old_handler)
            bar.close()
            if self.prefetch is not None:
                self.prefetch.close()
        if last_save != self.cur_nimg and main:
            self._save()
        summary = {"status": status, "run": str(self.out), "kimg": self.cur_nimg / 1000}
        if self.world > 1:  # every process must end with the same weights (NVIDIA's ddp consistency check)
            summary["processes"] = self.world
            summary["ranks_max_divergence"] = distributed.max_divergence(list(self.modules.values()))
            torch.distributed.barrier()  # the last collective: what follows is this process's own
        summary["checkpoint"] = str(ckpt.list_checkpoints(self.out)[-1])
        if not main:
            return summary
        if status == "done":
            summary["samples"] = str(self._sample_grid())
            if cfg.eval_metrics:
                rec = self._evaluate()
                logger.log(rec, self.iteration)
                summary["eval"] = {k: v for k, v in rec.items() if k.startswith("eval/")}
            for path in self.family.final_samples(self.inference_net, self.out / "samples"):
                summary.setdefault("pictures", []).append(str(path))
            if cfg.metrics:
                metrics = self.family.final_metrics(self.inference_net, self.dataset, self.device, nets=self.modules)
                if metrics is not None:
                    metrics["kimg"] = self.cur_nimg / 1000
                    ckpt.atomic_write_text(self.out / "metrics.json", json.dumps(metrics, indent=2))
                    summary["metrics"] = str(self.out / "metrics.json")
                    summary["metric_values"] = metrics
        logger.close()
        return summary

