"""Shared building blocks; every family imports these instead of writing its own."""
from .init import normal_init
from .layers import MLP, Maxout, activation

__all__ = ["MLP", "Maxout", "activation", "normal_init"]
