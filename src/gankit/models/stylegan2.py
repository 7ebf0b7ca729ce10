"""StyleGAN2 (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN").

Where a reader of the paper finds each part:

* Mapping network f: Z -> W (StyleGAN section 2; 8 layers, lr multiplier 0.01), tracked w_avg
  for truncation: :class:`gankit.nn.MappingNetwork`.
* Section 2.2, Figure 2c-d: modulation / demodulation replace AdaIN; bias and noise are applied
  outside the style blocks; the 4x4 input is a learned constant: :class:`SynthesisLayer`,
  :class:`SynthesisBlock`.
* Section 4.1, Figure 7: the ``orig``, ``skip`` and ``resnet`` architectures of G and D (default
  skip G, residual D): ``g_architecture`` / ``d_architecture``.
* Section 3.1: lazy regularization (R1 every 16 minibatches, path length every 4, each scaled by
  its interval; Adam's lr and betas corrected by interval / (interval + 1), StyleGAN2-ADA).
* Section 3.2, eq. 4: path length regularization (weight 2, decay 0.01 of the running mean,
  half batch): :func:`gankit.losses.path_length_penalty`.
* StyleGAN section 3.1: style mixing regularization (probability 0.9).
* Appendix B: minibatch stddev with group 4, FIR [1, 3, 3, 1] resampling, equalized lr, Adam
  (lr 0.002, betas (0, 0.99), eps 1e-8), batch 32, G EMA with a 10 kimg half-life, R1 gamma 10.

Layer names and parameter counts follow NVIDIA's stylegan2-ada-pytorch, so config F at 1024 px
has exactly their 30,370,060 (G) and 29,012,513 (D) parameters.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

import torch
import torch.nn.functional as F
from torch import nn

from ..config import Channels, Choice, Count, Fraction, Interval, Layers, Positive, Range, Resolution, Size
from ..errors import ConfigError
from ..nn import (EqualConv2d, EqualLinear, MappingNetwork, MinibatchStd, NoiseInput, bias_act, modulated_conv2d,
                  packed)
from ..nn.precision import block_context, fp16_active, fp16_resolution, to_block
from ..nn.resample import setup_filter, upsample2d, downsample2d
from ..registry import register
from .recipes.style import (ARCHITECTURES, StyleFamily, check_style_config, lazy_ratios, mix_styles,  # noqa: F401
                            run_mapping, style_phases)

Tensor = torch.Tensor
Architecture = Annotated[str, Choice(ARCHITECTURES)]
#: ``--model.layout``: the networks' ``channels_last`` setting (None: automatic, see use_channels_last)
LAYOUTS = {"auto": None, "channels-last": True, "contiguous": False}


@dataclass
class StyleGAN2Config:
    resolution: Resolution = 1024
    channels: Channels = 3
    z_dim: Size = 512
    w_dim: Size = 512
    conditional: bool = False  # class-conditional through a label embedding (StyleGAN2-ADA)
    c_dim: Count = 0  # number of classes; set from the data when conditional
    mapping_layers: Annotated[int, Range(1, 64)] = 8  # StyleGAN section 2
    mapping_lr_mul: Positive = 0.01  # StyleGAN appendix C
    w_avg_beta: Fraction = 0.995  # decay of the tracked average w (truncation)
    channel_base: Annotated[int, Range(1, 1 << 24)] = 32768  # channels at resolution r: min(channel_base / r, channel_max); 32768 = config F
    channel_max: Size = 512
    g_architecture: Architecture = "skip"  # orig | skip | resnet (section 4.1; skip G is the paper's choice)
    d_architecture: Architecture = "resnet"  # orig | skip | resnet (residual D is the paper's choice)
    demodulate: bool = True  # weight demodulation (section 2.2); false = modulation only
    use_noise: bool = True  # per-pixel noise inputs (StyleGAN section 3.2); false drops them (NVIDIA's use_noise)
    # G's 4x4 input: const = the learned constant (StyleGAN Table 1 D, the paper's); dense = a fully
    # connected layer from the first w (Table 1 A-C's "traditional input", as PGGAN's G), so w can place content
    g_input: Annotated[str, Choice(("const", "dense"))] = "const"
    resample_filter: tuple[Annotated[int, Range(1, 1 << 16)], ...] = (1, 3, 3, 1)
    conv_clamp: float = 0.0  # clamp conv outputs to +-X (StyleGAN2-ADA uses 256 with fp16); 0 = off
    num_fp16_res: Layers = 0  # the N highest resolutions in fp16 on CUDA (StyleGAN2-ADA uses 4, with conv_clamp 256)
    mbstd_group: Count = 4  # minibatch stddev group size
    mbstd_channels: Size = 1
    pack: Interval = 1  # PacGAN (Lin et al. 2018): D judges packs of this many images; 1 = no packing
    r1_gamma: float = 10.0  # R1 weight gamma (config F at 1024 px)
    d_reg_interval: Interval = 16  # lazy R1 every N minibatches; 1 = R1 in every D step (not lazy)
    pl_weight: float = 2.0  # path length regularization weight (section 3.2); 0 = off
    pl_decay: Fraction = 0.01  # decay of the running mean path length a
    pl_batch_shrink: Interval = 2  # path length on batch / N samples
    g_reg_interval: Interval = 4  # lazy path length every N minibatches; 1 = in every G step
    style_mixing_prob: Fraction = 0.9  # StyleGAN section 3.1
    share_fakes: bool = False  # one G forward per iteration: D steps first, G judges the same fakes (recipes/style.py); false = NVIDIA's G-then-D with fresh fakes
    blur_init_sigma: float = 0.0  # D sees images blurred by this sigma at first (StyleGAN3 config R); 0 = off
    blur_fade_kimg: Positive = 200.0  # the blur fades out linearly over this many kimg
    layout: Annotated[str, Choice(tuple(LAYOUTS))] = "auto"  # activations: auto (channels_last without autograd and under CPU bf16) | channels-last | contiguous


# ----------------------------------------------------------------------------- generator
def use_channels_last(setting: bool | None) -> bool:
    """Whether to run convolutions on channels_last activations. None (auto): when autograd is off,
    and under CPU bf16 autocast. On 2 CPU cores channels_last made generation 10-19% faster, and
    bf16 training 1-10% faster on both machines measured. fp32 training depends on the machine:
    oneDNN's weight gradients in that layout were up to 2.5x slower on some, and fp32 training 1-11%
    faster on another, so auto keeps fp32 training contiguous (``--model.layout channels-last``
    forces it; docs/performance.md, "Activation layout in training")."""
    if setting is not None:
        return setting
    return not torch.is_grad_enabled() or (torch.is_autocast_enabled("cpu")
                                           and torch.get_autocast_dtype("cpu") == torch.bfloat16)


#: True: G's layers add (noise + bias) * gain as one full-size tensor in the demodulation multiply
#: (the code before the sixteenth session of issue 17; kept for the benchmark and for the test that
#: resumes a run written by it bitwise). False: bias * gain rides on the multiply and the noise map,
#: one channel per sample, is added in place, so no full-size sum is built. The same maths; the
#: float rounding differs.
SUM_NOISE_FIRST = False


class SynthesisLayer(nn.Module):
    """Modulated 3x3 convolution (optionally 2x upsampling), noise, bias, leaky ReLU (Figure 2c)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, kernel_size: int = 3,
                 up: int = 1, use_noise: bool = True, resample_filter=(1, 3, 3, 1), conv_clamp: float | None = None,
                 demodulate: bool = True):
        super().__init__()
        self.resolution, self.up, self.conv_clamp, self.demodulate = resolution, up, conv_clamp, demodulate
        self.register_buffer("resample_filter", setup_filter(resample_filter), persistent=False)
        self.padding = kernel_size // 2
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1)  # A: style s = A(w), starts at 1
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.noise = NoiseInput(resolution) if use_noise else None  # B: one learned strength per layer
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: Tensor, w: Tensor, noise_mode: str = "random", fused: bool = False,
                gain: float = 1.0) -> Tensor:
        styles = self.affine(w)  # (B, I)
        # lrelu(conv + noise + b) * g == lrelu(g conv + g (noise + b)) for g > 0: the bias and gain
        # join the demodulation multiply in one pass (modulated_conv2d's gain / add), and the noise,
        # one map per sample, is added in place, so no full-size (noise + bias) tensor is built
        g = math.sqrt(2) * gain
        n = None
        if self.noise is not None:
            size = (x.shape[2] * self.up, x.shape[3] * self.up)
            n = self.noise.sample(x.shape[0], size, x.device, x.dtype, noise_mode)
        bias = self.bias.view(1, -1, 1, 1).to(x.dtype)
        conv = dict(demodulate=self.demodulate, up=self.up, padding=self.padding,
                    resample_filter=self.resample_filter, fused=fused, gain=g)
        if SUM_NOISE_FIRST:
            x, _ = modulated_conv2d(x, self.weight, styles, add=(bias if n is None else bias + n) * g, **conv)
        else:
            x, _ = modulated_conv2d(x, self.weight, styles, add=bias * g, **conv)
            if n is not None:  # a fresh tensor, which autograd has not saved: add in place
                x = x.add_(n * g)
        clamp = self.conv_clamp * gain if self.conv_clamp else None
        return bias_act(x, None, act="lrelu", gain=1.0, clamp=clamp)


class ToRGBLayer(nn.Module):
    """Modulated 1x1 convolution to image channels, no demodulation (Figure 7b tRGB)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, conv_clamp: float | None = None):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1 / math.sqrt(in_channels)

    def forward(self, x: Tensor, w: Tensor, fused: bool = False) -> Tensor:
        styles = self.affine(w) * self.weight_gain
        x, _ = modulated_conv2d(x, self.weight, styles, demodulate=False, fused=fused,
                                add=self.bias.view(1, -1, 1, 1).to(x.dtype))
        return bias_act(x, None, clamp=self.conv_clamp or None)


class SynthesisBlock(nn.Module):
    """One resolution of the synthesis network: [const | up-conv], conv, and tRGB (skip) per Figure 7."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, img_channels: int,
                 is_last: bool, architecture: str = "skip", resample_filter=(1, 3, 3, 1),
                 conv_clamp: float | None = None, demodulate: bool = True, use_fp16: bool = False,
                 use_noise: bool = True, g_input: str = "const"):
        super().__init__()
        self.in_channels, self.resolution, self.is_last, self.architecture = in_channels, resolution, is_last, architecture
        self.use_fp16 = use_fp16  # StyleGAN2-ADA mixed precision (gankit.nn.precision)
        self.register_buffer("resample_filter", setup_filter(resample_filter), persistent=False)
        kw = dict(w_dim=w_dim, resolution=resolution, resample_filter=resample_filter, conv_clamp=conv_clamp,
                  demodulate=demodulate, use_noise=use_noise)
        self.num_conv = 0
        if in_channels == 0 and g_input == "dense":  # StyleGAN Table 1 A-C: the input from a fully connected layer
            self.input = EqualLinear(w_dim, out_channels * resolution * resolution, activation="lrelu")
        elif in_channels == 0:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))  # learned 4x4 input
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, up=2, **kw)
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, **kw)
        self.num_conv += 1
        self.num_torgb = 0
        if is_last or architecture == "skip":
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, conv_clamp=conv_clamp)
            self.num_torgb = 1
        if in_channels != 0 and architecture == "resnet":
            self.skip = EqualConv2d(in_channels, out_channels, 1, bias=False, up=2, resample_filter=resample_filter)

    def forward(self, x: Tensor | None, img: Tensor | None, ws: Tensor, noise_mode: str = "random",
                fused: bool = False) -> tuple[Tensor, Tensor | None]:
        w = ws.unbind(1)  # (B, w_dim) per layer of this block
        half = fp16_active(self.use_fp16, ws.device)
        with block_context(half, ws.device):
            if self.in_channels == 0:
                if hasattr(self, "input"):
                    x = self.input(w[0]).view(ws.shape[0], -1, self.resolution, self.resolution)
                else:
                    x = self.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
                x = self.conv1(to_block(x, half), w[0], noise_mode, fused)
            elif self.architecture == "resnet":
                x = to_block(x, half)
                y = self.skip(x, gain=math.sqrt(0.5))  # residual sum scaled by 1/sqrt(2) (section 4.1)
                x = self.conv0(x, w[0], noise_mode, fused)
                x = y + self.conv1(x, w[1], noise_mode, fused, gain=math.sqrt(0.5))
            else:
                x = self.conv0(to_block(x, half), w[0], noise_mode, fused)
                x = self.conv1(x, w[1], noise_mode, fused)
            y = self.torgb(x, w[self.num_conv], fused) if self.num_torgb else None
        if img is not None:  # the image path stays fp32, as in StyleGAN2-ADA
            img = upsample2d(img, self.resample_filter)  # skip G: upsampled sum of tRGB outputs
        if y is not None:
            y = y.float() if half else y
            img = y if img is None else img + y
        return x, img


def channel_widths(base: int, cap: int, resolutions) -> dict[int, int]:
    """Channels at each resolution: min(base / r, cap) (StyleGAN2-ADA's channel_base / channel_max)."""
    return {r: min(base // r, cap) for r in resolutions}


class SynthesisNetwork(nn.Module):
    """g: W -> image, from a learned 4x4 constant up to ``img_resolution`` (one w per layer)."""

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, channel_base: int = 32768,
                 channel_max: int = 512, architecture: str = "skip", num_fp16_res: int = 0, **block_kwargs):
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.block_resolutions = [2 ** i for i in range(2, int(math.log2(img_resolution)) + 1)]
        ch = channel_widths(channel_base, channel_max, self.block_resolutions)
        self.num_ws = 0
        for res in self.block_resolutions:
            block = SynthesisBlock(ch[res // 2] if res > 4 else 0, ch[res], w_dim, res, img_channels,
                                   is_last=res == img_resolution, architecture=architecture,
                                   use_fp16=res >= fp16_resolution(img_resolution, num_fp16_res), **block_kwargs)
            self.num_ws += block.num_conv
            setattr(self, f"b{res}", block)
        self.num_ws += 1  # the last tRGB; skip blocks' tRGBs share the next block's first w
        self.channels_last: bool | None = None  # activation layout; None = automatic (use_channels_last)

    def forward(self, ws: Tensor, noise_mode: str = "random", fused: bool | None = None) -> Tensor:
        if ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"synthesis expects ws of shape (B, {self.num_ws}, {self.w_dim}), got {tuple(ws.shape)}")
        if fused is None:
            # unfused was faster or equal on 2 CPU cores in 8 of 9 cases measured (128 and 512 channels,
            # batch 1, 8, 32; 2.9x at 512 channels, batch 8); fused won only at 128 channels, 32 px, batch 8
            fused = False
        x = img = None
        i = 0
        channels_last = use_channels_last(self.channels_last)
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            x, img = block(x, img, ws.narrow(1, i, block.num_conv + block.num_torgb), noise_mode, fused)
            if channels_last and res == 4:  # the layout every later layer inherits
                x = x.contiguous(memory_format=torch.channels_last)
            i += block.num_conv
        return img.contiguous() if channels_last else img


class Generator(nn.Module):
    """z (B, z_dim) [+ labels] -> image (B, C, H, W).

    ``G.mapping(z, c)`` gives ws (B, num_ws, w_dim); ``G.synthesis(ws)`` the unbounded image the
    losses see. In eval mode ``G(z)`` clamps to [-1, 1] (what NVIDIA does when saving images), so
    a loaded generator gives displayable images; call ``G.synthesis`` for unclamped, differentiable
    output. Unlabelled calls of a conditional G use classes ``i % c_dim`` (rows of a grid by class).
    """

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, img_resolution: int, img_channels: int,
                 mapping_kwargs: dict | None = None, synthesis_kwargs: dict | None = None,
                 synthesis_class: type = None):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        cls = synthesis_class or SynthesisNetwork  # StyleGAN (2019) passes its AdaIN synthesis network
        self.synthesis = cls(w_dim, img_resolution, img_channels, **(synthesis_kwargs or {}))
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim, c_dim, w_dim, self.num_ws, **(mapping_kwargs or {}))
        self.register_buffer("pl_mean", torch.zeros([]))  # running mean path length a (eq. 4), for exact resume

    def default_labels(self, n: int, device) -> Tensor | None:
        if self.c_dim == 0:
            return None
        return F.one_hot(torch.arange(n, device=device) % self.c_dim, self.c_dim).float()

    def forward(self, z: Tensor, c: Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, noise_mode: str = "random", fused: bool | None = None) -> Tensor:
        if c is None:
            c = self.default_labels(z.shape[0], z.device)
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        img = self.synthesis(ws, noise_mode=noise_mode, fused=fused)
        return img if self.training else img.clamp(-1, 1)


# ----------------------------------------------------------------------------- discriminator
class DiscriminatorBlock(nn.Module):
    """[fromRGB], conv 3x3, conv 3x3 down, and a 1x1 down residual for ``resnet`` (Figure 7)."""

    def __init__(self, in_channels: int, tmp_channels: int, out_channels: int, resolution: int, img_channels: int,
                 architecture: str = "resnet", resample_filter=(1, 3, 3, 1), conv_clamp: float | None = None,
                 use_fp16: bool = False):
        super().__init__()
        self.in_channels, self.architecture, self.use_fp16 = in_channels, architecture, use_fp16
        self.register_buffer("resample_filter", setup_filter(resample_filter), persistent=False)
        kw = dict(activation="lrelu", conv_clamp=conv_clamp)
        if in_channels == 0 or architecture == "skip":
            self.fromrgb = EqualConv2d(img_channels, tmp_channels, 1, **kw)
        self.conv0 = EqualConv2d(tmp_channels, tmp_channels, 3, **kw)
        self.conv1 = EqualConv2d(tmp_channels, out_channels, 3, down=2, resample_filter=resample_filter, **kw)
        if architecture == "resnet":
            self.skip = EqualConv2d(tmp_channels, out_channels, 1, bias=False, down=2, resample_filter=resample_filter)

    def forward(self, x: Tensor | None, img: Tensor | None) -> tuple[Tensor, Tensor | None]:
        device = (x if x is not None else img).device
        half = fp16_active(self.use_fp16, device)
        with block_context(half, device):
            x = to_block(x, half)
            if self.in_channels == 0 or self.architecture == "skip":
                img = to_block(img, half)
                y = self.fromrgb(img)
                x = y if x is None else x + y
                img = downsample2d(img, self.resample_filter) if self.architecture == "skip" else None
            if self.architecture == "resnet":
                y = self.skip(x, gain=math.sqrt(0.5))
                x = y + self.conv1(self.conv0(x), gain=math.sqrt(0.5))
            else:
                x = self.conv1(self.conv0(x))
        return x, img


class DiscriminatorEpilogue(nn.Module):
    """4x4 head: minibatch stddev, conv, fully connected, output (projection onto labels if conditional)."""

    def __init__(self, in_channels: int, cmap_dim: int, img_channels: int, architecture: str = "resnet",
                 mbstd_group: int = 4, mbstd_channels: int = 1, conv_clamp: float | None = None):
        super().__init__()
        self.architecture, self.cmap_dim = architecture, cmap_dim
        if architecture == "skip":
            self.fromrgb = EqualConv2d(img_channels, in_channels, 1, activation="lrelu")
        self.mbstd = MinibatchStd(mbstd_group, mbstd_channels) if mbstd_channels > 0 else None
        self.conv = EqualConv2d(in_channels + mbstd_channels, in_channels, 3, activation="lrelu", conv_clamp=conv_clamp)
        self.fc = EqualLinear(in_channels * 16, in_channels, activation="lrelu")
        self.out = EqualLinear(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def forward(self, x: Tensor, img: Tensor | None, cmap: Tensor | None) -> Tensor:
        if self.architecture == "skip":
            x = x + self.fromrgb(img)
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.out(self.fc(self.conv(x).flatten(1)))
        if cmap is not None:  # projection discriminator (Miyato & Koyama 2018), as StyleGAN2-ADA
            x = (x * cmap).sum(dim=1, keepdim=True) / math.sqrt(self.cmap_dim)
        return x.squeeze(1)  # (B,)


class Discriminator(nn.Module):
    """image (B, C, H, W) [+ labels] -> logit (B,)."""

    def __init__(self, c_dim: int, img_resolution: int, img_channels: int, architecture: str = "resnet",
                 channel_base: int = 32768, channel_max: int = 512, mbstd_group: int = 4, mbstd_channels: int = 1,
                 resample_filter=(1, 3, 3, 1), conv_clamp: float | None = None, mapping_kwargs: dict | None = None,
                 num_fp16_res: int = 0):
        super().__init__()
        self.c_dim, self.img_resolution = c_dim, img_resolution
        self.block_resolutions = [2 ** i for i in range(int(math.log2(img_resolution)), 2, -1)]
        ch = channel_widths(channel_base, channel_max, self.block_resolutions + [4])
        for res in self.block_resolutions:
            block = DiscriminatorBlock(ch[res] if res < img_resolution else 0, ch[res], ch[res // 2], res,
                                       img_channels, architecture, resample_filter, conv_clamp,
                                       use_fp16=res >= fp16_resolution(img_resolution, num_fp16_res))
            setattr(self, f"b{res}", block)
        cmap_dim = ch[4] if c_dim > 0 else 0
        if c_dim > 0:
            self.mapping = MappingNetwork(0, c_dim, cmap_dim, num_ws=None, w_avg_beta=None, **(mapping_kwargs or {}))
        self.channels_last: bool | None = None  # activation layout; None = automatic (use_channels_last)
        self.b4 = DiscriminatorEpilogue(ch[4], cmap_dim, img_channels, architecture, mbstd_group, mbstd_channels,
                                        conv_clamp)

    def forward(self, img: Tensor, c: Tensor | None = None) -> Tensor:
        x = None
        if use_channels_last(self.channels_last):
            img = img.contiguous(memory_format=torch.channels_last)
        for res in self.block_resolutions:
            x, img = getattr(self, f"b{res}")(x, img)
        cmap = None
        if self.c_dim > 0:
            if c is None:
                raise ValueError("this discriminator is class-conditional: pass labels c (B, c_dim)")
            cmap = self.mapping(None, c)
        return self.b4(to_block(x, False), to_block(img, False), cmap)  # the epilogue runs in fp32


# ----------------------------------------------------------------------------- recipe
STYLEGAN2_TRAIN = {"optimizer": "adam", "g_lr": 0.002, "d_lr": 0.002, "betas": (0.0, 0.99), "eps": 1e-8,
                   "batch_size": 32, "ema_kimg": 10.0, "kimg": 25000.0}

# Table 1 of the paper. Configs A-E use half-width networks (TF fmap_base 8K = channel_base 16384);
# F doubles them. A is the original StyleGAN: `gankit train stylegan --preset config-f`.
_HALF = {"channel_base": 16384}
_GROWING_NOTE = "trained with progressive growing in the paper; gankit has no growing yet, so this runs without it"


@register("stylegan2")
class StyleGAN2(StyleFamily):
    Config = StyleGAN2Config
    tiny = ("builtin:digits?res=8",  # the registry test's config
            {"model": {"z_dim": 8, "w_dim": 8, "mapping_layers": 1, "channel_base": 64, "channel_max": 8,
                       "g_reg_interval": 2, "d_reg_interval": 2}})
    paper = "Karras et al. 2020, Analyzing and Improving the Image Quality of StyleGAN"
    train_defaults = STYLEGAN2_TRAIN
    presets = {
        # the paper's config F (FFHQ 1024): the defaults
        "config-f": {},
        # Table 1 ablation, each on top of the previous one
        "config-b": {"model": {**_HALF, "g_architecture": "orig", "d_architecture": "orig", "pl_weight": 0.0,
                               "d_reg_interval": 1, "g_reg_interval": 1},
                     "doc": "B: + weight demodulation (revised StyleGAN G, original D, R1 every step); " + _GROWING_NOTE},
        "config-c": {"model": {**_HALF, "g_architecture": "orig", "d_architecture": "orig", "pl_weight": 0.0},
                     "doc": "C: + lazy regularization (R1 every 16 minibatches); " + _GROWING_NOTE},
        "config-d": {"model": {**_HALF, "g_architecture": "orig", "d_architecture": "orig"},
                     "doc": "D: + path length regularization; " + _GROWING_NOTE},
        "config-e": {"model": {**_HALF, "r1_gamma": 100.0},
                     "doc": "E: + no growing, skip G and residual D (gamma 100 as in NVIDIA's run_training.py)"},
        # StyleGAN2-ADA's paper256 (256 px comparisons): half width, mbstd group 8, gamma 1
        "paper256": {"model": {"channel_base": 16384, "mbstd_group": 8, "r1_gamma": 1.0},
                     "train": {"batch_size": 64, "g_lr": 0.0025, "d_lr": 0.0025, "ema_kimg": 20.0}},
        # CPU presets: narrow networks and a short mapping network that learn in minutes on 2 cores
        "small": {"model": {"z_dim": 128, "w_dim": 128, "mapping_layers": 2, "channel_base": 16384,
                            "channel_max": 128, "conv_clamp": 256.0, "mbstd_group": 4},
                  "train": {"batch_size": 8},
                  "doc": "the speed-comparison config of docs/performance.md (`gankit bench stylegan2 --preset small`): "
                         "128-d latents, 2 mapping layers, 128 channels, conv_clamp 256, batch 8"},
        "cpu-32": {"model": {"z_dim": 64, "w_dim": 64, "mapping_layers": 2, "channel_base": 2048, "channel_max": 64,
                             "r1_gamma": 0.1, "mbstd_group": 4},
                   "train": {"batch_size": 16, "ema_kimg": 1.0, "ema_rampup": 0.05, "kimg": 100.0,
                             "snapshot_kimg": 10.0, "sample_kimg": 5.0},
                   "doc": "32 px, 64 channels at most, 64-d latents, 2 mapping layers (about 0.3 M params per net)"},
        "cpu-digits": {"model": {"z_dim": 32, "w_dim": 32, "mapping_layers": 2, "channel_base": 2048,
                                 "channel_max": 64, "r1_gamma": 0.05},
                       "train": {"batch_size": 32, "ema_kimg": 0.5, "ema_rampup": 0.05, "g_lr": 0.003, "d_lr": 0.003,
                                 "kimg": 40.0},
                       "doc": "builtin:digits at its native 8 px in about 2 minutes on 2 cores: 64 channels, "
                              "32-d latents"},
        "cpu-shapes": {"model": {"z_dim": 64, "w_dim": 64, "mapping_layers": 2, "channel_base": 1024,
                                 "channel_max": 128, "r1_gamma": 0.1},
                       "train": {"batch_size": 32, "g_lr": 0.0025, "d_lr": 0.0025, "ema_kimg": 2.0, "ema_rampup": 0.05,
                                 "kimg": 24.0, "snapshot_kimg": 8.0, "sample_kimg": 4.0},
                       "doc": "the Quickstart: builtin:shapes at 32 px in about 8 minutes on 2 cores; "
                              "128 channels at 4-8 px down to 32 at 32 px"},
        "quickstart": {"model": {"z_dim": 64, "w_dim": 64, "mapping_layers": 2, "channel_base": 1024,
                                 "channel_max": 128, "r1_gamma": 0.05, "g_architecture": "orig", "pl_weight": 0.0,
                                 "style_mixing_prob": 0.0, "pack": 2},
                       "train": {"batch_size": 16, "g_lr": 0.0025, "d_lr": 0.0025, "ema_kimg": 2.0, "ema_rampup": 0.05,
                                 "lr_schedule": "linear-decay", "lr_decay_start": 0.5, "kimg": 24.0,
                                 "snapshot_kimg": 8.0, "sample_kimg": 4.0},
                       "doc": "`make run`: cpu-shapes' widths with the best 24 kimg recipe found so far (orig G, "
                              "batch 16, PacGAN packing 2, no path length or mixing, R1 0.05, lr decayed over the "
                              "second half); 11.7-19.9% recognised over seeds 0-2 against cpu-shapes' 2.6-11.7%"},
        "cpu-64": {"model": {"z_dim": 128, "w_dim": 128, "mapping_layers": 2, "channel_base": 4096,
                             "channel_max": 128, "r1_gamma": 0.2},
                   "train": {"batch_size": 16, "ema_kimg": 2.0, "ema_rampup": 0.05, "kimg": 200.0,
                             "precision": "auto"},
                   "doc": "64 px, 128 channels at most, 128-d latents, 2 mapping layers; bf16 on a CPU with "
                          "native bf16 (1.33-1.36x), --train.precision fp32 for fp32"},
    }

    def validate(self, cfg: StyleGAN2Config) -> None:
        check_style_config("stylegan2", cfg)
        if cfg.num_fp16_res > 0 and not cfg.conv_clamp:
            raise ConfigError("--model.num-fp16-res needs --model.conv-clamp (StyleGAN2-ADA uses 256) so fp16 "
                              "activations cannot overflow")
        if cfg.pack > 1 and cfg.conditional:
            raise ConfigError("--model.pack: PacGAN packing takes an unconditional D; drop --model.conditional or "
                              "set --model.pack 1")

    def build(self, cfg: StyleGAN2Config):
        clamp = cfg.conv_clamp or None
        c_dim = cfg.c_dim if cfg.conditional else 0
        G = Generator(cfg.z_dim, c_dim, cfg.w_dim, cfg.resolution, cfg.channels,
                      mapping_kwargs={"num_layers": cfg.mapping_layers, "lr_multiplier": cfg.mapping_lr_mul,
                                      "w_avg_beta": cfg.w_avg_beta},
                      synthesis_kwargs={"channel_base": cfg.channel_base, "channel_max": cfg.channel_max,
                                        "architecture": cfg.g_architecture, "resample_filter": cfg.resample_filter,
                                        "conv_clamp": clamp, "demodulate": cfg.demodulate, "use_noise": cfg.use_noise,
                                        "g_input": cfg.g_input,
                                        "num_fp16_res": cfg.num_fp16_res})
        D = Discriminator(c_dim, cfg.resolution, cfg.channels * cfg.pack, cfg.d_architecture, cfg.channel_base,
                          cfg.channel_max, cfg.mbstd_group, cfg.mbstd_channels, cfg.resample_filter, clamp,
                          num_fp16_res=cfg.num_fp16_res)
        G.synthesis.channels_last = D.channels_last = LAYOUTS[cfg.layout]
        return {"G": G, "D": packed(D, cfg.pack)}
