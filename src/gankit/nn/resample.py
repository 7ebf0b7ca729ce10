"""FIR resampling in pure PyTorch: upfirdn2d, up/down-sampling and strided convolution with a low-pass filter.

StyleGAN (Karras et al. 2019, section 2 / appendix C) replaces nearest-neighbour resampling with
bilinear filtering (the [1, 2, 1] filter); StyleGAN2 (Karras et al. 2020, appendix B) uses the
[1, 3, 3, 1] filter. The semantics follow NVIDIA's ``upfirdn2d`` (upsample by zero insertion,
pad, FIR filter, downsample) so that weights and padding conventions carry over unchanged, but
every step is an ordinary PyTorch op: no custom CUDA, the same code on CPU, CUDA and MPS.

Speed: the filter runs as one depthwise convolution with the 2-D filter (measured faster on CPU
than two 1-D passes, though it has twice the multiply-adds), symmetric padding goes into the
convolution (no padded copy), the down-sampling stride goes into the convolution (no wasted
outputs), and up-sampling runs as a strided transposed depthwise convolution (no multiplications
by inserted zeros).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


def setup_filter(f: Sequence[float] = (1, 3, 3, 1)) -> Tensor:
    """A 1-D FIR filter normalized to sum 1; the 2-D filter is its outer product (separable)."""
    t = torch.as_tensor(list(f), dtype=torch.float32)
    if t.ndim != 1 or t.numel() == 0:
        raise ValueError("resample filter must be a non-empty 1-D list of taps, e.g. [1, 3, 3, 1]")
    return t / t.sum()


def _pads(padding) -> tuple[int, int, int, int]:
    """(x0, x1, y0, y1) from an int, (px, py) or (x0, x1, y0, y1)."""
    if isinstance(padding, int):
        return padding, padding, padding, padding
    if len(padding) == 2:
        return padding[0], padding[0], padding[1], padding[1]
    return tuple(padding)  # type: ignore[return-value]


#: run the separable filters as one depthwise convolution with their 2-D outer product (True), or as
#: two 1-D passes (False; the code before the fifteenth session of issue 17, kept for the benchmark and
#: for the test that resumes a run written by that code bitwise)
ONE_PASS = True


def _depthwise(x: Tensor, f: Tensor, stride: int, transpose: bool = False, padding: int | tuple[int, int] = 0) -> Tensor:
    """Depthwise filtering of every channel with the separable filter ``f`` (1-D taps; the 2-D
    filter is their outer product). ``padding``: the transposed convolution's crop, or the plain
    convolution's zero padding as (along H, along W), which the convolution adds itself instead of a
    padded copy of ``x``.

    One 2-D pass (16 multiply-adds per pixel for 4 taps) rather than two 1-D passes (8): oneDNN's
    depthwise kernels on CPU are far slower per multiply-add for the thin 1-D shapes, erratically so
    (docs/performance.md, "One filter pass")."""
    if stride > 1 and x.dtype == torch.bfloat16 and x.device.type == "cpu":
        # oneDNN's bf16 depthwise convolution with a stride (either direction) has a slow backward
        # on CPU: 3-8x the fp32 one (docs/performance.md, "CPU bf16"), so these few filter passes run
        # in fp32; the stride-1 passes stay in bf16, where they are faster than fp32.
        with torch.autocast("cpu", enabled=False):
            return _depthwise(x.float(), f, stride, transpose, padding).to(torch.bfloat16)
    C = x.shape[1]
    k = f.numel()
    # conv2d correlates, so the filter is flipped to convolve; conv_transpose2d scatters, which
    # already convolves
    f = f if transpose else f.flip(0)
    ph, pw = padding if isinstance(padding, (tuple, list)) else (padding, padding)  # (a 0-d tensor when traced)
    if ONE_PASS:
        w = (f[:, None] * f[None, :]).to(x.dtype).view(1, 1, k, k).expand(C, 1, k, k)  # the 2-D filter
        if transpose:
            return F.conv_transpose2d(x, w, stride=stride, padding=(ph, pw), groups=C)
        return F.conv2d(x, w, stride=stride, padding=(ph, pw), groups=C)
    f = f.to(x.dtype)
    fv, fh = f.view(1, 1, k, 1).expand(C, 1, k, 1), f.view(1, 1, 1, k).expand(C, 1, 1, k)
    if transpose:
        x = F.conv_transpose2d(x, fv, stride=(stride, 1), padding=(ph, 0), groups=C)
        return F.conv_transpose2d(x, fh, stride=(1, stride), padding=(0, pw), groups=C)
    x = F.conv2d(x, fv, stride=(stride, 1), padding=(ph, 0), groups=C)
    return F.conv2d(x, fh, stride=(1, stride), padding=(0, pw), groups=C)


def _filter2d(x: Tensor, f: Tensor, stride: int) -> Tensor:
    """Depthwise filtering with a non-separable 2-D filter (convolution, so the filter is flipped)."""
    C = x.shape[1]
    w = f.to(x.dtype).flip([0, 1])[None, None].expand(C, 1, *f.shape)
    return F.conv2d(x, w, stride=stride, groups=C)


def upfirdn2d(x: Tensor, f: Tensor | None, up: int = 1, down: int = 1, padding=0, gain: float = 1.0) -> Tensor:
    """Upsample by zero insertion, pad, apply the FIR filter ``f``, downsample (NVIDIA's ``upfirdn2d``).

    Args:
        x: (B, C, H, W).
        f: 1-D filter (separable, from :func:`setup_filter`), a 2-D filter (non-separable, e.g.
            StyleGAN3-R's radial filters), or None for the identity (a 1-tap filter).
        up, down: integer factors.
        padding: padding of the upsampled image: int, (px, py) or (x0, x1, y0, y1); negative crops.
        gain: overall gain of the filter (``up ** 2`` keeps the signal's magnitude when upsampling).
    """
    x0, x1, y0, y1 = _pads(padding)
    if f is None and up == 1:  # identity filter: padding, decimation and gain only
        x = F.pad(x, [x0, x1, y0, y1])
        x = x[:, :, ::down, ::down] if down > 1 else x
        return x * gain if gain != 1 else x
    if f is None:
        f = torch.ones(1, dtype=x.dtype, device=x.device)
    k = f.shape[-1]
    f = f * gain ** (f.ndim / 2)  # gain split over the separable passes
    if up > 1:
        # Zero insertion + full padding (k - 1) is a transposed convolution; NVIDIA's convention
        # keeps (up - 1) trailing zeros, so its padding (x0, x1) crops the full output by
        # (k - 1 - x0) in front and (k - 1 - x1 - (up - 1)) behind.
        c0, c1 = k - 1 - x0, k - up - x1
        d0, d1 = k - 1 - y0, k - up - y1
        if c0 == c1 == d0 == d1 and c0 >= 0 and down == 1 and f.ndim == 1:
            return _depthwise(x, f, up, transpose=True, padding=c0)
        B, C, H, W = x.shape  # general case: explicit zero insertion
        x = x.reshape(B, C, H, 1, W, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(B, C, H * up, W * up)
    if f.ndim == 1 and k > 1 and x0 == x1 >= 0 and y0 == y1 >= 0:  # symmetric: the filter passes pad
        return _depthwise(x, f, down, padding=(y0, x0))
    x = F.pad(x, [x0, x1, y0, y1])  # negative values crop
    if f.ndim == 2:
        return _filter2d(x, f, down)
    if k == 1:  # a 1-tap filter: decimation and the tap's gain (applied in both directions)
        return x[:, :, ::down, ::down] * f[0].to(x.dtype) ** 2
    return _depthwise(x, f, down)


def filtered_lrelu(x: Tensor, fu: Tensor | None, fd: Tensor | None, bias: Tensor | None, up: int = 1, down: int = 1,
                   padding=0, gain: float = 2 ** 0.5, slope: float = 0.2, clamp: float | None = None) -> Tensor:
    """Bias, ``up``x upsampling with ``fu``, leaky ReLU (times ``gain``, clamped), ``down``x downsampling
    with ``fd``: the alias-suppressing nonlinearity of StyleGAN3 (Karras et al. 2021, Table 1 config
    F, "filtered nonlinearities"; the semantics of NVIDIA's reference ``filtered_lrelu``).
    ``padding`` is (x0, x1, y0, y1) of the upsampled signal."""
    if bias is not None:
        x = x + bias.to(x.dtype).view(1, -1, 1, 1)
    x = upfirdn2d(x, fu, up=up, padding=padding, gain=up * up)
    x = F.leaky_relu(x, slope) * gain if slope != 1 else x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return upfirdn2d(x, fd, down=down)


def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """Blur with a Gaussian of std ``sigma`` px truncated at 3 sigma, same size ("blur the images D
    sees", StyleGAN3 config R; NVIDIA's filter exp2(-(x / sigma)^2))."""
    size = int(math.floor(sigma * 3))
    if size <= 0:
        return x
    f = torch.arange(-size, size + 1, device=x.device, dtype=torch.float32).div(sigma).square().neg().exp2()
    return upfirdn2d(x, f / f.sum(), padding=size)


def upsample2d(x: Tensor, f: Tensor, up: int = 2, padding: int = 0) -> Tensor:
    """2x (or ``up``x) upsampling with the FIR filter, keeping the size exactly ``up`` times."""
    k = f.numel()
    p = ((k + up - 1) // 2 + padding, (k - up) // 2 + padding)
    return upfirdn2d(x, f, up=up, padding=(p[0], p[1], p[0], p[1]), gain=up * up)


def downsample2d(x: Tensor, f: Tensor, down: int = 2, padding: int = 0) -> Tensor:
    """FIR low-pass filter then ``down``x decimation."""
    k = f.numel()
    p = ((k - down + 1) // 2 + padding, (k - down) // 2 + padding)
    return upfirdn2d(x, f, down=down, padding=(p[0], p[1], p[0], p[1]))


def conv2d_resample(x: Tensor, w: Tensor, f: Tensor | None = None, up: int = 1, down: int = 1, padding: int = 0,
                    groups: int = 1, bias: Tensor | None = None) -> Tensor:
    """Convolution (cross-correlation, as ``F.conv2d``) with FIR up- or down-sampling around it.

    The layouts of NVIDIA's ``conv2d_resample``: a 3x3 upsampling convolution is a stride-2
    transposed convolution followed by the filter; a 3x3 downsampling convolution is the filter
    followed by a stride-2 convolution; 1x1 layers resample on the cheaper side.

    Args:
        x: (B, I * groups... ) input; w: (O, I, kh, kw) weight (O = out channels, all groups).
        f: 1-D FIR filter (required when up or down > 1).
        padding: the convolution's own padding (``k // 2`` for "same").
        bias: (O,) added to the output, inside the convolution where it is the last operation.
    """
    O, _, kh, kw = w.shape
    if up == 1 and down == 1:
        return F.conv2d(x, w, bias, padding=padding, groups=groups)
    if up > 1 and down > 1:
        raise ValueError("conv2d_resample does both up and down sampling only through two calls")
    k = f.numel()
    if kh == 1 and kw == 1:
        if down > 1:  # filter on the smaller output side is impossible; filter first, then 1x1
            return F.conv2d(downsample2d(x, f, down, padding), w, bias, groups=groups)
        return _add_bias(upsample2d(F.conv2d(x, w, groups=groups), f, up, padding), bias)
    if down > 1:
        p0 = padding + (k - down + 1) // 2
        p1 = padding + (k - down) // 2
        x = upfirdn2d(x, f, padding=(p0, p1, p0, p1))
        return F.conv2d(x, w, bias, stride=down, groups=groups)
    # up > 1: transposed convolution (the adjoint of correlation, so the weight is used unflipped
    # as NVIDIA's flip_weight=False does), then the filter with gain up**2
    p0 = padding + (k + up - 1) // 2 - (kw - 1)
    p1 = padding + (k - up) // 2 - (kw - up)
    pt = max(min(-p0, -p1), 0)
    if groups == 1:
        wt = w.transpose(0, 1)
    else:
        wt = w.reshape(groups, O // groups, -1, kh, kw).transpose(1, 2).reshape(-1, O // groups, kh, kw)
    x = F.conv_transpose2d(x, wt, stride=up, padding=pt, groups=groups)
    return _add_bias(upfirdn2d(x, f, padding=(p0 + pt, p1 + pt, p0 + pt, p1 + pt), gain=up * up), bias)


def _add_bias(x: Tensor, bias: Tensor | None) -> Tensor:
    return x if bias is None else x + bias.view(1, -1, 1, 1)
