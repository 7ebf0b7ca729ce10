"""Export of a generator that runs outside gankit: TorchScript (``torch.jit.load``) or ONNX
(onnxruntime and other runtimes), checked against PyTorch on fresh latents after writing.

The exported module maps z (N, z_dim) [and one-hot c (N, c_dim)] to images (N, C, H, W) in
[-1, 1], with the truncation psi and the noise mode fixed at export time (constant noise by
default, so the exported generator is deterministic). The batch size is dynamic.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..errors import ConfigError, GankitError
from .generate import is_style_generator


class ExportedGenerator(torch.nn.Module):
    """z [, c] -> images in [-1, 1], with psi and noise fixed."""

    def __init__(self, G, truncation_psi: float = 1.0, noise_mode: str = "const"):
        super().__init__()
        self.G, self.psi, self.noise_mode = G, float(truncation_psi), noise_mode
        self.style = is_style_generator(G)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        if self.style:
            ws = self.G.mapping(z, c, truncation_psi=self.psi, update_w_avg=False)
            return self.G.synthesis(ws, noise_mode=self.noise_mode).clamp(-1, 1)
        return (self.G(z, c) if c is not None else self.G(z)).clamp(-1, 1)


def _inputs(G, n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, G.z_dim, generator=g)
    c_dim = getattr(G, "c_dim", 0)
    if c_dim:
        return z, torch.nn.functional.one_hot(torch.randint(0, c_dim, (n,), generator=g), c_dim).float()
    return (z,)


@torch.no_grad()
def export(G, path: str | Path, fmt: str = "torchscript", truncation_psi: float = 1.0,
           noise_mode: str = "const") -> dict:
    """Writes the exported generator and returns the parity check: max |difference| against
    PyTorch on 5 fresh latents (a batch size other than the one used to export)."""
    if fmt not in ("torchscript", "onnx"):
        raise ConfigError(f"--format {fmt}: use torchscript or onnx")
    if noise_mode == "random":
        raise ConfigError("--noise random cannot be exported deterministically; use const or none")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = ExportedGenerator(G.cpu().eval(), truncation_psi, noise_mode).eval()
    example = _inputs(G, 2)
    names = ["z", "c"][:len(example)]
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
    check = _inputs(G, 5, seed=1)
    diff = float((run(*check) - module(*check)).abs().max())
    return {"path": str(path), "format": fmt, "inputs": names, "max_abs_diff": diff,
            "truncation_psi": truncation_psi, "noise_mode": noise_mode}
