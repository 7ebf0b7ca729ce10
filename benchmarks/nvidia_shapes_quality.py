"""NVIDIA's StyleGAN2 on the Quickstart's data: stylegan2-ada-pytorch's networks and StyleGAN2Loss
(from a checkout given by --nvidia; nothing of it is in gankit) trained on ``builtin:shapes?res=32``
with gankit's ``cpu-shapes`` settings (z = w = 64, 2 mapping layers, channel_base 1024,
channel_max 128, R1 0.1, path length 2, mixing 0.9, batch 32, lr 0.0025, EMA 2 kimg with ramp-up
0.05, lazy intervals 4 and 16 with NVIDIA's mb_ratio) in NVIDIA's phase order, scored by gankit's
shapes classifier on 5,000 EMA samples, with a sample grid.

    python benchmarks/nvidia_shapes_quality.py --nvidia /path/to/stylegan2-ada-pytorch --kimg 12 --out /tmp/nv12

The Quickstart's recipe without packing or the learning-rate decay (what gankit's ``quickstart``
preset gives with ``--model.pack 1 --train.lr-schedule constant``):

    ... --kimg 48 --batch 16 --gamma 0.05 --pl 0 --mix 0 --arch orig --g-reg-interval 0 --threads 1
"""
import argparse
import copy
import json
import sys
import time
import types

import torch
from PIL import Image

from gankit.data.builtin.shapes import shapes
from gankit.metrics.modes import shapes_modes

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--nvidia", required=True, help="path of a stylegan2-ada-pytorch checkout")
ap.add_argument("--kimg", type=float, default=12)
ap.add_argument("--batch", type=int, default=32)
ap.add_argument("--lr", type=float, default=0.0025)
ap.add_argument("--gamma", type=float, default=0.1)
ap.add_argument("--pl", type=float, default=2.0)
ap.add_argument("--mix", type=float, default=0.9)
ap.add_argument("--ema", type=float, default=2.0)
ap.add_argument("--arch", default="skip")
ap.add_argument("--g-reg-interval", type=int, default=4,
                help="NVIDIA's G_reg_interval; 0 = no lazy G phase and no lr correction (gankit's choice when --pl is 0)")
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--out", default="/tmp/nvq/run")
a = ap.parse_args()
sys.path.insert(0, a.nvidia)
sys.modules.setdefault("requests", types.ModuleType("requests"))  # dnnlib imports it; nothing is downloaded
from training.loss import StyleGAN2Loss  # noqa: E402
from training.networks import Discriminator, Generator  # noqa: E402

torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)
ds = shapes(res=32, n=10000, seed=0)
data = ds.data.float().div(127.5).sub(1)
G = Generator(z_dim=64, c_dim=0, w_dim=64, img_resolution=32, img_channels=3, mapping_kwargs=dict(num_layers=2),
              synthesis_kwargs=dict(channel_base=1024, channel_max=128, num_fp16_res=0, conv_clamp=None, architecture=a.arch))
D = Discriminator(c_dim=0, img_resolution=32, img_channels=3, channel_base=1024, channel_max=128, num_fp16_res=0,
                  conv_clamp=None, epilogue_kwargs=dict(mbstd_group_size=4))
G_ema = copy.deepcopy(G).eval()
loss = StyleGAN2Loss(torch.device("cpu"), G.mapping, G.synthesis, D, r1_gamma=a.gamma, style_mixing_prob=a.mix, pl_weight=a.pl)
phases = []
for name, mod, interval in (("G", G, a.g_reg_interval), ("D", D, 16)):
    r = interval / (interval + 1) if interval else 1.0
    opt = torch.optim.Adam(mod.parameters(), lr=a.lr * r, betas=(0.0, 0.99 ** r), eps=1e-8)
    phases += [(name + "main", mod, opt, 1, 1)] + ([(name + "reg", mod, opt, interval, interval)] if interval else [])
nimg, step, B = 0, 0, a.batch
c0 = torch.zeros(B, 0)
t0 = time.time()
while nimg < a.kimg * 1000:
    idx = torch.randint(0, len(data), (B,))
    real = data[idx]
    for name, mod, opt, interval, gain in phases:
        if step % interval:
            continue
        mod.requires_grad_(True)
        (D if mod is G else G).requires_grad_(False)
        opt.zero_grad(set_to_none=True)
        loss.accumulate_gradients(name, real, c0, torch.randn(B, 64), c0, sync=True, gain=gain)
        for p in mod.parameters():
            if p.grad is not None:
                torch.nan_to_num(p.grad, nan=0, posinf=1e5, neginf=-1e5, out=p.grad)
        opt.step()
    ema_nimg = min(a.ema * 1000, nimg * 0.05)
    beta = 0.5 ** (B / max(ema_nimg, 1e-8))
    with torch.no_grad():
        for pe, p in zip(G_ema.parameters(), G.parameters()):
            pe.copy_(p.lerp(pe, beta))
        for be, b in zip(G_ema.buffers(), G.buffers()):
            be.copy_(b)
    nimg += B
    step += 1
train_s = time.time() - t0
g = torch.Generator().manual_seed(123)
with torch.no_grad():
    imgs = torch.cat([G_ema(torch.randn(500, 64, generator=g), torch.zeros(500, 0), noise_mode="random") for _ in range(10)])
m = shapes_modes(imgs.clamp(-1, 1))
m.pop("per_pair")
print(json.dumps({**vars(a), "train_s": round(train_s), "img_s": round(nimg / train_s, 1), **m}))
x = ((imgs[:64].clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
grid = x.reshape(8, 8, 32, 32, 3).transpose(0, 2, 1, 3, 4).reshape(256, 256, 3)
Image.fromarray(grid).resize((512, 512), Image.NEAREST).save(a.out + ".png")
