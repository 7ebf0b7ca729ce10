"""CPU bf16 training (``--train.precision bf16``): one step matches fp32 within a stated tolerance.

Under bf16 autocast the convolutions and linear layers run in bf16; the losses, R1 and
path-length gradients, demodulation's sums of squares, the EMA and the optimizer states stay
fp32. With plain SGD one step's update is the gradient itself, so comparing the updates of a
bf16 and an fp32 step from the same weights and batch compares their gradients.
"""
from __future__ import annotations

import pytest
import torch

from gankit.training.trainer import Trainer

TINY = {
    "stylegan2": ("builtin:digits?res=8", {"z_dim": 8, "w_dim": 8, "mapping_layers": 1, "channel_base": 64,
                                           "channel_max": 16, "pl_weight": 2.0, "g_reg_interval": 1,
                                           "d_reg_interval": 1}),
    "dcgan": ("builtin:digits?res=8", {"ngf": 8, "ndf": 8, "z_dim": 8}),
    "wgan-gp": ("builtin:ring8?n=256", {"mlp_hidden": (32, 32), "z_dim": 2}),
}


def one_step(path, family, precision):
    data, model = TINY[family]
    tr = Trainer(family, data, path, progress=False, overrides={
        "model": model, "train": {"precision": precision, "optimizer": "sgd", "momentum": 0.0, "g_lr": 0.01,
                                  "d_lr": 0.01, "batch_size": 16, "kimg": 0.016, "n_critic": 1, "tensorboard": False,
                                  "metrics": False, "snapshot_kimg": 100, "sample_kimg": 100}})
    tr.setup()
    before = {n: torch.cat([p.detach().flatten().clone() for p in tr.nets[n].parameters()]) for n in ("G", "D")}
    tr.run()
    return {n: torch.cat([p.detach().flatten() for p in tr.nets[n].parameters()]) - before[n] for n in before}


@pytest.mark.parametrize("family", list(TINY))
def test_one_bf16_step_follows_the_fp32_gradient(family, tmp_path):
    ref, low = one_step(tmp_path / "fp32", family, "fp32"), one_step(tmp_path / "bf16", family, "bf16")
    for name in ref:
        a, b = ref[name], low[name]
        assert a.norm() > 0
        cos = float(torch.nn.functional.cosine_similarity(a, b, dim=0))
        rel = float((b.norm() - a.norm()).abs() / a.norm())
        # bf16 keeps 8 bits of mantissa: the update direction agrees to 1%, its size to 5%
        assert cos > 0.99 and rel < 0.05, (name, cos, rel)
        assert not torch.equal(a, b)  # the step really ran in bf16


@pytest.mark.parametrize("native,expect", [(True, "bf16"), (False, "fp32")])
def test_auto_precision_follows_the_cpu(native, expect, tmp_path, monkeypatch, capsys):
    """``--train.precision auto``: bf16 exactly where the CPU has native bf16, said on stderr; the
    phases then run under that autocast."""
    from gankit.nn import precision as prec

    monkeypatch.setattr(prec, "native_bf16_cpu", lambda: native)
    data, model = TINY["dcgan"]
    tr = Trainer("dcgan", data, tmp_path / "run", progress=False,
                 overrides={"model": model, "train": {"precision": "auto", "tensorboard": False, "metrics": False}})
    tr.setup()
    assert tr.precision == expect
    err = capsys.readouterr().err
    assert f"precision {expect} (auto:" in err, err
    x = torch.randn(4, 8)
    with tr._loss_context(tr.phases[0]):
        y = torch.mm(x, x.t())  # a matmul comes out bf16 under CPU bf16 autocast, fp32 outside it
    assert (y.dtype == torch.bfloat16) == (expect == "bf16")


@pytest.mark.parametrize("up,down", [(1, 2), (2, 1)])
def test_strided_fir_under_bf16_runs_in_fp32(up, down):
    """The strided FIR passes (oneDNN's bf16 depthwise backward is slow on CPU) take bf16 in and give
    bf16 out, but compute in fp32: the output is bitwise the fp32 filter of the same bf16 input,
    and the gradient is bf16 and within bf16 rounding of the fp32 gradient."""
    from gankit.nn import setup_filter, upfirdn2d

    f = setup_filter([1, 3, 3, 1])
    x = torch.randn(2, 5, 12, 12).bfloat16().requires_grad_(True)
    pad = 1 if down > 1 else (2, 1, 2, 1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = upfirdn2d(x, f, up=up, down=down, padding=pad, gain=up * up)
    ref = upfirdn2d(x.detach().float(), f, up=up, down=down, padding=pad, gain=up * up)
    assert y.dtype == torch.bfloat16
    assert torch.equal(y, ref.bfloat16())
    (g,) = torch.autograd.grad(y.float().square().sum(), x)
    assert g.dtype == torch.bfloat16 and g.abs().sum() > 0
    xr = x.detach().float().requires_grad_(True)
    (gr,) = torch.autograd.grad(upfirdn2d(xr, f, up=up, down=down, padding=pad, gain=up * up).square().sum(), xr)
    assert torch.allclose(g.float(), gr, rtol=0.02, atol=0.02)


@pytest.mark.parametrize("family,preset,res,channels", [("stylegan2", "quickstart", 32, 3), ("dcgan", "cpu-digits", 8, 1)])
def test_generate_in_bf16_is_close_to_fp32(family, preset, res, channels):
    """``generate(..., precision="bf16")`` (``gankit generate --precision bf16``) runs G under bf16
    autocast: fp32 images that differ from the fp32 path's by bf16 rounding only (measured: mean
    0.005, max 0.06 on [-1, 1] for an untrained quickstart G), and fp16 is refused on a CPU."""
    import gankit
    from gankit.errors import ConfigError
    from gankit.tools.generate import generate

    torch.manual_seed(0)
    G = gankit.create(family, preset=preset, resolution=res, channels=channels).G
    a, b = generate(G, range(8), batch=8), generate(G, range(8), batch=8, precision="bf16")
    assert b.dtype == torch.float32 and b.shape == a.shape == (8, channels, res, res)
    assert not torch.equal(a, b)  # the bf16 path really ran
    assert (a - b).abs().mean() < 0.02 and (a - b).abs().max() < 0.2
    with pytest.raises(ConfigError, match="--precision fp16 needs a CUDA device"):
        generate(G, range(2), precision="fp16")
