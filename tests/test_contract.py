"""The family contract (DESIGN.md "Contract v2"): runs written before it still load and resume exactly."""
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from gankit.api import get_family
from gankit.training.trainer import Trainer

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def fixture_threads():
    """The legacy runs were written with 2 torch threads, and a convolution's float rounding depends
    on the thread count: resume them with 2 (under `make test`'s one-thread workers too)."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("family", ["dcgan", "stylegan2"])
def test_a_run_written_before_contract_v2_loads_and_resumes_exactly(family, tmp_path, fixture_threads, monkeypatch):
    """legacy-* were written by gankit e9160f8 (one G, one D, G_ema): 32 images in two checkpoints.
    Resuming its first checkpoint with today's code must rebuild its second one bitwise. The FIR
    filters run as e9160f8 ran them (two 1-D passes), and so does G's noise (summed with the bias
    first): the newer forms round differently, and are checked against the old ones and the
    definitions in tests/test_performance.py."""
    import gankit.models.stylegan2
    import gankit.nn.resample

    monkeypatch.setattr(gankit.nn.resample, "ONE_PASS", False)
    monkeypatch.setattr(gankit.models.stylegan2, "SUM_NOISE_FIRST", True)
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


def test_stylegan2_takes_the_same_blur_option(tmp_path, monkeypatch):
    """--model.blur-init-sigma reaches StyleGAN2's D through the shared recipe (off by default)."""
    import gankit.models.recipes.style as style

    sigmas, real_blur = [], style.gaussian_blur
    monkeypatch.setattr(style, "gaussian_blur", lambda img, sigma: (sigmas.append(round(sigma, 9)),
                                                                    real_blur(img, sigma))[1])
    tiny = get_family("stylegan2").tiny
    for blur in (0.0, 2.0):
        Trainer("stylegan2", tiny[0], tmp_path / f"b{blur}", progress=False,
                overrides={"model": dict(tiny[1]["model"], blur_init_sigma=blur, blur_fade_kimg=0.016),
                           "train": {"batch_size": 4, "kimg": 0.016, "tensorboard": False, "metrics": False}}).run()
        if blur == 0:
            assert sigmas == []
    assert max(sigmas) == 2.0 and min(sigmas) < 2.0  # fades with the image count


# ----------------------------------------------------------------------------- the schedule hook
@pytest.fixture
def scheduled():
    """The 'gan' family registered as 'scheduled' with a schedule: batch 16 at the base learning rate
    until 64 images, then batch 32 at half of it; the callback records the image count it ran at."""
    from gankit.models.family import Schedule
    from gankit.registry import FAMILIES

    calls = []

    class Scheduled(FAMILIES.get("gan")):
        def schedule(self, cfg, train, cur_nimg):
            late = cur_nimg >= 64
            return Schedule(batch_size=32 if late else 16, lr_factor=0.5 if late else 1.0,
                            callback=lambda nets: calls.append((cur_nimg, sorted(nets))))

    FAMILIES._items["scheduled"] = Scheduled
    Scheduled.registered_name = "scheduled"
    yield calls
    del FAMILIES._items["scheduled"]


def _scheduled_run(path, kimg, resume=False):
    return Trainer("scheduled", "builtin:ring8?n=256", path, resume=resume, progress=False,
                   overrides={"train": {"kimg": kimg, "batch_size": 8, "tensorboard": False, "metrics": False,
                                        "snapshot_kimg": 1, "g_lr": 1e-3, "d_lr": 1e-3}})


def test_the_schedule_sets_batch_size_and_learning_rate_and_runs_its_callback(scheduled, tmp_path):
    tr = _scheduled_run(tmp_path / "run", 0.192)
    tr.setup()
    assert tr.batch_size == 16  # the schedule's, not --train.batch-size 8
    tr.run()
    # 4 iterations of 16, then 4 of 32: the callback ran before each, with every network by name
    assert [n for n, _ in scheduled] == [0, 16, 32, 48, 64, 96, 128, 160]
    assert scheduled[0][1] == ["D", "G", "G_ema"]
    assert tr.batch_size == 32 and tr.cur_nimg == 192 and tr.iteration == 8
    assert [g["lr"] for opt in tr.opt.values() for g in opt.param_groups] == [5e-4, 5e-4]


def test_a_resume_across_a_schedule_change_is_bitwise_identical(scheduled, tmp_path):
    """Stopped at 48 images (batch 16) and resumed to 192 (batch 32 from 64 on) = one run to 192."""
    _scheduled_run(tmp_path / "whole", 0.192).run()
    _scheduled_run(tmp_path / "split", 0.048).run()
    _scheduled_run(tmp_path / "split", 0.192, resume=True).run()
    a, b = (load_file(tmp_path / r / "checkpoints" / "ckpt-000000192" / "model.safetensors") for r in ("whole", "split"))
    assert sorted(a) == sorted(b) and all(torch.equal(a[k], b[k]) for k in a)
    changed = load_file(tmp_path / "split" / "checkpoints" / "ckpt-000000048" / "model.safetensors")
    assert any(not torch.equal(changed[k], a[k]) for k in a)  # the comparison is not of two untouched runs


def test_a_stale_prefetch_request_is_decoded_again():
    """A micro-batch requested before a batch-size change names other images: get() decodes the ones asked."""
    from gankit.data import open_dataset
    from gankit.data.prefetch import Prefetcher

    ds = open_dataset("builtin:digits?res=8")
    pf = Prefetcher(ds, workers=1)
    try:
        pf.request((0, 0), torch.arange(0, 4))
        x, _ = pf.get((0, 0), torch.arange(0, 8))
        assert torch.equal(x, ds.get_batch(torch.arange(0, 8))[0]) and pf.served == 0
        pf.request((8, 0), torch.arange(8, 12))
        pf.drop()
        assert pf.pending == {}
    finally:
        pf.close()
