"""Optimized paths against their literal definitions: outputs and gradients (issue 7).

Each speed change keeps the maths: the activation gain folded into weights and biases, the bias
inside the convolution, noise + bias + gain riding on the demodulation multiply (addcmul), the
clamp as hardtanh, channels_last activations in inference, torch.compile, and the FIR filters as
one 2-D pass with the padding inside the convolution.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gankit.nn import EqualConv2d, bias_act
from gankit.nn.resample import conv2d_resample
from gankit.nn.style import modulated_conv2d


def reference_bias_act(x, b, act, gain, clamp):
    """Bias, activation, gain, clamp: one operation after another (NVIDIA's bias_act reference)."""
    x = x + b.view(1, -1, 1, 1) if b is not None else x
    x = {"lrelu": lambda t: F.leaky_relu(t, 0.2), "linear": lambda t: t}[act](x) * gain
    return x.clamp(-clamp, clamp) if clamp is not None else x


def close(a, b, tol=1e-5):
    a, b = a.detach(), b.detach()
    return float((a - b).abs().max()) <= tol * max(float(b.abs().max()), 1e-6)


def grads(out, inputs, seed=0):
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed))
    return torch.autograd.grad(out, inputs, g)


def test_bias_act_clamp_is_hardtanh():
    x = torch.randn(4, 8, 5, 5, dtype=torch.float64) * 3
    x.view(-1)[:5] = torch.tensor([2.0, -2.0, 1.5, 0.0, -1.9], dtype=torch.float64)  # at and near the clamp
    x.requires_grad_(True)
    b = torch.randn(8, dtype=torch.float64, requires_grad=True)
    ours = bias_act(x, b, act="lrelu", gain=math.sqrt(2), clamp=2.0)
    ref = reference_bias_act(x, b, "lrelu", math.sqrt(2), 2.0)
    assert torch.equal(ours, ref)
    away = (ref.abs() - 2.0).abs() > 1e-9  # the gradients differ only exactly at +-clamp
    ga, gr = grads(ours, [x, b]), grads(ref, [x, b])
    assert torch.equal(ga[0][away], gr[0][away])
    assert (ours.abs() >= 2.0).any() and (ga[0] == 0).any()  # the clamp is active and stops gradients


@pytest.mark.parametrize("k,up,down,act", [(3, 1, 1, "lrelu"), (3, 2, 1, "lrelu"), (3, 1, 2, "lrelu"),
                                          (1, 1, 2, "linear"), (1, 1, 1, "lrelu")])
def test_equal_conv_folds_gain_into_weights(k, up, down, act):
    """act(conv(x) + b) * g, clamped == act(conv(x) g + b g), clamped, for the StyleGAN2 layer kinds."""
    torch.manual_seed(0)
    layer = EqualConv2d(6, 5, k, activation=act, up=up, down=down, conv_clamp=1.0).double()
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.randn(3, 6, 8, 8, dtype=torch.float64, requires_grad=True)
    gain = math.sqrt(0.5)
    ours = layer(x, gain=gain)
    lin = conv2d_resample(x, layer.weight * layer.weight_gain, layer.resample_filter, up=up, down=down,
                          padding=layer.padding)
    ref = reference_bias_act(lin, layer.bias, act, layer.act_gain * gain, 1.0 * gain)
    assert close(ours, ref, 1e-12)
    assert 0 < (ref.abs() >= 1.0 * gain).double().mean() < 0.3  # the clamp acts on some outputs, not most
    for a, b in zip(grads(ours, [x, layer.weight, layer.bias]), grads(ref, [x, layer.weight, layer.bias])):
        assert close(a, b, 1e-10)


@pytest.mark.parametrize("up,down,pad", [(1, 2, (2, 2, 2, 2)), (1, 2, (1, 1, 1, 1)), (2, 1, (2, 1, 2, 1)),
                                         (1, 1, (1, 1, 2, 2)), (2, 1, (1, 1, 1, 1))])
def test_fir_one_pass_matches_two_passes_and_padded_copy(monkeypatch, up, down, pad):
    """One 2-D depthwise pass with the padding inside the convolution against the 1-D passes after
    an explicit padded copy: outputs and input gradients, fp32, with and without a stride."""
    import gankit.nn.resample as resample

    f = resample.setup_filter([1, 2, 3, 4])  # asymmetric, so a filter used unflipped would show
    x = torch.randn(2, 5, 11, 11, requires_grad=True)
    out = resample.upfirdn2d(x, f, up=up, down=down, padding=pad, gain=up * up)
    monkeypatch.setattr(resample, "ONE_PASS", False)
    xp = F.pad(x, list(pad)) if up == 1 else x  # the pad the one-pass code no longer materialises
    ref = resample.upfirdn2d(xp, f, up=up, down=down, padding=0 if up == 1 else pad, gain=up * up)
    assert out.shape == ref.shape
    assert close(out, ref)
    assert close(grads(out, x)[0], grads(ref, x)[0])


@pytest.mark.parametrize("fused,gain,demodulate", [(False, 1.0, True), (True, 1.0, True), (False, math.sqrt(0.5), True),
                                                   (False, 1.0, False), (True, 1.0, False)])
@pytest.mark.parametrize("up", [1, 2])
@pytest.mark.parametrize("sum_noise_first", [False, True])
def test_synthesis_layer_matches_literal_definition(fused, gain, demodulate, up, sum_noise_first, monkeypatch):
    """Modulate, convolve, demodulate, add noise and bias, leaky ReLU times sqrt(2), clamp (StyleGAN2
    Figure 2c) one step at a time, against the layer's one-pass version; the double backward of
    the path length penalty included. Both ways of adding the noise (SUM_NOISE_FIRST) are checked."""
    import gankit.models.stylegan2
    from gankit.models.stylegan2 import SynthesisLayer

    monkeypatch.setattr(gankit.models.stylegan2, "SUM_NOISE_FIRST", sum_noise_first)

    torch.manual_seed(0)
    clamp = 1.5 if demodulate else 15.0  # without demodulation the outputs are about 10x larger
    layer = SynthesisLayer(6, 5, 4, resolution=8 * up, up=up, conv_clamp=clamp, demodulate=demodulate).double()
    with torch.no_grad():
        layer.bias.normal_()
        layer.noise.noise_strength.fill_(0.7)
    x = torch.randn(3, 6, 8, 8, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    ours = layer(x, w, noise_mode="const", fused=fused, gain=gain)

    def reference():
        y, _ = modulated_conv2d(x, layer.weight, layer.affine(w), demodulate=demodulate, up=up, padding=1,
                                resample_filter=layer.resample_filter)
        y = y + layer.noise.noise_const.view(1, 1, 8 * up, 8 * up) * layer.noise.noise_strength
        return reference_bias_act(y, layer.bias, "lrelu", math.sqrt(2) * gain, clamp * gain)
    ref = reference()
    assert close(ours, ref, 1e-12)
    assert 0 < (ref.abs() >= clamp * gain).double().mean() < 0.3  # the clamp acts on some outputs, not most
    params = [x, w, layer.weight, layer.bias, layer.noise.noise_strength]
    for a, b in zip(grads(ours, params), grads(ref, params)):
        assert close(a, b, 1e-10)

    def pl(out):  # path length penalty shape: the gradient w.r.t. w, differentiated again
        (g,) = torch.autograd.grad((out * out.detach().cos()).sum(), w, create_graph=True)
        return torch.autograd.grad(g.square().sum(), [layer.weight, layer.bias])
    for a, b in zip(pl(layer(x, w, noise_mode="const", fused=fused, gain=gain)), pl(reference())):
        assert close(a, b, 1e-9)


@pytest.mark.parametrize("family", ["stylegan2", "stylegan3"])
def test_channels_last_inference_matches(family):
    """Without autograd, G and D run on channels_last activations; the results match the default layout."""
    import gankit

    torch.manual_seed(0)
    m = gankit.create(family, resolution=16, channels=3, z_dim=16, w_dim=16, mapping_layers=1, channel_base=256,
                      channel_max=32)
    G, D = m.G.eval(), m.D.eval()
    z = torch.randn(4, 16)
    with torch.no_grad():
        auto_img, auto_d = G(z), D(G(z))
        cl_g = hasattr(G.synthesis, "channels_last")  # StyleGAN3's G keeps its layout; its D is StyleGAN2's
        if cl_g:
            G.synthesis.channels_last = False
        D.channels_last = False
        ref_img, ref_d = G(z), D(G(z))
    assert auto_img.is_contiguous() or not cl_g  # handed back in the default layout
    assert close(auto_img, ref_img) and close(auto_d, ref_d)


def test_automatic_layout():
    """--model.layout auto: channels_last without autograd and under CPU bf16 autocast, contiguous for
    fp32 training; a set layout wins either way."""
    from gankit.models.stylegan2 import use_channels_last

    assert not use_channels_last(None)
    with torch.no_grad():
        assert use_channels_last(None) and not use_channels_last(False)
    with torch.autocast("cpu", torch.bfloat16):
        assert use_channels_last(None) and not use_channels_last(False)
    with torch.autocast("cpu", torch.float16):
        assert not use_channels_last(None)
    assert use_channels_last(True)


def test_channels_last_training_matches_contiguous(tmp_path):
    """--model.layout channels-last runs training on channels_last activations too; three iterations
    (the lazy R1 and path length among them) give the contiguous layout's weights within float rounding."""
    from gankit.training.trainer import Trainer

    weights = {}
    for layout in ("contiguous", "channels-last"):
        tr = Trainer("stylegan2", "builtin:digits?res=8", tmp_path / layout, preset="cpu-digits", progress=False,
                     overrides={"model": {"layout": layout, "d_reg_interval": 2, "g_reg_interval": 2},
                                "train": {"batch_size": 8, "tensorboard": False, "metrics": False}})
        tr.setup()
        assert tr.nets["G"].synthesis.channels_last is tr.nets["D"].channels_last is (layout == "channels-last")
        start = torch.cat([p.detach().flatten().clone() for p in tr.nets["G"].parameters()])
        for _ in range(3):
            tr.step(10**6)
        weights[layout] = torch.cat([p.detach().flatten() for n in ("G", "D") for p in tr.nets[n].parameters()])
    assert not torch.equal(weights["contiguous"][:len(start)], start)  # the steps moved G
    assert close(weights["channels-last"], weights["contiguous"], 1e-4)


def test_shared_fakes_equal_fakes_drawn_again(tmp_path):
    """--model.share-fakes: D's step runs first and G's step judges D's fakes through the graph kept
    from D's step. Three iterations (the lazy R1 and path length among them) give the weights of
    drawing those fakes again from the same z in G's step; with two D steps nothing is shared."""
    from gankit.models.stylegan2 import style_phases
    from gankit.training.trainer import Trainer

    weights = {}
    for again in (False, True):
        tr = Trainer("stylegan2", "builtin:digits?res=8", tmp_path / str(again), preset="cpu-digits", progress=False,
                     overrides={"model": {"share_fakes": True, "use_noise": False, "style_mixing_prob": 0.0,
                                          "d_reg_interval": 2, "g_reg_interval": 2},
                                "train": {"batch_size": 8, "tensorboard": False, "metrics": False}})
        tr.setup()
        assert [p.name for p in tr.phases] == ["D", "Dreg", "G", "Greg"]
        G = tr.nets["G"]
        if again:  # the reference: G's step draws the fakes afresh from D's z, with the same weights
            phase = next(p for p in tr.phases if p.name == "G")
            inner = phase.loss

            def drawn_again(s, inner=inner):
                _, c, z = s.scratch["style_fake"]
                s.scratch["style_fake"] = (G.synthesis(G.mapping(z, c, update_w_avg=False)), c, z)
                return inner(s)
            phase.loss = drawn_again
        start = torch.cat([p.detach().flatten().clone() for p in G.parameters()])
        for _ in range(3):
            tr.step(10**6)
        weights[again] = torch.cat([p.detach().flatten() for n in ("G", "D") for p in tr.nets[n].parameters()])
        assert not torch.equal(weights[again][:len(start)], start)  # the steps moved G
    assert close(weights[False], weights[True], 1e-6)
    assert [p.name for p in style_phases(tr.model_cfg, G, tr.nets["D"], n_critic=2)] == ["G", "Greg", "D", "Dreg"]


def test_compiled_training_matches_eager(tmp_path):
    """--train.compile: two iterations of WGAN-GP's MLPs, compiled, give the eager weights (the
    critic's gradient-penalty phase runs the compiled modules eagerly: double backward)."""
    import torch._dynamo

    from gankit.training.trainer import Trainer

    weights = {}
    for compile in (False, True):
        torch._dynamo.reset()
        tr = Trainer("wgan-gp", "builtin:ring8", tmp_path / str(compile), preset="cpu-toy",
                     overrides={"train": {"compile": compile, "batch_size": 16, "tensorboard": False,
                                          "metrics": False}}, progress=False)
        tr.setup()
        start = torch.cat([p.detach().flatten().clone() for p in tr.G.parameters()])
        for _ in range(2):
            tr.step(10**6)
        weights[compile] = torch.cat([p.detach().flatten() for p in tr.G.parameters()])
        if compile:
            assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > 0  # something was compiled
    assert not torch.equal(weights[False], start)  # the steps moved G
    assert close(weights[True], weights[False], 1e-4)


def test_fp16_in_the_highest_resolutions(monkeypatch, tmp_path):
    """StyleGAN2-ADA's scheme (--model.num-fp16-res 2, conv_clamp): the two highest-resolution blocks of
    G and D compute in fp16, the rest and the image path in fp32; outputs stay close to fp32 and
    a short run trains to finite weights. Forced onto the CPU here (on by default only on CUDA)."""
    import gankit
    from gankit.errors import ConfigError
    from gankit.nn import precision
    from gankit.training.trainer import Trainer

    kw = dict(resolution=16, channels=3, z_dim=16, w_dim=16, mapping_layers=1, channel_base=256, channel_max=32,
              conv_clamp=256.0)
    torch.manual_seed(0)
    full = gankit.create("stylegan2", **kw)
    torch.manual_seed(0)
    half = gankit.create("stylegan2", **kw, num_fp16_res=2)
    assert [b.use_fp16 for b in (half.G.synthesis.b4, half.G.synthesis.b8, half.G.synthesis.b16)] == [False, True, True]
    assert [half.D.b16.use_fp16, half.D.b8.use_fp16] == [True, True]
    z = torch.randn(4, 16)
    with torch.no_grad():
        ws = full.G.mapping(z, None)
        ref_img, ref_d = full.G.synthesis(ws, noise_mode="const"), full.D(full.G.synthesis(ws, noise_mode="const"))
        same_img = half.G.synthesis(ws, noise_mode="const")  # CPU: the fp16 blocks stay fp32
        monkeypatch.setattr(precision, "FP16_DEVICES", {"cuda", "cpu"})
        img = half.G.synthesis(ws, noise_mode="const")
        d = half.D(img)
    assert torch.equal(same_img, ref_img)
    assert img.dtype == torch.float32 and d.dtype == torch.float32
    err = float((img - ref_img).abs().max() / ref_img.abs().max())
    assert 0 < err < 0.02, err  # really computed in fp16, and close
    assert float((d - ref_d).abs().max()) < 0.05 * float(ref_d.abs().max()) + 1e-3
    with pytest.raises(ConfigError, match="conv-clamp"):
        gankit.create("stylegan2", **{**kw, "conv_clamp": 0.0}, num_fp16_res=2)
    model = {k: v for k, v in kw.items() if k not in ("resolution", "channels")}
    tr = Trainer("stylegan2", "builtin:shapes?res=16&n=64", tmp_path / "run", progress=False,
                 overrides={"model": {**model, "num_fp16_res": 2},
                            "train": {"batch_size": 8, "tensorboard": False, "metrics": False}})
    tr.setup()
    assert tr.scaler is not None  # loss scaling for the fp16 blocks
    for _ in range(4):
        tr.step(10**6)
    assert all(torch.isfinite(p).all() for p in list(tr.G.parameters()) + list(tr.D.parameters()))


def test_flop_count_sees_double_backward():
    """The benchmark's FLOP counter: a 3x3 convolution's forward, its backward and the R1-style
    double backward, against the closed forms."""
    from gankit.tools.bench import count_flops

    x = torch.randn(2, 4, 8, 8, requires_grad=True)
    w = torch.randn(5, 4, 3, 3, requires_grad=True)
    fwd = 2 * 2 * 5 * 4 * 9 * 8 * 8
    assert count_flops(lambda: F.conv2d(x, w, padding=1)) == fwd

    def first_order():
        torch.autograd.grad(F.conv2d(x, w, padding=1).sum(), (x, w))
    assert count_flops(first_order) == 3 * fwd  # forward, input gradient, weight gradient

    def r1():
        (g,) = torch.autograd.grad(F.conv2d(x, w, padding=1).square().sum(), x, create_graph=True)
        g.square().sum().backward()
    assert count_flops(r1) > 3 * fwd


def test_bench_command_writes_json(tmp_path):
    import json
    import subprocess
    import sys

    out = tmp_path / "bench.json"
    p = subprocess.run([sys.executable, "-m", "gankit", "bench", "dcgan", "--preset", "cpu-64", "--res", "32",
                        "--min-time", "0.05", "--out", str(out)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "of peak" in p.stdout
    res = json.loads(out.read_text())
    row = res["rows"][0]
    assert res["conv2d_peak"]["flops_per_s"] > 0 and row["train_flops_per_s"] > 0
    assert row["gen_img_s_b8"] > 0 and row["train_img_s"] > 0 and row["peak_rss_mb"] > 0
    assert set(row["phases"]) == {"D", "G"} and row["phases"]["D"]["gflop"] > 0
    bad = subprocess.run([sys.executable, "-m", "gankit", "bench", "dcgan", "--preset", "nope"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "--preset nope" in bad.stderr and "Traceback" not in bad.stderr


def test_bench_model_options(tmp_path):
    """gankit bench --model KEY=VALUE: a model option (here StyleGAN2's layout) on top of the preset,
    recorded in the row; a misspelt key or a bad value is named before anything is measured."""
    import json
    import subprocess
    import sys

    out = tmp_path / "bench.json"
    cmd = [sys.executable, "-m", "gankit", "bench", "stylegan2", "--preset", "cpu-digits", "--res", "8", "--min-time",
           "0.05"]
    p = subprocess.run(cmd + ["--model", "layout=channels-last", "--out", str(out)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-2000:]
    row = json.loads(out.read_text())["rows"][0]
    assert row["model"] == {"layout": "channels-last"} and row["train_img_s"] > 0
    for bad, said in (("laoyut=channels-last", "did you mean layout"), ("layout=sideways", "--model.layout"),
                      ("layout", "KEY=VALUE")):
        r = subprocess.run(cmd + ["--model", bad], capture_output=True, text=True)
        assert r.returncode == 2 and said in r.stderr and "Traceback" not in r.stderr, r.stderr[-1000:]


def test_fused_adam_matches_the_per_tensor_loop(tmp_path):
    """``--train.fused-adam``: torch's fused Adam kernel on the optimizers, and three training
    iterations (StyleGAN2 with the lazy-regularization Adam correction and a learning-rate decay)
    end at the per-tensor loop's weights within float rounding."""
    from gankit.training.trainer import Trainer

    def weights(fused):
        t = Trainer("stylegan2", "builtin:digits?res=8", tmp_path / f"f{fused}", progress=False, overrides={
            "model": {"z_dim": 8, "w_dim": 8, "mapping_layers": 1, "channel_base": 64, "channel_max": 16,
                      "d_reg_interval": 2},
            "train": {"fused_adam": fused, "batch_size": 8, "kimg": 0.024, "lr_schedule": "linear-decay",
                      "tensorboard": False, "metrics": False, "snapshot_kimg": 100, "sample_kimg": 100}})
        t.run()
        assert all(g["fused"] == (fused or None) for o in t.opt.values() for g in o.param_groups)
        return torch.cat([p.detach().flatten() for n in ("G", "D") for p in t.nets[n].parameters()])

    loop, fused = weights(False), weights(True)
    assert torch.allclose(loop, fused, rtol=1e-4, atol=1e-5), (loop - fused).abs().max()
    assert not torch.equal(loop, fused)  # two kernels really ran: their rounding differs
