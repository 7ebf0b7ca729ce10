"""A web page for a trained StyleGAN run (Gradio): seed, truncation psi, class, noise mode, a
style-mixing panel and an interpolation slider. Bound to 127.0.0.1 unless told otherwise; every
input is validated (seed range, psi range, class range) and a bad value shows a message, not a
traceback.
"""
from __future__ import annotations

import os

import torch

from ..errors import ConfigError
from ..tools.generate import class_labels, is_style_generator, seed_latents, synthesize
from ..tools.mixing import style_ranges

MAX_SEED = 2**32 - 1


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

    def _check(self, seed, psi, class_idx) -> tuple[int, float, int | None]:
        try:
            seed = int(seed)
        except (TypeError, ValueError):
            raise ConfigError("seed: give a whole number") from None
        if not 0 <= seed <= MAX_SEED:
            raise ConfigError(f"seed {seed}: use 0 to {MAX_SEED}")
        psi = float(psi)
        if not -1.0 <= psi <= 2.0:
            raise ConfigError(f"truncation psi {psi}: use -1 to 2")
        if getattr(self.G, "c_dim", 0):
            class_idx = int(class_idx or 0)
            if not 0 <= class_idx < self.G.c_dim:
                raise ConfigError(f"class {class_idx}: use 0 to {self.G.c_dim - 1}")
        else:
            class_idx = None
        return seed, psi, class_idx

    @torch.no_grad()
    def ws(self, seeds, psi, class_idx):
        dev = next(self.G.parameters()).device
        z = seed_latents(self.G, seeds).to(dev)
        return self.G.mapping(z, class_labels(self.G, class_idx, len(seeds), dev), truncation_psi=psi,
                              update_w_avg=False)

    @torch.no_grad()
    def image(self, seed, psi=1.0, class_idx=None, noise="const"):
        seed, psi, class_idx = self._check(seed, psi, class_idx)
        return _pil(synthesize(self.G, self.ws([seed], psi, class_idx), noise, [seed])[0])

    @torch.no_grad()
    def mix(self, seed, seed2, styles, psi=1.0, class_idx=None, noise="const"):
        seed, psi, class_idx = self._check(seed, psi, class_idx)
        seed2 = self._check(seed2, psi, class_idx)[0]
        if styles not in self.styles:
            raise ConfigError(f"styles {styles}: choose {', '.join(self.styles)}")
        w = self.ws([seed, seed2], psi, class_idx)
        mixed = w[:1].clone()
        idx = style_ranges(self.G)[styles]
        mixed[:, idx] = w[1:, idx]
        return _pil(synthesize(self.G, mixed, noise, [seed])[0])

    @torch.no_grad()
    def interpolate(self, seed, seed2, t, psi=1.0, class_idx=None, noise="const"):
        seed, psi, class_idx = self._check(seed, psi, class_idx)
        seed2 = self._check(seed2, psi, class_idx)[0]
        t = float(t)
        if not 0.0 <= t <= 1.0:
            raise ConfigError(f"interpolation {t}: use 0 to 1")
        w = self.ws([seed, seed2], psi, class_idx)
        return _pil(synthesize(self.G, torch.lerp(w[:1], w[1:], t), noise, [seed])[0])


def _gradio():
    try:
        import gradio as gr
    except ImportError:
        raise ConfigError("gankit demo needs Gradio: pip install 'gankit[demo]'") from None
    return gr


def build(G, title: str = "gankit"):
    """The Gradio Blocks app for generator G."""
    gr = _gradio()

    model = DemoModel(G)

    def guard(fn):
        def wrapped(*args):
            try:
                return fn(*args)
            except ConfigError as e:
                raise gr.Error(str(e)) from None
        return wrapped

    conditional = bool(getattr(G, "c_dim", 0))
    with gr.Blocks(title=title, analytics_enabled=False) as app:
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
        for comp in base:
            comp.change(guard(model.image), base, image)
        for comp in base + [seed2, styles]:
            comp.change(guard(lambda s, p, c, n, s2, st: model.mix(s, s2, st, p, c, n)),
                        base + [seed2, styles], mixed)
        for comp in base + [seed2, t]:
            comp.change(guard(lambda s, p, c, n, s2, tt: model.interpolate(s, s2, tt, p, c, n)),
                        base + [seed2, t], interp)
        app.load(guard(model.image), base, image)
        app.load(guard(lambda s, p, c, n, s2, st: model.mix(s, s2, st, p, c, n)), base + [seed2, styles], mixed)
        app.load(guard(lambda s, p, c, n, s2, tt: model.interpolate(s, s2, tt, p, c, n)), base + [seed2, t], interp)
    return app


def serve(run: str, host: str = "127.0.0.1", port: int = 7860, block: bool = True):
    """Loads a run and serves its demo (nothing is shared publicly; analytics off)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from ..api import load

    _gradio()
    app = build(load(run), title=f"gankit: {run}")
    app.launch(server_name=host, server_port=port, share=False, prevent_thread_lock=not block, quiet=True)
    return app
