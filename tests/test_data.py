import json
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

import gankit
from gankit.data import BatchOrder, open_dataset
from gankit.data.idx import read_idx, write_idx
from gankit.data.validate import check
from gankit.errors import DataError

from .conftest import png_bytes, write_image


def test_folder_recursive_all_formats(image_folder):
    ds = open_dataset(str(image_folder))
    assert len(ds) == 9  # png (6, two folders), jpg, webp, bmp; txt ignored
    assert ds.info.shape == (3, 16, 16)
    x, c = ds.get_batch(torch.arange(9))
    assert x.shape == (9, 3, 16, 16) and c is None
    assert x.min() >= -1 and x.max() <= 1


def test_png_roundtrip_is_exact(tmp_path):
    p = write_image(tmp_path / "d" / "x.png", size=(8, 8), seed=3)
    ds = open_dataset(str(tmp_path / "d"))
    x, _ = ds.get_batch(torch.tensor([0]))
    expected = np.asarray(Image.open(p)).astype(np.float32) / 127.5 - 1
    assert np.allclose(x[0].permute(1, 2, 0).numpy(), expected, atol=1e-6)


def test_size_policies(tmp_path):
    write_image(tmp_path / "w" / "wide.png", size=(40, 20))
    with pytest.raises(DataError, match="not a square power of two"):
        open_dataset(str(tmp_path / "w"))
    assert open_dataset(f"{tmp_path / 'w'}?res=16").info.shape == (3, 16, 16)
    assert open_dataset(f"{tmp_path / 'w'}?res=16&size=resize").info.shape == (3, 16, 16)
    with pytest.raises(DataError, match="size=center-crop or size=resize"):
        open_dataset(f"{tmp_path / 'w'}?res=16&size=none")
    with pytest.raises(DataError, match="power of two"):
        open_dataset(f"{tmp_path / 'w'}?res=24")


def test_center_crop_keeps_centre(tmp_path):
    arr = np.zeros((8, 16, 3), np.uint8)
    arr[:, 4:12] = 255  # white centre square, black side bands
    Image.fromarray(arr).save(tmp_path / "c.png")
    x, _ = open_dataset(f"{tmp_path}?res=8").get_batch(torch.tensor([0]))
    assert x.min() > 0.9  # the crop removed the black bands
    y, _ = open_dataset(f"{tmp_path}?res=8&size=resize").get_batch(torch.tensor([0]))
    assert y.min() < -0.9


def test_mode_policy(tmp_path):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = 0  # fully transparent red -> black over black
    Image.fromarray(rgba, "RGBA").save(tmp_path / "t.png")
    x, _ = open_dataset(str(tmp_path)).get_batch(torch.tensor([0]))
    assert x.shape[1] == 3 and torch.allclose(x, torch.full_like(x, -1))
    assert open_dataset(f"{tmp_path}?mode=gray").info.shape == (1, 8, 8)
    assert open_dataset(f"{tmp_path}?mode=rgba").info.shape == (4, 8, 8)
    g = tmp_path / "g"
    write_image(g / "l.png", size=(8, 8), mode="L")
    x, _ = open_dataset(str(g)).get_batch(torch.tensor([0]))
    assert x.shape[1] == 3 and torch.equal(x[0, 0], x[0, 1])  # gray replicated to RGB


def _expected(src: np.ndarray, bits: int, mode: str) -> np.ndarray:
    """What each output mode must hold for a source array (H, W, C) of ``bits``-bit samples, in 8 bits."""
    v = src.astype(np.float64) * 255.0 / (2 ** bits - 1)
    c = v.shape[2]
    color = v[..., :1].repeat(3, 2) if c in (1, 2) else v[..., :3]
    alpha = v[..., -1:] if c in (2, 4) else np.full(v.shape[:2] + (1,), 255.0)
    if mode == "rgba":
        return np.concatenate([color, alpha], 2)
    rgb = color * alpha / 255.0  # composited over black
    if mode == "gray":
        return (rgb @ np.array([0.299, 0.587, 0.114]))[..., None]  # ITU-R 601-2 luma
    return rgb


@pytest.mark.parametrize("mode", ["rgb", "gray", "rgba"])
@pytest.mark.parametrize("bits, channels", [(1, 1)] + [(b, c) for b in (8, 16) for c in (1, 2, 3, 4)])
def test_every_bit_depth_is_scaled_in_every_mode(tmp_path, mode, bits, channels):
    from gankit.data.images import decode
    rng = np.random.default_rng(bits * 10 + channels)
    src = rng.integers(0, 2 ** bits, (6, 6, channels)).astype(np.uint16 if bits == 16 else np.uint8)
    if bits == 1:
        data = __import__("io").BytesIO()
        Image.fromarray(src[..., 0].astype(bool)).save(data, format="PNG")
        data = data.getvalue()
    else:
        data = png_bytes(src)
    out = decode(data, "x.png", None, "none", mode).astype(np.float64)
    want = _expected(src, bits, mode)
    assert out.shape == want.shape
    # Pillow reads 16-bit colour as its high byte, gankit scales 16-bit gray by 255/65535: within 1 level
    # (+1 for the luma's own rounding); a clipped 16-bit image is off by up to 254
    assert np.abs(out - want).max() <= 2, (np.abs(out - want).max(), mode, bits, channels)


def test_exif_orientation_is_applied_and_reported(tmp_path):
    img = np.zeros((8, 16, 3), np.uint8)
    img[:, :8] = 255  # left half white: after a 90-degree turn it is the top or bottom half
    pic = Image.fromarray(img)
    exif = pic.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to view"
    pic.save(tmp_path / "photo.jpg", exif=exif, quality=95)
    x, _ = open_dataset(f"{tmp_path}?res=8&size=resize").get_batch(torch.tensor([0]))
    from gankit.data.images import decode

    arr = decode((tmp_path / "photo.jpg").read_bytes(), "photo.jpg", None, "none", "rgb")
    assert arr.shape == (16, 8, 3)  # upright: taller than wide
    assert arr[:8].mean() > 200 and arr[8:].mean() < 50  # the white half on top, as a viewer shows it
    r = check(str(tmp_path))
    assert [k for _, k, _ in r.notes] == ["rotated"] and "1 rotated" in r.summary()
    assert [(k, why) for _, k, why in r.problems] == [("odd-size", "8x16 is not square")]  # the upright size


def _damage_zip_member(path, name: str, flags: int | None = None, method: int | None = None, byte: int | None = None):
    """Rewrites one member's local and central headers (encryption flag, compression method) or flips a data byte."""
    import struct

    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo(name)
    local = info.header_offset
    central = [m for m in range(len(data)) if data[m:m + 4] == b"PK\x01\x02" and
               struct.unpack("<I", data[m + 42:m + 46])[0] == local][0]
    if flags is not None:
        struct.pack_into("<H", data, local + 6, flags)
        struct.pack_into("<H", data, central + 8, flags)
    if method is not None:
        struct.pack_into("<H", data, local + 8, method)
        struct.pack_into("<H", data, central + 10, method)
    if byte is not None:
        start = local + 30 + struct.unpack("<H", data[local + 26:local + 28])[0] + struct.unpack("<H", data[local + 28:local + 30])[0]
        data[start + byte] ^= 0xFF
    path.write_bytes(bytes(data))


def test_dataset_check_lists_every_bad_zip_member_and_label_problem(tmp_path):
    zp = tmp_path / "d.zip"
    with zipfile.ZipFile(zp, "w", compression=zipfile.ZIP_STORED) as z:
        for i, name in enumerate(["good.png", "crc.png", "locked.png", "method.png", "also.png"]):
            p = write_image(tmp_path / "src" / name, seed=i)
            z.write(p, name)
        z.writestr("dataset.json", json.dumps({"labels": [["good.png", 0], ["crc.png", -1], ["locked.png", 2.5],
                                                           ["method.png", "cat"], ["also.png", [1, 0]]]}))
    _damage_zip_member(zp, "crc.png", byte=40)
    _damage_zip_member(zp, "locked.png", flags=0x1)
    _damage_zip_member(zp, "method.png", method=99)
    r = check(str(zp))
    found = {(p.split("/")[-1], k) for p, k, _ in r.problems}
    assert {("crc.png", "unreadable"), ("locked.png", "unreadable"), ("method.png", "unreadable")} <= found
    labels = [why for _, k, why in r.problems if k == "label"]
    assert len(labels) == 4 and any("crc.png: label -1" in w for w in labels) and any("2.5" in w for w in labels)
    assert any("'cat'" in w or "cat" in w for w in labels) and any("vector label" in w for w in labels)
    assert not r.ok and "4 label" in r.summary() and "3 unreadable" in r.summary()
    with pytest.raises(DataError, match="crc.png: label -1.*3 more problems"):
        open_dataset(str(zp))
    (tmp_path / "f").mkdir()
    write_image(tmp_path / "f" / "a.png")
    (tmp_path / "f" / "dataset.json").mkdir()
    with pytest.raises(DataError, match="dataset.json: a folder"):
        open_dataset(str(tmp_path / "f"))
    assert [k for _, k, _ in check(str(tmp_path / "f")).problems] == ["label"]


def test_zip_and_labels(tmp_path, image_folder):
    names = sorted(p.relative_to(image_folder).as_posix() for p in image_folder.rglob("*")
                   if p.suffix in (".png", ".jpg", ".webp", ".bmp"))
    labels = {"labels": [[n, i % 3] for i, n in enumerate(names)]}
    zp = tmp_path / "d.zip"
    with zipfile.ZipFile(zp, "w") as z:
        for n in names:
            z.write(image_folder / n, n)
        z.writestr("dataset.json", json.dumps(labels))
    ds = open_dataset(str(zp))
    assert len(ds) == 9 and ds.info.num_classes == 3
    _, c = ds.get_batch(torch.arange(9))
    assert c.tolist() == [i % 3 for i in range(9)]
    (image_folder / "dataset.json").write_text(json.dumps({"labels": labels["labels"][:-1]}))
    with pytest.raises(DataError, match="no label for"):
        open_dataset(str(image_folder))


def test_dataset_check_finds_bad_files(tmp_path):
    d = tmp_path / "mixed"
    write_image(d / "good1.png", size=(16, 16))
    write_image(d / "good2.png", size=(16, 16), seed=1)
    write_image(d / "pal.png", size=(16, 16), mode="P")
    write_image(d / "wide.png", size=(32, 16))
    write_image(d / "big.png", size=(32, 32))
    full = write_image(d / "trunc.jpg", size=(64, 64), seed=5, fmt="JPEG").read_bytes()
    (d / "trunc.jpg").write_bytes(full[: len(full) // 2])
    (d / "junk.png").write_bytes(b"this is not a png")
    r = check(str(d))
    kinds = {(p.split("/")[-1], k) for p, k, _ in r.problems}
    assert ("trunc.jpg", "truncated") in kinds
    assert ("junk.png", "unreadable") in kinds
    assert ("pal.png", "odd-mode") in kinds
    assert ("wide.png", "odd-size") in kinds
    assert ("big.png", "odd-size") in kinds
    assert ("good1.png", "odd-size") not in kinds
    assert "7 files checked" in r.summary()


def test_corrupt_image_error_names_file(tmp_path):
    write_image(tmp_path / "a.png")
    (tmp_path / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    ds = open_dataset(str(tmp_path))
    with pytest.raises(DataError, match="b.png: cannot decode"):
        ds.materialize()


def test_empty_and_missing(tmp_path):
    with pytest.raises(DataError, match="no images found"):
        open_dataset(str(tmp_path))
    with pytest.raises(DataError, match="no such file or folder"):
        open_dataset(str(tmp_path / "nope"))
    with pytest.raises(DataError, match="unknown built-in dataset"):
        open_dataset("builtin:nope")


def test_batch_order_is_a_function_of_position():
    a = BatchOrder(10, 4, seed=3)
    seq = [a.next() for _ in range(7)]
    b = BatchOrder(10, 4, seed=3, position=12)
    assert torch.equal(b.next(), seq[3])
    counts = torch.bincount(torch.cat(seq[:5]), minlength=10)  # 20 draws = 2 epochs, each index twice
    assert counts.tolist() == [2] * 10


def test_toy_mixtures():
    ring = open_dataset("builtin:ring8")
    x, k = ring.get_batch(torch.arange(5000))
    centers = ring.meta["centers"]
    assert torch.allclose(centers.norm(dim=1), torch.full((8,), 2.0))
    assert (x - centers[k]).std().item() == pytest.approx(0.02, rel=0.05)
    grid = open_dataset("builtin:grid25")
    assert grid.meta["centers"].shape == (25, 2) and grid.meta["std"] == 0.05


def test_digits_and_stacked():
    d = open_dataset("builtin:digits")
    assert len(d) == 1797 and d.info == gankit.data.DatasetInfo("image", (1, 8, 8), 10)
    assert open_dataset("builtin:digits?res=32").info.shape == (1, 32, 32)
    s = open_dataset("builtin:stacked-digits?n=3000")
    assert s.info.shape == (3, 8, 8) and s.info.num_classes == 1000
    _, y = s.get_batch(torch.arange(3000))
    assert len(torch.unique(y)) > 900  # ~950 expected of 1000 modes for 3000 uniform draws


def test_shapes_deterministic_with_factors_and_captions():
    a = open_dataset("builtin:shapes?res=32&n=50&seed=4")
    b = open_dataset("builtin:shapes?res=32&n=50&seed=4")
    c = open_dataset("builtin:shapes?res=32&n=50&seed=5")
    assert torch.equal(a.data, b.data) and not torch.equal(a.data, c.data)
    assert a.info.shape == (3, 32, 32)
    f = a.meta["factors"]
    for key in ("shape", "colour", "size", "x", "y", "background"):
        assert len(f[key]) == 50
    cap = a.meta["captions"][0]
    names = a.meta["factor_names"]
    assert names["shape"][f["shape"][0]] in cap and names["colour"][f["colour"][0]] in cap
    assert cap.startswith("a ") and "background" in cap
    # the shape's colour sits at the stored position
    i = 0
    col = np.array(gankit.data.builtin.shapes.COLOURS[names["colour"][f["colour"][i]]])
    px = a.data[i, :, int(f["y"][i] * 32), int(f["x"][i] * 32)].numpy()
    assert np.abs(px.astype(int) - col).max() < 40
    for res in (8, 256):
        assert open_dataset(f"builtin:shapes?res={res}&n=2").info.shape == (3, res, res)
    with pytest.raises(DataError, match="power of two"):
        open_dataset("builtin:shapes?res=48")


def test_shapes_centred_keeps_the_other_factors():
    a = open_dataset("builtin:shapes?res=32&n=40&seed=4")
    c = open_dataset("builtin:shapes?res=32&n=40&seed=4&place=centre")
    fa, fc = a.meta["factors"], c.meta["factors"]
    assert np.all(fc["x"] == 0.5) and np.all(fc["y"] == 0.5) and np.all(fc["col"] == 1) and np.all(fc["row"] == 1)
    for key in ("shape", "colour", "size", "background"):
        assert np.array_equal(fa[key], fc[key])
    assert a.name != c.name and not torch.equal(a.data, c.data)
    # the centre pixel has the shape's colour
    names = c.meta["factor_names"]
    col = np.array(gankit.data.builtin.shapes.COLOURS[names["colour"][fc["colour"][0]]])
    assert np.abs(c.data[0, :, 16, 16].numpy().astype(int) - col).max() < 40
    with pytest.raises(DataError, match="place=centre"):
        open_dataset("builtin:shapes?res=32&place=middle")


def test_shapes_pair_label_is_shape_and_colour():
    d = open_dataset("builtin:shapes?res=16&n=60&seed=2&label=pair")
    f, names = d.meta["factors"], d.meta["factor_names"]
    assert d.info.num_classes == 24 and len(names["pair"]) == 24
    for i in range(60):
        assert names["pair"][int(d.labels[i])] == f"{names['colour'][f['colour'][i]]} {names['shape'][f['shape'][i]]}"
    with pytest.raises(DataError, match="pair"):
        open_dataset("builtin:shapes?res=16&label=pairs")


def test_idx_reader_roundtrip(tmp_path):
    for dtype, name in ((np.uint8, "a.idx"), (np.int32, "b.idx.gz"), (np.float32, "c.idx")):
        arr = (np.arange(2 * 3 * 4) % 7).reshape(2, 3, 4).astype(dtype)
        write_idx(str(tmp_path / name), arr)
        out = read_idx(str(tmp_path / name))
        assert out.dtype == dtype and np.array_equal(out, arr)
    raw = (tmp_path / "a.idx").read_bytes()
    (tmp_path / "t.idx").write_bytes(raw[:-3])
    with pytest.raises(DataError, match="truncated"):
        read_idx(str(tmp_path / "t.idx"))


def test_fashion_mnist_from_idx_folder(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("t10k", 4)):
        write_idx(str(tmp_path / f"{split}-images-idx3-ubyte.gz"), rng.integers(0, 255, (n, 28, 28)).astype(np.uint8))
        write_idx(str(tmp_path / f"{split}-labels-idx1-ubyte.gz"), (np.arange(n) % 10).astype(np.uint8))
    ds = open_dataset(f"builtin:fashion-mnist?path={tmp_path}&res=28")
    assert len(ds) == 10 and ds.info.shape == (1, 28, 28)
    assert len(open_dataset(f"builtin:fashion-mnist?path={tmp_path}&split=test")) == 4


REAL_FMNIST = "/usr/share/datasets/fashion-mnist"


@pytest.mark.skipif(not __import__("os").path.isdir(REAL_FMNIST),
                    reason="Debian's dataset-fashion-mnist is not installed (.ci/run installs it)")
def test_real_fashion_mnist():
    ds = open_dataset("builtin:fashion-mnist?res=28")
    assert len(ds) == 70_000 and ds.info.shape == (1, 28, 28) and ds.info.num_classes == 10
    assert torch.bincount(ds.labels).tolist() == [7000] * 10
    assert open_dataset("builtin:fashion-mnist?split=test").info.shape == (1, 32, 32)


def test_batch_order_peek_is_the_batch_to_come():
    a = BatchOrder(10, 4, seed=3, position=4)
    ahead = [a.peek(k) for k in range(6)]  # 24 draws from position 4: crosses two epoch boundaries
    for position, idx in ahead:
        assert position == a.position
        assert torch.equal(a.next(), idx)


def _train_folder(folder, out, **train):
    from gankit.training.trainer import Trainer

    t = Trainer("dcgan", f"{folder}?res=8", out, overrides={
        "model": {"ngf": 8, "ndf": 8, "z_dim": 8},
        "train": {"batch_size": 8, "kimg": 0.12, "mirror": True, "tensorboard": False, "metrics": False,
                  "snapshot_kimg": 1, "sample_kimg": 1, **train}}, progress=False)
    t.run()
    return t


def test_prefetching_threads_train_exactly_as_decoding_in_the_loop(tmp_path):
    for i in range(20):
        write_image(tmp_path / "imgs" / f"{i:02d}.png", size=(8, 8), seed=i)
    ref = _train_folder(tmp_path / "imgs", tmp_path / "ref", cache=True)
    loop = _train_folder(tmp_path / "imgs", tmp_path / "loop", cache=False, workers=0)
    threads = _train_folder(tmp_path / "imgs", tmp_path / "threads", cache=False, workers=2)
    assert loop.prefetch is None and threads.prefetch.served >= 14  # 15 batches, all but the first prefetched
    for t in (loop, threads):  # same batches, flips and steps: bitwise the same weights
        for (k, a), b in zip(ref.G.state_dict().items(), t.G.state_dict().values()):
            assert torch.equal(a, b), k


def test_a_corrupt_file_found_by_a_decoding_thread_names_the_file(tmp_path):
    for i in range(8):
        write_image(tmp_path / "imgs" / f"{i:02d}.png", size=(8, 8), seed=i)
    (tmp_path / "imgs" / "05.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="05.png"):
        _train_folder(tmp_path / "imgs", tmp_path / "run", cache=False, workers=2)


def test_mnist_and_stacked_mnist_from_idx_folder(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("t10k", 4)):
        write_idx(str(tmp_path / f"{split}-images-idx3-ubyte"), rng.integers(0, 255, (n, 28, 28)).astype(np.uint8))
        write_idx(str(tmp_path / f"{split}-labels-idx1-ubyte.gz"), (np.arange(n) % 10).astype(np.uint8))
    monkeypatch.delenv("GANKIT_MNIST", raising=False)
    with pytest.raises(DataError, match="GANKIT_MNIST=DIR or pass path=DIR"):
        open_dataset("builtin:mnist")
    ds = open_dataset(f"builtin:mnist?path={tmp_path}")
    assert len(ds) == 10 and ds.info.shape == (1, 28, 28) and ds.mode_metric == "mnist"
    monkeypatch.setenv("GANKIT_MNIST", str(tmp_path))
    assert open_dataset("builtin:mnist?split=test&res=16").info.shape == (1, 16, 16)
    st = open_dataset("builtin:stacked-mnist?n=50&res=32")
    assert len(st) == 50 and st.info.shape == (3, 32, 32) and st.info.num_classes == 1000
    x, y = st.get_batch(torch.arange(50))
    digits = open_dataset("builtin:mnist?res=32")
    dx, dy = digits.get_batch(torch.arange(10))
    for i in range(3):  # every channel is one of the digits, and the label spells the three classes
        match = [(x[i, k] == dx[:, 0]).flatten(1).all(1).nonzero().flatten() for k in range(3)]
        assert all(len(m) for m in match)
        assert int(y[i]) == 100 * int(dy[match[0][0]]) + 10 * int(dy[match[1][0]]) + int(dy[match[2][0]])
    with pytest.raises(DataError, match="res=24"):
        open_dataset("builtin:stacked-mnist?res=24")
