"""Typed configs: dataclasses that are also the CLI and the checkpoint's ``config.json``.

A family's config is a dataclass; presets are dicts of overrides; the CLI turns
``--model.z-dim 64`` into the override ``{"model": {"z_dim": 64}}``. So no option exists in
two places (DESIGN.md, principle 4).
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import types
import typing
from typing import Any

from .errors import ConfigError


def field_names(cls_or_obj) -> list[str]:
    return [f.name for f in dataclasses.fields(cls_or_obj)]


def _type_of(cls, name: str):
    hints = typing.get_type_hints(cls)
    return hints[name]


def coerce(value: Any, tp, where: str) -> Any:
    """Converts ``value`` (often a CLI string) to the annotated type ``tp``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
        non_none = [a for a in args if a is not type(None)]
        return coerce(value, non_none[0], where)
    if origin is tuple:
        if isinstance(value, str):
            value = [v for v in value.replace("(", "").replace(")", "").split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a comma-separated list, got {value!r}")
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
        try:
            if tp is int and isinstance(value, float) and not value.is_integer():
                raise ValueError
            if tp is int and isinstance(value, str):
                return int(float(value)) if float(value).is_integer() else int(value)
            return tp(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected {tp.__name__}, got {value!r}") from None
    return value


def apply_overrides(obj, overrides: dict[str, Any], where: str = ""):
    """Returns a copy of dataclass ``obj`` with ``overrides`` applied (nested dicts for nested dataclasses).

    Unknown keys raise :class:`ConfigError` with the closest valid names.
    """
    changes = {}
    names = field_names(obj)
    for key, value in overrides.items():
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
            changes[name] = coerce(value, _type_of(type(obj), name), path)
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
