"""StyleGAN3: parameter counts against NVIDIA's, the filtered nonlinearity against a direct float64
definition, translation equivariance of the synthesis network, EMAs that move only in D's step,
the D-input blur, and a short training run."""
import math

import numpy as np
import pytest
import torch

import gankit
from gankit.models.family import Step
from gankit.models.stylegan3 import design_lowpass_filter, layer_specs
from gankit.nn import filtered_lrelu, gaussian_blur, upfirdn2d
from gankit.training.trainer import Trainer

from .test_stylegan import filter_reference


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def test_parameter_counts_equal_nvidia():
    # NVIDIA's stylegan3 Generator at 1024 px, counted with their code: T 22,313,167, R 15,093,151
    assert n_params(gankit.create("stylegan3").G) == 22_313_167
    assert n_params(gankit.create("stylegan3", preset="stylegan3-r").G) == 15_093_151


def test_layer_specs_follow_figure_4b():
    s = layer_specs(1024, 3, 32768, 512)
    assert s["cutoffs"][0] == 2 and np.allclose(s["cutoffs"][-3:], 512)  # f_c: 2 up to r/2, then flat
    assert np.allclose(np.diff(np.log(s["cutoffs"][:13])), np.log(256) / 12)  # geometric progression
    assert np.allclose(s["stopbands"][0], 2 ** 2.1) and np.allclose(s["stopbands"][-1], 512 * 2 ** 0.3)
    assert (s["sampling_rates"] >= np.minimum(2 * s["stopbands"], 1024) - 1e-9).all()  # no aliasing below f_t
    assert list(s["sizes"][:2]) == [36, 36] and list(s["sizes"][-2:]) == [1024, 1024]  # 10 px margins
    assert s["channels"][-1] == 3


@pytest.mark.parametrize("up,down,radial", [(2, 2, False), (4, 2, False), (2, 2, True), (2, 1, False)])
def test_filtered_lrelu_matches_direct_definition(up, down, radial):
    torch.manual_seed(0)
    fu = design_lowpass_filter(6 * up, 4.0, 2.0, 8.0 * up)
    fd = design_lowpass_filter(6 * down, 3.5, 3.0, 8.0 * up, radial=radial) if down > 1 else None
    x, b = torch.randn(2, 3, 10, 10), torch.randn(3)
    pad = (7, 6, 5, 8)
    out = filtered_lrelu(x, fu, fd, b, up, down, pad, gain=math.sqrt(2), slope=0.2, clamp=1.5)
    y = filter_reference(x + b.view(1, -1, 1, 1), np.outer(fu, fu), up, 1, pad, up * up)
    y = np.clip(np.where(y > 0, y, 0.2 * y) * math.sqrt(2), -1.5, 1.5)
    if fd is not None:
        fd2 = fd.numpy() if fd.ndim == 2 else np.outer(fd, fd)
        y = filter_reference(torch.from_numpy(y), fd2, 1, down, (0, 0, 0, 0), 1.0)
    assert out.shape == y.shape
    torch.testing.assert_close(out.double(), torch.from_numpy(y), atol=2e-5, rtol=1e-4)


def test_separable_and_2d_filters_agree_and_radial_filter_is_round():
    f = design_lowpass_filter(12, 4.0, 2.0, 16.0)
    x = torch.randn(1, 2, 9, 9)
    torch.testing.assert_close(upfirdn2d(x, f, up=2, padding=3, gain=4),
                               upfirdn2d(x, torch.outer(f, f), up=2, padding=3, gain=4), atol=1e-6, rtol=1e-5)
    r = design_lowpass_filter(12, 4.0, 2.0, 16.0, radial=True)
    assert torch.allclose(r, r.t()) and torch.allclose(r, r.flip(0)) and abs(float(r.sum()) - 1) < 1e-5


def synthesize_shifted(G, ws, shift):
    """Image with the input's Fourier features translated by ``shift`` output pixels (along x)."""
    s = G.synthesis
    t = torch.eye(3)
    t[0, 2] = -shift / s.img_resolution  # inverse transform in units of the image width
    s.input.transform.copy_(t)
    with torch.no_grad():
        return s(ws)


@pytest.mark.parametrize("preset", ["stylegan3-t", "stylegan3-r"])
def test_translating_the_input_translates_the_image(preset):
    """Config T/R are equivariant to translation: moving the input by 2 px moves the image by 2 px
    (compared away from the border, which the shift exposes)."""
    torch.manual_seed(0)
    G = gankit.create("stylegan3", preset=preset, resolution=32, z_dim=32, w_dim=32, channel_base=2048,
                      channel_max=32, num_layers=6, margin_size=4).G.eval()
    ws = G.mapping(torch.randn(4, 32), None)
    a, b = synthesize_shifted(G, ws, 0.0), synthesize_shifted(G, ws, 2.0)
    inner = (slice(None), slice(None), slice(6, -6))
    err_shifted = (a[..., 6:-8] - b[..., 8:-6])[inner].square().mean()
    err_unshifted = (a - b)[inner][..., 6:-6].square().mean()
    assert err_shifted < 0.01 * err_unshifted, (float(err_shifted), float(err_unshifted))  # measured 3e-4, 4e-7


def test_emas_move_only_when_g_makes_fakes_for_d():
    from gankit.api import get_family

    fam = get_family("stylegan3")
    bundle = gankit.create("stylegan3", resolution=16, z_dim=16, w_dim=16, channel_base=512, channel_max=16,
                           num_layers=4, margin_size=2, d_channel_base=256, d_channel_max=16)
    G, D = bundle.G.train(), bundle.D.train()
    phases = {p.name: p for p in fam.phases(bundle.config, {"G": G, "D": D}, None)}
    assert set(phases) == {"G", "D", "Dreg"}  # no path length regularization in StyleGAN3
    layer = getattr(G.synthesis, G.synthesis.layer_names[1])
    step = Step({"G": G, "D": D}, {"image": torch.randn(4, 3, 16, 16)}, 4, 1, torch.device("cpu"))
    before = (G.mapping.w_avg.clone(), layer.magnitude_ema.clone())
    phases["G"].loss(step)
    assert torch.equal(G.mapping.w_avg, before[0]) and torch.equal(layer.magnitude_ema, before[1])
    phases["D"].loss(step)
    assert not torch.equal(G.mapping.w_avg, before[0]) and not torch.equal(layer.magnitude_ema, before[1])


def test_gaussian_blur_keeps_constants_and_has_the_requested_width():
    x = torch.full((1, 1, 40, 40), 3.0)
    torch.testing.assert_close(gaussian_blur(x, 2.0)[..., 8:-8, 8:-8], x[..., 8:-8, 8:-8])
    d = torch.zeros(1, 1, 41, 41)
    d[..., 20, 20] = 1
    row = gaussian_blur(d, 4.0)[0, 0, 20]
    xs = torch.arange(41.0) - 20
    var = float((row * xs.square()).sum() / row.sum())
    assert abs(var - 16 / (2 * math.log(2))) < 0.3  # exp2(-(x/sigma)^2) has variance sigma^2 / (2 ln 2)
    assert torch.equal(gaussian_blur(d, 0.2), d)  # below 1/3 px: no filter


def test_learns_digits(tmp_path):
    """6 kimg on 16 px digits (about a minute): some confidently recognised digits of several classes."""
    tr = Trainer("stylegan3", "builtin:digits?res=16", tmp_path / "run", preset="cpu-digits",
                 overrides={"train": {"tensorboard": False, "snapshot_kimg": 100}}, progress=False)
    m = tr.run()["metric_values"]
    assert m["recognised_share"] > 0.08, m  # measured 0.17 (untrained: 0.0)
    assert m["classes_covered"] >= 6, m
