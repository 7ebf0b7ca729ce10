"""PacGAN packing (Lin et al. 2018): ``--model.pack m`` makes D judge m samples at once."""
from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from gankit.errors import ConfigError
from gankit.api import get_family
from gankit.nn import Packed, pack, packed
from gankit.training.trainer import Trainer


def test_pack_joins_consecutive_samples_along_the_feature_axis():
    x = torch.randn(6, 3, 4, 4)
    p = pack(x, 3)
    assert p.shape == (2, 9, 4, 4)
    assert torch.equal(p[1, 3:6], x[4]) and torch.equal(p[0, :3], x[0])
    assert pack(x, 1) is x
    v = torch.randn(4, 2)
    assert torch.equal(pack(v, 2), torch.stack([torch.cat([v[0], v[1]]), torch.cat([v[2], v[3]])]))


def test_a_batch_the_pack_does_not_divide_names_the_options():
    with pytest.raises(ConfigError, match=r"--model.pack 4 .*--train.batch-size"):
        pack(torch.randn(6, 2), 4)


def test_a_pack_of_one_is_the_unpacked_discriminator_bitwise():
    torch.manual_seed(0)
    D = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    assert packed(D, 1) is D  # same parameters, same checkpoint names
    x = torch.randn(10, 2, requires_grad=True)
    a = D(x)
    (ga,) = torch.autograd.grad(a.sum(), x)
    b = Packed(D, 1)(x)
    (gb,) = torch.autograd.grad(b.sum(), x)
    assert torch.equal(a, b) and torch.equal(ga, gb)


def _run(path, extra):
    tr = Trainer("gan", "builtin:grid25?n=1000", path, preset="pacgan-toy", progress=False,
                 overrides={"model": {"g_hidden": (32, 32), "d_hidden": (16, 16), **extra},
                            "train": {"kimg": 0.4, "batch_size": 40, "tensorboard": False, "metrics": False,
                                      "snapshot_kimg": 10**6, "sample_kimg": 10**6}})
    tr.run()
    ckpt = sorted((path / "checkpoints").iterdir())[-1]
    return load_file(ckpt / "model.safetensors")


def test_training_with_pack_one_equals_training_without_the_option_bitwise(tmp_path):
    a, b = _run(tmp_path / "plain", {}), _run(tmp_path / "pack1", {"pack": 1})
    assert sorted(a) == sorted(b) and all(torch.equal(a[k], b[k]) for k in a)
    c = _run(tmp_path / "pack2", {"pack": 2})  # and packing changes what is learned
    assert c["D.net.net.0.linear.weight"].shape[1] == 2 * a["D.net.0.linear.weight"].shape[1]
    assert not torch.equal(c["G.net.0.weight"], a["G.net.0.weight"])


@pytest.mark.parametrize("family,data,model", [
    ("gan", (2,), {"g_hidden": (8,), "d_hidden": (8,)}),
    ("dcgan", (3, 8, 8), {"ngf": 4, "ndf": 4, "z_dim": 4}),
    ("wgan-gp", (3, 8, 8), {"ngf": 4, "ndf": 4, "z_dim": 4}),
    ("wgan-gp", (2,), {"mlp_hidden": (8,), "z_dim": 2}),
    ("stylegan2", (3, 8, 8), {"z_dim": 8, "w_dim": 8, "mapping_layers": 1, "channel_base": 64, "channel_max": 8}),
])
def test_every_packing_family_builds_a_discriminator_of_packs(family, data, model):
    fam = get_family(family)
    fields = {"data_shape": data} if family in ("gan", "wgan-gp") else {"resolution": data[1], "channels": data[0]}
    nets = fam.build(fam.config({**model, **fields, "pack": 2}))
    x = torch.randn(8, *data, requires_grad=True)
    out = nets["D"](x) if family != "stylegan2" else nets["D"](x, torch.zeros(8, 0))
    assert out.shape[0] == 4  # one judgement per pack of two
    (g,) = torch.autograd.grad(out.sum(), x)
    assert (g.flatten(1).abs().sum(1) > 0).all()  # every sample of every pack reaches D


def _one_iteration(path, update):
    """One training iteration of a small pacgan-toy; what G drew and what D saw, with D's weights at each call."""
    tr = Trainer("gan", "builtin:grid25?n=1000", path, preset="pacgan-toy", progress=False,
                 overrides={"model": {"g_hidden": (32, 32), "d_hidden": (16, 16), "update": update},
                            "train": {"batch_size": 40, "tensorboard": False, "metrics": False}})
    tr.setup()
    G, D = tr.modules["G"], tr.modules["D"]
    drawn, seen = [], []
    G.register_forward_hook(lambda m, i, o: drawn.append(o.detach().clone()))
    D.register_forward_hook(lambda m, i, o: seen.append((i[0].detach().clone(),
                                                          [p.detach().clone() for p in D.parameters()])))
    d0 = [p.detach().clone() for p in D.parameters()]
    tr.step(10)
    return drawn, seen, d0


def test_simultaneous_updates_take_both_gradients_at_the_same_point(tmp_path):
    # PacGAN's code (ALI's update): G steps against D_t, D_t steps on G_t's fakes; G runs once
    drawn, seen, d0 = _one_iteration(tmp_path / "sim", "simultaneous")
    assert len(drawn) == 1 and len(seen) == 3
    (g_input, _), (real, _), (d_fake, _) = seen
    assert torch.equal(g_input, drawn[0]) and torch.equal(d_fake, drawn[0])
    assert not torch.equal(real, drawn[0])
    assert all(torch.equal(a, b) for _, params in seen for a, b in zip(params, d0))  # every call saw D_t
    # Algorithm 1 alternates: D steps on fresh fakes, then G steps against the updated D
    drawn, seen, d0 = _one_iteration(tmp_path / "alt", "alternating")
    assert len(drawn) == 2 and len(seen) == 3
    (_, _), (d_fake, _), (g_input, g_params) = seen
    assert torch.equal(d_fake, drawn[0]) and torch.equal(g_input, drawn[1]) and not torch.equal(drawn[0], drawn[1])
    assert not all(torch.equal(a, b) for a, b in zip(g_params, d0))


@pytest.mark.parametrize("train,message", [({"n_critic": 5}, r"--train.n-critic is 5"),
                                            ({"n_gen": 2}, r"--train.n-gen 2")])
def test_simultaneous_updates_refuse_several_critic_or_generator_steps(tmp_path, train, message):
    with pytest.raises(ConfigError, match=message):
        Trainer("gan", "builtin:grid25?n=1000", tmp_path, preset="pacgan-code", progress=False,
                overrides={"train": train}).setup()


def test_per_slot_generation_packs_sample_k_of_every_slot(tmp_path):
    # PacGAN's code draws each packing slot in its own G call (own batch-norm statistics)
    tr = Trainer("gan", "builtin:grid25?n=1000", tmp_path, preset="pacgan-code", progress=False,
                 overrides={"model": {"g_hidden": (32, 32), "d_hidden": (16, 16), "pack": 2},
                            "train": {"batch_size": 40, "tensorboard": False, "metrics": False}})
    tr.setup()
    G, D = tr.modules["G"], tr.modules["D"]
    calls, packs = [], []
    G.register_forward_hook(lambda m, i, o: calls.append(o.detach().clone()))
    D.net.register_forward_hook(lambda m, i, o: packs.append(i[0].detach().clone()))
    assert [b.momentum for b in G.modules() if isinstance(b, torch.nn.BatchNorm1d)] == [0.025] * 2
    tr.step(10)
    assert [c.shape[0] for c in calls] == [20, 20]  # two slots of 20, one G call each
    joined = packs[0]  # G's phase: D's input, 20 packs of 2 points
    assert joined.shape == (20, 4)
    assert torch.equal(joined[:, :2], calls[0]) and torch.equal(joined[:, 2:], calls[1])
    # one call for the whole batch when off: the same z split differently gives other points
    tr2 = Trainer("gan", "builtin:grid25?n=1000", tmp_path / "one", preset="pacgan-code", progress=False,
                  overrides={"model": {"g_hidden": (32, 32), "d_hidden": (16, 16), "pack": 2, "g_per_slot": False},
                             "train": {"batch_size": 40, "tensorboard": False, "metrics": False}})
    tr2.setup()
    calls2 = []
    tr2.modules["G"].register_forward_hook(lambda m, i, o: calls2.append(o.detach().clone()))
    tr2.step(10)
    assert [c.shape[0] for c in calls2] == [40]


def test_n_gen_takes_that_many_generator_steps_after_the_critic_steps(tmp_path):
    # DCGAN-tensorflow / PacGAN's stacked-MNIST code: two G steps per D step, each against the same D
    tr = Trainer("gan", "builtin:grid25?n=1000", tmp_path, preset="pacgan-toy", progress=False,
                 overrides={"model": {"g_hidden": (32, 32), "d_hidden": (16, 16)},
                            "train": {"batch_size": 40, "n_gen": 2, "tensorboard": False, "metrics": False}})
    tr.setup()
    G, D = tr.modules["G"], tr.modules["D"]
    g_params, d_calls = [], []
    G.register_forward_hook(lambda m, i, o: g_params.append([p.detach().clone() for p in G.parameters()]))
    D.register_forward_hook(lambda m, i, o: d_calls.append([p.detach().clone() for p in D.parameters()]))
    tr.step(10)
    assert len(g_params) == 3 and len(d_calls) == 4  # D's step (real, fake), then two G steps
    first, second = g_params[1], g_params[2]
    assert not all(torch.equal(a, b) for a, b in zip(first, second))  # G moved between its two steps
    assert all(torch.equal(a, b) for a, b in zip(d_calls[2], d_calls[3]))  # against the same, stepped D
    assert not all(torch.equal(a, b) for a, b in zip(d_calls[1], d_calls[2]))


def test_dcgan_draws_each_packing_slot_in_its_own_call(tmp_path):
    tr = Trainer("dcgan", "builtin:stacked-digits?res=8&n=200", tmp_path, preset="cpu-digits", progress=False,
                 overrides={"model": {"ngf": 4, "ndf": 4, "z_dim": 4, "pack": 2, "g_per_slot": True},
                            "train": {"batch_size": 16, "tensorboard": False, "metrics": False}})
    tr.setup()
    calls, packs = [], []
    tr.modules["G"].register_forward_hook(lambda m, i, o: calls.append(o.detach().clone()))
    tr.modules["D"].net.register_forward_hook(lambda m, i, o: packs.append(i[0].detach().clone()))
    tr.step(10)
    assert [c.shape[0] for c in calls] == [8, 8, 8, 8]  # D's step and G's step, two slots of 8 each
    assert packs[1].shape == (8, 6, 8, 8)  # D's fakes: 8 packs of two 3-channel images
    assert torch.equal(packs[1][:, :3], calls[0]) and torch.equal(packs[1][:, 3:], calls[1])
