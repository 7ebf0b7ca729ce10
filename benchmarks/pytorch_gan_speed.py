"""gankit against eriklindernoren/PyTorch-GAN's scripts: training images/s in one run, same data size,
batch, optimizer and (as far as each family's options reach) the same networks (issue 17, item 5).

    python benchmarks/pytorch_gan_speed.py --pytorch-gan PATH [--families gan dcgan wgan wgan-gp cogan]
        [--batches 60] [--warmup 10] [--threads 2] [--out benchmarks/results/pytorch_gan_speed.json]

PATH is a checkout of https://github.com/eriklindernoren/PyTorch-GAN (not part of gankit; nothing of
it is copied). Its scripts run unchanged (``implementations/<name>/<name>.py``, ``--n_epochs 1``)
through ``runpy`` with stand-ins written by this script for the imports that need the network or a
package that would replace our torch: ``torchvision`` (``datasets.MNIST`` serves seeded random 28 px
greyscale PIL images, 32 px to the WGAN script, which has no Resize, ``transforms`` Resize / ToTensor / Normalize / Compose do what torchvision's
do with PIL and torch, ``utils.save_image`` writes nothing) and ``mnistm.MNISTM`` (seeded random
28 px RGB PIL images). The reference's rate is timed from the first image of batch ``--warmup`` to
the end of the script; images counted are real images drawn by D's steps (every loader batch of the
WGAN scripts is one critic step), as gankit's ``cur_nimg`` counts them. gankit's side is
``Trainer.step`` on ``builtin:digits?res=32`` (CoGAN: the two RGB domains of
``builtin:shapes-colorswap?res=32``, as PyTorch-GAN's CoGAN trains two RGB domains), timed over the
same number of batches after the same warm-up. Parameter counts of both sides are in each row.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from common import write_results

# family -> (script, extra script args, gankit family, gankit overrides, what differs)
SIDES = {
    "gan": ("gan", ["--img_size", "32"], "gan",
            {"model": {"z_dim": 100, "g_hidden": (128, 256, 512, 1024), "g_act": "lrelu", "g_norm": "batch",
                       "d_hidden": (512, 256), "d_act": "lrelu", "d_dropout": 0.0},
             "train": {"optimizer": "adam", "batch_size": 64, "g_lr": 2e-4, "d_lr": 2e-4, "betas": (0.5, 0.999)}},
            "same MLPs (gankit normalizes G's first hidden layer too; PyTorch-GAN's BatchNorm1d eps is 0.8)"),
    "dcgan": ("dcgan", [], "dcgan",
              {"model": {"z_dim": 100, "ngf": 64, "ndf": 24},
               "train": {"optimizer": "adam", "batch_size": 64, "g_lr": 2e-4, "d_lr": 2e-4, "betas": (0.5, 0.999)}},
              "different networks: PyTorch-GAN's is a linear layer, nearest upsampling and 3x3 convs (G) and "
              "4 strided 3x3 convs with dropout (D); gankit's is the paper's transposed 4x4 convs, widths chosen "
              "for about the same parameter counts"),
    "wgan": ("wgan", ["--img_size", "32"], "wgan",
             {"model": {"z_dim": 100, "arch": "mlp", "g_hidden": (128, 256, 512, 1024), "g_norm": "batch",
                        "d_hidden": (512, 256)},
              "train": {"optimizer": "rmsprop", "batch_size": 64, "g_lr": 5e-5, "d_lr": 5e-5, "n_critic": 5}},
             "same MLPs (gankit uses ReLU where PyTorch-GAN uses LeakyReLU 0.2; its script has no Resize, so the "
             "stand-in MNIST serves it 32 px images)"),
    "wgan-gp": ("wgan_gp", ["--img_size", "32"], "wgan-gp",
                {"model": {"z_dim": 100, "arch": "mlp", "g_hidden": (128, 256, 512, 1024), "g_norm": "batch",
                           "d_hidden": (512, 256)},
                 "train": {"optimizer": "adam", "batch_size": 64, "g_lr": 2e-4, "d_lr": 2e-4, "betas": (0.5, 0.999),
                           "n_critic": 5}},
                "same MLPs (ReLU against LeakyReLU 0.2)"),
    "cogan": ("cogan", [], "cogan",
              {"data": "builtin:shapes-colorswap?res=32", "model": {"z_dim": 100, "ngf": 32, "d_arch": "dcgan", "ndf": 24},
               "train": {"optimizer": "adam", "batch_size": 32, "g_lr": 2e-4, "d_lr": 2e-4,
                                                  "betas": (0.5, 0.999)}},
              "different networks: gankit's are the CoGAN paper's layout (transposed convs, shared but the last "
              "layer) with the DCGAN D, widths chosen for about the same parameter counts"),
}

STUBS = {
    "torchvision/__init__.py": "from . import datasets, transforms, utils\n",
    "torchvision/utils.py": "def save_image(*args, **kwargs):\n    pass\n",
    "torchvision/transforms.py": '''
        import numpy as np
        import torch
        from PIL import Image


        class Compose:
            def __init__(self, ts):
                self.ts = ts

            def __call__(self, x):
                for t in self.ts:
                    x = t(x)
                return x


        class Resize:
            def __init__(self, size):
                self.size = size

            def __call__(self, img):
                w, h = img.size
                s = self.size
                size = (s, int(s * h / w)) if w <= h else (int(s * w / h), s)
                return img if size == (w, h) else img.resize(size, Image.BILINEAR)


        class ToTensor:
            def __call__(self, img):
                a = np.array(img, copy=True)
                if a.ndim == 2:
                    a = a[:, :, None]
                return torch.from_numpy(a).permute(2, 0, 1).contiguous().float().div(255)


        class Normalize:
            def __init__(self, mean, std):
                self.mean, self.std = mean, std

            def __call__(self, x):
                m = torch.as_tensor(self.mean, dtype=x.dtype).view(-1, 1, 1)
                s = torch.as_tensor(self.std, dtype=x.dtype).view(-1, 1, 1)
                return x.sub(m).div(s)
        ''',
    "torchvision/datasets.py": '''
        import os
        import time

        import numpy as np
        from PIL import Image

        CLOCK = {"count": 0, "t0": None}
        N, WARM = int(os.environ["STUB_N"]), int(os.environ["STUB_WARM"])
        RES = int(os.environ.get("STUB_RES", "28"))  # MNIST's 28 px unless the script cannot resize


        class _Random:
            mode, shape = "L", (RES, RES)

            def __init__(self, root=None, train=True, download=False, transform=None, **kwargs):
                rng = np.random.default_rng(0)
                self.data = rng.integers(0, 256, (N, *self.shape), dtype=np.uint8)
                self.targets = rng.integers(0, 10, N)
                self.transform = transform

            def __len__(self):
                return N

            def __getitem__(self, i):
                img = Image.fromarray(self.data[i], mode=self.mode)
                if self.transform is not None:
                    img = self.transform(img)
                return img, int(self.targets[i])


        class MNIST(_Random):
            def __getitem__(self, i):
                if CLOCK["count"] == WARM:
                    CLOCK["t0"] = time.perf_counter()
                CLOCK["count"] += 1
                return super().__getitem__(i)
        ''',
    "mnistm.py": '''
        from torchvision.datasets import _Random


        class MNISTM(_Random):
            mode, shape = "RGB", (28, 28, 3)
        ''',
    "_run.py": '''
        import json
        import runpy
        import sys
        import time

        import torch

        torch.set_num_threads(int(sys.argv[1]))
        import mnistm  # noqa: F401  (the stand-in, before the script's folder could shadow it)
        from torchvision.datasets import CLOCK, N, WARM

        out, script = sys.argv[2], sys.argv[3]
        sys.argv = [script, *sys.argv[4:]]
        runpy.run_path(script, run_name="__main__")
        dt = time.perf_counter() - CLOCK["t0"]
        json.dump({"images": N - WARM, "seconds": dt}, open(out, "w"))
        ''',
}


def write_stubs(root: Path) -> None:
    for rel, text in STUBS.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text).lstrip())


NATIVE_32 = {"wgan"}  # scripts without a Resize: the stand-in serves 32 px images


@contextlib.contextmanager
def sandbox(name: str, n: int, warm: int, threads: int | None = None):
    """A temporary folder with the stand-ins written, the folder to run a script in (the scripts
    write ../../data and images/ next to where they run) and the environment that finds them."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_stubs(tmp / "stubs")
        work = tmp / "a" / "b"
        work.mkdir(parents=True)
        env = {**os.environ, "PYTHONPATH": str(tmp / "stubs"), "STUB_N": str(n), "STUB_WARM": str(warm),
               "STUB_RES": "32" if name in NATIVE_32 else "28"}
        if threads:
            env["OMP_NUM_THREADS"] = str(threads)
        yield tmp, work, env


def reference(checkout: Path, name: str, args: list, batch: int, batches: int, warmup: int, threads: int) -> dict:
    script = checkout / "implementations" / name / f"{name}.py"
    if not script.is_file():
        sys.exit(f"--pytorch-gan {checkout}: no {script.relative_to(checkout)}; pass a PyTorch-GAN checkout")
    with sandbox(name, batch * (warmup + batches), batch * warmup, threads) as (tmp, work, env):
        out = tmp / "rate.json"
        cmd = [sys.executable, str(tmp / "stubs" / "_run.py"), str(threads), str(out), str(script), "--n_epochs", "1",
               "--sample_interval", str(10**9), *args]
        r = subprocess.run(cmd, cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if r.returncode:
            sys.exit(f"{script} failed:\n{r.stderr[-3000:]}")
        rate = json.loads(out.read_text())
    return {"images": rate["images"], "seconds": round(rate["seconds"], 3),
            "img_s": round(rate["images"] / rate["seconds"], 2)}


def reference_params(checkout: Path, name: str, args: list) -> dict:
    """Parameter counts of the reference script's networks, built without training (0 batches)."""
    code = textwrap.dedent(f'''
        import runpy, sys, json
        import torch
        import mnistm
        sys.argv = [{str(checkout / "implementations" / name / (name + ".py"))!r}, "--n_epochs", "0", *{args!r}]
        g = runpy.run_path(sys.argv[0], run_name="__main__")
        nets = {{k: sum(p.numel() for p in v.parameters()) for k, v in g.items()
                 if isinstance(v, torch.nn.Module) and k[0].islower() and sum(1 for _ in v.parameters())}}
        print(json.dumps(nets))
        ''')
    with sandbox(name, 64, 0) as (_, work, env):
        r = subprocess.run([sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"{name}: counting parameters failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def gankit_side(family: str, overrides: dict, batches: int, warmup: int, threads: int, fused_adam: bool = False) -> dict:
    from gankit.training.trainer import Trainer

    data = overrides.get("data", "builtin:digits?res=32")
    with tempfile.TemporaryDirectory() as tmp:
        ov = {"model": dict(overrides.get("model", {})),
              "train": {**overrides.get("train", {}), "tensorboard": False, "metrics": False, "threads": threads,
                        "fused_adam": fused_adam}}
        t = Trainer(family, data, tmp, overrides=ov, progress=False)
        t.setup()
        total = 10**12
        while t.cur_nimg < warmup * t.batch_size:
            t.step(total)
        n0, t0 = t.cur_nimg, time.perf_counter()
        while t.cur_nimg - n0 < batches * t.batch_size:
            t.step(total)
        dt = time.perf_counter() - t0
        params = {n: sum(p.numel() for p in m.parameters()) for n, m in t.nets.items() if not n.endswith("_ema")}
    return {"images": t.cur_nimg - n0, "seconds": round(dt, 3), "img_s": round((t.cur_nimg - n0) / dt, 2),
            "params": params}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pytorch-gan", required=True, type=Path, help="a PyTorch-GAN checkout")
    ap.add_argument("--families", nargs="+", default=list(SIDES), choices=list(SIDES))
    ap.add_argument("--batches", type=int, default=60, help="timed D batches per side")
    ap.add_argument("--warmup", type=int, default=10, help="D batches before the clock starts")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--fused-adam", action="store_true", help="gankit with --train.fused-adam true")
    ap.add_argument("--out", default="benchmarks/results/pytorch_gan_speed.json")
    args = ap.parse_args()
    rows = []
    print(f"{'family':8s} {'batch':>5s} {'PyTorch-GAN':>12s} {'gankit':>8s} {'ratio':>6s}")
    for fam in args.families:
        script, sargs, gfam, ov, differs = SIDES[fam]
        batch = ov["train"]["batch_size"]
        ref = reference(args.pytorch_gan, script, sargs, batch, args.batches, args.warmup, args.threads)
        ours = gankit_side(gfam, ov, args.batches, args.warmup, args.threads, args.fused_adam)
        row = {"family": fam, "batch": batch, "resolution": 32, "pytorch_gan_img_s": ref["img_s"],
               "gankit_img_s": ours["img_s"], "ratio": round(ours["img_s"] / ref["img_s"], 3),
               "pytorch_gan_params": reference_params(args.pytorch_gan, script, sargs),
               "gankit_params": ours["params"], "gankit_overrides": ov, "fused_adam": args.fused_adam,
               "differs": differs,
               "threads": args.threads}
        rows.append(row)
        print(f"{fam:8s} {batch:5d} {ref['img_s']:12.1f} {ours['img_s']:8.1f} {row['ratio']:6.2f}", flush=True)
    write_results(args.out, rows, args.threads)


if __name__ == "__main__":
    main()
