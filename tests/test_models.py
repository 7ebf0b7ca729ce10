"""Registry-driven family tests: every registered family gets shapes, a step of each phase, and a round trip."""
import json

import pytest
import torch

import gankit
from gankit.api import get_family, load_bundle, resolve_configs
from gankit.errors import CheckpointError, ConfigError
from gankit.training.trainer import Trainer

QUIET = {"tensorboard": False, "metrics": False, "batch_size": 16, "kimg": 0.064, "snapshot_kimg": 0.032,
         "grid": 4}
FAMILIES = gankit.list_models()


def test_every_family_declares_a_tiny_config():
    assert all(get_family(f).tiny is not None for f in FAMILIES), [f for f in FAMILIES if get_family(f).tiny is None]


@pytest.mark.parametrize("family", FAMILIES)
def test_family_shapes_steps_and_roundtrip(family, tmp_path):
    """Every registered family, from its own tiny config: each phase runs, every trained network moves
    away from its own initial weights, samples have the data's shape, a save / load round trip is exact."""
    fam = get_family(family)
    data, over = fam.tiny
    over = {"model": dict(over.get("model", {})), "train": {**QUIET, **over.get("train", {})}}
    tr = Trainer(family, data, tmp_path / "run", overrides=over, progress=False)
    tr.setup()
    initial = {name: {k: v.clone() for k, v in net.state_dict().items()} for name, net in tr.nets.items()}
    summary = tr.run()
    assert summary["status"] == "done" and summary["kimg"] >= 0.064
    logged = {k.split("/")[0] for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()
              for k in json.loads(line) if k.endswith("/loss")}
    assert logged == {p.name for p in tr.phases}  # every phase ran
    for name, net in tr.nets.items():
        if name in tr.frozen:
            continue
        params = dict(net.named_parameters())
        moved = [k for k, v in net.state_dict().items() if k in params and not torch.equal(initial[name][k], v)]
        # most tensors move (a few may get no gradient at all: a Wasserstein critic's last bias cancels)
        assert len(moved) > len(params) / 2, (name, sorted(set(params) - set(moved))[:5])
    net = tr.inference_net.eval()
    samples = fam.sample(net, 5, seed=3, data=tr.dataset)
    shape = fam.sample_shape(tr.model_cfg, tr.dataset.info)
    assert tuple(samples.shape) == (5, *shape)
    if len(shape) == 3:
        assert samples.min() >= -1 and samples.max() <= 1  # images in [-1, 1]
    # save / load round trip: every network of the checkpoint is the trainer's, exactly
    bundle, loaded, cfg = load_bundle(tmp_path / "run")
    assert cfg["family"] == family and sorted(bundle.nets) == sorted(tr.modules)
    for name, module in tr.modules.items():
        for (k, a), b in zip(module.state_dict().items(), bundle.nets[name].state_dict().values()):
            assert torch.equal(a, b), (name, k)
    reloaded = gankit.load(tmp_path / "run")
    with torch.no_grad():  # the same seed for families that draw noise inside G (StyleGAN)
        torch.manual_seed(1)
        again = fam.sample(reloaded, 5, seed=3, data=tr.dataset)
        torch.manual_seed(1)
        assert torch.equal(again, fam.sample(net, 5, seed=3, data=tr.dataset))


def test_dcgan_matches_paper_figure_1():
    m = gankit.create("dcgan", resolution=64, channels=3)
    convs = [l for l in m.G.net if isinstance(l, torch.nn.ConvTranspose2d)]
    assert [c.out_channels for c in convs] == [1024, 512, 256, 128, 3]  # Radford et al. 2016, Figure 1
    assert m.G(torch.randn(2, 100)).shape == (2, 3, 64, 64)
    assert m.D(torch.randn(2, 3, 64, 64)).shape == (2,)
    bns = [l for l in m.D.net if isinstance(l, torch.nn.BatchNorm2d)]
    assert len(bns) == 3  # no batch norm on D's input layer
    for res in (8, 16, 32, 128):
        m = gankit.create("dcgan", resolution=res, channels=1, ngf=8, ndf=8)
        assert m.G(torch.randn(1, 100)).shape == (1, 1, res, res)


def test_dcgan_min_res_2_is_carpedm20s_depth():
    # carpedm20's DCGAN-tensorflow at 28-32 px: G from 2x2x512 through 256, 128, 64; D 64, 128, 256, 512 down to 2x2
    m = gankit.create("dcgan", resolution=32, channels=3, ngf=64, ndf=64, min_res=2)
    g = [l.out_channels for l in m.G.net if isinstance(l, torch.nn.ConvTranspose2d)]
    d = [l.out_channels for l in m.D.net if isinstance(l, torch.nn.Conv2d)]
    assert (g, d) == ([512, 256, 128, 64, 3], [64, 128, 256, 512, 1])
    assert m.G(torch.randn(2, 100)).shape == (2, 3, 32, 32) and m.D(torch.randn(2, 3, 32, 32)).shape == (2,)
    four = gankit.create("dcgan", resolution=32, channels=3, ngf=64, ndf=64)  # the default is unchanged
    assert [l.out_channels for l in four.G.net if isinstance(l, torch.nn.ConvTranspose2d)] == [256, 128, 64, 3]
    with pytest.raises(ConfigError, match="min-res"):
        gankit.create("dcgan", resolution=32, min_res=3)


def test_dcgan_unit_range_is_pacgans_x_over_255():
    # PacGAN's stacked-MNIST code feeds reals in [0, 1] under G's tanh; gankit's data stay in [-1, 1]
    torch.manual_seed(0)
    signed = gankit.create("dcgan", resolution=16, channels=3, ngf=8, ndf=8)
    unit = gankit.create("dcgan", resolution=16, channels=3, ngf=8, ndf=8, net_range="unit")
    unit.G.load_state_dict(signed.G.state_dict())
    unit.D.load_state_dict(signed.D.state_dict())
    signed.G.eval(), unit.G.eval(), signed.D.eval(), unit.D.eval()
    z, x = torch.randn(4, 100), torch.rand(4, 3, 16, 16) * 2 - 1
    y = unit.G(z)
    assert torch.allclose(y, signed.G(z) * 2 - 1)  # G's tanh output t is the data's 2 t - 1
    assert y.min() >= -3 and y.max() <= 1 and y.min() < -1  # a tanh below 0 lands below the data's range
    assert torch.allclose(unit.D(x), signed.D((x + 1) / 2))  # D reads the data as PacGAN's x / 255
    assert not torch.allclose(unit.D(x), signed.D(x))
    with pytest.raises(ConfigError, match="net-range|net_range"):
        gankit.create("dcgan", resolution=16, net_range="zero-one")


def test_paper_defaults():
    _, t = resolve_configs("dcgan")
    assert (t.optimizer, t.g_lr, t.betas[0]) == ("adam", 2e-4, 0.5)
    m, t = resolve_configs("wgan")
    assert (t.optimizer, t.g_lr, t.n_critic, m.clip) == ("rmsprop", 5e-5, 5, 0.01)
    m, t = resolve_configs("wgan-gp")
    assert (t.optimizer, t.g_lr, tuple(t.betas), t.n_critic, m.gp_lambda) == ("adam", 1e-4, (0.0, 0.9), 5, 10.0)
    m = gankit.create("wgan", data_shape=(3, 32, 32)).D
    assert not any(isinstance(l, torch.nn.BatchNorm2d) for l in m.modules())  # WGAN critic: no batch norm


def test_config_errors():
    with pytest.raises(ConfigError, match="unknown family 'dcgn'; did you mean dcgan"):
        gankit.create("dcgn")
    with pytest.raises(ConfigError, match="unknown preset"):
        gankit.create("dcgan", preset="nope")
    with pytest.raises(ConfigError, match="unknown option 'model.ngff'; did you mean ngf"):
        gankit.create("dcgan", ngff=3)
    with pytest.raises(ConfigError, match="not a power of two"):
        gankit.create("dcgan", resolution=48)


def test_load_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no such run"):
        gankit.load(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="holds no checkpoint"):
        gankit.load(tmp_path / "empty")


def test_gan_on_flattened_images_and_paper_mlp():
    m = gankit.create("gan", data_shape=(1, 8, 8))
    x = m.G(torch.randn(3, 100))
    assert x.shape == (3, 1, 8, 8) and x.abs().max() <= 1  # tanh output for images
    assert m.D(x).shape == (3,)
    maxouts = [l for l in m.D.modules() if type(l).__name__ == "Maxout"]
    assert [(l.linear.out_features // l.pieces, l.pieces) for l in maxouts] == [(240, 5), (240, 5)]
    v = gankit.create("gan", data_shape=(2,))
    assert v.G(torch.randn(4, 100)).shape == (4, 2)


@pytest.mark.parametrize("family", ["wgan", "wgan-gp"])
def test_wasserstein_mlp_widths_per_network(family):
    """``g_hidden`` / ``d_hidden`` / ``g_norm`` give G and the critic their own MLPs (PyTorch-GAN's
    WGAN scripts: G 128-256-512-1024 with batch norm, critic 512-256); empty keeps ``mlp_hidden``."""
    def widths(net):
        return [l.out_features for l in net.modules() if isinstance(l, torch.nn.Linear)]

    same = gankit.create(family, arch="mlp", data_shape=(1, 8, 8), mlp_hidden=(32, 16))
    assert widths(same.G) == [32, 16, 64] and widths(same.D) == [32, 16, 1]
    assert not any(isinstance(l, torch.nn.BatchNorm1d) for l in same.G.modules())
    own = gankit.create(family, arch="mlp", data_shape=(1, 8, 8), g_hidden=(8, 16, 32), d_hidden=(24,), g_norm="batch")
    assert widths(own.G) == [8, 16, 32, 64] and widths(own.D) == [24, 1]
    assert sum(isinstance(l, torch.nn.BatchNorm1d) for l in own.G.modules()) == 3
    assert own.G(torch.randn(4, 100)).shape == (4, 1, 8, 8)


@pytest.mark.parametrize("family", FAMILIES)
def test_every_preset_resolves_to_configs_its_family_accepts(family):
    fam = get_family(family)
    for preset in fam.presets:
        model, train = resolve_configs(family, preset)  # unknown or out-of-range names raise ConfigError
        fam.validate(model)
        assert train.kimg > 0 and train.batch_size >= 1, preset
