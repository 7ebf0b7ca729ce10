"""The family contract (DESIGN.md "Contract v2"): runs written before it still load and resume exactly."""
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import gankit
from gankit.api import get_family
from gankit.training.trainer import Trainer

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize("family", ["dcgan", "stylegan2"])
def test_a_run_written_before_contract_v2_loads_and_resumes_exactly(family, tmp_path):
    """legacy-* were written by gankit e9160f8 (one G, one D, G_ema): 32 images in two checkpoints.
    Resuming its first checkpoint with today's code must rebuild its second one bitwise."""
    run = tmp_path / "run"
    shutil.copytree(FIXTURES / f"legacy-{family}", run)
    old_last = load_file(run / "checkpoints" / "ckpt-000000032" / "model.safetensors")
    G = gankit.load(run)
    assert G(torch.randn(2, G.z_dim)).shape == (2, 1, 8, 8)
    shutil.rmtree(run / "checkpoints" / "ckpt-000000032")
    summary = Trainer(family, None, run, resume=True, progress=False).run()
    assert summary["status"] == "done" and summary["kimg"] == 0.032
    new_last = load_file(run / "checkpoints" / "ckpt-000000032" / "model.safetensors")
    assert sorted(new_last) == sorted(old_last)
    assert all(torch.equal(new_last[k], old_last[k]) for k in old_last)


# ----------------------------------------------------------------------------- named networks and optimizers
class _Frozen(torch.nn.Module):
    """A network in no optimizer (as StackGAN's Stage-I under Stage-II), with batch-norm buffers."""

    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))

    def forward(self, x):
        return x + self.net(x)


@pytest.fixture
def three_networks():
    """A family 'three' registered for one test: G, D and a frozen F that G's samples go through."""
    from gankit.models.family import Family, Optim, Phase
    from gankit.models.gan import Discriminator, GANConfig, Generator
    from gankit.registry import FAMILIES

    class Three(Family):
        Config = GANConfig
        data_kinds = ("vector",)
        bad_optimizer = False

        def data_fields(self, info):
            return {"data_shape": tuple(info.shape)}

        def build(self, cfg):
            return {"G": Generator((2,), 2, (8,)), "D": Discriminator((2,), (8,), "relu", dropout=0.0),
                    "F": _Frozen()}

        def optimizers(self, cfg, train):
            return {"gen": Optim(("G",), train.g_lr), "disc": Optim(("D",), train.d_lr)}

        def phases(self, cfg, nets, train):
            from gankit.losses import d_loss, g_loss

            G, D, F = nets["G"], nets["D"], nets["F"]

            def d_step(s):
                return {"loss": d_loss("nonsaturating", D(s.real), D(F(G(s.z(dim=2))).detach()))}

            def g_step(s):
                return {"loss": g_loss("nonsaturating", D(F(G(s.z(dim=2)))))}

            return [Phase("D", "disc", d_step, real=True),
                    Phase("G", "gen" if not type(self).bad_optimizer else "generator", g_step)]

    FAMILIES._items["three"] = Three
    Three.registered_name = "three"
    yield Three
    del FAMILIES._items["three"]


def test_a_frozen_network_stays_bitwise_unchanged(three_networks, tmp_path):
    tr = Trainer("three", "builtin:ring8?n=256", tmp_path / "run", progress=False,
                 overrides={"train": {"batch_size": 32, "kimg": 0.256, "tensorboard": False, "metrics": False,
                                      "optimizer": "adam", "g_lr": 1e-3, "d_lr": 1e-3}})
    tr.setup()
    before = {k: v.clone() for k, v in tr.nets["F"].state_dict().items()}
    g0 = {k: v.clone() for k, v in tr.nets["G"].state_dict().items()}
    tr.run()
    assert tr.frozen == ["F"]
    assert all(torch.equal(before[k], v) for k, v in tr.nets["F"].state_dict().items())  # buffers included
    assert any(not torch.equal(g0[k], v) for k, v in tr.nets["G"].state_dict().items())  # G did train
    saved = load_file(tmp_path / "run" / "checkpoints" / "ckpt-000000256" / "model.safetensors")
    assert {k.split(".")[0] for k in saved} == {"G", "D", "F", "G_ema"}  # every network under its own name


def test_an_unknown_optimizer_name_is_an_error(three_networks, tmp_path):
    from gankit.errors import ConfigError

    three_networks.bad_optimizer = True
    tr = Trainer("three", "builtin:ring8?n=256", tmp_path / "run", progress=False)
    with pytest.raises(ConfigError, match="phase 'G' steps optimizer 'generator', which the family does not "
                                          "declare \\(optimizers: gen, disc\\)"):
        tr.setup()


def test_stylegan3_blur_fade_follows_the_image_count_not_the_split(tmp_path, monkeypatch):
    """StyleGAN3-R's blur of D's inputs fades with the images seen when the iteration began: one pass
    of 8 and two rounds of 4 (a different micro-batch) blur alike, iteration by iteration."""
    import gankit.models.recipes.style as style

    model = dict(get_family("stylegan3").tiny[1]["model"], blur_init_sigma=10.0, blur_fade_kimg=0.1)
    seen, real_blur = {}, style.gaussian_blur
    for split in (0, 4):
        sigmas = seen[split] = []
        monkeypatch.setattr(style, "gaussian_blur", lambda img, sigma, sigmas=sigmas: (sigmas.append(round(sigma, 9)),
                                                                                         real_blur(img, sigma))[1])
        Trainer("stylegan3", "builtin:digits?res=16", tmp_path / f"b{split}", progress=False,
                overrides={"model": model, "train": {"batch_size": 8, "batch_gpu": split, "kimg": 0.048,
                                                     "tensorboard": False, "metrics": False}}).run()
    per_iteration = [sorted(set(seen[0]))[::-1], sorted(set(seen[4]))[::-1]]
    assert per_iteration[0] == per_iteration[1]
    assert per_iteration[0][:3] == [10.0, 9.2, 8.4]  # (1 - cur_nimg / 100) * 10 at 0, 8, 16 images
