"""Export of a run's inference network that runs outside gankit: TorchScript (``torch.jit.load``) or
ONNX (onnxruntime and other runtimes), checked against PyTorch on fresh inputs after writing.

The family says what the exported module takes: z (N, z_dim) [and one-hot c (N, c_dim)] for the
z -> image families, with the truncation psi and the noise mode fixed at export time (constant
noise by default, so the module is deterministic); an image A (N, C_A, H, W) in [-1, 1] for
pix2pix and CycleGAN (in eval mode: no dropout, running batch-norm statistics). Outputs are images
(N, C, H, W) in [-1, 1]; the batch size is dynamic.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..errors import ConfigError, GankitError
from .generate import is_style_generator


def _family_of(G):
    """The export recipe for a bare network: the StyleGAN one for a mapping + synthesis generator, else z [, c]."""
    from ..models.family import Family
    from ..models.recipes.style import StyleFamily

    return StyleFamily() if is_style_generator(G) else Family()


@torch.no_grad()
def export(G, path: str | Path, fmt: str = "torchscript", truncation_psi: float = 1.0,
           noise_mode: str = "const", family=None, config=None) -> dict:
    """Writes the exported network and returns the parity check: max |difference| against PyTorch on 5
    fresh inputs (a batch size other than the one used to export). ``family`` (with the run's model
    ``config``) says what the module takes and does (:meth:`Family.export_module`, ``export_inputs``);
    without one, ``G`` is taken as a z -> image generator (a StyleGAN one when it has a mapping)."""
    if fmt not in ("torchscript", "onnx"):
        raise ConfigError(f"--format {fmt}: use torchscript or onnx")
    if noise_mode == "random":
        raise ConfigError("--noise random cannot be exported deterministically; use const or none")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    family = family if family is not None else _family_of(G)
    module = family.export_module(G.cpu().eval(), truncation_psi, noise_mode).eval()

    def inputs(n: int, seed: int) -> dict:
        return family.export_inputs(G, n, torch.Generator().manual_seed(seed), config)

    named = inputs(2, 0)
    names, example = list(named), tuple(named.values())
    tmp = path.with_name(path.name + ".tmp")
    if fmt == "torchscript":
        import warnings

        with warnings.catch_warnings():  # shape checks become constants: right for a fixed network, and
            warnings.simplefilter("ignore", torch.jit.TracerWarning)  # the batch size is checked below
            torch.jit.trace(module, example, check_trace=False).save(str(tmp))
        tmp.replace(path)
        loaded = torch.jit.load(str(path))

        def run(*args):
            return loaded(*args)
    else:
        try:
            import onnxruntime as ort
        except ImportError:
            raise GankitError("ONNX export needs onnx, onnxscript and onnxruntime: pip install 'gankit[export]'") from None
        n = torch.export.Dim("n", min=1, max=4096)
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, example, str(tmp), dynamo=True, input_names=names, output_names=["image"],
                              dynamic_shapes=tuple({0: n} for _ in example))
        tmp.replace(path)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

        def run(*args):
            return torch.from_numpy(session.run(None, {k: a.numpy() for k, a in zip(names, args)})[0])
    check = tuple(inputs(5, 1).values())
    diff = float((run(*check) - module(*check)).abs().max())
    return {"path": str(path), "format": fmt, "inputs": names, "max_abs_diff": diff,
            "truncation_psi": truncation_psi, "noise_mode": noise_mode}
