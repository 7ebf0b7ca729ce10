"""Weight initialisation schemes used by the papers."""
from __future__ import annotations

from torch import nn


def normal_init(module: nn.Module, std: float = 0.02, norm_std: float | None = None) -> None:
    """Radford et al. 2016 (DCGAN), section 4: weights ~ N(0, 0.02); batch-norm scale ~ N(1, 0.02), shift 0.

    ``norm_std`` is the batch-norm scale's spread (``std`` when None; 0 keeps it at exactly 1, as
    PacGAN's toy code, whose Gaussian init covers only the weights)."""
    norm_std = std if norm_std is None else norm_std
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            if norm_std > 0:
                nn.init.normal_(m.weight, 1.0, norm_std)
            else:
                nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
