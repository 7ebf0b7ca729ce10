"""Built-in datasets that need no download (addressable as ``builtin:NAME?key=value``)."""
from . import digits, fashion_mnist, mnist, pairs, shapes, toy2d  # noqa: F401  (registration side effects)
