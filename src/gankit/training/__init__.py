"""The one training loop, checkpoints, EMA and logging."""
from .config import TrainConfig

__all__ = ["TrainConfig", "Trainer"]


def __getattr__(name):
    if name == "Trainer":
        from .trainer import Trainer

        return Trainer
    raise AttributeError(name)
