"""Registry-driven family tests: every registered family gets shapes, a step of each phase, and a round trip."""
import pytest
import torch

import gankit
from gankit.api import load_bundle, resolve_configs
from gankit.errors import CheckpointError, ConfigError
from gankit.training.trainer import Trainer

# the smallest data and widths that exercise each family; a new family must add itself here
TINY = {
    "gan": ("builtin:ring8?n=512", {"model": {"g_hidden": (16,), "d_hidden": (16,), "z_dim": 2}}),
    "dcgan": ("builtin:digits?res=8", {"model": {"ngf": 8, "ndf": 8, "z_dim": 8}}),
    "stylegan": ("builtin:digits?res=8", {"model": {"z_dim": 8, "w_dim": 8, "mapping_layers": 1, "channel_base": 64,
                                                   "channel_max": 8}}),
    "stylegan2": ("builtin:digits?res=8", {"model": {"z_dim": 8, "w_dim": 8, "mapping_layers": 1, "channel_base": 64,
                                                    "channel_max": 8}}),
    "stylegan3": ("builtin:digits?res=16", {"model": {"z_dim": 8, "w_dim": 8, "channel_base": 256, "channel_max": 8,
                                                     "num_layers": 3, "margin_size": 2, "d_channel_base": 128,
                                                     "d_channel_max": 8}}),
    "wgan": ("builtin:digits?res=16", {"model": {"ngf": 8, "ndf": 8, "z_dim": 8}}),
    "wgan-gp": ("builtin:ring8?n=512", {"model": {"mlp_hidden": (16, 16), "z_dim": 2}}),
}
QUIET = {"tensorboard": False, "metrics": False, "batch_size": 16, "kimg": 0.064, "snapshot_kimg": 0.032}


def test_every_family_has_a_tiny_config():
    assert sorted(TINY) == gankit.list_models()


@pytest.mark.parametrize("family", sorted(TINY))
def test_family_shapes_steps_and_roundtrip(family, tmp_path):
    data, over = TINY[family]
    over = {"model": over["model"], "train": dict(QUIET)}
    tr = Trainer(family, data, tmp_path / "run", overrides=over, progress=False)
    before = {k: v.clone() for k, v in tr.family.build(tr.model_cfg)[1].state_dict().items()}
    summary = tr.run()
    assert summary["status"] == "done" and summary["kimg"] >= 0.064
    shape = tr.dataset.info.shape
    z = torch.randn(5, tr.G.z_dim)
    assert tr.G_ema(z).shape == (5, *shape)
    assert tr.D(tr.G(z)).shape == (5,)
    # every phase changed its network's weights
    assert any(not torch.equal(before[k], v) for k, v in tr.D.state_dict().items() if k in before)
    # save / load round trip: the loaded EMA generator is the trainer's, exactly
    bundle, G, cfg = load_bundle(tmp_path / "run")
    assert cfg["family"] == family
    for a, b in zip(G.state_dict().values(), tr.G_ema.state_dict().values()):
        assert torch.equal(a, b)
    for a, b in zip(bundle.D.state_dict().values(), tr.D.state_dict().values()):
        assert torch.equal(a, b)
    with torch.no_grad():  # the same seed for families that draw noise inside G (StyleGAN)
        loaded_G = gankit.load(tmp_path / "run")
        torch.manual_seed(1)
        loaded = loaded_G(z)
        torch.manual_seed(1)
        assert torch.equal(loaded, tr.G_ema.eval()(z))
    # images come out in [-1, 1]
    if len(shape) == 3:
        out = G(torch.randn(8, G.z_dim))
        assert out.min() >= -1 and out.max() <= 1


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
