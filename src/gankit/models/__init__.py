"""GAN families; importing this package registers every family."""
from . import cogan, cyclegan, dcgan, gan, pix2pix, stylegan, stylegan2, stylegan3, wgan, wgan_gp  # noqa: F401
from .family import Bundle, Family, Phase, Step

__all__ = ["Bundle", "Family", "Phase", "Step"]
