"""Evaluation metrics. This release has the mode metrics (:mod:`gankit.metrics.modes`)."""
from ..registry import METRICS
from . import modes  # noqa: F401


def list_metrics() -> list[str]:
    return METRICS.names()


__all__ = ["list_metrics", "modes"]
