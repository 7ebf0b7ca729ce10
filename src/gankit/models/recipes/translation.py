"""What the image-to-image families (pix2pix, CycleGAN) share: data fields from two-domain data,
sampling as translation of held-out inputs, the input | output | target grid, eval against the
target domain, and held-out figures (L1, PSNR, classifier agreement) at the end of training."""
from __future__ import annotations

import math

import torch
from torch import nn

from ...errors import ConfigError
from ...nn.translation import ResnetGenerator, UNetGenerator
from ..family import Family


def run_translation(net: nn.Module, images: torch.Tensor, batch: int = 64, mode=None) -> torch.Tensor:
    """``net`` on ``images`` in batches, without gradients, on the network's device, in eval mode and inside
    the context ``mode(net)`` when given (pix2pix: test-time dropout and batch statistics); returns CPU
    images clamped to [-1, 1]. The network's mode is restored after."""
    import contextlib

    dev = next(net.parameters()).device
    out = []
    was = net.training
    net.eval()  # running statistics, no dropout: unless ``mode`` says otherwise, and never a collective
    try:
        with torch.no_grad(), (mode(net) if mode is not None else contextlib.nullcontext()):
            for x in images.split(batch):
                out.append(net(x.to(dev)).clamp(-1, 1).cpu())
    finally:
        net.train(was)
    return torch.cat(out) if out else images[:0]


def unet_depth(netG: str, res: int) -> int:
    """Halvings of a U-Net: 8 for unet_256, 7 for unet_128, down to 1x1 for ``unet``."""
    return {"unet_256": 8, "unet_128": 7}.get(netG) or int(math.log2(res))


def resnet_blocks(netG: str, res: int) -> int:
    """Residual blocks: 9 or 6 as named; ``resnet`` picks 9 at >= 256 px and 6 below (Zhu et al. 2017, appendix 7.2)."""
    return {"resnet_9blocks": 9, "resnet_6blocks": 6}.get(netG) or (9 if res >= 256 else 6)


def build_generator(cfg, in_channels: int, out_channels: int) -> nn.Module:
    """The generator ``cfg.netG`` names (unet, unet_256, unet_128, resnet, resnet_9blocks, resnet_6blocks)."""
    if cfg.netG.startswith("unet"):
        return UNetGenerator(in_channels, out_channels, unet_depth(cfg.netG, cfg.resolution), cfg.ngf, cfg.norm,
                             cfg.dropout)
    return ResnetGenerator(in_channels, out_channels, cfg.ngf, resnet_blocks(cfg.netG, cfg.resolution), cfg.norm,
                           cfg.dropout)


def check_generator(netG: str, res: int) -> None:
    """Refuses a resolution the named generator cannot take, naming the option."""
    if netG.startswith("unet"):
        depth = unet_depth(netG, res)
        if res % (2 ** depth) or res < 2 ** depth:
            raise ConfigError(f"--model.netG {netG} halves the image {depth} times, so it needs a resolution "
                              f"that is a multiple of {2 ** depth} (the data is {res} px); use "
                              "--model.netG unet (as deep as the data allows) or resize the data")
    elif res % 4:
        raise ConfigError(f"--model.netG {netG} needs a resolution divisible by 4 (the data is {res})")


def check_patch_depth(n_layers: int, res: int) -> None:
    """A PatchGAN of ``n_layers`` strided layers leaves res / 2^n - 2 outputs per side; at least one is needed."""
    if n_layers and res // 2 ** n_layers - 2 < 1:
        fit = max(n for n in range(0, 9) if n == 0 or res // 2 ** n - 2 >= 1)
        raise ConfigError(f"--model.n-layers-D {n_layers} is too deep for {res} px images (no patch is left); "
                          f"use at most {fit}")


class TranslationFamily(Family):
    """Families whose inference network maps an image of domain A to domain B."""

    data_kinds = ("paired", "unpaired")
    demo_page = "translation"
    #: the directions :meth:`direction_network` serves
    directions: tuple[str, ...] = ("AtoB",)

    def inference_mode(self, net):
        """The context a translation runs in (default: as the network is; pix2pix: the paper's test mode)."""
        import contextlib

        return contextlib.nullcontext()

    def direction_network(self, bundle, direction: str) -> tuple[nn.Module, int]:
        """(network, input channels) for ``direction`` (AtoB; BtoA where the family has a way back)."""
        if direction != "AtoB":
            raise ConfigError(f"--direction {direction}: a {bundle.family} run translates AtoB only")
        return bundle.inference, bundle.config.in_channels

    def translate(self, net: nn.Module, images: torch.Tensor, batch: int = 64) -> torch.Tensor:
        """Translations of ``images`` (N, C, H, W) in [-1, 1] by ``net`` (an A -> B or B -> A generator)."""
        return run_translation(net, images, batch, self.inference_mode)

    def export_module(self, net, truncation_psi: float = 1.0, noise_mode: str = "const"):
        """``net`` in eval mode, so the export is deterministic: no dropout, batch norm's running statistics
        (junyanz's ``--eval``); ``gankit translate`` keeps pix2pix's test-time dropout (section 3.3)."""
        if truncation_psi != 1.0:
            raise ConfigError("--trunc: truncation needs a mapping network; translation networks have none")
        return TranslationExport(net)

    def export_inputs(self, net, n: int, generator: torch.Generator, cfg=None) -> dict[str, torch.Tensor]:
        """A: (n, A's channels, res, res) images in [-1, 1] (uniform noise as the example)."""
        if cfg is None:
            raise ConfigError("exporting a translation network needs its run's model config (for A's size)")
        return {"A": torch.rand(n, cfg.in_channels, cfg.resolution, cfg.resolution, generator=generator) * 2 - 1}

    def data_fields(self, info):
        c, h, _ = info.shape
        return {"resolution": h, "channels": c, "in_channels": info.source_shape[0]}

    @staticmethod
    def _sources(data) -> torch.Tensor:
        held = data.held_out() if hasattr(data, "held_out") else data
        return held.A

    def sampler(self, net, condition=None, truncation_psi: float = 1.0, data=None):
        """``draw(n, generator)``: translations of ``n`` inputs: rows of ``condition`` (an image batch in
        [-1, 1]) in turn, or held-out A images of ``data`` drawn at random."""
        if truncation_psi != 1.0:
            raise ConfigError("--trunc: truncation needs a mapping network; translation networks have none")
        if condition is None and data is None:
            raise ConfigError(f"{type(self).registered_name} translates images: give inputs (gankit translate RUN "
                              "--input DIR) or data to draw them from")
        pool = condition if condition is not None else self._sources(data)
        position = {"next": 0}

        def draw(n: int, g: torch.Generator) -> torch.Tensor:
            if condition is not None:
                idx = (torch.arange(n) + position["next"]) % len(pool)
                position["next"] += n
            else:
                idx = torch.randint(0, len(pool), (n,), generator=g)
            x = pool[idx]
            x = x.float().div(127.5).sub(1.0) if x.dtype == torch.uint8 else x.float()
            return self.translate(net, x)

        return draw

    def sample(self, net, n: int, seed: int = 0, condition=None, data=None) -> torch.Tensor:
        return self.sampler(net, condition, data=data)(n, torch.Generator().manual_seed(seed))

    def eval_setup(self, net, dataset, truncation_psi: float = 1.0):
        """Translations of held-out A images, compared with the held-out B images (the target domain)."""
        if not hasattr(dataset, "held_out"):
            raise ConfigError(f"{getattr(dataset, 'name', dataset)}: a translation run is evaluated on two-domain "
                              "data (its own --data, or another paired / unpaired dataset)")
        return self.sampler(net, None, truncation_psi, data=dataset), dataset.held_out().domain("B")

    def grid(self, net, dataset, n: int, seed: int, nets=None):
        """Held-out triplets input | output | target (target: the true B where known), two per row."""
        held = dataset.held_out()
        k = max(1, min(n // 3, 16, len(held)))
        batch = held.get_batch(torch.arange(k))
        fake = self.translate(net, batch["A"])
        truth = _truth(held, k)
        cols = [batch["A"], fake] + ([truth] if truth is not None else [])
        images = torch.stack([_as_rgb(c, 3) for c in cols], 1).flatten(0, 1)
        return images, 2 * len(cols)

    def eval_extras(self, net, data, device, nets=None) -> dict:
        """Held-out L1, PSNR and classifier agreement against the true targets, as in metrics.json."""
        from ...data import open_dataset

        ds = open_dataset(data) if isinstance(data, str) else data
        res = self.final_metrics(net, ds, device, nets) or {}
        return {f"held_out_{k}": v for k, v in res.items() if isinstance(v, float)}

    def final_metrics(self, net, dataset, device, nets=None) -> dict | None:
        """metrics.json: held-out figures against the true targets (where the data has them)."""
        from ...metrics.translation import translation_metrics

        held = dataset.held_out()
        truth = _truth(held, len(held.A))
        if truth is None:
            return None
        src = held.get_batch(torch.arange(len(held.A)))["A"]
        fake = self.translate(net, src)
        train_mean = dataset.B.float().div(127.5).sub(1.0).mean(0)
        meta = held.meta
        return {"metric": "translation-held-out",
                **translation_metrics(fake, truth, src, train_mean, meta.get("classes"), meta.get("undo"))}


class TranslationExport(nn.Module):
    """A -> B images clamped to [-1, 1], the network frozen in eval mode."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net.eval()

    def train(self, mode: bool = True):  # an exported translation network stays in eval mode
        return super().train(False)

    def forward(self, A: torch.Tensor) -> torch.Tensor:
        return self.net(A).clamp(-1, 1)


def _truth(held, k: int) -> torch.Tensor | None:
    """The true B of the first ``k`` held-out A images: the pair's B, or an unpaired dataset's ``truth``."""
    truth = held.B if held.info.kind == "paired" else getattr(held, "truth", None)
    if truth is None:
        return None
    return truth[:k].float().div(127.5).sub(1.0)


def _as_rgb(x: torch.Tensor, c: int) -> torch.Tensor:
    return x.expand(-1, c, -1, -1) if x.shape[1] == 1 and c == 3 else x
