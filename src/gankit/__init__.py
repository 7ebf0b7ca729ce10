"""gankit: generative adversarial networks in pure PyTorch.

Example:
    >>> import gankit
    >>> gankit.list_models()
    ['dcgan', 'gan', 'wgan', 'wgan-gp']
"""
__version__ = "0.1.0"

from .api import create, list_models, list_presets, load  # noqa: E402
from .data import open_dataset  # noqa: E402
from .errors import GankitError  # noqa: E402

__all__ = ["__version__", "create", "list_models", "list_presets", "load", "open_dataset", "GankitError", "Trainer"]


def __getattr__(name):
    if name == "Trainer":
        from .training.trainer import Trainer

        return Trainer
    if name == "metrics":
        import importlib

        return importlib.import_module(".metrics", __name__)
    raise AttributeError(name)
