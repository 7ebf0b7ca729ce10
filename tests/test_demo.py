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
    with pytest.raises(ConfigError, match="fine"):
        m.mix(1, 2, "fine")  # a 16 px generator has no fine styles
    with pytest.raises(ConfigError, match="StyleGAN"):
        DemoModel(gankit.create("dcgan", preset="cpu-digits").G)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
                    reason="Debian's chromium is not installed (.ci/run installs it; CI fails without it)")
def test_demo_in_a_real_browser(tmp_path):
    from playwright.sync_api import sync_playwright

    run = tmp_path / "run"
    p = subprocess.run([sys.executable, "-m", "gankit", "train", "stylegan2", "--preset", "cpu-digits", "--data",
                        "builtin:digits", "--out", str(run), "--kimg", "0.032", "--train.batch-size", "8"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    port = _free_port()
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False")
    server = subprocess.Popen([sys.executable, "-m", "gankit", "demo", str(run), "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(120):  # the server binds 127.0.0.1 by default
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                assert server.poll() is None, server.stdout.read()
                time.sleep(0.5)
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
            page.get_by_text(re.compile("minimum value 0|use 0 to")).first.wait_for(timeout=30000)
            browser.close()
        assert server.poll() is None
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
