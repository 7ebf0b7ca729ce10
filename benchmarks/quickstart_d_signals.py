"""Ways to change what D tells G in the Quickstart's recipe (issue 17): a Projected GAN
discriminator and instance noise (ninth session), a local patch D (eighteenth). Each row trains
the `quickstart` preset on ``builtin:shapes?res=32`` and reports metrics.json's shapes figures.
Experiments, not features: they patch the StyleGAN2 family in this process only.

    python benchmarks/quickstart_d_signals.py --threads 1 --variants projected-64 noise-0.1 ...

* ``projected-*``: Projected GAN's D (Sauer et al. 2021, autonomousvision/projected-gan, the
  ``stylegan2`` config): the frozen ImageNet EfficientNet-Lite0 that gankit ships for its metrics,
  split after strides 4, 8, 16 and 32 (24, 40, 112, 320 channels); frozen random 1x1 convolutions
  mix channels (to 64, 128, 256, 512) and a frozen random top-down path mixes scales (add, 2x
  bilinear upsampling, 1x1 convolution; 64, 64, 128, 256 channels); four trained discriminators
  with spectral norm (separable 3x3 + 1x1 convolutions, batch norm, leaky ReLU, 2x average
  pooling), one per scale, each ending in a 4x4 convolution to logits; the hinge loss (G: -D),
  no R1, G and D Adam lr 0.002 with betas (0, 0.99), DiffAugment on every image D sees. Images
  are resized to ``size`` px before the feature network (the paper: 224 for data below 224 px;
  here 64, where a step costs about twice the recipe's), with one fewer down block per scale so
  the last maps stay 4x4.
* ``patch-*`` (eighteenth session): the recipe's D beside a local, PatchGAN-style D (Isola et al.
  2017, section 3.2.2) that judges every 13 x 13 px patch: equalized 3x3 convolutions 3-32-64-64
  with leaky ReLU (the second one downsamples 2x through the FIR filter) and a 1x1 convolution to a
  16 x 16 map of logits. Each loss is the recipe's logistic loss on the global logit plus ``weight``
  times the same loss averaged over the patch logits; the lazy R1 takes the gradient of both
  outputs, so the patch D is regularized as the global one is. A shape's corner is a local
  pattern that the patch D can check at every place, where the global D sees the whole image
  through one logit.
* ``noise-*``: instance noise (Sonderby et al. 2016): Gaussian noise of std sigma added to every
  image D sees, real and fake, fading linearly to 0 over the run.

Results: ``benchmarks/results/quickstart_d_signals.json``; sample grids stay in ``--runs``.
"""
from __future__ import annotations

import argparse
import os
import time

import torch
import torch.nn.functional as F
from common import write_results
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

import gankit.models.recipes.style as style
from gankit.losses.adversarial import LOSSES
from gankit.losses.regularizers import r1_penalty
from gankit.metrics.efficientnet import EfficientNetLite0, packaged_weights
from gankit.models.family import Phase
from gankit.models.stylegan2 import StyleGAN2
from gankit.nn.equalized import EqualConv2d
from gankit.training.trainer import Trainer

#: name -> (kind, options): projected rows (size, D lr, DiffAugment policy), patch rows (the patch D's
#: loss weight) and noise rows (sigma)
VARIANTS = {
    "projected-64": ("projected", {"size": 64, "d_lr": 0.002, "policy": "color,translation,cutout"}),
    "projected-64-dlr-0.0005": ("projected", {"size": 64, "d_lr": 0.0005, "policy": "color,translation,cutout"}),
    "projected-64-translation": ("projected", {"size": 64, "d_lr": 0.002, "policy": "translation"}),
    "patch-1": ("patch", {"weight": 1.0}),
    "noise-0.1": ("noise", {"sigma": 0.1}),
    "noise-0.3": ("noise", {"sigma": 0.3}),
}
SPLITS = ((0, 3), (3, 5), (5, 11), (11, 16))  # EfficientNet-Lite0 blocks per scale: strides 4, 8, 16, 32
DOWN_BLOCKS = {64: 3, 128: 4, 224: 4}  # down blocks of the first scale's discriminator, per input size


def diff_augment(x: torch.Tensor, policy: str) -> torch.Tensor:
    """DiffAugment (Zhao et al. 2020): brightness, saturation, contrast; translation by up to 1/8;
    cutout of a 1/5 square; the same draws for every channel of an image."""
    n, _, h, w = x.shape
    for p in policy.split(","):
        if p == "color":
            x = x + (torch.rand(n, 1, 1, 1) - 0.5)
            m = x.mean(1, keepdim=True)
            x = (x - m) * (torch.rand(n, 1, 1, 1) * 2) + m
            m = x.mean((1, 2, 3), keepdim=True)
            x = (x - m) * (torch.rand(n, 1, 1, 1) + 0.5) + m
        elif p == "translation":
            sx, sy = int(h * 0.125 + 0.5), int(w * 0.125 + 0.5)
            tx, ty = torch.randint(-sx, sx + 1, (n, 1, 1)), torch.randint(-sy, sy + 1, (n, 1, 1))
            gb, gx, gy = torch.meshgrid(torch.arange(n), torch.arange(h), torch.arange(w), indexing="ij")
            gx, gy = (gx + tx + 1).clamp(0, h + 1), (gy + ty + 1).clamp(0, w + 1)
            x = F.pad(x, [1, 1, 1, 1]).permute(0, 2, 3, 1)[gb, gx, gy].permute(0, 3, 1, 2)
        elif p == "cutout":
            cs = int(h * 0.2 + 0.5), int(w * 0.2 + 0.5)
            ox = torch.randint(0, h + (1 - cs[0] % 2), (n, 1, 1))
            oy = torch.randint(0, w + (1 - cs[1] % 2), (n, 1, 1))
            gb, gx, gy = torch.meshgrid(torch.arange(n), torch.arange(cs[0]), torch.arange(cs[1]), indexing="ij")
            gx, gy = (gx + ox - cs[0] // 2).clamp(0, h - 1), (gy + oy - cs[1] // 2).clamp(0, w - 1)
            mask = torch.ones(n, h, w)
            mask[gb, gx, gy] = 0
            x = x * mask.unsqueeze(1)
    return x.contiguous()


class ProjectedD(nn.Module):
    """Projected GAN's discriminator on gankit's EfficientNet-Lite0 (see the module docstring)."""

    def __init__(self, size: int, policy: str, cout: int = 64):
        super().__init__()
        self.size, self.policy = size, policy
        net = EfficientNetLite0()
        net.load_state_dict(torch.load(packaged_weights(), map_location="cpu", weights_only=True), strict=False)
        self.__dict__["effnet"] = net.eval().fuse_().requires_grad_(False)  # frozen, outside the state dict
        ch, mixed = (24, 40, 112, 320), (cout, cout * 2, cout * 4, cout * 8)
        self.ccm = nn.ModuleList(nn.Conv2d(i, o, 1) for i, o in zip(ch, mixed))
        self.csm = nn.ModuleList([nn.Conv2d(mixed[0], mixed[0], 1), nn.Conv2d(mixed[1], mixed[0], 1),
                                  nn.Conv2d(mixed[2], mixed[1], 1), nn.Conv2d(mixed[3], mixed[2], 1)])
        # random and meant to stay fixed, but the trainer's D optimizer holds every D parameter, so in
        # these runs the mixing layers were trained with the discriminators (the code freezes them)
        widths = {4: 512, 8: 512, 16: 256, 32: 128, 64: 64, 128: 64}  # the code's channels per nominal size
        discs = []
        for i, (nominal, cin) in enumerate(zip((128, 64, 32, 16), (cout, cout, cout * 2, cout * 4))):
            w, r, layers = {**widths, nominal: cin}, nominal, []
            for _ in range(DOWN_BLOCKS[size] - i):
                layers += [spectral_norm(nn.Conv2d(w[r], w[r], 3, 1, 1, groups=w[r], bias=False)),
                           spectral_norm(nn.Conv2d(w[r], w[r // 2], 1, bias=False)),
                           nn.BatchNorm2d(w[r // 2]), nn.LeakyReLU(0.2), nn.AvgPool2d(2)]
                r //= 2
            layers.append(spectral_norm(nn.Conv2d(w[r], 1, 4, 1, 0, bias=False)))
            discs.append(nn.Sequential(*layers))
        self.discs = nn.ModuleList(discs)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        net = self.effnet
        h, outs = F.relu6(net._bn0(net._conv_stem(x))), []
        for s, e in SPLITS:
            for i in range(s, e):
                h = net._blocks[i](h)
            outs.append(h)
        m = [c(o) for c, o in zip(self.ccm, outs)]
        up = lambda t: F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=True)  # noqa: E731
        o3 = self.csm[3](up(m[3]))
        o2 = self.csm[2](up(o3 + m[2]))
        o1 = self.csm[1](up(o2 + m[1]))
        return [self.csm[0](up(o1 + m[0])), o1, o2, o3]

    def forward(self, x: torch.Tensor, c=None) -> torch.Tensor:
        if self.policy:
            x = diff_augment(x, self.policy)
        x = F.interpolate(x, self.size, mode="bilinear", align_corners=False)
        fs = self.features(x.contiguous(memory_format=torch.channels_last))
        return torch.cat([d(f).flatten(1) for d, f in zip(self.discs, fs)], 1)


def hinge_phases(G: nn.Module, D: nn.Module) -> list[Phase]:
    hinge = LOSSES["hinge"]  # Lim & Ye 2017: relu(1 - D(x)) + relu(1 + D(G(z))); G: -D(G(z))
    def fake(z):
        return G.synthesis(G.mapping(z, None))

    def g_main(s):
        loss = hinge.g(D(fake(s.z())).float())
        return {"loss": loss, "adv": loss.detach()}

    def d_main(s):
        with torch.no_grad():
            f = fake(s.z())
        fo, ro = D(f).float(), D(s.real.detach()).float()
        loss = hinge.d(ro, fo)
        return {"loss": loss, "real": ro.detach().mean(), "fake": fo.detach().mean()}

    return [Phase("G", "G", g_main), Phase("D", "D", d_main, real=True)]


class PatchPlusD(nn.Module):
    """The recipe's (packed) D and a local patch D side by side: (global logits (N / m,), patch logits (N, 256))."""

    def __init__(self, glob: nn.Module):
        super().__init__()
        self.glob = glob
        self.patch = nn.Sequential(EqualConv2d(3, 32, 3, activation="lrelu"),
                                   EqualConv2d(32, 64, 3, activation="lrelu", down=2),
                                   EqualConv2d(64, 64, 3, activation="lrelu"), EqualConv2d(64, 1, 1))

    def forward(self, x: torch.Tensor, c=None) -> tuple[torch.Tensor, torch.Tensor]:
        return self.glob(x, c), self.patch(x).flatten(1)


def patch_phases(cfg, G: nn.Module, D: PatchPlusD, weight: float) -> list[Phase]:
    """The recipe's phases (no path length, no mixing, lazy R1) with the patch D's loss added."""
    def loss(out, real: bool) -> torch.Tensor:  # the logistic loss (Goodfellow 2014 eq. 1), per D
        sign = -1.0 if real else 1.0
        return F.softplus(sign * out[0].float()).mean() + weight * F.softplus(sign * out[1].float()).mean()

    def fake(z):
        return G.synthesis(style.run_mapping(G, z, None, 0.0))

    def g_main(s):
        out = loss(D(fake(s.z())), True)  # non-saturating: -log sigmoid(D(G(z))) for both Ds
        return {"loss": out, "adv": out.detach()}

    def d_main(s):
        with torch.no_grad():
            f = fake(s.z())
        fo, ro = D(f), D(s.real.detach())
        out = loss(fo, False) + loss(ro, True)
        return {"loss": out, "adv": out.detach(), "real": ro[0].detach().mean(), "fake": fo[0].detach().mean(),
                "patch_real": ro[1].detach().mean(), "patch_fake": fo[1].detach().mean()}

    def d_reg(s):
        real = s.real.detach().requires_grad_(True)
        g, p = D(real)
        both = torch.cat([g.float().reshape(-1), weight * p.float().mean(1)])  # its sum: both Ds' outputs
        r1 = r1_penalty(both, real)
        return {"loss": r1 * (cfg.r1_gamma / 2) * cfg.d_reg_interval, "r1": r1.detach()}  # Mescheder 2018 eq. 9

    return [Phase("G", "G", g_main), Phase("D", "D", d_main, real=True),
            Phase("Dreg", "D", d_reg, every=cfg.d_reg_interval, real=True, reuse_real=True, higher_order=True)]


def run(name: str, runs: str, threads: int, kimg: float, seed: int) -> dict:
    kind, opts = VARIANTS[name]
    model, train = {}, {"kimg": kimg, "tensorboard": False, "snapshot_kimg": 10**6, "sample_kimg": 10**6,
                        "threads": threads, "seed": seed}
    build, phases, ratios, blur = StyleGAN2.build, style.StyleFamily.phases, style.StyleFamily.optimizer_ratios, \
        style.gaussian_blur
    if kind == "projected":
        def projected_build(self, cfg):
            nets = build(self, cfg)  # G (and the D it replaces) drawn first, as in the runs reported
            nets["D"] = ProjectedD(opts["size"], opts["policy"])
            return nets
        StyleGAN2.build = projected_build
        style.StyleFamily.phases = lambda self, cfg, nets, train: hinge_phases(nets["G"], nets["D"])
        style.StyleFamily.optimizer_ratios = lambda self, cfg: {}
        model = {"pack": 1, "r1_gamma": 0.0}
        train.update(g_lr=0.002, d_lr=opts["d_lr"], betas=(0.0, 0.99))
    elif kind == "patch":
        def patch_build(self, cfg):
            nets = build(self, cfg)  # G and the recipe's D drawn first, then the patch D
            nets["D"] = PatchPlusD(nets["D"])
            return nets
        StyleGAN2.build = patch_build
        style.StyleFamily.phases = lambda self, cfg, nets, train: patch_phases(cfg, nets["G"], nets["D"],
                                                                                 opts["weight"])
    else:  # the blur hook's sigma schedule carries the noise's: sigma at the start, 0 at the end
        style.gaussian_blur = lambda img, sigma: img + sigma * torch.randn_like(img)
        model = {"blur_init_sigma": opts["sigma"], "blur_fade_kimg": kimg}
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    try:
        tr = Trainer("stylegan2", "builtin:shapes?res=32", os.path.join(runs, name), preset="quickstart",
                     progress=False, overrides={"model": model, "train": train})
        m = tr.run()["metric_values"]
    finally:
        StyleGAN2.build, style.StyleFamily.phases, style.StyleFamily.optimizer_ratios = build, phases, ratios
        style.gaussian_blur = blur
    return {"variant": name, **opts, "seed": seed, "kimg": kimg, "seconds": round(time.perf_counter() - t0),
            **{k: m[k] for k in ("recognised_share", "pairs_covered", "shapes_covered", "colours_covered")}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--kimg", type=float, default=None, help="default: 12 for projected rows, 24 for noise rows")
    ap.add_argument("--runs", default="/tmp/quickstart-d-signals")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/results/quickstart_d_signals.json")
    args = ap.parse_args()
    rows = []
    for name in args.variants:
        kimg = args.kimg or (12.0 if VARIANTS[name][0] == "projected" else 24.0)  # patch and noise rows: 24
        rows.append(run(name, args.runs, args.threads, kimg, args.seed))
        print(rows[-1], flush=True)
    write_results(args.out, rows, args.threads)


if __name__ == "__main__":
    main()
