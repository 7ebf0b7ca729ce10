"""What a family provides to the trainer: config, presets, networks, and its phases.

A *phase* is one optimizer step of one network (STYLE.md 4): the trainer iterates phases as
data (n_critic = ``repeat``, lazy regularization = ``every``), never branching on family names.
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
    """What a phase's loss function sees: the networks, this pass's real batch and samplers.

    The global batch may be split into ``parts`` micro-batches (processes x accumulation rounds);
    this step computes part ``part`` of them, ``batch_size`` samples. :meth:`z` and :meth:`randint`
    draw the *global* batch from a generator seeded by ``seed`` (the same on every process and
    round) and return this part's rows, so latents and sampled labels do not depend on how the
    batch is split: one pass of 64 sees the same z as 4 rounds of 16 or 2 processes of 32.
    """

    G: nn.Module
    D: nn.Module
    real: torch.Tensor | None
    labels: torch.Tensor | None
    batch_size: int
    iteration: int
    device: torch.device
    part: int = 0
    parts: int = 1
    seed: int | None = None
    draws: int = 0

    def _generator(self) -> torch.Generator | None:
        if self.seed is None:
            return None
        self.draws += 1
        return torch.Generator().manual_seed((self.seed + 7919 * self.draws) % (2**63 - 1))

    def randn(self, n: int, *shape: int) -> torch.Tensor:
        """This part's ``n`` rows of a global (n * parts, *shape) standard normal draw."""
        g = self._generator()
        if g is None:
            return torch.randn(n, *shape, device=self.device)
        x = torch.randn(n * self.parts, *shape, generator=g)
        return x[self.part * n:(self.part + 1) * n].to(self.device)

    def randint(self, high: int, n: int | None = None) -> torch.Tensor:
        """This part's rows of a global draw of integers in [0, high) (e.g. labels of fakes)."""
        n = n or self.batch_size
        g = self._generator()
        if g is None:
            return torch.randint(0, high, (n,), device=self.device)
        x = torch.randint(0, high, (n * self.parts,), generator=g)
        return x[self.part * n:(self.part + 1) * n].to(self.device)

    def z(self, n: int | None = None) -> torch.Tensor:
        return self.randn(n or self.batch_size, self.G.z_dim)


@dataclass
class Phase:
    """One optimizer step of ``module`` ("G" or "D").

    Args:
        name: label used in logs, e.g. ``"D"`` or ``"Dreg"``.
        module: which network (and optimizer) the step updates.
        loss: ``loss(step) -> {"loss": scalar, other stats...}``.
        every: run on iterations where ``iteration % every == 0`` (lazy regularization).
        repeat: run this many times per iteration, each with a fresh real batch (n_critic).
        real: whether the step consumes real images (counted in kimg).
        reuse_real: take the real batch of the previous real phase of this iteration instead of
            drawing (and counting) a new one, as StyleGAN2's R1 phase shares D's batch.
        after: called with the module after each optimizer step (e.g. weight clipping).
        higher_order: the loss differentiates through a gradient (R1, gradient penalty, path
            length); with ``--train.compile`` such phases run the networks eagerly, since
            compiled graphs do not support double backward.
    """

    name: str
    module: str
    loss: Callable[[Step], dict[str, torch.Tensor]]
    every: int = 1
    repeat: int = 1
    real: bool = False
    reuse_real: bool = False
    after: Callable[[nn.Module], None] | None = None
    higher_order: bool = False


@dataclass
class Bundle:
    """A built model: generator, discriminator and the config that rebuilds them."""

    family: str
    config: Any
    G: nn.Module
    D: nn.Module


class Family:
    """Base class of a registered family. Subclasses set the class attributes and implement
    :meth:`build` and :meth:`phases`.
    """

    Config: ClassVar[type]
    #: paper defaults for the generic training config (optimizer, learning rates, batch, n_critic)
    train_defaults: ClassVar[dict] = {}
    #: named presets: {"name": {"model": {...}, "train": {...}}, ...}
    presets: ClassVar[dict[str, dict]] = {}
    #: which data the family accepts: {"image"}, {"vector"} or both
    data_kinds: ClassVar[tuple[str, ...]] = ("image",)
    paper: ClassVar[str] = ""

    def config(self, overrides: dict | None = None):
        return apply_overrides(self.Config(), overrides or {}, "model")

    def fit_to_data(self, cfg, info: DatasetInfo, user_overrides: dict):
        """Sets the config's data shape fields from the dataset; conflicts with explicit options are errors."""
        name = type(self).registered_name  # type: ignore[attr-defined]
        if info.kind not in self.data_kinds:
            raise ConfigError(f"family '{name}' takes {' or '.join(self.data_kinds)} data but the dataset holds "
                              f"{info.kind}s; choose an {'image' if info.kind == 'vector' else 'vector'} dataset "
                              f"or another family")
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

    def build(self, cfg) -> tuple[nn.Module, nn.Module]:  # pragma: no cover - abstract
        raise NotImplementedError

    def build_checked(self, cfg, copies: float = 1.0) -> tuple[nn.Module, nn.Module]:
        """:meth:`build`, after building the same networks on the meta device (no memory) and
        refusing, with the sizes, networks whose ``copies`` fp32 copies do not fit in this machine's
        available memory; a config that cannot be built at all is a ConfigError, not a traceback."""
        name = type(self).registered_name  # type: ignore[attr-defined]
        try:
            with torch.device("meta"):
                nets = self.build(cfg)
        except ConfigError:
            raise
        except (RuntimeError, ValueError, OverflowError, MemoryError, ZeroDivisionError, IndexError) as e:
            raise ConfigError(f"{name}: the networks of this config cannot be built ({type(e).__name__}: "
                              f"{str(e).splitlines()[0][:200] if str(e) else ''}); check the --model options") from None
        numel = sum(t.numel() for net in nets for t in (*net.parameters(), *net.buffers()))
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
        return self.build(cfg)

    def phases(self, cfg, G: nn.Module, D: nn.Module, train) -> list[Phase]:  # pragma: no cover - abstract
        raise NotImplementedError

    def final_samples(self, G: nn.Module, out_dir) -> list:
        """Extra pictures written when training ends (e.g. a truncation strip); returns their paths."""
        return []

    def compile_targets(self, G: nn.Module, D: nn.Module) -> list[nn.Module]:
        """The modules the phases call, compiled in place by ``--train.compile``."""
        return [G, D]

    def optimizer_ratios(self, cfg) -> dict[str, float]:
        """Per-network ratio r for lazy regularization: Adam runs with lr * r and betas ** r."""
        return {}


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


def adversarial_phases(loss: str, n_critic: int = 1, d_penalty: Callable[[Step, torch.Tensor], dict] | None = None,
                       after_d: Callable[[nn.Module], None] | None = None) -> list[Phase]:
    """The alternating D / G phases of Goodfellow et al. 2014, Algorithm 1 (k = ``n_critic`` D steps per G step).

    ``d_penalty(step, fake)`` may add regularization terms to the D loss: it returns a dict whose
    ``"loss"`` is added and whose other entries are logged.
    """
    from ..losses import d_loss, g_loss

    def d_step(s: Step) -> dict:
        with torch.no_grad():
            fake = s.G(s.z())
        real_out, fake_out = s.D(s.real), s.D(fake)
        adv = d_loss(loss, real_out, fake_out)
        out = {"loss": adv, "adv": adv.detach(), "real": real_out.detach().mean(), "fake": fake_out.detach().mean()}
        if d_penalty is not None:
            extra = d_penalty(s, fake)
            out["loss"] = adv + extra.pop("loss")
            out.update(extra)
        return out

    def g_step(s: Step) -> dict:
        fake_out = s.D(s.G(s.z()))
        return {"loss": g_loss(loss, fake_out)}

    return [Phase("D", "D", d_step, repeat=n_critic, real=True, after=after_d, higher_order=d_penalty is not None),
            Phase("G", "G", g_step)]
