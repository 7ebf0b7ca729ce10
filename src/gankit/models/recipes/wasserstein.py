"""What WGAN and WGAN-GP share: DCGAN networks (critic without batch norm) for images, MLPs for
vectors, and the data handling of :class:`WassersteinFamily`."""
from __future__ import annotations

from ...errors import ConfigError
from ...nn import packed
from .. import dcgan, gan
from ..family import Family, check_power_of_two


def resolve_arch(cfg) -> str:
    if cfg.arch == "auto":
        return "dcgan" if len(cfg.data_shape) == 3 else "mlp"
    if cfg.arch not in ("dcgan", "mlp"):
        raise ConfigError(f"--model.arch {cfg.arch}: use auto, dcgan or mlp")
    return cfg.arch


def build_pair(cfg):
    """The WGAN families' networks: DCGAN's for images, MLPs for vectors (shared with wgan-gp)."""
    if resolve_arch(cfg) == "mlp":
        G = gan.Generator(cfg.data_shape, cfg.z_dim, cfg.g_hidden or cfg.mlp_hidden, "relu", norm=cfg.g_norm)
        D = gan.Discriminator(cfg.data_shape, cfg.d_hidden or cfg.mlp_hidden, "relu", dropout=0.0, pack=cfg.pack)
        return G, packed(D, cfg.pack)
    c, res, _ = cfg.data_shape
    G = dcgan.Generator(res, c, cfg.z_dim, cfg.ngf, cfg.max_channels, "batch")
    D = dcgan.Discriminator(res, c * cfg.pack, cfg.ndf, cfg.max_channels, cfg.d_norm)
    return G, packed(D, cfg.pack)


class WassersteinFamily(Family):
    """Shared parts of WGAN and WGAN-GP: data handling and networks."""

    data_kinds = ("vector", "image")

    def data_fields(self, info):
        return {"data_shape": tuple(info.shape)}

    def validate(self, cfg) -> None:
        if resolve_arch(cfg) == "dcgan":
            if len(cfg.data_shape) != 3:
                raise ConfigError("--model.arch dcgan needs image data")
            check_power_of_two(type(self).registered_name, cfg.data_shape[1], lo=8)
        if cfg.d_norm == "batch":
            raise ConfigError("--model.d-norm batch: Wasserstein critics take no batch norm; use none or layer")

    def build(self, cfg):
        G, D = build_pair(cfg)
        return {"G": G, "D": D}
