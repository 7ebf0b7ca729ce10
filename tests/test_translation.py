"""pix2pix, CycleGAN and their data: networks and parameter counts as junyanz's, paired jitter,
the image pool, dataset layouts and checks, exact resume with the pool, processes, translate."""
import os
import random
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

import gankit
from gankit.data import open_dataset
from gankit.data.pairs import PairedDataset, UnpairedDataset, problems
from gankit.errors import ConfigError, DataError
from gankit.models.cyclegan import ImagePool
from gankit.nn.translation import PatchDiscriminator, ResnetGenerator, UNetGenerator, receptive_field
from gankit.training import checkpoint as ckpt

from .conftest import kill_after_first_checkpoint
from .conftest import run_inproc as run_main


def count(m):
    return sum(p.numel() for p in m.parameters())


# ----------------------------------------------------------------------------- networks
def test_parameter_counts_equal_junyanz():
    """The defaults build what junyanz's code builds (its printed totals: 54.414 M, 41.829 M, 11.378 M,
    2.765 M, 2.769 M; the CycleGAN figures exactly as the issue quotes them)."""
    with torch.device("meta"):
        cyc = gankit.create("cyclegan", resolution=256, channels=3, in_channels=3)
        p2p = gankit.create("pix2pix", resolution=256, channels=3, in_channels=3)
        assert count(cyc.G_A) == count(cyc.G_B) == 11_378_179  # resnet_9blocks, instance norm
        assert count(cyc.D_A) == count(cyc.D_B) == 2_764_737  # basic 70x70 PatchGAN, instance norm
        assert count(p2p.G) == 54_413_955  # unet_256, batch norm
        assert count(p2p.D) == 2_768_705  # 70x70 PatchGAN on 6 channels (A and B), batch norm
        assert count(UNetGenerator(3, 3, 7)) == 41_828_995  # unet_128
        assert count(ResnetGenerator(3, 3, 64, 6)) == 7_837_699  # resnet_6blocks
        assert gankit.create("cyclegan", resolution=128, channels=3, in_channels=3).config.resolution == 128
    assert receptive_field(3) == 70 and receptive_field(0) == 1  # the 70x70 PatchGAN and the PixelGAN
    # dropout only in the three innermost 512-channel decoder blocks of unet_256
    drops = [m for m in UNetGenerator(3, 3, 8).modules() if isinstance(m, torch.nn.Dropout)]
    assert len(drops) == 3 and all(d.p == 0.5 for d in drops)
    assert not any(isinstance(m, torch.nn.Dropout) for m in UNetGenerator(3, 3, 8, dropout=False).modules())


@pytest.mark.parametrize("res", [32, 64, 128])
def test_network_shapes(res):
    depth = int(np.log2(res))
    x = torch.randn(2, 3, res, res)
    assert UNetGenerator(3, 1, depth, 8).eval()(x).shape == (2, 1, res, res)
    assert UNetGenerator(3, 3, depth - 2, 8).eval()(x).shape == (2, 3, res, res)  # shallower: any multiple
    assert ResnetGenerator(3, 3, 8, 2, "instance")(x).shape == (2, 3, res, res)
    assert PatchDiscriminator(6, 8, 3)(torch.randn(2, 6, res, res)).shape == (2, 1, res // 8 - 2, res // 8 - 2)
    assert PatchDiscriminator(6, 8, 0)(torch.randn(2, 6, res, res)).shape == (2, 1, res, res)  # PixelGAN
    out = ResnetGenerator(3, 3, 8, 2)(x)
    assert out.min() >= -1 and out.max() <= 1
    assert PatchDiscriminator(6)(torch.randn(1, 6, 256, 256)).shape == (1, 1, 30, 30)


def test_config_errors_name_the_option():
    with pytest.raises(ConfigError, match="n-layers-D 3 is too deep for 16 px"):
        gankit.create("pix2pix", resolution=16, channels=1, in_channels=1, netG="unet")
    with pytest.raises(ConfigError, match="netG unet_256 halves the image 8 times"):
        gankit.create("pix2pix", resolution=64, channels=3, in_channels=3, n_layers_D=2)
    with pytest.raises(ConfigError, match="lambda-identity"):
        gankit.create("cyclegan", resolution=64, channels=3, in_channels=1)


# ----------------------------------------------------------------------------- data
def test_paired_jitter_keeps_alignment():
    """B is a pixelwise function of A (the negative); after the load-size resize, crop and flip the pair
    still is, while crops and flips vary by seed. An unpaired dataset jitters each image on its own."""
    g = torch.Generator().manual_seed(0)
    A = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8, generator=g)
    ds = PairedDataset("t", A, 255 - A, load=40)
    crops, flips = set(), 0
    for seed in range(12):
        b = ds.get_batch(torch.arange(6), seeds=[seed * 10 + i for i in range(6)])
        assert b["A"].shape == (6, 3, 32, 32)
        torch.testing.assert_close(b["B"], -b["A"], atol=1e-5, rtol=0)  # still aligned
        crops.add(tuple(b["A"][0, 0, 0, :3].tolist()))
        whole = torch.nn.functional.interpolate(A[:1].float().div(127.5).sub(1), size=40, mode="bicubic",
                                                align_corners=False).clamp(-1, 1)
        flips += not any(torch.allclose(b["A"][0], whole[0, :, i:i + 32, j:j + 32], atol=1e-5)
                         for i in range(9) for j in range(9))
    assert len(crops) > 6 and 0 < flips < 12  # random offsets, about half of them mirrored
    same = ds.get_batch(torch.arange(6), seeds=list(range(6)))
    torch.testing.assert_close(same["A"], ds.get_batch(torch.arange(6), seeds=list(range(6)))["A"])  # per seed
    un = UnpairedDataset("u", A, 255 - A, load=40)
    b = un.get_batch(torch.arange(6), seeds=list(range(6)))
    assert not torch.allclose(b["B"], -b["A"], atol=1e-3)  # unpaired: its own partner and crop


def test_unpaired_domains_have_their_own_order():
    A = torch.zeros(5, 1, 8, 8, dtype=torch.uint8) + torch.arange(5, dtype=torch.uint8).view(5, 1, 1, 1)
    B = torch.zeros(7, 1, 8, 8, dtype=torch.uint8) + torch.arange(7, dtype=torch.uint8).view(7, 1, 1, 1)
    ds = UnpairedDataset("u", A, B)
    assert len(ds) == 7
    b = ds.get_batch(torch.arange(7), seeds=list(range(100, 107)))
    got_a = ((b["A"][:, 0, 0, 0] + 1) * 127.5).round().long().tolist()
    got_b = ((b["B"][:, 0, 0, 0] + 1) * 127.5).round().long().tolist()
    assert got_a == [0, 1, 2, 3, 4, 0, 1]  # A in order
    assert got_b != list(range(7)) and set(got_b) <= set(range(7))  # B drawn from its own seeds


def _save(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def test_folder_layouts_and_dataset_check(tmp_path):
    rng = np.random.default_rng(0)
    img = lambda w, h=16: rng.integers(0, 255, (h, w, 3), dtype=np.uint8)  # noqa: E731
    # pix2pix's aligned layout: A|B side by side, split at half the width
    both = img(32)
    _save(tmp_path / "aligned" / "train" / "1.png", both)
    _save(tmp_path / "aligned" / "test" / "2.png", img(32))
    ds = open_dataset(f"{tmp_path / 'aligned'}?layout=aligned&res=16&load=16&flip=false")
    assert ds.info.kind == "paired" and len(ds) == 1 and len(ds.held_out()) == 1
    b = ds.get_batch(torch.tensor([0]))
    assert torch.equal(((b["A"][0] + 1) * 127.5).round().byte().permute(1, 2, 0), torch.from_numpy(both[:, :16]))
    back = open_dataset(f"{tmp_path / 'aligned'}?layout=aligned&res=16&direction=BtoA")
    assert torch.equal(back.A, ds.B)
    # A/ and B/ folders with matching names; problems named by path
    for n in ("x.png", "y.png"):
        _save(tmp_path / "pf" / "A" / n, img(16))
        _save(tmp_path / "pf" / "B" / n, img(16))
    assert open_dataset(f"{tmp_path / 'pf'}?res=16").info.kind == "paired"
    _save(tmp_path / "pf" / "A" / "lonely.png", img(16))
    _save(tmp_path / "pf" / "B" / "y.png", img(24, 24))
    found = problems(str(tmp_path / "pf"))
    assert (str(tmp_path / "pf" / "A" / "lonely.png"), f"missing partner: no {tmp_path / 'pf' / 'B' / 'lonely.png'}") \
        in found
    assert any(p == str(tmp_path / "pf" / "B" / "y.png") and "unequal sizes" in w for p, w in found)
    with pytest.raises(DataError, match="lonely.png: missing partner"):
        open_dataset(str(tmp_path / "pf"))
    # unpaired trainA / trainB; an empty domain is named
    for n in range(3):
        _save(tmp_path / "un" / "trainA" / f"{n}.jpg", img(16))
    (tmp_path / "un" / "trainB").mkdir()
    code, out, _ = run_main(["dataset", "check", str(tmp_path / "un")])
    assert code == 1 and f"{tmp_path / 'un' / 'trainB'}: empty domain" in out
    _save(tmp_path / "un" / "trainB" / "0.jpg", img(16))
    ds = open_dataset(f"{tmp_path / 'un'}?res=16")
    assert ds.info.kind == "unpaired" and (len(ds.A), len(ds.B)) == (3, 1)
    code, out, _ = run_main(["dataset", "check", str(tmp_path / "pf")])
    assert code == 1 and "missing partner" in out and "unequal sizes" in out


def test_builtin_two_domain_data_has_ground_truth():
    e2s = open_dataset("builtin:edges2shapes?res=16&n=8&n_test=4")
    assert e2s.info.kind == "paired" and len(e2s.held_out()) == 4
    assert (e2s.A[:, 0] < 128).any() and (e2s.A == e2s.A[:, :1]).all()  # black edges on white, grey RGB
    cs = open_dataset("builtin:shapes-colorswap?res=16&n=8&n_test=4")
    assert torch.equal(cs.truth, 255 - cs.A) and not torch.equal(cs.B, cs.truth)  # B: independent draws
    inv = open_dataset("builtin:digits-invert")
    assert len(inv.A) == len(inv.B) == 750 and torch.equal(inv.held_out().truth, 255 - inv.held_out().A)
    edges = open_dataset("builtin:digits-edges")
    x = edges.held_out().A.float()
    torch.testing.assert_close(edges.held_out().truth.float(),
                               (torch.nn.functional.max_pool2d(x, 3, 1, 1) - x).round())  # 3x3 dilation - image


# ----------------------------------------------------------------------------- the pool
def test_image_pool_keeps_fifty_and_mixes_old_with_new():
    pool = ImagePool(50)
    g = torch.Generator().manual_seed(0)
    first = pool.query(torch.arange(50.0).view(50, 1, 1, 1), g)
    assert torch.equal(first, torch.arange(50.0).view(50, 1, 1, 1))  # filling: returned as given
    new = torch.arange(1000.0, 1200.0).view(200, 1, 1, 1)
    out = pool.query(new, g)
    assert len(pool.images) == 50
    as_given = (out == new).float().mean()
    assert 0.35 < as_given < 0.65  # about half returned as given, half swapped for a stored one
    assert 20 < int((out < 1000).sum()) <= 50  # ... the first swaps return the first 50 images
    assert sorted(t.item() for t in pool.images) != list(range(50))  # the history moved on
    again = ImagePool(50)
    again.load_state_dict(pool.state_dict())
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    x = torch.randn(10, 1, 1, 1)
    assert torch.equal(pool.query(x, g1), again.query(x, g2))  # the state round-trips exactly
    with pytest.raises(ValueError):
        ImagePool(4).load_state_dict(pool.state_dict())


# ----------------------------------------------------------------------------- resume, processes
TINY = ["--model.ngf", "4", "--model.ndf", "4", "--model.n-layers-D", "2", "--model.pool-size", "6",
        "--train.batch-size", "2", "--train.tensorboard", "false", "--train.metrics", "false", "--no-progress"]


def _cli(args, **kw):
    return subprocess.Popen([sys.executable, "-m", "gankit", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def test_cyclegan_sigkill_then_resume_is_bitwise_identical_pool_included(tmp_path):
    args = ["train", "cyclegan", "--data", "builtin:digits-invert?res=16", *TINY, "--kimg", "0.2",
            "--train.snapshot-kimg", "0.02"]
    ref = tmp_path / "ref"
    p = _cli(args + ["--out", ref])
    assert p.wait(timeout=300) == 0, p.stderr.read()
    run, kills, rng = tmp_path / "killed", 0, random.Random(7)
    for _ in range(2):
        p = _cli(args + ["--out", run] + (["--resume"] if (run / "config.json").exists() else []))
        kills += kill_after_first_checkpoint(p, run, rng.uniform(0.2, 1.0))
    assert kills >= 1
    p = _cli(args + ["--out", run, "--resume"])
    assert p.wait(timeout=300) == 0, p.stderr.read()
    a, b = (ckpt.list_checkpoints(r)[-1] for r in (ref, run))
    ta, tb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta)
    pa, pb = (ckpt.load_state(c)["family"]["pools"] for c in (a, b))
    for k in ("A", "B"):
        assert pa[k]["images"].shape[0] == 6 and torch.equal(pa[k]["images"], pb[k]["images"])


def test_cyclegan_two_processes_equal_one_with_two_rounds(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # instance norm (the paper's): per-image statistics, so rounds of one image are the batch of two
    common = ["cyclegan", "--data", "builtin:digits-invert?res=16", *TINY, "--kimg", "0.04"]
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                        "-m", "gankit", "train", *common, "--out", str(tmp_path / "ddp")],
                       capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "largest difference of any weight between processes: 0\n" in p.stdout  # every rank identical
    code, _, err = run_main(["train", *common, "--train.batch-gpu", "1", "--out", str(tmp_path / "one")])
    assert code == 0, err
    a, b = (load_file(str(ckpt.list_checkpoints(tmp_path / r)[-1] / "model.safetensors")) for r in ("ddp", "one"))
    diff = max(float((a[k].float() - b[k].float()).abs().max()) for k in a)
    assert diff < 1e-4, diff  # float summation order only
    pa, pb = (ckpt.load_state(ckpt.list_checkpoints(tmp_path / r)[-1])["family"]["pools"] for r in ("ddp", "one"))
    assert all(torch.allclose(pa[k]["images"], pb[k]["images"], atol=1e-4) for k in "AB")  # the same history


# ----------------------------------------------------------------------------- command line
@pytest.fixture(scope="module")
def p2p_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("p2p") / "run"
    code, _, err = run_main(["train", "pix2pix", "--data", "builtin:edges2digits", "--out", str(run), "--model.netG",
                             "unet", "--model.ngf", "4", "--model.ndf", "4", "--model.n-layers-D", "2", "--kimg",
                             "0.064", "--train.batch-size", "8", "--train.tensorboard", "false", "--no-progress"])
    assert code == 0, err
    return run


def test_translate_keeps_names_and_states_its_size_policy(p2p_run, tmp_path):
    src = tmp_path / "in"
    _save(src / "a.png", np.full((40, 24, 3), 200, np.uint8))  # not square, not 16 px, RGB for a grey run
    _save(src / "sub" / "b.jpg", np.zeros((16, 16, 3), np.uint8))
    code, out, err = run_main(["translate", str(p2p_run), "--input", str(src), "--out", str(tmp_path / "o")])
    assert code == 0, err
    assert sorted(p.relative_to(tmp_path / "o").as_posix() for p in (tmp_path / "o").rglob("*.png")) == \
        ["a.png", "sub/b.png"]
    assert Image.open(tmp_path / "o" / "a.png").size == (16, 16)  # the run's resolution
    code, _, _ = run_main(["translate", str(p2p_run), "--input", str(src / "a.png"), "--out", str(tmp_path / "k"),
                           "--keep-size"])
    assert code == 0 and Image.open(tmp_path / "k" / "a.png").size == (24, 40)  # back to the input's size
    code, _, err = run_main(["translate", str(p2p_run), "--input", str(src), "--out", str(tmp_path / "x"),
                             "--direction", "BtoA"])
    assert code == 2 and "translates AtoB only" in err
    code, _, err = run_main(["generate", str(p2p_run), "--out", str(tmp_path / "g.png")])
    assert code == 2 and "gankit translate" in err


def test_eval_of_a_translation_run_compares_with_the_target_domain(p2p_run, tmp_path):
    out = tmp_path / "eval.json"
    code, text, err = run_main(["eval", str(p2p_run), "--metrics", "fid,kid", "--extractor", "digits",
                                "--num-gen", "300", "--no-cache", "--out", str(out)])
    assert code == 0, err
    import json

    res = json.loads(out.read_text())
    assert res["num_real"] == 297  # the held-out B images
    assert {"fd-digits", "kd-digits", "held_out_l1", "held_out_psnr", "held_out_l1_mean_image"} <= set(res)


def test_export_of_a_translation_run_takes_an_image(p2p_run, tmp_path):
    """The exported pix2pix G maps A to B in eval mode (no dropout), equal to the network in eval mode."""
    code, out, err = run_main(["export", str(p2p_run), "--out", str(tmp_path / "g.pt")])
    assert code == 0 and "inputs A" in out, err
    G = gankit.load(p2p_run)
    A = torch.rand(3, 1, 16, 16) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(torch.jit.load(str(tmp_path / "g.pt"))(A), G.eval()(A).clamp(-1, 1), atol=1e-5)
    code, _, err = run_main(["export", str(p2p_run), "--trunc", "0.5", "--out", str(tmp_path / "g2.pt")])
    assert code == 2 and "mapping network" in err


# ----------------------------------------------------------------------------- quality (one short run each)
def _untrained_metrics(tr):
    """metrics.json's figures for freshly built networks of the same config (the bar they must miss)."""
    fam = tr.family
    fresh = fam.networks(tr.model_cfg)
    torch.manual_seed(0)
    return fam.final_metrics(fresh[fam.inference_name(tr.model_cfg).replace("_ema", "")], tr.dataset, "cpu",
                             nets=fresh)


def test_pix2pix_learns_edges2shapes(tmp_path):
    """16 kimg of cpu-32 (about 40 s): held-out L1 far below the identity and mean-image baselines, and
    the shapes classifier sees the right shape and colour in most translations. Seeds 0-2
    (benchmarks/quality_seeds.py): L1 0.014-0.023, shape 79.5-88.5%, colour 80.5-90.5% (chance 27%, 26%)."""
    tr = gankit.Trainer("pix2pix", "builtin:edges2shapes", tmp_path / "run", preset="cpu-32", progress=False,
                        overrides={"train": {"kimg": 16, "tensorboard": False, "snapshot_kimg": 100}})
    m = tr.run()["metric_values"]
    bar = lambda r: (r["l1"] < 0.6 * r["l1_mean_image"] and r["l1"] < 0.1 * r["l1_identity"]  # noqa: E731
                     and r["shape_agreement"] > 2 * r["shape_chance"] and r["colour_agreement"] > 2 * r["colour_chance"])
    assert bar(m), m
    assert not bar(_untrained_metrics(tr))


def test_cogan_pairs_agree_and_are_digits(tmp_path):
    """60 kimg of cpu-digits on digits-invert: one z makes a digit and its negative (pixel agreement well
    above unpaired samples'), and both halves are recognised as digits. Seeds 0-2 (benchmarks/
    quality_seeds.py): agreement 0.975-0.984 vs unpaired 0.753-0.820, recognised 0.29-0.51 (A) and
    0.25-0.50 (B)."""
    tr = gankit.Trainer("cogan", "builtin:digits-invert", tmp_path / "run", preset="cpu-digits", progress=False,
                        overrides={"train": {"kimg": 60, "tensorboard": False, "snapshot_kimg": 100}})
    m = tr.run()["metric_values"]
    bar = lambda r: (r["pixel_agreement"] > r["pixel_agreement_unpaired"] + 0.1  # noqa: E731
                     and r["digits_recognised_A"] > 0.2 and r["digits_recognised_B"] > 0.2)
    assert bar(m), m
    fresh = tr.family.networks(tr.model_cfg)
    assert not bar(tr.family.final_metrics(fresh["G"], tr.dataset, "cpu"))


def test_cyclegan_learns_the_negative_of_digits(tmp_path):
    """6 kimg of cpu-digits on digits-invert (about 50 s), from unpaired halves: held-out translations
    are close to the true negatives, keep their digit as the classifier sees it, and cycle back.
    Seeds 0-2: L1 0.106-0.109 (mean image 0.313), digit agreement 98.3-99.0%, cycle L1 0.098-0.099."""
    tr = gankit.Trainer("cyclegan", "builtin:digits-invert", tmp_path / "run", preset="cpu-digits", progress=False,
                        overrides={"train": {"tensorboard": False, "snapshot_kimg": 100}})
    m = tr.run()["metric_values"]
    fresh = _untrained_metrics(tr)
    bar = lambda r: (r["l1"] < 0.6 * r["l1_mean_image"] and r["digit_agreement"] > 5 * r["digit_chance"]  # noqa: E731
                     and r["cycle_l1_A"] < 0.2)
    assert bar(m), m
    assert not bar(fresh), fresh
    assert m["cycle_l1_A"] < 0.5 * fresh["cycle_l1_A"], (m, fresh)
