"""Distribution and latent-space metrics: each checked against a closed form or a direct formula."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from gankit.metrics import (FID, KID, frechet_distance, inception_score, kid, precision_recall,
                            separability_scores)
from gankit.metrics.fid import fid_from_features
from gankit.metrics.weights import WeightsError

from .conftest import run_cli


# ----------------------------------------------------------------------------- FID
def test_frechet_distance_closed_form_and_zero():
    rng = np.random.default_rng(0)
    d = 6
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    s1, s2 = rng.uniform(0.5, 2, d), rng.uniform(0.5, 2, d)
    # diagonal covariances: ||mu1 - mu2||^2 + sum (s1 + s2 - 2 sqrt(s1 s2))
    expect = ((mu1 - mu2) ** 2).sum() + (s1 + s2 - 2 * np.sqrt(s1 * s2)).sum()
    assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expect, rel=1e-10)
    # full, non-commuting covariances: against scipy's sqrtm of S1 S2 (the reference implementations)
    import scipy.linalg

    a, b = rng.normal(size=(d, d)), rng.normal(size=(d, d))
    c1, c2 = a @ a.T + 0.1 * np.eye(d), b @ b.T + 0.1 * np.eye(d)
    ref = ((mu1 - mu2) ** 2).sum() + np.trace(c1 + c2 - 2 * scipy.linalg.sqrtm(c1 @ c2).real)
    assert frechet_distance(mu1, c1, mu2, c2) == pytest.approx(ref, rel=1e-9)
    # a set against itself is 0; with a rank-deficient covariance (more dims than samples) the
    # square roots of float64 rounding in the null space leave about 1e-6 (scipy's sqrtm too)
    x = torch.randn(500, 80)
    assert abs(fid_from_features(x, x)) < 1e-9
    assert abs(fid_from_features(x[:50], x[:50])) < 1e-5
    assert fid_from_features(x, x + 1) == pytest.approx(80, rel=1e-6)  # a shift by 1 in each of 80 dims


def test_streaming_fid_equals_one_shot():
    x, y = torch.randn(300, 10), torch.randn(200, 10) * 1.5 + 0.3
    m = FID()
    for part in x.split(64):
        m.update_features(part, real=True)
    for part in y.split(50):
        m.update_features(part)
    xn, yn = x.double().numpy(), y.double().numpy()
    ref = frechet_distance(xn.mean(0), np.cov(xn, rowvar=False), yn.mean(0), np.cov(yn, rowvar=False))
    assert m.compute()["fid"] == pytest.approx(ref, rel=1e-9)
    m.reset()
    with pytest.raises(ValueError):
        m.compute()


# ----------------------------------------------------------------------------- KID
def test_kid_matches_direct_formula():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(12, 5, generator=g), torch.randn(12, 5, generator=g) + 0.5
    d = 5

    def k(a, b):
        return (float(a.double() @ b.double()) / d + 1) ** 3

    m = len(x)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    mean, std = kid(real=y, fake=x, num_subsets=3, subset_size=100)
    assert mean == pytest.approx(xx + yy - 2 * xy, rel=1e-9)  # one subset = the whole sets
    assert std == pytest.approx(0, abs=1e-12)
    # on subsets: mean over subsets, an unbiased estimate that is near 0 for one distribution
    same = KID(num_subsets=50, subset_size=100)
    same.update_features(torch.randn(400, 8, generator=g), real=True)
    same.update_features(torch.randn(400, 8, generator=g))
    far = KID(num_subsets=50, subset_size=100)
    far.update_features(torch.randn(400, 8, generator=g), real=True)
    far.update_features(torch.randn(400, 8, generator=g) + 1)
    r_same, r_far = same.compute(), far.compute()
    assert abs(r_same["kid"]) < 3 * r_same["kid_std"] + 1e-3
    assert r_far["kid"] > 10 * abs(r_same["kid"]) and r_far["kid"] > 0.5


# ----------------------------------------------------------------------------- IS
def test_inception_score_bounds():
    assert inception_score(torch.zeros(100, 10))[0] == pytest.approx(1.0, abs=1e-12)  # uniform predictions
    confident = torch.eye(10).repeat(20, 1) * 100  # balanced classes in every split, each image certain
    mean, std = inception_score(confident, splits=10)
    assert mean == pytest.approx(10.0, rel=1e-9) and std < 1e-9
    one_class = torch.zeros(200, 10)
    one_class[:, 3] = 100
    assert inception_score(one_class)[0] == pytest.approx(1.0, abs=1e-9)  # collapse scores 1


# ----------------------------------------------------------------------------- precision / recall
def test_precision_recall_identical_and_far_sets():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 16, generator=g)
    assert precision_recall(x, x.clone()) == (1.0, 1.0)
    p, r = precision_recall(x, torch.randn(300, 16, generator=g) + 50)
    assert p == 0.0 and r == 0.0
    # a generator covering half the real distribution: precision high, recall low
    real = torch.cat([torch.randn(300, 2, generator=g) - 5, torch.randn(300, 2, generator=g) + 5])
    fake = torch.randn(300, 2, generator=g) + 5
    p, r = precision_recall(real, fake)
    assert p > 0.9 and 0.3 < r < 0.7


# ----------------------------------------------------------------------------- PPL
class LinearG(nn.Module):
    """w = z (identity mapping), image = A w: a generator whose path length is known exactly."""

    def __init__(self, z_dim=4, res=4):
        super().__init__()
        self.z_dim, self.c_dim, self.img_resolution = z_dim, 0, res
        self.A = nn.Parameter(torch.randn(3 * res * res, z_dim, dtype=torch.float64))
        self.mapping = self._map
        self.synthesis = self._synth

    def _map(self, z, c=None, update_w_avg=False, **kw):
        return z[:, None, :]  # (B, num_ws = 1, w_dim)

    def _synth(self, ws, noise_mode="const"):
        return (ws[:, 0] @ self.A.T).view(-1, 3, self.img_resolution, self.img_resolution)


def test_ppl_of_linear_generator_matches_analytic_value():
    from gankit.metrics.perceptual import PixelDistance
    from gankit.metrics.ppl import PerceptualPathLength, filtered_mean

    G = LinearG()
    m = PerceptualPathLength("w", "full")
    m.update(G, PixelDistance(), 500, torch.Generator().manual_seed(1))
    # lerp in W: g(w0 + (t + eps)(w1 - w0)) - g(w0 + t(w1 - w0)) = eps A (w1 - w0), so each pair's
    # value is mean((A (w1 - w0))^2), whatever t is
    g = torch.Generator().manual_seed(1)
    torch.rand(500, generator=g)
    z0, z1 = torch.randn(1000, 4, generator=g).chunk(2)
    exact = ((z1.double() - z0.double()) @ G.A.detach().T).square().mean(1).numpy()
    np.testing.assert_allclose(m.values(), exact, rtol=1e-6)
    assert m.compute()["ppl-w"] == pytest.approx(filtered_mean(exact), rel=1e-6)
    # its expectation is 2 tr(A^T A) / D for w ~ N(0, I); the filtered mean is near it
    analytic = 2 * float(G.A.detach().square().sum()) / G.A.shape[0]
    assert m.compute()["ppl-w"] == pytest.approx(analytic, rel=0.15)
    # end-point sampling of a linear G is the same in W; in Z it differs because slerp bends the path
    z = PerceptualPathLength("z", "end")
    z.update(G, PixelDistance(), 200, torch.Generator().manual_seed(2))
    assert np.isfinite(z.compute()["ppl-z-end"])


def test_slerp_stays_on_sphere_and_hits_endpoints():
    from gankit.metrics.ppl import slerp

    a, b = torch.randn(5, 8, dtype=torch.float64), torch.randn(5, 8, dtype=torch.float64)
    for t in (0.0, 0.3, 1.0):
        s = slerp(a, b, torch.full((5, 1), t, dtype=torch.float64))
        np.testing.assert_allclose(s.norm(dim=1), 1, rtol=1e-12)
    np.testing.assert_allclose(slerp(a, b, torch.zeros(5, 1, dtype=torch.float64)), a / a.norm(dim=1, keepdim=True),
                               atol=1e-12)
    np.testing.assert_allclose(slerp(a, b, torch.ones(5, 1, dtype=torch.float64)), b / b.norm(dim=1, keepdim=True),
                               atol=1e-12)


# ----------------------------------------------------------------------------- separability
def test_separability_is_near_best_for_a_linear_attribute():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(2000, 8))
    v = rng.normal(size=(8, 3))
    probs = 1 / (1 + np.exp(-5 * (z @ v)))  # three attributes, each a linear function of z
    scores = separability_scores({"linear": z, "unrelated": rng.normal(size=(2000, 8))}, probs)
    assert scores["linear"] < 1.1  # exp(sum H(Y|X)) with H near 0
    assert scores["unrelated"] > 4  # about exp(3 ln 2) = 8 when the latent says nothing


# ----------------------------------------------------------------------------- extractors and weights
def _random_inception_file(path, fmt="pth"):
    from gankit.metrics.inception import FIDInceptionV3

    torch.manual_seed(0)
    net = FIDInceptionV3()
    sd = net.state_dict()
    if fmt == "pth":  # pytorch-fid and torch-fidelity: torchvision names, with BatchNorm counters
        torch.save(sd, path)
    else:
        from safetensors.torch import save_file

        save_file({k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}, str(path))
    return net


@pytest.mark.parametrize("fmt", ["pth", "safetensors"])
def test_inception_loads_each_layout_and_runs(tmp_path, fmt):
    from gankit.metrics.features import InceptionExtractor

    path = tmp_path / f"inception.{fmt}"
    ref = _random_inception_file(path, fmt).eval()
    ext = InceptionExtractor(path, check_hash=False)
    x = torch.randint(0, 256, (2, 3, 299, 299), dtype=torch.uint8)
    out = ext(x)
    assert out["features"].shape == (2, 2048) and out["logits"].shape == (2, 1008)
    with torch.no_grad():
        np.testing.assert_allclose(out["features"], ref(x)["features"], rtol=1e-5, atol=1e-6)
    assert ext(torch.randint(0, 256, (1, 1, 32, 32), dtype=torch.uint8))["features"].shape == (1, 2048)
    # the hash is checked: a random file is refused with the fix in the message
    with pytest.raises(WeightsError, match="sha256"):
        InceptionExtractor(path)


def test_missing_inception_weights_say_where_to_put_them(tmp_path, monkeypatch):
    from gankit.metrics.features import InceptionExtractor

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("GANKIT_INCEPTION_WEIGHTS", raising=False)
    with pytest.raises(WeightsError) as e:
        InceptionExtractor()
    msg = str(e.value)
    assert "GANKIT_INCEPTION_WEIGHTS" in msg and "--inception-weights" in msg and str(tmp_path) in msg
    # "auto" falls back to EfficientNet-Lite0 when Inception is absent
    from gankit.metrics.features import build_extractor

    assert build_extractor("auto").name == "efficientnet-lite0"


def test_resize_matches_tensorflow_rule():
    from gankit.metrics.inception import resize_bilinear_tf1

    x = torch.arange(2 * 5 * 7, dtype=torch.float32).view(1, 2, 5, 7) ** 1.5
    out = resize_bilinear_tf1(x, 9)
    xd = x.double()
    for oy in range(9):
        for ox in range(9):
            sy, sx = oy * 5 / 9, ox * 7 / 9  # TF 1.x: source = dest * in / out, no half-pixel offset
            y0, x0 = int(sy), int(sx)
            y1, x1 = min(y0 + 1, 4), min(x0 + 1, 6)
            fy, fx = sy - y0, sx - x0
            top = xd[..., y0, x0] * (1 - fx) + xd[..., y0, x1] * fx
            bot = xd[..., y1, x0] * (1 - fx) + xd[..., y1, x1] * fx
            np.testing.assert_allclose(out[..., oy, ox], top * (1 - fy) + bot * fy, rtol=1e-5)


def test_efficientnet_lite0_recognises_real_photos():
    """The shipped ImageNet weights, our definition and preprocessing: scikit-learn's two sample
    photos are classified as ImageNet's daisy (985) and palace (698)."""
    from sklearn.datasets import load_sample_image

    from gankit.metrics.features import build_extractor

    ext = build_extractor("efficientnet-lite0")
    imgs = []
    for name in ("flower.jpg", "china.jpg"):
        a = torch.from_numpy(np.array(load_sample_image(name))).permute(2, 0, 1)
        s = min(a.shape[1:])
        top, left = (a.shape[1] - s) // 2, (a.shape[2] - s) // 2
        imgs.append(a[:, top:top + s, left:left + s])
    logits = torch.stack([ext(x[None])["logits"][0] for x in imgs])
    assert logits[0].argmax() == 985
    assert 698 in logits[1].topk(2).indices


def test_domain_features_tell_real_shapes_from_noise():
    from gankit.data.builtin.shapes import shapes
    from gankit.metrics.features import build_extractor

    ext = build_extractor("shapes")
    a, b = shapes(res=32, n=400, seed=5).data, shapes(res=32, n=400, seed=6).data
    noise = torch.randint(0, 256, a.shape, dtype=torch.uint8)
    fa, fb, fn = (ext(x)["features"] for x in (a, b, noise))
    assert fid_from_features(fa, fb) * 20 < fid_from_features(fa, fn)


def test_lpips_formula_and_weight_files(tmp_path):
    from gankit.metrics.perceptual import LPIPS, VGG16Features, layer_distance

    torch.manual_seed(0)
    vgg = VGG16Features()
    sd = {k: v for k, v in vgg.state_dict().items()}
    sd["classifier.0.weight"] = torch.zeros(2, 2)  # torchvision's file also has the classifier
    torch.save(sd, tmp_path / "vgg16.pth")
    heads = {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) for i, c in enumerate([64, 128, 256, 512, 512])}
    torch.save(heads, tmp_path / "vgg.pth")
    d = LPIPS(tmp_path / "vgg16.pth", tmp_path / "vgg.pth", check_hash=False)
    x, y = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    assert torch.allclose(d(x, x), torch.zeros(2), atol=1e-7)
    assert torch.allclose(d(x, y), d(y, x)) and (d(x, y) > 0).all()
    # LPIPS eq. 1 by hand for one layer
    f0, f1 = [torch.randn(2, 4, 3, 3)], [torch.randn(2, 4, 3, 3)]
    w = [torch.rand(4)]
    n0, n1 = f0[0] / f0[0].norm(dim=1, keepdim=True), f1[0] / f1[0].norm(dim=1, keepdim=True)
    ref = ((n0 - n1) ** 2 * w[0].view(1, 4, 1, 1)).sum(1).mean((1, 2))
    assert torch.allclose(layer_distance(f0, f1, w), ref, atol=1e-6)
    with pytest.raises(WeightsError, match="sha256"):
        LPIPS(tmp_path / "vgg16.pth", tmp_path / "vgg.pth")


# ----------------------------------------------------------------------------- evaluate and the CLI
def test_evaluate_all_metrics_and_cache(tmp_path):
    import gankit
    from gankit.data import open_dataset
    from gankit.metrics import evaluate

    G = gankit.create("stylegan2", preset="cpu-shapes", resolution=8, channel_max=16).G
    ds = open_dataset("builtin:shapes?res=8&n=200")
    kw = dict(data=ds, num_gen=64, batch=32, extractor="shapes", distance="shapes", cache_path=tmp_path)
    G.train()
    res = evaluate(G, "fid,kid,is,pr,ppl-w,ppl-z-end,separability", **kw)
    assert G.training and all(p.requires_grad for p in G.parameters())  # the caller's G is left as it was
    for k in ("fd-shapes", "kd-shapes", "kd-shapes_std", "is-shapes", "precision-shapes", "recall-shapes",
              "ppl-w-shapes", "ppl-z-end-shapes", "separability-z", "separability-w"):
        assert np.isfinite(res[k]), k
    assert res["num_real"] == 200 and len(list(tmp_path.glob("*.npz"))) == 1
    again = evaluate(G, "fid", **kw)  # from the cache
    assert again["fd-shapes"] == res["fd-shapes"]
    # the real data against itself scores 0, and an untrained generator scores far from it
    assert res["fd-shapes"] > 1


def test_eval_cli(tmp_path):
    run = tmp_path / "run"
    p = run_cli("train", "stylegan2", "--preset", "cpu-digits", "--data", "builtin:digits", "--out", run,
                "--kimg", "0.064", "--train.batch-size", "8", "--train.snapshot-kimg", "1")
    assert p.returncode == 0, p.stderr
    env = dict(os.environ, GANKIT_CACHE=str(tmp_path / "cache"))
    p = subprocess.run([sys.executable, "-m", "gankit", "eval", str(run), "--metrics", "fid,is,ppl-w",
                        "--extractor", "digits", "--distance", "digits", "--num-gen", "100",
                        "--out", str(tmp_path / "e.json")], capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr
    res = json.loads((tmp_path / "e.json").read_text())
    assert res["data"] == "builtin:digits" and res["fd-digits"] > 0 and res["is-digits"] >= 1 and res["ppl-w-digits"] > 0
    bad = run_cli("eval", run, "--metrics", "fidd")
    assert bad.returncode == 2 and "did you mean fid" in bad.stderr and "Traceback" not in bad.stderr
    bad = run_cli("eval", run, "--metrics", "fid", "--extractor", "inception", "--inception-weights",
                  tmp_path / "nope.pth")
    assert bad.returncode == 2 and "nope.pth" in bad.stderr and "Traceback" not in bad.stderr


def test_trainer_logs_eval_metrics_without_changing_the_run(tmp_path, monkeypatch):
    from safetensors.torch import load_file

    from gankit.training.trainer import Trainer

    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))

    def run(out, **extra):
        t = Trainer("stylegan2", "builtin:digits", out, preset="cpu-digits", progress=False,
                    overrides={"train": {"kimg": 0.256, "batch_size": 16, "snapshot_kimg": 1, "sample_kimg": 1,
                                         "tensorboard": False, "metrics": False, **extra}})
        return t.run()

    s = run(tmp_path / "a", eval_metrics="fid,kid", eval_kimg=0.064, eval_num_gen=64, eval_extractor="digits")
    recs = [json.loads(x) for x in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    evals = [r for r in recs if "eval/fd-digits" in r]
    assert len(evals) == 4 and all(r["eval/fd-digits"] > 0 and "eval/kd-digits" in r for r in evals)
    assert s["eval"]["eval/fd-digits"] == evals[-1]["eval/fd-digits"]
    run(tmp_path / "b")
    wa, wb = (load_file(str(sorted((tmp_path / r / "checkpoints").iterdir())[-1] / "model.safetensors"))
              for r in "ab")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)  # evaluating did not disturb training


def test_streaming_update_with_images():
    from gankit.data.builtin.shapes import shapes
    from gankit.metrics.base import to_uint8
    from gankit.metrics.features import build_extractor

    ext = build_extractor("shapes")
    real = shapes(res=32, n=64, seed=1).data
    fake = torch.rand(64, 3, 32, 32) * 2 - 1  # floats in [-1, 1] are quantised as image files would be
    m = FID(ext)
    m.update(real[:32], real=True)
    m.update(real[32:], real=True)
    m.update(fake)
    expect = fid_from_features(ext(real)["features"], ext(to_uint8(fake))["features"])
    assert m.compute()["fd-shapes"] == pytest.approx(expect, rel=1e-6)
    assert torch.equal(to_uint8(torch.tensor([-1.0, 0.0, 1.0])), torch.tensor([0, 128, 255], dtype=torch.uint8))
