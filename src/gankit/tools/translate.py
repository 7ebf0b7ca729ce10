"""``gankit translate``: a trained image-to-image run (pix2pix, CycleGAN) applied to image files.

Size policy: the networks take square images of the run's resolution, so each input is turned to
the source domain's channels (grey or RGB; alpha flattened on black, EXIF rotation applied),
resized to resolution x resolution (bicubic; non-square inputs are stretched, as junyanz's
``resize`` preprocessing does) and translated; the output is written at that resolution, or with
``keep_size`` resized back to the input's own width and height. File names are kept: ``a/b.jpg``
under the input folder becomes ``a/b.png`` under the output folder.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError, DataError


def list_inputs(path: str | Path) -> tuple[Path, list[Path]]:
    """(root, image files): one image, or every image under a folder (sorted)."""
    from ..data.images import is_image_name

    p = Path(path)
    if p.is_file():
        if not is_image_name(p.name):
            raise DataError(f"--input {p}: not an image file (png, jpg, jpeg, bmp, webp, ...)")
        return p.parent, [p]
    if not p.is_dir():
        raise DataError(f"--input {p}: no such file or folder")
    files = sorted(f for f in p.rglob("*") if f.is_file() and is_image_name(f.name))
    if not files:
        raise DataError(f"--input {p}: the folder holds no images")
    return p, files


def _read(path: Path, channels: int, res: int) -> tuple[torch.Tensor, tuple[int, int]]:
    from PIL import Image, UnidentifiedImageError

    from ..data.images import convert_mode, to_8bit, upright

    try:
        with Image.open(path) as im:
            im = upright(to_8bit(im))
            size = im.size
            im = convert_mode(im, "gray" if channels == 1 else "rgb").resize((res, res), Image.BICUBIC)
            arr = np.asarray(im, dtype=np.uint8)
    except (OSError, UnidentifiedImageError, ValueError) as e:
        raise DataError(f"{path}: cannot read this image ({str(e).splitlines()[0][:120]})") from None
    arr = arr[..., None] if arr.ndim == 2 else arr
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div(127.5).sub(1.0), size


def translate_files(run: str | Path, inputs: str | Path, out: str | Path, direction: str = "AtoB", batch: int = 16,
                    keep_size: bool = False, device=None, progress: bool = True) -> list[Path]:
    """Translates every image of ``inputs`` with the run's ``direction`` network into ``out``; returns the written files."""
    from tqdm import tqdm

    from ..api import get_family, load_bundle
    from ..visual import to_uint8

    bundle, _, config = load_bundle(run)
    fam = get_family(bundle.family)
    if not hasattr(fam, "direction_network"):
        raise ConfigError(f"{run} is a {bundle.family} run; gankit translate takes pix2pix and cyclegan runs "
                          "(use gankit generate for this one)")
    net, channels = fam.direction_network(bundle, direction)
    net = net.to(device or "cpu")
    res = bundle.config.resolution
    root, files = list_inputs(inputs)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with tqdm(total=len(files), desc=f"translate {direction}", unit="img", disable=not progress) as bar:
        for i in range(0, len(files), batch):
            chunk = files[i:i + batch]
            read = [_read(f, channels, res) for f in chunk]
            y = fam.translate(net, torch.stack([x for x, _ in read]))
            for f, (_, size), img in zip(chunk, read, to_uint8(y)):
                from PIL import Image

                pic = Image.fromarray(img.squeeze(-1) if img.shape[-1] == 1 else img)
                if keep_size and pic.size != size:
                    pic = pic.resize(size, Image.BICUBIC)
                dest = out / f.relative_to(root).with_suffix(".png")
                dest.parent.mkdir(parents=True, exist_ok=True)
                pic.save(dest)
                written.append(dest)
            bar.update(len(chunk))
    return written
