"""Image-to-image networks shared by pix2pix and CycleGAN: the U-Net and ResNet generators and the
PatchGAN discriminators, with the widths, norms and biases of junyanz's pytorch-CycleGAN-and-pix2pix
so parameter counts match it (a convolution before a batch norm has no bias; before an instance
norm, which has no affine parameters there, it keeps one).
"""
from __future__ import annotations

import contextlib

import torch
from torch import nn

NORMS = ("batch", "instance", "none")


def norm_layer(kind: str, channels: int) -> nn.Module:
    """Batch norm (affine) or instance norm without affine parameters or running statistics (junyanz's)."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    return nn.Identity()


def _bias(norm: str) -> bool:
    return norm != "batch"


class UNetGenerator(nn.Module):
    """Isola et al. 2017, section 3.2.1 and appendix 6.1.1: an encoder-decoder with skip connections
    between mirrored layers. ``num_downs`` halvings (8 for 256 px: ``unet_256``; 7: ``unet_128``) take
    the image to 1x1. Encoder widths ngf, 2ngf, 4ngf, then 8ngf; LeakyReLU 0.2 down, ReLU up, no norm
    on the first layer (or the bottleneck's input), tanh out. Dropout 0.5 follows the decoder blocks
    between the 8ngf levels (three at 256 px): the generator's only noise, kept at test time.

    Call: ``G(A)`` with A (N, in_channels, H, W) in [-1, 1], H and W divisible by 2 ** num_downs.
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, num_downs: int = 8, ngf: int = 64,
                 norm: str = "batch", dropout: bool = True):
        super().__init__()
        if num_downs < 1:
            raise ValueError("a U-Net needs at least one downsampling")
        self.in_channels, self.out_channels, self.num_downs = in_channels, out_channels, num_downs
        widths = [ngf * min(2 ** i, 8) for i in range(num_downs)]  # inner width of level i (0 = outermost)
        bias = _bias(norm)
        self.down = nn.ModuleList()
        self.up = nn.ModuleList()
        for i, w in enumerate(widths):
            outer = in_channels if i == 0 else widths[i - 1]
            innermost = i == num_downs - 1
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2)]
            layers.append(nn.Conv2d(outer, w, 4, 2, 1, bias=bias))
            if 0 < i and not innermost:
                layers.append(norm_layer(norm, w))
            self.down.append(nn.Sequential(*layers))
            up_in = w if innermost else 2 * w
            up_out = out_channels if i == 0 else widths[i - 1]
            ups: list[nn.Module] = [nn.ReLU(), nn.ConvTranspose2d(up_in, up_out, 4, 2, 1, bias=True if i == 0 else bias)]
            if i == 0:
                ups.append(nn.Tanh())
            else:
                ups.append(norm_layer(norm, up_out))
                # junyanz: dropout in the blocks whose inner and outer widths are both 8 ngf, innermost excluded
                if dropout and not innermost and w == widths[i - 1] == ngf * 8:
                    ups.append(nn.Dropout(0.5))
            self.up.append(nn.Sequential(*ups))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        for i in reversed(range(self.num_downs)):
            x = self.up[i](x if i == self.num_downs - 1 else torch.cat([skips[i], x], 1))
        return x


class ResnetBlock(nn.Module):
    """Two 3x3 convolutions with reflection padding and a residual connection (He et al. 2016; Johnson et al. 2016)."""

    def __init__(self, dim: int, norm: str = "instance", dropout: bool = False):
        super().__init__()
        bias = _bias(norm)
        layers = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), norm_layer(norm, dim), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), norm_layer(norm, dim)]
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class ResnetGenerator(nn.Module):
    """Zhu et al. 2017, appendix 7.2 (after Johnson et al. 2016): c7s1-64, d128, d256, ``n_blocks``
    residual blocks (9 at 256 px, 6 at 128), u128, u64, c7s1-3; reflection padding, tanh out.

    Call: ``G(A)`` with A (N, in_channels, H, W) in [-1, 1], H and W divisible by 4.
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, ngf: int = 64, n_blocks: int = 9,
                 norm: str = "instance", dropout: bool = False):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        bias = _bias(norm)
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, ngf, 7, bias=bias),
                                   norm_layer(norm, ngf), nn.ReLU()]
        for i in range(2):  # d128, d256
            m = 2 ** i
            layers += [nn.Conv2d(ngf * m, ngf * m * 2, 3, 2, 1, bias=bias), norm_layer(norm, ngf * m * 2), nn.ReLU()]
        layers += [ResnetBlock(ngf * 4, norm, dropout) for _ in range(n_blocks)]
        for i in range(2):  # u128, u64: fractionally strided convolutions
            m = 2 ** (2 - i)
            layers += [nn.ConvTranspose2d(ngf * m, ngf * m // 2, 3, 2, 1, output_padding=1, bias=bias),
                       norm_layer(norm, ngf * m // 2), nn.ReLU()]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class PatchDiscriminator(nn.Module):
    """Isola et al. 2017, section 3.2.2 and appendix 6.1.2: a fully convolutional classifier of N x N
    patches; ``n_layers`` 3 gives the 70 x 70 PatchGAN (C64-C128-C256-C512, 4x4 convolutions,
    LeakyReLU 0.2, no norm on the first layer), ``n_layers`` 0 the 1 x 1 PixelGAN. Output: a map of
    logits (N, 1, h, w).
    """

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int = 3, norm: str = "batch"):
        super().__init__()
        bias = _bias(norm)
        if n_layers == 0:  # the PixelGAN: 1x1 convolutions
            layers = [nn.Conv2d(in_channels, ndf, 1), nn.LeakyReLU(0.2), nn.Conv2d(ndf, ndf * 2, 1, bias=bias),
                      norm_layer(norm, ndf * 2), nn.LeakyReLU(0.2), nn.Conv2d(ndf * 2, 1, 1, bias=bias)]
        else:
            layers = [nn.Conv2d(in_channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2)]
            mult = 1
            for n in range(1, n_layers + 1):
                prev, mult = mult, min(2 ** n, 8)
                stride = 2 if n < n_layers else 1  # the last one keeps the size (the 70 x 70 receptive field)
                layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride, 1, bias=bias), norm_layer(norm, ndf * mult),
                           nn.LeakyReLU(0.2)]
            layers.append(nn.Conv2d(ndf * mult, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def receptive_field(n_layers: int) -> int:
    """The input patch one PatchGAN output sees: 70 for n_layers 3 (Isola et al. 2017, appendix 6.1.2), 1 for the PixelGAN."""
    if n_layers == 0:
        return 1
    rf, jump = 1, 1
    for stride in [2] * n_layers + [1, 1]:  # 4x4 convolutions, input to output
        rf += 3 * jump
        jump *= stride
    return rf


@contextlib.contextmanager
def paper_inference(net: nn.Module, batch_stats: bool = True):
    """Runs ``net`` as Isola et al. 2017 do at test time (section 3.3): dropout on, and batch norm with the
    statistics of the test batch itself (``batch_stats``; else the running ones, as in eval mode). The
    batch-norm layers are computed functionally for the duration, so their running statistics are
    untouched and no process synchronizes (a sample grid is made by one process of a distributed run)."""
    import torch.nn.functional as F

    dropouts = [(m, m.training) for m in net.modules() if isinstance(m, nn.Dropout)]
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)] if batch_stats else []
    for m, _ in dropouts:
        m.train()
    for m in norms:
        m.forward = (lambda x, m=m: F.batch_norm(x, None, None, m.weight, m.bias, True, 0.0, m.eps))
    try:
        yield net
    finally:
        for m, training in dropouts:
            m.train(training)
        for m in norms:
            del m.forward
