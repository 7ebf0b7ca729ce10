"""The family contract (docs/architecture.md, "The family contract"): what a family provides to
the trainer, the evaluators and the tools.

A family names its networks (``build``), its optimizers over sets of them (``optimizers``), the
EMA copies to keep and the network inference uses (``ema``, ``inference``), its phases (one
optimizer step each, STYLE.md 4: n_critic = ``repeat``, lazy regularization = ``every``), any
state that is not a buffer (``state_dict``), a schedule over the image count, and how it samples
(``sampler``, ``grid``). The trainer iterates phases as data and never branches on family or
network names; nothing outside a family assumes its networks' names or signatures.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import torch
from torch import nn

from ..config import apply_overrides
from ..data.base import DatasetInfo
from ..errors import ConfigError


@dataclass
class Step:
    """What a phase's loss function sees (the *loss context*): the networks by name, this pass's
    batch as a dict of named tensors, the image count, samplers and a per-iteration scratch space.

    The global batch may be split into ``parts`` micro-batches (processes x accumulation rounds);
    this step computes part ``part`` of them, ``batch_size`` samples. :meth:`randn` and
    :meth:`randint` draw the *global* batch from a generator seeded by ``seed`` (the same on every
    process and round) and return this part's rows, so latents and sampled labels do not depend on
    how the batch is split: one pass of 64 sees the same z as 4 rounds of 16 or 2 processes of 32.

    ``scratch`` is this part's dict for the current iteration: a generator phase may leave its fakes
    there for the discriminator phase of the same iteration (junyanz's pix2pix and CycleGAN do).
    It is emptied before every iteration and never saved, so checkpoints (taken between
    iterations) and exact resume are unaffected. :meth:`gather` and :meth:`once` turn per-part
    values into a global batch and compute something once per iteration (CycleGAN's history
    pool), identically on every process.
    """

    nets: dict[str, nn.Module]
    batch: dict[str, torch.Tensor] | None
    batch_size: int
    iteration: int
    device: torch.device
    part: int = 0
    parts: int = 1
    seed: int | None = None
    draws: int = 0
    cur_nimg: int = 0
    scratch: dict = dataclasses.field(default_factory=dict)
    #: scratch of every part this process computes, and the per-iteration shared dict
    _all: dict = dataclasses.field(default_factory=dict, repr=False)
    _shared: dict = dataclasses.field(default_factory=dict, repr=False)
    world: int = 1

    # the classic two-player names, for families that have them
    @property
    def G(self) -> nn.Module:
        return self.nets["G"]

    @property
    def D(self) -> nn.Module:
        return self.nets["D"]

    @property
    def real(self) -> torch.Tensor | None:
        return None if self.batch is None else self.batch.get("image")

    @property
    def labels(self) -> torch.Tensor | None:
        return None if self.batch is None else self.batch.get("label")

    def generator(self) -> torch.Generator | None:
        """A CPU generator for the next global draw (the same on every process and round)."""
        if self.seed is None:
            return None
        self.draws += 1
        return torch.Generator().manual_seed((self.seed + 7919 * self.draws) % (2**63 - 1))


    def rows(self, x: torch.Tensor) -> torch.Tensor:
        """This part's rows of a global-batch tensor."""
        n = x.shape[0] // self.parts
        return x[self.part * n:(self.part + 1) * n]

    def randn(self, n: int, *shape: int) -> torch.Tensor:
        """This part's ``n`` rows of a global (n * parts, *shape) standard normal draw."""
        g = self.generator()
        if g is None:
            return torch.randn(n, *shape, device=self.device)
        x = torch.randn(n * self.parts, *shape, generator=g)
        return x[self.part * n:(self.part + 1) * n].to(self.device)

    def randint(self, high: int, n: int | None = None) -> torch.Tensor:
        """This part's rows of a global draw of integers in [0, high) (e.g. labels of fakes)."""
        n = n or self.batch_size
        g = self.generator()
        if g is None:
            return torch.randint(0, high, (n,), device=self.device)
        x = torch.randint(0, high, (n * self.parts,), generator=g)
        return x[self.part * n:(self.part + 1) * n].to(self.device)

    def z(self, n: int | None = None, dim: int | None = None) -> torch.Tensor:
        return self.randn(n or self.batch_size, dim or self.G.z_dim)

    def gather(self, key: str) -> torch.Tensor:
        """The global batch of ``scratch[key]``: every part's tensor in part order, from this process's
        rounds and (under torchrun) every process. All parts must have stored it."""
        mine = [self._all[p][key] for p in sorted(self._all)]
        local = torch.cat(mine)
        if self.world == 1:
            return local
        from ..training.distributed import all_gather_cat

        return all_gather_cat(local.contiguous(), self.world)

    def once(self, key: str, fn: Callable[[], Any]) -> Any:
        """``fn()`` computed at the first call of this iteration and shared by every part after."""
        if key not in self._shared:
            self._shared[key] = fn()
        return self._shared[key]


@dataclass
class Phase:
    """One optimizer step of the networks of optimizer ``optimizer`` (e.g. "G" or "D").

    Args:
        name: label used in logs, e.g. ``"D"`` or ``"Dreg"``.
        optimizer: which of the family's optimizers (:meth:`Family.optimizers`) steps; only its
            networks get gradients, every other network is frozen during the phase.
        loss: ``loss(step) -> {"loss": scalar, other stats...}``.
        every: run on iterations where ``iteration % every == 0`` (lazy regularization).
        repeat: run this many times per iteration, each with a fresh real batch (n_critic).
        real: whether the step consumes real images (counted in kimg).
        reuse_real: take the real batch of the previous real phase of this iteration instead of
            drawing (and counting) a new one, as StyleGAN2's R1 phase shares D's batch.
        after: called with each network of the optimizer after each step (e.g. weight clipping).
        higher_order: the loss differentiates through a gradient (R1, gradient penalty, path
            length); with ``--train.compile`` such phases run the networks eagerly, since
            compiled graphs do not support double backward.
    """

    name: str
    optimizer: str
    loss: Callable[[Step], dict[str, torch.Tensor]]
    every: int = 1
    repeat: int = 1
    real: bool = False
    reuse_real: bool = False
    after: Callable[[nn.Module], None] | None = None
    higher_order: bool = False

    @property
    def module(self) -> str:  # the name before Contract v2
        return self.optimizer


@dataclass
class Optim:
    """One optimizer over a set of the family's networks.

    Args:
        networks: names of the networks it updates (their parameters, chained).
        lr: base learning rate (the schedule's factor multiplies it).
        ratio: lazy-regularization correction r: Adam runs with lr * r and betas ** r
            (StyleGAN2 section 3.1); 1 for none.
    """

    networks: tuple[str, ...]
    lr: float
    ratio: float = 1.0


@dataclass
class Schedule:
    """What :meth:`Family.schedule` may change at an image count: the global batch size, a factor on
    every learning rate, and a callback run before the iteration with the networks."""

    batch_size: int | None = None
    lr_factor: float = 1.0
    callback: Callable[[dict], None] | None = None


class Bundle:
    """A built model: the family's networks by name and the config that rebuilds them.

    ``m.G``, ``m.D`` (or any network name) read ``m.nets``; ``m.inference`` is the network
    :func:`gankit.load` returns (the EMA generator when the family keeps one).
    """

    def __init__(self, family: str, config: Any, nets: dict[str, nn.Module], inference: str | None = None):
        self.family, self.config, self.nets = family, config, dict(nets)
        self.inference_name = inference

    def __getattr__(self, name: str) -> nn.Module:
        nets = self.__dict__.get("nets", {})
        if name in nets:
            return nets[name]
        raise AttributeError(f"{self.__dict__.get('family', 'this')} model has no network {name!r} "
                             f"(it has {', '.join(nets)})")

    @property
    def inference(self) -> nn.Module:
        for name in (self.inference_name, "G_ema", "G"):
            if name in self.nets:
                return self.nets[name]
        return next(iter(self.nets.values()))


Sampler = Callable[[int, torch.Generator], torch.Tensor]


class Family:
    """Base class of a registered family. Subclasses set the class attributes and implement
    :meth:`build` and :meth:`phases`; everything else has a default for the two-player
    z -> image families (networks ``G`` and ``D``, optimizers ``G`` and ``D``, an EMA ``G_ema``).
    """

    Config: ClassVar[type]
    #: paper defaults for the generic training config (optimizer, learning rates, batch, n_critic)
    train_defaults: ClassVar[dict] = {}
    #: named presets: {"name": {"model": {...}, "train": {...}}, ...}
    presets: ClassVar[dict[str, dict]] = {}
    #: which data the family accepts: "image", "vector", "paired", "unpaired"
    data_kinds: ClassVar[tuple[str, ...]] = ("image",)
    paper: ClassVar[str] = ""
    #: EMA copies the trainer keeps: {copy name: source network}
    ema: ClassVar[dict[str, str]] = {"G_ema": "G"}
    #: the network gankit.load returns and samples come from
    inference: ClassVar[str] = "G_ema"
    #: the page ``gankit demo`` serves: "samples" (a seed and a class -> a grid of samples), "style"
    #: (the StyleGAN toolbox: truncation, noise, mixing, interpolation) or "translation" (an upload)
    demo_page: ClassVar[str] = "samples"
    #: the tiny config the registry test trains (data spec, overrides): every family declares one
    tiny: ClassVar[tuple[str, dict] | None] = None

    def config(self, overrides: dict | None = None):
        return apply_overrides(self.Config(), overrides or {}, "model")

    def fit_to_data(self, cfg, info: DatasetInfo, user_overrides: dict):
        """Sets the config's data shape fields from the dataset; conflicts with explicit options are errors."""
        name = type(self).registered_name  # type: ignore[attr-defined]
        if info.kind not in self.data_kinds:
            others = {"image": "an image", "vector": "a vector", "paired": "a paired", "unpaired": "an unpaired"}
            raise ConfigError(f"family '{name}' takes {' or '.join(self.data_kinds)} data but the dataset holds "
                              f"{info.kind} data; choose {' or '.join(others.get(k, k) for k in self.data_kinds)} "
                              f"dataset or another family")
        wanted = self.data_fields(info)
        for key, value in wanted.items():
            if key in user_overrides and coerce_eq(user_overrides[key], value) is False:
                raise ConfigError(f"--model.{key} {user_overrides[key]} conflicts with the dataset ({key} = {value}); "
                                  "drop the option or change the data spec")
        cfg = dataclasses.replace(cfg, **wanted)
        self.validate(cfg)
        return cfg

    def data_fields(self, info: DatasetInfo) -> dict:
        """Config fields implied by the data (override for non-image families)."""
        c, h, _ = info.shape
        return {"resolution": h, "channels": c}

    def validate(self, cfg) -> None:
        """Raises ConfigError on invalid configs before any step is taken."""

    # ------------------------------------------------------------------ networks
    def build(self, cfg) -> dict[str, nn.Module]:  # pragma: no cover - abstract
        """The trained networks by name, e.g. ``{"G": ..., "D": ...}`` (EMA copies are made by the trainer)."""
        raise NotImplementedError

    def networks(self, cfg) -> dict[str, nn.Module]:
        """:meth:`build` as a dict (a ``(G, D)`` tuple, the pre-v2 return, is named G and D)."""
        nets = self.build(cfg)
        if isinstance(nets, tuple):
            nets = dict(zip(("G", "D"), nets))
        return nets

    def build_checked(self, cfg, copies: float = 1.0) -> dict[str, nn.Module]:
        """:meth:`networks`, after building the same networks on the meta device (no memory) and
        refusing, with the sizes, networks whose ``copies`` fp32 copies do not fit in this machine's
        available memory; a config that cannot be built at all is a ConfigError, not a traceback."""
        name = type(self).registered_name  # type: ignore[attr-defined]
        try:
            with torch.device("meta"):
                nets = self.networks(cfg)
        except ConfigError:
            raise
        except (RuntimeError, ValueError, OverflowError, MemoryError, ZeroDivisionError, IndexError) as e:
            raise ConfigError(f"{name}: the networks of this config cannot be built ({type(e).__name__}: "
                              f"{str(e).splitlines()[0][:200] if str(e) else ''}); check the --model options") from None
        numel = sum(t.numel() for net in unique_modules(nets) for t in (*net.parameters(), *net.buffers()))
        need, have = 4 * numel * copies, available_memory()
        if have and need > have:
            default = self.Config()
            grown = sorted(((v / max(getattr(default, f.name), 1), f.name, v) for f in dataclasses.fields(cfg)
                            if type(v := getattr(cfg, f.name)) is int and v > getattr(default, f.name)), reverse=True)
            named = ", ".join(f"--model.{k.replace('_', '-')} {v}" for _, k, v in grown[:3])
            raise ConfigError(f"{name}: the networks hold {numel:,} numbers and need about {need / 2**30:.1f} GiB "
                              f"({copies:g} fp32 copies: weights, gradients, optimizer state, EMA), more than the "
                              f"{have / 2**30:.1f} GiB of memory available; reduce the --model sizes"
                              + (f" (above the paper's: {named})" if named else ""))
        return self.networks(cfg)

    def ema_pairs(self, cfg) -> dict[str, str]:
        """The EMA copies to keep, ``{copy: source}`` (the class's :attr:`ema` unless a config option says)."""
        return dict(self.ema)

    def inference_name(self, cfg) -> str:
        """The network :func:`gankit.load` returns: :attr:`inference`, or its source when no EMA copy is kept."""
        pairs = self.ema_pairs(cfg)
        if self.inference in pairs or self.inference not in self.ema:
            return self.inference
        return self.ema[self.inference]

    # ------------------------------------------------------------------ training
    def optimizers(self, cfg, train) -> dict[str, Optim]:
        """The optimizers by name; the default is G and D at --train.g-lr / --train.d-lr."""
        ratios = self.optimizer_ratios(cfg)
        return {"G": Optim(("G",), train.g_lr * ratios.get("G", 1.0), ratios.get("G", 1.0)),
                "D": Optim(("D",), train.d_lr * ratios.get("D", 1.0), ratios.get("D", 1.0))}

    def optimizer_ratios(self, cfg) -> dict[str, float]:
        """Per-optimizer ratio r for lazy regularization: Adam runs with lr * r and betas ** r."""
        return {}

    def phases(self, cfg, nets: dict[str, nn.Module], train) -> list[Phase]:  # pragma: no cover - abstract
        raise NotImplementedError

    def schedule(self, cfg, train, cur_nimg: int) -> Schedule | None:
        """What changes at ``cur_nimg`` images (batch size, learning-rate factor, a callback); None: nothing."""
        return None

    def state_dict(self) -> dict:
        """Training state that is not a network buffer (an image pool, ADA's p), saved in
        training_state.pt and restored exactly; never averaged across processes."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        if state:
            raise ValueError(f"family state {sorted(state)} given to a family that keeps none")

    def compile_targets(self, nets: dict[str, nn.Module]) -> list[nn.Module]:
        """The modules the phases call, compiled in place by ``--train.compile``."""
        return list(unique_modules(nets))

    # ------------------------------------------------------------------ sampling
    def sampler(self, net: nn.Module, condition=None, truncation_psi: float = 1.0, data=None) -> Sampler:
        """``draw(n, generator) -> images`` of ``net`` (the inference network) in [-1, 1]: what eval, the
        mode metrics, generate and export use. The default draws z (then uniform class labels when
        ``net`` has ``c_dim``; ``condition`` fixes the class) from the generator; a translation
        family translates ``condition`` (an image batch) or held-out inputs of ``data``."""
        return latent_sampler(net, condition, truncation_psi)

    def sample_shape(self, cfg, info: DatasetInfo) -> tuple:
        """The shape of one sample of :meth:`sample` (the data's, for the z -> image families)."""
        return tuple(info.shape)

    def sample(self, net: nn.Module, n: int, seed: int = 0, condition=None, data=None) -> torch.Tensor:
        """``n`` samples of ``net`` for ``seed`` (and a condition: a class, an input batch)."""
        return self.sampler(net, condition, data=data)(n, torch.Generator().manual_seed(seed))

    def export_module(self, net: nn.Module, truncation_psi: float = 1.0, noise_mode: str = "const") -> nn.Module:
        """What ``gankit export`` writes for ``net``: a deterministic module from the inputs of
        :meth:`export_inputs` (in that order) to images in [-1, 1]. The default is ``net(z [, c])``."""
        return LatentExport(net)

    def export_inputs(self, net: nn.Module, n: int, generator: torch.Generator, cfg=None) -> dict[str, torch.Tensor]:
        """Named example inputs of the exported module for a batch of ``n`` (traced, then checked):
        z (n, z_dim), and one-hot classes c (n, c_dim) when ``net`` is conditional."""
        import torch.nn.functional as F

        z = torch.randn(n, net.z_dim, generator=generator)
        c_dim = getattr(net, "c_dim", 0)
        if not c_dim:
            return {"z": z}
        return {"z": z, "c": F.one_hot(torch.randint(0, c_dim, (n,), generator=generator), c_dim).float()}

    def show_reals(self, batch) -> torch.Tensor | None:
        """What samples/reals.png shows of a real batch: the images (a pair side by side), or None."""
        if isinstance(batch, tuple):
            return batch[0]
        if "A" in batch and "B" in batch and batch["A"].shape == batch["B"].shape:
            return torch.cat([batch["A"], batch["B"]], dim=3)
        return batch.get("image", batch.get("B"))

    def final_metrics(self, net: nn.Module, dataset, device, nets: dict | None = None) -> dict | None:
        """metrics.json at the end of training: the data's mode metric on samples of ``net`` (None: none);
        ``nets`` holds every network (CycleGAN's cycle error needs both generators)."""
        if not getattr(dataset, "mode_metric", None):
            return None
        from ..metrics.modes import evaluate_generator

        return evaluate_generator(net, dataset, device=device, sampler=self.sampler(net))

    def eval_setup(self, net: nn.Module, dataset, truncation_psi: float = 1.0):
        """(sampler, real dataset) for fid / kid / pr: ``net``'s samples and the images they are compared
        with (the data itself here; a translation family compares with its target domain)."""
        return self.sampler(net, None, truncation_psi), dataset

    def eval_extras(self, net: nn.Module, data, device, nets: dict | None = None) -> dict:
        """Figures ``gankit eval`` adds to the chosen metrics (translation: held-out L1 and PSNR)."""
        return {}

    def grid(self, net: nn.Module, dataset, n: int, seed: int, nets: dict | None = None):
        """The training sample grid: (images, images per row or None for a square grid); the default
        is ``net`` on ``n`` latents of ``seed`` (without labels: the network's default classes).
        ``nets`` holds every network, for families whose grid shows more than one (CycleGAN)."""
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(n, net.z_dim, generator=g).to(next(net.parameters()).device)
        return torch.cat([net(chunk) for chunk in z.split(64)]), None

    def final_samples(self, net: nn.Module, out_dir) -> list:
        """Extra pictures written when training ends (e.g. a truncation strip); returns their paths."""
        return []


class LatentExport(nn.Module):
    """z [, one-hot c] -> ``G``'s images clamped to [-1, 1] (the exported form of a z -> image generator)."""

    def __init__(self, G: nn.Module):
        super().__init__()
        self.G = G

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return (self.G(z) if c is None else self.G(z, c)).clamp(-1, 1)


def unique_modules(nets: dict[str, nn.Module]) -> list[nn.Module]:
    """The distinct modules of a network dict (shared sub-networks counted once)."""
    seen, out = set(), []
    for net in nets.values():
        if id(net) not in seen:
            seen.add(id(net))
            out.append(net)
    return out


def latent_sampler(G: nn.Module, condition=None, truncation_psi: float = 1.0) -> Sampler:
    """z ~ N(0, I) from the generator, then (for a conditional ``G``) one-hot classes drawn uniformly,
    or the class ``condition``; the stream gankit has always used, so figures stay comparable."""
    import torch.nn.functional as F

    c_dim = getattr(G, "c_dim", 0)
    kwargs = {"truncation_psi": truncation_psi} if truncation_psi != 1.0 else {}

    def draw(n: int, g: torch.Generator) -> torch.Tensor:
        dev = next(G.parameters()).device
        z = torch.randn(n, G.z_dim, generator=g).to(dev)
        if not c_dim:
            return G(z, **kwargs)
        cls = (torch.full((n,), int(condition)) if condition is not None
               else torch.randint(0, c_dim, (n,), generator=g))
        return G(z, F.one_hot(cls, c_dim).float().to(dev), **kwargs)

    return draw


def available_memory() -> int:
    """Bytes of memory available to a new allocation (Linux MemAvailable; physical memory elsewhere; 0 = unknown)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import os

        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def coerce_eq(a, b) -> bool:
    try:
        return type(b)(a) == b
    except (TypeError, ValueError):
        return False


def check_power_of_two(name: str, res: int, lo: int = 4) -> None:
    if res < lo or res & (res - 1):
        raise ConfigError(f"{name}: resolution {res} is not a power of two >= {lo}; resize the data, for example "
                          "with ?res=64 in --data")
