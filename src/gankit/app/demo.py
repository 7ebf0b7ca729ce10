"""A web page for a trained run (Gradio), bound to 127.0.0.1 unless told otherwise; the family says
which (``Family.demo_page``). A StyleGAN run gets seed, truncation psi, class, noise mode, a
style-mixing panel and an interpolation slider; a translation run (pix2pix, CycleGAN) gets an
image-upload panel, a direction for CycleGAN and the run's held-out examples; any other image run
(GAN, DCGAN, WGAN, CoGAN) gets a seed and a class and a grid of the family's samples.

Every request is checked before it reaches the generator: the functions take the raw values of
the request (Gradio's own conversion is off, since its failures answer with an empty error), so
a string, a NaN, a list or a fractional seed gets a message naming the field; a request body of
more than :data:`MAX_REQUEST_BYTES` is refused with 413 before it is read; and the pictures the
page shows live in a temporary folder of this server's own, each removed ``keep_images`` seconds
after it was made and the folder removed when the server stops.
"""
from __future__ import annotations

import atexit
import math
import os
import shutil
import signal
import tempfile

import torch

from ..errors import ConfigError
from ..tools.generate import class_labels, is_style_generator, seed_latents, synthesize
from ..tools.mixing import style_ranges

MAX_SEED = 2**32 - 1
#: the largest request the page accepts: its requests are a few hundred bytes of JSON
MAX_REQUEST_BYTES = 64 * 1024
#: the largest request of a translation page, whose uploads are images
MAX_UPLOAD_BYTES = 16 * 1024 * 1024
#: the largest uploaded image, in pixels
MAX_UPLOAD_PIXELS = 4096 * 4096
NOISE = ("const", "random", "none")


def _number(value, name: str, lo: float, hi: float, whole: bool = False) -> float:
    """A request value as a finite number in [lo, hi] (a whole one if ``whole``), or a message naming it."""
    kind = "a whole number" if whole else "a number"
    span = " to ".join(str(int(x)) if float(x).is_integer() else f"{x:g}" for x in (lo, hi))
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ConfigError(f"{name}: give {kind} from {span}")
    try:
        v = float(value)
    except ValueError:
        raise ConfigError(f"{name}: give {kind} from {span}") from None
    if not math.isfinite(v) or (whole and not v.is_integer()) or not lo <= v <= hi:
        raise ConfigError(f"{name} {str(value)[:40]}: use {kind} from {span}")
    return v


def _seed(value) -> int:
    """A request's seed as a whole number from 0 to MAX_SEED (a numeric string counts), or a message."""
    if isinstance(value, str) and not value.strip().lstrip("-").isdigit():
        raise ConfigError("seed: give a whole number")
    return int(_number(value, "seed", 0, MAX_SEED, whole=True))


def _pil(img: torch.Tensor, min_size: int = 256):
    from ..visual import image_grid

    return image_grid(img[None] if img.dim() == 3 else img, pad=0, min_cell=min_size)


class DemoModel:
    """The functions behind the page, usable without a browser."""

    def __init__(self, G):
        if not is_style_generator(G):
            raise ConfigError(f"the demo needs a StyleGAN or StyleGAN2 run; this generator is {type(G).__name__}")
        self.G = G.eval()
        self.styles = [k for k, v in style_ranges(G).items() if v]

    def _check(self, seed, psi, class_idx, noise="const") -> tuple[int, float, int | None]:
        seed = _seed(seed)
        psi = _number(psi, "truncation psi", -1.0, 2.0)
        if getattr(self.G, "c_dim", 0):
            class_idx = int(_number(class_idx if class_idx is not None else 0, "class", 0, self.G.c_dim - 1, whole=True))
        else:
            class_idx = None
        if noise not in NOISE:
            raise ConfigError(f"noise {str(noise)[:40]!r}: choose {', '.join(NOISE)}")
        return seed, psi, class_idx

    @torch.no_grad()
    def ws(self, seeds, psi, class_idx):
        dev = next(self.G.parameters()).device
        z = seed_latents(self.G, seeds).to(dev)
        return self.G.mapping(z, class_labels(self.G, class_idx, len(seeds), dev), truncation_psi=psi,
                              update_w_avg=False)

    @torch.no_grad()
    def image(self, seed, psi=1.0, class_idx=None, noise="const"):
        seed, psi, class_idx = self._check(seed, psi, class_idx, noise)
        return _pil(synthesize(self.G, self.ws([seed], psi, class_idx), noise, [seed])[0])

    @torch.no_grad()
    def mix(self, seed, seed2, styles, psi=1.0, class_idx=None, noise="const"):
        seed, psi, class_idx = self._check(seed, psi, class_idx, noise)
        seed2 = self._check(seed2, psi, class_idx)[0]
        if not isinstance(styles, str) or styles not in self.styles:
            raise ConfigError(f"styles {str(styles)[:40]}: choose {', '.join(self.styles)}")
        w = self.ws([seed, seed2], psi, class_idx)
        mixed = w[:1].clone()
        idx = style_ranges(self.G)[styles]
        mixed[:, idx] = w[1:, idx]
        return _pil(synthesize(self.G, mixed, noise, [seed])[0])

    @torch.no_grad()
    def interpolate(self, seed, seed2, t, psi=1.0, class_idx=None, noise="const"):
        seed, psi, class_idx = self._check(seed, psi, class_idx, noise)
        seed2 = self._check(seed2, psi, class_idx)[0]
        t = _number(t, "interpolation", 0.0, 1.0)
        w = self.ws([seed, seed2], psi, class_idx)
        return _pil(synthesize(self.G, torch.lerp(w[:1], w[1:], t), noise, [seed])[0])


class SampleModel:
    """The functions behind the samples page: a grid of ``family.sample`` for a seed (and a class)."""

    def __init__(self, bundle, family, n: int = 16):
        self.bundle, self.family, self.n = bundle, family, n
        self.net = bundle.inference
        self.c_dim = int(getattr(self.net, "c_dim", 0) or 0)
        probe = family.sample(self.net, 1, 0)
        if probe.dim() != 4:
            raise ConfigError(f"the demo shows images; a {bundle.family} run on this data makes {probe.shape[1]}-D "
                              "points (draw them with gankit generate RUN --out plot.png)")

    @torch.no_grad()
    def grid(self, seed, class_idx=None):
        from ..visual import image_grid

        seed = _seed(seed)
        cls = None
        if self.c_dim:
            cls = int(_number(class_idx if class_idx is not None else 0, "class", 0, self.c_dim - 1, whole=True))
        x = self.family.sample(self.net, self.n, seed, condition=cls).clamp(-1, 1).cpu()
        return image_grid(x, min_cell=96)


def build_samples(model: SampleModel, title: str = "gankit", keep_images: float = 300.0):
    """The Gradio Blocks page of a z -> image run: seed (and class) -> a grid of samples."""
    gr = _gradio()
    keep = max(1, int(keep_images))
    with gr.Blocks(title=title, analytics_enabled=False, delete_cache=(max(1, min(keep, 60)), keep)) as app:
        gr.Markdown(f"## {title}\n{model.bundle.family}: {model.n} samples for a seed"
                    + (" and a class." if model.c_dim else "."))
        with gr.Row():
            with gr.Column(scale=1):
                seed = gr.Number(value=0, precision=0, minimum=0, maximum=MAX_SEED, label="seed", elem_id="seed")
                cls = gr.Number(value=0, precision=0, minimum=0, maximum=max(0, model.c_dim - 1), label="class",
                                visible=bool(model.c_dim), elem_id="class")
            with gr.Column(scale=2):
                image = gr.Image(type="pil", label="samples", elem_id="image", format="png")
        fn = _guarded(gr, model.grid)
        for comp in (seed, cls):
            comp.change(fn, [seed, cls], image, preprocess=False)
        app.load(fn, [seed, cls], image, preprocess=False)
    return app


class TranslationModel:
    """The functions behind a translation page (pix2pix, CycleGAN), usable without a browser."""

    def __init__(self, bundle, family, data=None):
        self.bundle, self.family = bundle, family
        self.res = bundle.config.resolution
        self.directions = list(family.directions)
        self.held = None
        if data is not None:
            try:
                from ..data import open_dataset

                self.held = (open_dataset(data) if isinstance(data, str) else data).held_out()
            except Exception:  # noqa: BLE001 - examples are optional: the data may be absent here
                self.held = None

    def _net(self, direction):
        if direction not in self.directions:
            raise ConfigError(f"direction: use {' or '.join(self.directions)}")
        return self.family.direction_network(self.bundle, direction)

    def translate(self, image, direction="AtoB"):
        """An uploaded picture (H x W [x C] uint8 array or PIL image) -> its translation as a PIL image."""
        import numpy as np
        from PIL import Image

        net, channels = self._net(direction)
        if image is None:
            raise ConfigError("input: upload an image first")
        arr = np.asarray(image)
        if arr.dtype != np.uint8 or arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)):
            raise ConfigError("input: give an ordinary picture (grey, RGB or RGBA, 8 bits)")
        if arr.shape[0] * arr.shape[1] > MAX_UPLOAD_PIXELS or min(arr.shape[:2]) < 1:
            raise ConfigError(f"input: {arr.shape[1]}x{arr.shape[0]} pixels; give at most {MAX_UPLOAD_PIXELS:,}")
        pic = Image.fromarray(arr.squeeze(-1) if arr.ndim == 3 and arr.shape[2] == 1 else arr)
        pic = pic.convert("L" if channels == 1 else "RGB").resize((self.res, self.res), Image.BICUBIC)
        x = torch.from_numpy(np.asarray(pic, dtype=np.uint8).copy())
        x = (x[None] if x.dim() == 2 else x.permute(2, 0, 1)).float().div(127.5).sub(1.0)
        return _pil(self.family.translate(net, x[None])[0])

    def example(self, index, direction="AtoB"):
        """(input, translation) of held-out example ``index`` of the run's data."""
        if self.held is None:
            raise ConfigError("example: the run's data cannot be opened here; upload an image instead")
        n = len(self.held.A)
        i = int(_number(index if index is not None else 0, "example", 0, n - 1, whole=True))
        net, _ = self._net(direction)
        src = (self.held.A if direction == "AtoB" else self.held.B)[i:i + 1].float().div(127.5).sub(1.0)
        return _pil(src[0]), _pil(self.family.translate(net, src)[0])


def build_translation(model: "TranslationModel", title: str = "gankit", keep_images: float = 300.0):
    """The Gradio Blocks page of a translation run: upload | translation, a direction, held-out examples."""
    gr = _gradio()

    def guard(fn):
        return _guarded(gr, fn)

    keep = max(1, int(keep_images))
    with gr.Blocks(title=title, analytics_enabled=False, delete_cache=(max(1, min(keep, 60)), keep)) as app:
        gr.Markdown(f"## {title}\n{model.bundle.family}: upload an image (it is resized to {model.res} x "
                    f"{model.res}) or pick a held-out example.")
        with gr.Row():
            with gr.Column():
                source = gr.Image(type="numpy", label="input", sources=["upload"], elem_id="input",
                                  image_mode=None, format="png")
                direction = gr.Radio(model.directions, value="AtoB", label="direction", elem_id="direction",
                                     visible=len(model.directions) > 1)
                example = gr.Number(value=0, precision=0, minimum=0, label="held-out example", elem_id="example",
                                    visible=model.held is not None)
                pick = gr.Button("show this example", elem_id="pick", visible=model.held is not None)
            with gr.Column():
                output = gr.Image(type="pil", label="translation", elem_id="output", format="png")
        source.upload(guard(model.translate), [source, direction], output)
        direction.change(guard(lambda img, d: model.translate(img, d) if img is not None else None),
                         [source, direction], output)
        pick.click(guard(model.example), [example, direction], [source, output])
    return app


def _guarded(gr, fn):
    """``fn`` with a ConfigError shown on the page as Gradio's error message (no traceback)."""
    def wrapped(*args):
        try:
            return fn(*args)
        except ConfigError as e:
            raise gr.Error(str(e)) from None
    return wrapped


def _gradio():
    try:
        import gradio as gr
    except ImportError:
        raise ConfigError("gankit demo needs Gradio: pip install 'gankit[demo]'") from None
    return gr


class BodyLimit:
    """ASGI middleware: answers 413 to a request whose body is larger than ``max_bytes`` (by its
    Content-Length, or as it arrives), before the application reads it."""

    def __init__(self, app, max_bytes: int = MAX_REQUEST_BYTES):
        self.app, self.max_bytes = app, max_bytes

    async def _refuse(self, send):
        body = f"request larger than {self.max_bytes} bytes".encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            return await self._refuse(send)
        seen, started = 0, False

        async def counted():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise _TooLarge
            return message

        async def tracked(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except _TooLarge:
            if not started:
                await self._refuse(send)


class _TooLarge(Exception):
    pass


def build(G, title: str = "gankit", keep_images: float = 300.0):
    """The Gradio Blocks app for generator G; pictures are removed ``keep_images`` seconds after they were made."""
    gr = _gradio()

    model = DemoModel(G)

    def guard(fn):
        return _guarded(gr, fn)

    conditional = bool(getattr(G, "c_dim", 0))
    keep = max(1, int(keep_images))
    with gr.Blocks(title=title, analytics_enabled=False, delete_cache=(max(1, min(keep, 60)), keep)) as app:
        gr.Markdown(f"## {title}\nStyleGAN demo: a seed picks z; truncation psi pulls w toward the average.")
        with gr.Row():
            with gr.Column(scale=1):
                seed = gr.Number(value=0, precision=0, minimum=0, maximum=MAX_SEED, label="seed", elem_id="seed")
                psi = gr.Slider(-1.0, 2.0, value=1.0, step=0.05, label="truncation psi", elem_id="psi")
                cls = gr.Number(value=0, precision=0, minimum=0, maximum=max(0, G.c_dim - 1), label="class",
                                visible=conditional, elem_id="class")
                noise = gr.Radio(["const", "random", "none"], value="const", label="noise", elem_id="noise")
            with gr.Column(scale=2):
                image = gr.Image(type="pil", label="image", elem_id="image", format="png")
        with gr.Row():
            with gr.Column():
                seed2 = gr.Number(value=1, precision=0, minimum=0, maximum=MAX_SEED, label="second seed",
                                  elem_id="seed2")
                styles = gr.Radio(model.styles, value=model.styles[0], label="styles from the second seed",
                                  elem_id="styles")
                mixed = gr.Image(type="pil", label="style mix", elem_id="mix", format="png")
            with gr.Column():
                t = gr.Slider(0.0, 1.0, value=0.5, step=0.01, label="interpolation (W) to the second seed",
                              elem_id="t")
                interp = gr.Image(type="pil", label="interpolation", elem_id="interp", format="png")
        base = [seed, psi, cls, noise]
        # preprocess=False: the functions see the request's raw values and answer any bad one with a message
        events = [(model.image, base, image),
                  (lambda s, p, c, n, s2, st: model.mix(s, s2, st, p, c, n), base + [seed2, styles], mixed),
                  (lambda s, p, c, n, s2, tt: model.interpolate(s, s2, tt, p, c, n), base + [seed2, t], interp)]
        for fn, inputs, output in events:
            for comp in inputs:
                comp.change(guard(fn), inputs, output, preprocess=False)
            app.load(guard(fn), inputs, output, preprocess=False)
    return app


def _exit_on_signal(signum, frame):
    raise SystemExit(128 + signum)  # so the server's temporary folder is removed on SIGTERM too


def serve(run: str, host: str = "127.0.0.1", port: int = 7860, block: bool = True, keep_images: float = 300.0):
    """Loads a run and serves its demo (nothing is shared publicly; analytics off). The pictures go to
    a temporary folder of this server's own, removed when it stops (Ctrl+C or SIGTERM)."""
    from starlette.middleware import Middleware

    from ..api import get_family, load_bundle

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    _gradio()
    bundle, G, config = load_bundle(run)
    family = get_family(bundle.family)
    translation = family.demo_page == "translation"
    tmp = tempfile.mkdtemp(prefix="gankit-demo-")
    os.environ["GRADIO_TEMP_DIR"] = tmp  # read when the Blocks are built
    atexit.register(shutil.rmtree, tmp, True)  # also when serving without blocking
    previous = signal.signal(signal.SIGTERM, _exit_on_signal) if block else None
    try:
        if translation:
            model = TranslationModel(bundle, family, (config.get("data") or {}).get("spec"))
            app = build_translation(model, title=f"gankit: {run}", keep_images=keep_images)
        elif family.demo_page == "style":
            app = build(G, title=f"gankit: {run}", keep_images=keep_images)
        else:
            app = build_samples(SampleModel(bundle, family), title=f"gankit: {run}", keep_images=keep_images)
        print(f"pictures: {tmp} (each kept {keep_images:g} s; removed when the server stops)", flush=True)
        limit = MAX_UPLOAD_BYTES if translation else MAX_REQUEST_BYTES
        app.launch(server_name=host, server_port=port, share=False, prevent_thread_lock=not block, quiet=True,
                   app_kwargs={"middleware": [Middleware(BodyLimit, max_bytes=limit)]})
    finally:
        if block:
            signal.signal(signal.SIGTERM, previous)
            shutil.rmtree(tmp, ignore_errors=True)
    return app
