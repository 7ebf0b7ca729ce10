"""The web demo: input validation without a browser, and end to end in headless Chromium."""
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
import torch

import gankit
from gankit.app.demo import DemoModel
from gankit.errors import ConfigError

CHROMIUM = "/usr/bin/chromium"


def test_demo_functions_validate_inputs():
    torch.manual_seed(0)
    m = DemoModel(gankit.create("stylegan2", preset="cpu-shapes", resolution=16, channel_max=32).G)
    a, b = m.image(1), m.image(2)
    assert a.size == (256, 256) and a.tobytes() != b.tobytes()
    assert m.image(1).tobytes() == a.tobytes()  # deterministic per seed
    assert m.mix(1, 2, "coarse").tobytes() != a.tobytes()
    assert m.interpolate(1, 2, 0.0).tobytes() == a.tobytes()
    for bad, msg in (((-1,), "seed"), ((1, 3.5), "psi"), ((2**33,), "seed"), (("x",), "whole number")):
        with pytest.raises(ConfigError, match=msg):
            m.image(*bad)
    # the raw values a hand-made request can carry: each answered with a message naming the field
    for bad, msg in (((None,), "seed"), (([1],), "seed"), (({"a": 1},), "seed"), ((True,), "seed"), ((1.5,), "seed"),
                     ((float("nan"),), "seed"), (("1e400",), "seed"), ((1, "x"), "psi"), ((1, float("nan")), "psi"),
                     ((1, float("inf")), "psi"), ((1, None), "psi"), ((1, 1.0, None, "loud"), "noise"),
                     ((1, 1.0, None, ["const"]), "noise")):
        with pytest.raises(ConfigError, match=msg):
            m.image(*bad)
    for t in (float("nan"), "half", None, 2):
        with pytest.raises(ConfigError, match="interpolation"):
            m.interpolate(1, 2, t)
    with pytest.raises(ConfigError, match="styles"):
        m.mix(1, 2, ["coarse"])
    assert m.image("7").tobytes() == m.image(7).tobytes() == m.image(7.0).tobytes()  # a number is a number
    with pytest.raises(ConfigError, match="fine"):
        m.mix(1, 2, "fine")  # a 16 px generator has no fine styles
    with pytest.raises(ConfigError, match="StyleGAN"):
        DemoModel(gankit.create("dcgan", preset="cpu-digits").G)


def test_samples_page_of_other_families_draws_through_the_family():
    """A DCGAN run gets the samples page: a grid of ``family.sample`` for a seed, checked like the others."""
    from gankit.api import get_family
    from gankit.app.demo import SampleModel, build_samples

    torch.manual_seed(0)
    bundle = gankit.create("dcgan", preset="cpu-digits")
    m = SampleModel(bundle, get_family("dcgan"))
    a = m.grid(1)
    assert a.size[0] == a.size[1] >= 4 * 96 and a.tobytes() == m.grid("1").tobytes() != m.grid(2).tobytes()
    for bad in (-1, "x", None, 1.5, float("nan"), [1]):
        with pytest.raises(ConfigError, match="seed"):
            m.grid(bad)
    assert build_samples(m) is not None
    with pytest.raises(ConfigError, match="2-D points"):
        SampleModel(gankit.create("gan", data_shape=(2,)), get_family("gan"))


def test_demo_without_a_run_opens_the_quickstart_or_says_how_to_make_it(tmp_path, monkeypatch):
    from .conftest import run_inproc

    monkeypatch.chdir(tmp_path)  # no runs/quickstart here
    code, _, err = run_inproc(["demo"])
    assert code == 2 and "runs/quickstart" in err and "make run" in err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(server) -> None:
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()


def _wait_until_serving(url: str, server) -> None:
    """Waits up to a minute for the demo to answer (it binds 127.0.0.1 by default)."""
    for _ in range(120):
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            assert server.poll() is None, server.stdout.read()
            time.sleep(0.5)


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory):
    """`gankit demo` on a tiny StyleGAN2 run, pictures kept 2 s: (url, process, its pictures folder)."""
    run = tmp_path_factory.mktemp("demo") / "run"
    p = subprocess.run([sys.executable, "-m", "gankit", "train", "stylegan2", "--preset", "cpu-digits", "--data",
                        "builtin:digits", "--out", str(run), "--kimg", "0.032", "--train.batch-size", "8"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    port = _free_port()
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False")
    server = subprocess.Popen([sys.executable, "-m", "gankit", "demo", str(run), "--port", str(port),
                               "--keep-images", "2"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    url = f"http://127.0.0.1:{port}/"
    pictures = None
    try:
        while pictures is None:
            line = server.stdout.readline()
            assert line or server.poll() is None, "the demo exited before serving"
            if line.startswith("pictures: "):
                pictures = line.split()[1]
        _wait_until_serving(url, server)
        yield url, server, pictures
    finally:
        _stop(server)


def _call(url: str, body: bytes, headers: dict | None = None):
    """POSTs a raw body to the page's image function; (HTTP status, server-sent answer or error text)."""
    import json

    api = json.load(urllib.request.urlopen(url + "gradio_api/info"))["named_endpoints"]
    name = next(k for k, v in api.items() if [q["label"] for q in v["parameters"]][:2] == ["seed", "truncation psi"]
                and len(v["parameters"]) == 4)
    req = urllib.request.Request(url + f"gradio_api/call{name}", data=body,
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        event = json.load(urllib.request.urlopen(req, timeout=30))["event_id"]
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    return 200, urllib.request.urlopen(url + f"gradio_api/call{name}/{event}", timeout=60).read().decode()


@pytest.mark.skipif(not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
                    reason="Debian's chromium is not installed (.ci/run installs it; CI fails without it)")
def test_request_size_limit_counts_bodies_without_a_length():
    """The 413 middleware on its own: a chunked body is counted as it arrives and refused past the limit."""
    import asyncio

    from gankit.app.demo import BodyLimit

    def run(headers, chunks):
        async def app(scope, receive, send):  # reads the whole body, then answers 200
            while (await receive()).get("more_body"):
                pass
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})

        sent, queue = [], list(chunks)

        async def receive():
            body = queue.pop(0)
            return {"type": "http.request", "body": body, "more_body": bool(queue)}

        async def send(message):
            sent.append(message)

        asyncio.run(BodyLimit(app, max_bytes=1000)({"type": "http", "headers": headers}, receive, send))
        return next(m["status"] for m in sent if m["type"] == "http.response.start")

    assert run([], [b"x" * 400, b"x" * 400]) == 200
    assert run([], [b"x" * 400] * 5) == 413  # chunked, no Content-Length
    assert run([(b"content-length", b"5000")], [b""]) == 413
    assert run([(b"content-length", b"-1")], [b""]) == 413


def test_demo_in_a_real_browser(demo_server):
    from playwright.sync_api import sync_playwright

    url, server, _ = demo_server
    assert server.poll() is None
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page()
        page.goto(url, wait_until="domcontentloaded")
        img = page.locator("#image img")
        img.wait_for(timeout=60000)
        src0 = img.get_attribute("src")
        before = page.request.get(src0).body()
        field = page.locator("#seed input")
        field.fill("42")
        field.press("Enter")
        page.wait_for_function("s => { const i = document.querySelector('#image img'); return i && i.src !== s; }",
                               arg=src0, timeout=60000)
        after = page.request.get(img.get_attribute("src")).body()
        assert before[:8] == after[:8] == b"\x89PNG\r\n\x1a\n" and before != after  # a new picture
        field.fill("-5")  # out of range: the page shows a message (Gradio's bound check or ours)
        field.press("Enter")
        page.get_by_text(re.compile("minimum value 0|use a whole number from 0")).first.wait_for(timeout=30000)
        browser.close()
    assert server.poll() is None


def test_demo_answers_bad_requests_with_messages_and_cleans_up(demo_server):
    # runs after the browser test: it stops the shared server to see its folder go
    url, server, pictures = demo_server
    status, answer = _call(url, b'{"data": [3, 1.0, 0, "const"]}')
    assert status == 200 and "event: complete" in answer and "image.png" in answer
    for body, needle in ((b'{"data": ["abc", 1.0, 0, "const"]}', "seed: give a whole number"),
                         (b'{"data": [NaN, 1.0, 0, "const"]}', "seed nan"),
                         (b'{"data": [3, NaN, 0, "const"]}', "truncation psi nan"),
                         (b'{"data": [{"x": 1}, 1.0, 0, "const"]}', "seed"),
                         (b'{"data": [3, 1.0, 0, "loud"]}', "noise")):
        status, answer = _call(url, body)
        assert status == 200 and "event: error" in answer and needle in answer, (body, answer)
    # a 1 MiB or 200 MB body is refused by its Content-Length, before any of it is read or sent
    import http.client
    from urllib.parse import urlparse

    for size in (1 << 20, 200 << 20):
        conn = http.client.HTTPConnection(urlparse(url).hostname, urlparse(url).port, timeout=10)
        conn.putrequest("POST", "/gradio_api/upload")
        conn.putheader("Content-Type", "application/octet-stream")
        conn.putheader("Content-Length", str(size))
        conn.endheaders()  # headers only: the server answers without waiting for the body
        r = conn.getresponse()
        assert r.status == 413 and b"larger than" in r.read()
        conn.close()
    made = [f for _, _, fs in os.walk(pictures) for f in fs]
    assert made, "the pictures are served from the server's own folder"
    deadline = time.time() + 30
    while [f for _, _, fs in os.walk(pictures) for f in fs] and time.time() < deadline:
        time.sleep(0.5)
    assert not [f for _, _, fs in os.walk(pictures) for f in fs]  # each removed once 2 s old
    server.terminate()
    server.wait(timeout=20)
    assert not os.path.exists(pictures)  # and the folder when the server stops


# ----------------------------------------------------------------------------- translation page
@pytest.fixture(scope="module")
def translation_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("p2p-demo") / "run"
    p = subprocess.run([sys.executable, "-m", "gankit", "train", "pix2pix", "--data", "builtin:edges2digits", "--out",
                        str(run), "--model.netG", "unet", "--model.ngf", "4", "--model.ndf", "4", "--model.n-layers-D",
                        "2", "--kimg", "0.032", "--train.batch-size", "8", "--train.tensorboard", "false"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    return run


def test_translation_model_checks_uploads(translation_run):
    import numpy as np

    from gankit.api import get_family, load_bundle
    from gankit.app.demo import TranslationModel

    bundle, _, config = load_bundle(translation_run)
    model = TranslationModel(bundle, get_family("pix2pix"), config["data"]["spec"])
    out = model.translate(np.full((30, 50, 3), 255, np.uint8))  # any size, RGB for a grey run
    assert out.size == (256, 256)  # the 16 px translation, enlarged for the page
    src, res = model.example(3)
    assert src.size == res.size == (256, 256)
    for bad, needle in ((None, "upload an image"), (np.zeros((4, 4), np.float64), "ordinary picture"),
                        (np.zeros((2, 2, 7), np.uint8), "ordinary picture")):
        with pytest.raises(ConfigError, match=needle):
            model.translate(bad)
    with pytest.raises(ConfigError, match="direction: use AtoB"):
        model.translate(np.zeros((8, 8), np.uint8), "BtoA")
    with pytest.raises(ConfigError, match="example"):
        model.example(10**6)


@pytest.mark.skipif(not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
                    reason="Debian's chromium is not installed (.ci/run installs it; CI fails without it)")
def test_translation_demo_in_a_real_browser(translation_run, tmp_path):
    """Upload an edge image in headless Chromium and see its translation, then a held-out example."""
    import numpy as np
    from PIL import Image
    from playwright.sync_api import sync_playwright

    upload = tmp_path / "edges.png"
    Image.fromarray(np.pad(np.full((8, 8), 255, np.uint8), 4)).save(upload)
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "gankit", "demo", str(translation_run), "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=dict(os.environ, GRADIO_ANALYTICS_ENABLED="False"))
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_until_serving(url, server)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                         args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            page = browser.new_page()
            page.goto(url, wait_until="domcontentloaded")
            page.locator("#input input[type=file]").set_input_files(str(upload))
            out = page.locator("#output img")
            out.wait_for(timeout=60000)
            first = page.request.get(out.get_attribute("src")).body()
            assert first[:8] == b"\x89PNG\r\n\x1a\n"
            before = out.get_attribute("src")  # read before the click: a quick answer must not be missed
            page.locator("#example input").fill("5")
            page.locator("#pick").click()
            page.wait_for_function("s => { const i = document.querySelector('#output img'); return i && i.src !== s; }",
                                   arg=before, timeout=60000)
            assert page.request.get(out.get_attribute("src")).body() != first  # the example's translation
            browser.close()
        assert server.poll() is None
    finally:
        _stop(server)
