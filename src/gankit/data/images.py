"""Image decoding with explicit size and mode policies.

Size policy (``size=`` in a data spec), applied when a target resolution ``res`` is given:
  * ``center-crop`` (default): crop the largest centred square, then resize to ``res`` x ``res``
    with Lanczos (as NVIDIA's dataset tool does for ``--transform=center-crop``);
  * ``resize``: stretch the whole image to ``res`` x ``res`` (aspect ratio not kept);
  * ``none``: no resampling; every image must already be ``res`` x ``res``.
Without ``res`` the first image's size is the resolution and every image must match it.

Mode policy (``mode=``):
  * ``rgb`` (default): 3 channels. Grayscale is replicated, palette images are expanded,
    CMYK is converted, and alpha (RGBA, LA, transparent palettes) is composited over black;
  * ``gray``: 1 channel (ITU-R 601-2 luma, PIL's ``convert("L")``), alpha composited over black;
  * ``rgba``: 4 channels, alpha kept (opaque images get alpha 255).
In every mode, 16-bit and wider samples are scaled to 8 bits (65535 -> 255), never clipped, and
photos are turned upright by their EXIF orientation tag (``dataset check`` lists them).
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFile

from ..errors import DataError

ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated file is an error, never silently padded

EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
SIZE_POLICIES = ("center-crop", "resize", "none")
MODES = {"rgb": 3, "gray": 1, "rgba": 4}
#: modes that need no conversion for each target mode; anything else is reported by `dataset check`
NATIVE_MODES = {"rgb": ("RGB", "L"), "gray": ("L",), "rgba": ("RGBA", "RGB", "L")}


def is_image_name(name: str) -> bool:
    return name.lower().endswith(EXTENSIONS) and not name.split("/")[-1].startswith(".")


def check_policy(size: str, mode: str, res: int | None) -> None:
    if size not in SIZE_POLICIES:
        raise DataError(f"unknown size policy '{size}'; use one of: {', '.join(SIZE_POLICIES)}")
    if mode not in MODES:
        raise DataError(f"unknown mode '{mode}'; use one of: {', '.join(MODES)}")
    if res is not None and (res < 4 or res & (res - 1)):
        raise DataError(f"resolution {res} is not a power of two >= 4; use for example res=64")


def _flatten_alpha(img: Image.Image) -> Image.Image:
    if img.mode == "P":
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        img = Image.alpha_composite(black, rgba).convert("RGB")
    return img


#: Pillow modes of more than 8 bits per sample (16-bit grayscale PNGs open as I;16)
WIDE_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


def to_8bit(img: Image.Image) -> Image.Image:
    """A 16-bit, 32-bit or float grayscale image as 8-bit ``L``, scaled (v * 255 / 65535 for 16 bits), never
    clipped. Pillow already reads 16-bit RGB, RGBA and gray+alpha PNGs as 8-bit (high byte)."""
    if img.mode not in WIDE_MODES:
        return img
    arr = np.asarray(img, dtype=np.float64)
    if img.mode.startswith("I;16") or (img.mode == "I" and img.format == "PNG"):
        hi = 65535.0  # the bit depth says it, whatever the pixels hold
    elif img.mode == "F" and arr.size and arr.max() <= 1.0:
        hi = 1.0  # float images in [0, 1]
    else:  # 32-bit integers or floats of unknown depth: the smallest range that holds the pixels
        top = float(arr.max()) if arr.size else 0.0
        hi = 255.0 if top <= 255 else 65535.0 if top <= 65535 else top
    return Image.fromarray(np.clip(np.rint(arr / hi * 255.0), 0, 255).astype(np.uint8), "L")


def convert_mode(img: Image.Image, mode: str) -> Image.Image:
    img = to_8bit(img)
    if mode == "rgba":
        return img.convert("RGBA")
    img = _flatten_alpha(img)
    if mode == "gray":
        return img.convert("L")
    return img.convert("RGB")


def upright(img: Image.Image) -> Image.Image:
    """The image turned as its EXIF orientation tag says (cameras store portrait photos sideways)."""
    from PIL import ImageOps

    return ImageOps.exif_transpose(img) if exif_orientation(img) not in (0, 1) else img


def exif_orientation(img: Image.Image) -> int:
    """The EXIF orientation tag (1 = upright; 0 when there is none or it cannot be read)."""
    try:
        return int(img.getexif().get(0x0112, 0) or 0)
    except Exception:  # a damaged EXIF block: treated as none
        return 0


def apply_size(img: Image.Image, res: int | None, size: str, name: str) -> Image.Image:
    if res is None:
        return img
    w, h = img.size
    if size == "none":
        if (w, h) != (res, res):
            raise DataError(f"{name}: size {w}x{h} is not {res}x{res}; use size=center-crop or size=resize")
        return img
    if size == "center-crop":
        s = min(w, h)
        left, top = (w - s) // 2, (h - s) // 2
        img = img.crop((left, top, left + s, top + s))
    if img.size != (res, res):
        img = img.resize((res, res), Image.LANCZOS)
    return img


def decode(data: bytes, name: str, res: int | None, size: str, mode: str) -> np.ndarray:
    """Decodes one file to a uint8 array H x W x C, applying the policies; errors name the file."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            img = convert_mode(upright(img), mode)
            img = apply_size(img, res, size, name)
            arr = np.array(img, dtype=np.uint8)
    except DataError:
        raise
    except Exception as e:  # PIL raises many types for bad files
        raise DataError(f"{name}: cannot decode image ({_reason(e)}); run `gankit dataset check` on the dataset "
                        "and remove or fix the file") from None
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return arr


def _reason(e: Exception) -> str:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if "truncated" in msg.lower():
        return f"truncated: {msg}"
    return msg
