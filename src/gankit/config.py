"""Typed configs: dataclasses that are also the CLI and the checkpoint's ``config.json``.

A family's config is a dataclass; presets are dicts of overrides; the CLI turns
``--model.z-dim 64`` into the override ``{"model": {"z_dim": 64}}``. So no option exists in
two places (DESIGN.md, principle 4).

Every value passes :func:`coerce`, whichever way it arrives (CLI, preset, ``config.json`` of a
checkpoint, a foreign file being imported): numbers must be finite and, unless a field says
otherwise, non-negative; a field annotated with a :class:`Range` (``z_dim: Size = 512``) or a
:class:`Choice` is held to it, so ``--model.z-dim -3``, ``--train.g-lr nan`` or a checkpoint
whose ``resolution`` is 2^20 are refused by name before anything is built.
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import math
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any

from .errors import ConfigError

#: the largest integer any field takes unless its Range says otherwise (exact in JSON's doubles)
MAX_INT = 2 ** 53
#: the most elements a tuple field takes
MAX_ITEMS = 64


@dataclass(frozen=True)
class Range:
    """The values a numeric field accepts: ``lo <= v <= hi`` (``lo < v`` when ``open_lo``); None = unbounded."""

    lo: float | None = 0
    hi: float | None = None
    open_lo: bool = False

    def describe(self) -> str:
        lo = "" if self.lo is None else (f"> {_num(self.lo)}" if self.open_lo else f">= {_num(self.lo)}")
        hi = "" if self.hi is None else f"<= {_num(self.hi)}"
        return " and ".join(x for x in (lo, hi) if x) or "any number"

    def check(self, value, where: str) -> None:
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{where} {value}: give a finite number ({self.describe()})")
        low = self.lo is not None and (value <= self.lo if self.open_lo else value < self.lo)
        if low or (self.hi is not None and value > self.hi):
            raise ConfigError(f"{where} {_num(value)}: out of range; use a value {self.describe()}")


def _num(x) -> str:
    """Numbers as people write them: 65536, 0.5, 1e-08, 1e+11 (whole numbers in full up to 10^12)."""
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e12 else f"{x:g}"


@dataclass(frozen=True)
class Choice:
    """The strings a field accepts."""

    options: tuple[str, ...]

    def check(self, value, where: str) -> None:
        if value not in self.options:
            raise ConfigError(f"{where} {value!r}: use one of {', '.join(self.options)}")


#: widths and latent sizes (z_dim, ngf, channel_max, hidden units): 1 to 65,536
Size = Annotated[int, Range(1, 1 << 16)]
#: a count that may be 0 (classes, fp16 resolutions)
Count = Annotated[int, Range(0, 1 << 16)]
#: every N steps / N times (intervals, n_critic, shrink factors): at least 1
Interval = Annotated[int, Range(1, 1 << 16)]
#: image channels
Channels = Annotated[int, Range(1, 64)]
#: image resolution (families also require a power of two)
Resolution = Annotated[int, Range(4, 1 << 15)]
#: numbers of layers
Layers = Annotated[int, Range(0, 64)]
#: probabilities, decays, betas
Fraction = Annotated[float, Range(0.0, 1.0)]
#: learning rates, lengths, scales: strictly positive
Positive = Annotated[float, Range(0.0, None, open_lo=True)]
#: seeds
Seed = Annotated[int, Range(0, 2 ** 63 - 1)]

_DEFAULT_INT = Range(0, MAX_INT)
_DEFAULT_FLOAT = Range(0.0, None)


def option_name(path: str) -> str:
    """``model.z_dim`` -> ``--model.z-dim`` (the CLI's spelling); other paths unchanged."""
    if path.startswith(("model.", "train.")):
        return "--" + path.replace("_", "-")
    return path


def field_names(cls_or_obj) -> list[str]:
    return [f.name for f in dataclasses.fields(cls_or_obj)]


def _type_of(cls, name: str):
    return typing.get_type_hints(cls, include_extras=True)[name]


def _split(tp):
    """``Annotated[T, rule, ...]`` -> (T, [rules]); other types -> (tp, [])."""
    if typing.get_origin(tp) is Annotated:
        base, *extra = typing.get_args(tp)
        return base, [r for r in extra if isinstance(r, (Range, Choice))]
    return tp, []


def coerce(value: Any, tp, where: str) -> Any:
    """Converts ``value`` (often a CLI string) to the annotated type ``tp`` and checks it: numbers
    finite, within the field's :class:`Range` (default: 0 to 2^53), strings among its :class:`Choice`."""
    tp, rules = _split(tp)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
        non_none = [a for a in args if a is not type(None)]
        return coerce(value, Annotated[(non_none[0], *rules)] if rules else non_none[0], where)
    if origin is tuple:
        if isinstance(value, str):
            value = [v for v in value.replace("(", "").replace(")", "").split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a comma-separated list, got {value!r}")
        if len(value) > MAX_ITEMS:
            raise ConfigError(f"{where}: {len(value)} values; at most {MAX_ITEMS}")
        inner = args[0] if args else float
        return tuple(coerce(v, inner, where) for v in value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        s = str(value).lower()
        if s in ("1", "true", "yes", "on"):
            return True
        if s in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if tp in (int, float, str):
        if value is None or isinstance(value, (list, tuple, dict, set)) or (tp is not str and isinstance(value, bool)):
            raise ConfigError(f"{where}: expected {'a whole number' if tp is int else tp.__name__}, got {value!r}")
        try:
            if tp is int and isinstance(value, float) and not value.is_integer():
                raise ValueError
            if tp is int and isinstance(value, str):
                value = int(float(value)) if float(value).is_integer() else int(value)
            else:
                value = tp(value)
        except (TypeError, ValueError, OverflowError):
            raise ConfigError(f"{where}: expected {'a whole number' if tp is int else tp.__name__}, "
                              f"got {value!r}") from None
        for rule in rules or ([] if tp is str else [_DEFAULT_INT if tp is int else _DEFAULT_FLOAT]):
            rule.check(value, where)
        return value
    return value


def apply_overrides(obj, overrides: dict[str, Any], where: str = ""):
    """Returns a copy of dataclass ``obj`` with ``overrides`` applied (nested dicts for nested dataclasses).

    Unknown keys raise :class:`ConfigError` with the closest valid names.
    """
    if not isinstance(overrides, dict):
        raise ConfigError(f"{option_name(where) or 'config'}: expected a mapping of option names to values, "
                          f"got {type(overrides).__name__}")
    changes = {}
    names = field_names(obj)
    for key, value in overrides.items():
        if not isinstance(key, str):
            raise ConfigError(f"{option_name(where) or 'config'}: option names are strings, got {key!r}")
        name = key.replace("-", "_")
        path = f"{where}.{name}" if where else name
        if name not in names:
            close = difflib.get_close_matches(name, names, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else f"; valid: {', '.join(names)}"
            raise ConfigError(f"unknown option '{path}'{hint}")
        current = getattr(obj, name)
        if dataclasses.is_dataclass(current) and isinstance(value, dict):
            changes[name] = apply_overrides(current, value, path)
        else:
            changes[name] = coerce(value, _type_of(type(obj), name), option_name(path))
    return dataclasses.replace(obj, **changes)


def merge(a: dict, b: dict) -> dict:
    """Deep-merges override dicts (``b`` wins)."""
    out = dict(a)
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


def to_dict(obj) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(obj)))


def from_dict(cls, d: dict):
    """Rebuilds dataclass ``cls`` from :func:`to_dict` output, ignoring nothing silently."""
    return apply_overrides(cls(), d)


def field_comments(cls) -> dict[str, str]:
    """The trailing ``# comment`` of each field in a dataclass's source (and its bases'), for --help."""
    import inspect
    import re

    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            src = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        for m in re.finditer(r"^\s+(\w+):[^#\n]*#\s*(.+)$", src, re.M):
            out[m.group(1)] = m.group(2).strip()
    return out


def iter_fields(obj, prefix: str = ""):
    """Yields (dotted_name, field, value) for every leaf field, for building the CLI."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        name = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            yield from iter_fields(value, name + ".")
        else:
            yield name, f, value
