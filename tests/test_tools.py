"""The StyleGAN toolbox: generation by seed, style mixing, interpolation."""
import numpy as np
import pytest
import torch
from PIL import Image

import gankit
from gankit.errors import ConfigError
from gankit.tools import generate, style_mix_grid
from gankit.tools.mixing import parse_styles

from .conftest import run_cli


@pytest.fixture(scope="module")
def G():
    torch.manual_seed(0)
    G = gankit.create("stylegan2", preset="cpu-shapes", resolution=16, channel_max=32).G.eval()
    for n, p in G.named_parameters():  # non-zero noise strengths, so the noise mode matters
        if n.endswith("noise_strength"):
            p.data.fill_(0.5)
    return G


def test_generate_is_deterministic_per_seed(G):
    a = generate(G, [3, 4, 5])
    b = generate(G, [5, 4])
    assert torch.equal(a[1], b[1]) and torch.equal(a[2], b[0])  # independent of the other seeds
    assert torch.allclose(generate(G, [3, 4, 5], batch=3), a, atol=1e-4)  # batched: the same to rounding
    r1, r2 = generate(G, [4, 5], noise_mode="random"), generate(G, [5, 4], noise_mode="random")
    assert torch.equal(r1[0], r2[1])  # random noise is drawn per seed too
    assert not torch.equal(r1[0], a[1])  # and differs from the constant noise
    assert not torch.equal(generate(G, [4], noise_mode="none")[0], a[1])
    t = generate(G, [4], truncation_psi=0.0)[0]
    assert torch.allclose(t, generate(G, [9], truncation_psi=0.0)[0])  # psi 0: every seed gives the average
    with pytest.raises(ConfigError, match="not conditional"):
        generate(G, [0], class_idx=1)


def test_style_mixing_grid_layout_and_copied_layers(G):
    rows, cols = [1, 2], [7, 8, 9]
    grid = style_mix_grid(G, rows, cols, "coarse")
    assert grid.shape == (3, 4, 3, 16, 16)
    assert torch.allclose(grid[0, 1:], generate(G, cols), atol=1e-4)  # sources across the top
    assert torch.allclose(grid[1:, 0], generate(G, rows), atol=1e-4)  # destinations down the left
    assert (grid[0, 0] == -1).all()
    everything = style_mix_grid(G, rows, cols, f"0-{G.num_ws - 1}")
    for i in range(2):  # all layers copied: each cell is its source
        assert torch.allclose(everything[1 + i, 1:], everything[0, 1:], atol=1e-4)
    # coarse only: the cell is the destination's ws with ws 0-3 from the source
    z = torch.stack([torch.randn(G.z_dim, generator=torch.Generator().manual_seed(s)) for s in (2, 8)])
    ws = G.mapping(z, None, update_w_avg=False)
    mixed = ws[:1].clone()
    mixed[:, :4] = ws[1:, :4]
    assert torch.allclose(grid[2, 2], G.synthesis(mixed, noise_mode="const").clamp(-1, 1)[0], atol=1e-4)
    assert not torch.allclose(grid[2, 2], grid[0, 2]) and not torch.allclose(grid[2, 2], grid[2, 0])
    assert parse_styles("middle", G) == [4, 5] and parse_styles("0-1,5", G) == [0, 1, 5]
    with pytest.raises(ConfigError, match="no fine layers"):
        parse_styles("fine", G)


def test_generate_and_mix_cli(tmp_path):
    run = tmp_path / "run"
    p = run_cli("train", "stylegan2", "--preset", "cpu-digits", "--data", "builtin:digits", "--out", run,
                "--kimg", "0.032", "--train.batch-size", "8", "--train.snapshot-kimg", "1")
    assert p.returncode == 0, p.stderr
    for extra in ([], ["--trunc", "0.5", "--noise", "random"]):
        assert run_cli("generate", run, "--seeds", "0-3", "--out", tmp_path / "a.png", *extra).returncode == 0
        assert run_cli("generate", run, "--seeds", "0-3", "--out", tmp_path / "b.png", *extra).returncode == 0
        assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    p = run_cli("mix", run, "--rows", "0-2", "--cols", "5-8", "--styles", "coarse", "--out", tmp_path / "m.png")
    assert p.returncode == 0, p.stderr
    img = np.asarray(Image.open(tmp_path / "m.png"))
    assert img.shape[0] * 5 == img.shape[1] * 4  # 4 rows (sources + 3) by 5 columns of square cells
    for args, msg in ((["--trunc", "5"], "[-1, 2]"), (["--class", "1"], "not conditional")):
        bad = run_cli("generate", run, "--seeds", "0", "--out", tmp_path / "c.png", *args)
        assert bad.returncode == 2 and msg in bad.stderr and "Traceback" not in bad.stderr
    bad = run_cli("mix", run, "--rows", "0", "--cols", "1", "--styles", "9-12", "--out", tmp_path / "m.png")
    assert bad.returncode == 2 and "ws 0.." in bad.stderr


@pytest.mark.parametrize("space", ["z", "w"])
def test_interpolation_endpoints_are_the_seeds_images(G, space):
    from gankit.tools.interpolate import interpolation_ws, render

    ws = interpolation_ws(G, [3, 11, 5], space, frames=4)
    assert ws.shape[0] == 2 * 4 + 1
    frames = render(G, ws)
    ref = generate(G, [3, 11, 5])
    for k, i in enumerate((0, 4, 8)):
        assert torch.allclose(frames[i], ref[k], atol=1e-4)
    assert not torch.allclose(frames[2], ref[0], atol=1e-2) and not torch.allclose(frames[2], ref[1], atol=1e-2)


def test_video_gif_and_stochastic_variation(G, tmp_path):
    import imageio.v2 as imageio

    from gankit.tools.interpolate import (interpolation_ws, render, stochastic_variation, to_frames, write_gif,
                                          write_video)

    frames = to_frames(render(G, interpolation_ws(G, [0, 1], "w", frames=5)))
    assert frames[0].shape == (256, 256, 3)  # 16 px enlarged to a codec-friendly size
    write_video(frames, tmp_path / "v.mp4", fps=10)
    with imageio.get_reader(str(tmp_path / "v.mp4")) as r:
        read = [f for f in r]
    assert len(read) == 6 and np.abs(read[0].astype(int) - frames[0]).mean() < 12  # lossy H.264, same picture
    write_gif(frames, tmp_path / "v.gif", fps=10)
    assert Image.open(tmp_path / "v.gif").n_frames == 6
    imgs, std = stochastic_variation(G, 4, draws=6)
    assert imgs.shape[0] == 6 and std.shape == (16, 16) and float(std.mean()) > 1e-3
    quiet = gankit.create("stylegan2", preset="cpu-shapes", resolution=16, channel_max=32).G.eval()
    for n, p in quiet.named_parameters():
        if n.endswith("noise_strength"):
            p.data.zero_()
    assert float(stochastic_variation(quiet, 4, draws=4)[1].max()) == 0.0  # no noise, no variation


def test_interpolate_cli(tmp_path):
    run = tmp_path / "run"
    assert run_cli("train", "stylegan2", "--preset", "cpu-digits", "--data", "builtin:digits", "--out", run,
                   "--kimg", "0.032", "--train.batch-size", "8").returncode == 0
    p = run_cli("interpolate", run, "--seeds", "1,5", "--space", "z", "--frames", "3", "--out", tmp_path / "w.mp4")
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "w.mp4").stat().st_size > 0 and Image.open(tmp_path / "w.gif").n_frames == 4
    assert (tmp_path / "w-variation.png").exists()
    bad = run_cli("interpolate", run, "--seeds", "1", "--out", tmp_path / "x.mp4")
    assert bad.returncode == 2 and "two seeds" in bad.stderr


def test_projection_of_a_generated_image_recovers_w():
    """A small stand-in distance (pixels) keeps this quick; the optimiser, schedules and noise
    handling are the ones the CLI uses."""
    from gankit.metrics.perceptual import build_distance
    from gankit.tools.project import noise_regularization, project, w_statistics

    torch.manual_seed(0)
    G = gankit.create("stylegan2", preset="cpu-shapes", resolution=16, channel_max=32).G.eval()
    z = torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        w_true = G.mapping(z, None, update_w_avg=False)
        target = G.synthesis(w_true, noise_mode="const")
    before = [b.clone() for n, b in G.named_buffers() if n.endswith("noise_const")]
    res = project(G, target, build_distance("pixel"), steps=600, initial_noise_factor=0.0, w_samples=2000)
    w_avg, _ = w_statistics(G, 2000)
    assert res.distance < res.distances[0] * 1e-3  # from about 1 to near 0
    assert (res.ws[0, 0] - w_true[0, 0]).norm() < 0.05 * (w_avg[0, 0] - w_true[0, 0]).norm()
    assert res.ws.shape == (1, G.num_ws, G.w_dim) and torch.equal(res.ws[0, 0], res.ws[0, -1])  # one w for all
    after = [b for n, b in G.named_buffers() if n.endswith("noise_const")]
    assert all(torch.equal(a, b) and not b.requires_grad for a, b in zip(before, after))  # G is left as it was
    # the noise regulariser is near 0 for white noise and large for a smooth map
    smooth = torch.ones(16, 16)
    assert float(noise_regularization([smooth])) > 1 and float(noise_regularization([torch.randn(16, 16)])) < 0.05


def test_project_cli(tmp_path):
    run = tmp_path / "run"
    assert run_cli("train", "stylegan2", "--preset", "cpu-digits", "--data", "builtin:digits", "--out", run,
                   "--kimg", "0.032", "--train.batch-size", "8").returncode == 0
    assert run_cli("generate", run, "--seeds", "3", "--out", tmp_path / "t").returncode == 0
    p = run_cli("project", run, tmp_path / "t" / "seed0003.png", "--steps", "30", "--distance", "digits",
                "--space", "w+", "--video", "--calibrate", "1", "--out", tmp_path / "proj")
    assert p.returncode == 0, p.stderr
    assert "generator" in p.stdout
    data = np.load(tmp_path / "proj" / "projected_w.npz")
    assert data["w"].shape[1] > 1 and data["distance"][-1] < data["distance"][0]
    for f in ("projected.png", "target.png", "proj.mp4"):
        assert (tmp_path / "proj" / f).exists()
    (tmp_path / "bad.png").write_bytes(b"nope")
    bad = run_cli("project", run, tmp_path / "bad.png", "--out", tmp_path / "p2")
    assert bad.returncode == 2 and "bad.png" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_export_matches_pytorch(tmp_path, fmt):
    from gankit.tools.export import export

    torch.manual_seed(0)
    G = gankit.create("stylegan2", preset="cpu-shapes", resolution=16, channel_max=32, conditional=True, c_dim=3).G
    res = export(G, tmp_path / f"g.{fmt}", fmt, truncation_psi=0.7)
    assert res["inputs"] == ["z", "c"] and res["max_abs_diff"] < 1e-4
    z, c = torch.randn(3, G.z_dim), torch.eye(3)
    with torch.no_grad():
        ref = G.synthesis(G.mapping(z, c, truncation_psi=0.7, update_w_avg=False), noise_mode="const").clamp(-1, 1)
    if fmt == "torchscript":
        out = torch.jit.load(str(tmp_path / "g.torchscript"))(z, c)
    else:
        import onnxruntime as ort

        s = ort.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"])
        out = torch.from_numpy(s.run(None, {"z": z.numpy(), "c": c.numpy()})[0])
    assert torch.allclose(out, ref, atol=1e-4)


def test_export_cli(tmp_path):
    run = tmp_path / "run"
    assert run_cli("train", "dcgan", "--preset", "cpu-digits", "--data", "builtin:digits", "--out", run,
                   "--kimg", "0.032", "--train.batch-size", "8").returncode == 0
    p = run_cli("export", run, "--format", "torchscript", "--out", tmp_path / "g.pt")
    assert p.returncode == 0 and "max |difference|" in p.stdout, p.stderr
    bad = run_cli("export", run, "--trunc", "0.5", "--out", tmp_path / "g2.pt")
    assert bad.returncode == 2 and "mapping network" in bad.stderr
