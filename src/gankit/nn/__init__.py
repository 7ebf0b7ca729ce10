"""Shared building blocks; every family imports these instead of writing its own."""
from .equalized import ACT_GAIN, EqualConv2d, EqualLinear, bias_act
from .init import normal_init
from .layers import MLP, Maxout, MinibatchStd, Packed, activation, pack, packed
from .resample import (conv2d_resample, downsample2d, filtered_lrelu, gaussian_blur, setup_filter, upfirdn2d,
                       upsample2d)
from .style import AdaIN, MappingNetwork, NoiseInput, PixelNorm, modulated_conv2d, pixel_norm, truncate

__all__ = ["ACT_GAIN", "AdaIN", "EqualConv2d", "EqualLinear", "MLP", "MappingNetwork", "Maxout", "MinibatchStd",
           "NoiseInput", "Packed", "PixelNorm", "activation", "bias_act", "conv2d_resample", "downsample2d", "filtered_lrelu", "gaussian_blur", "modulated_conv2d",
           "normal_init", "pack", "packed", "pixel_norm", "setup_filter", "truncate", "upfirdn2d", "upsample2d"]
