"""Registries: families, built-in datasets and metrics are found by name, never by string-built imports."""
from __future__ import annotations

import difflib
from typing import Callable, Generic, TypeVar

from .errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> object table with a decorator and helpful errors for unknown names."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._items[name] = obj
            try:
                obj.registered_name = name  # type: ignore[attr-defined]
            except (AttributeError, TypeError):
                pass
            return obj

        return deco

    def get(self, name: str) -> T:
        if name not in self._items:
            close = difflib.get_close_matches(name, list(self._items), n=3)
            hint = f"did you mean {', '.join(close)}?" if close else f"choose one of: {', '.join(sorted(self._items))}"
            raise ConfigError(f"unknown {self.kind} '{name}'; {hint}")
        return self._items[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        return name in self._items


FAMILIES: Registry = Registry("family")
DATASETS: Registry = Registry("built-in dataset")
METRICS: Registry = Registry("metric")

register = FAMILIES.register
register_dataset = DATASETS.register
register_metric = METRICS.register
