"""`ganforge serve`: the drawing behind each control, the server over plain HTTP, and the page in a
real headless Chromium (Debian's chromium and chromium-driver through Selenium; skipped without them)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from gfhelpers import PYTHON, python_env, short_run
from ganforge.cli import main
from ganforge.serve import model as drawing
from ganforge.serve.model import ServeError, open_model

SMALL = {  # one tiny run of each kind the page serves: preset and small-network overrides
    "noise": ("wgan_gp/shapes", {"model.image_size": 32, "data.image_size": 32, "model.z_dim": 16,
                                 "model.g_channels": 8, "model.d_channels": 8, "data.length": 32}),
    "class": ("biggan/shapes", {"model.g_ch": 4, "model.d_ch": 4, "model.dim_z": 16, "model.shared_dim": 8,
                                "data.length": 64, "runtime.precision": "fp32", "eval.every": 0}),
    "translation": ("stargan/shapes", {"model.g_conv_dim": 8, "model.d_conv_dim": 8, "model.g_repeat_num": 1,
                                       "model.image_size": 32, "data.image_size": 32, "recipe.sample_images": 2,
                                       "data.length": 32}),
    "reference": ("starganv2/shapes", {"model.image_size": 16, "data.image_size": 16, "model.base_dim": 8,
                                       "model.max_conv_dim": 16, "recipe.sample_images": 3, "data.length": 48,
                                       "runtime.precision": "fp32"}),
    "story": ("storygan/shapes", {"model.gf_dim": 4, "model.df_dim": 4, "recipe.image_batch_size": 6,
                                  "recipe.sample_stories": 2, "data.length": 12}),
}
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """kind -> a 2-step run folder of that kind."""
    out = {}
    for kind, (preset, small) in SMALL.items():
        root = tmp_path_factory.mktemp(kind)
        assert main(["train", preset, *short_run(root, small, **{"train.steps": 2})]) == 0
        out[kind] = root / "run"
    return out


def test_each_control_draws_pictures_of_the_right_size(runs, tmp_path):
    noise = open_model(runs["noise"])
    assert noise.kind == "noise" and noise.labels == []
    grid = drawing.noise_grid(noise, 3, 4)  # 2 x 2 images of 32 px with 2 px padding
    assert grid.shape == (2 + 2 * 34, 2 + 2 * 34, 3) and grid.dtype == np.uint8
    assert np.array_equal(grid, drawing.noise_grid(noise, 3, 4))  # a seed draws the same again
    assert drawing.interpolation(noise, 0, 1, 5).shape == (36, 2 + 5 * 34, 3)

    classes = open_model(runs["class"])
    assert classes.labels[:2] == ["red circle", "green circle"] and len(classes.labels) == 18
    assert drawing.class_grid(classes, "green circle", 0.5, 0, 3).shape == (70, 70, 3)
    assert drawing.class_sheet(classes, 0.0, 0, 2).shape == (2 + 18 * 34, 70, 3)

    translation = open_model(runs["translation"])
    photo = np.random.default_rng(0).integers(0, 255, (50, 70, 3), dtype=np.uint8)  # not square, not 32 px
    targets = translation.labels[:2]
    assert drawing.translate(translation, photo, targets).shape == (36, 2 + 3 * 34, 3)

    reference = open_model(runs["reference"])
    assert reference.labels == ["circle", "square", "triangle"]
    assert drawing.reference_guided(reference, photo, "square", None, 1).shape == (20, 2 + 2 * 18, 3)
    assert drawing.reference_guided(reference, photo, "square", photo, 1).shape == (20, 2 + 3 * 18, 3)

    video = Path(drawing.style_morph(reference, photo, "circle", photo, photo[::-1].copy(), tmp_path))
    assert video.suffix == ".mp4" and video.stat().st_size > 1000 and video.parent.parent == tmp_path

    assert main(["export", str(runs["noise"]), "--format", "hub", "--out", str(tmp_path / "hub")]) == 0
    shared = open_model(tmp_path / "hub")  # a shared model folder serves as its run does
    assert shared.kind == "noise" and np.array_equal(drawing.noise_grid(shared, 3, 4), grid)

    story = open_model(runs["story"])
    frames, size = story.gen.model_config.video_len, story.image_size
    strip = drawing.data_story(story, 2, 0)  # the story's frames, then its real ones, on one row
    assert strip.shape == (size + 4, 2 + 2 * frames * (size + 2), 3)
    np.save(tmp_path / "two.npy", np.random.default_rng(0).random((2, frames, story.gen.model_config.text_dim)))
    assert drawing.file_story(story, str(tmp_path / "two.npy"), 0).shape == (2 + 2 * (size + 2), 2 + frames * (size + 2), 3)


def test_bad_requests_are_messages_that_name_the_value(runs):
    noise, classes = open_model(runs["noise"]), open_model(runs["class"])
    for call, message in [
        (lambda: drawing.noise_grid(noise, -1, 4), "seed must be a whole number from 0"),
        (lambda: drawing.noise_grid(noise, 0, 1000), "count must be a whole number from 1 to 64; got 1000"),
        (lambda: drawing.noise_grid(noise, "x", 4), "seed must be a whole number; got 'x'"),
        (lambda: drawing.class_grid(classes, "purple cube", 0, 0, 2), "unknown class 'purple cube'"),
        (lambda: drawing.class_grid(classes, "red circle", 9, 0, 2), "truncation must be from 0"),
        (lambda: drawing.translate(open_model(runs["translation"]), None, ["x"]), "upload an image first"),
        (lambda: drawing.translate(open_model(runs["translation"]), __file__, ["x"]),
         "the image 'test_serve.py' is not a picture this page can read"),
        (lambda: drawing.reference_guided(open_model(runs["reference"]), np.zeros((5000, 10, 3), np.uint8),
                                          "circle", None, 0), "5000 pixels; at most 4096"),
        (lambda: drawing.data_story(open_model(runs["story"]), 500, 0), r"story 500: the run's data has 12 stories"),
        (lambda: drawing.file_story(open_model(runs["story"]), __file__, 0), "'test_serve.py' is not a description file"),
    ]:
        with pytest.raises(ServeError, match=message):
            call()


def test_a_missing_gradio_is_a_clear_message(runs, monkeypatch, capsys):
    import builtins

    real_import = builtins.__import__

    def no_gradio(name, *args, **kwargs):
        if name == "gradio" or name.startswith("gradio."):
            raise ImportError("No module named 'gradio'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_gradio)
    assert main(["serve", str(runs["noise"]), "--port", "1"]) == 2
    assert "pip install 'ganforge[serve]'" in capsys.readouterr().err


def test_a_port_in_use_is_named_before_serving(runs, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", str(runs["noise"]), "--port", str(port)]) == 2
    assert f"port {port} on 127.0.0.1 is in use" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(run: Path):
    """``ganforge serve RUN`` in a process group of its own; yields its address once it answers."""
    port = _free_port()
    proc = subprocess.Popen([PYTHON, "-m", "ganforge", "serve", str(run), "--port", str(port)], env=python_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(url, timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise AssertionError(f"serve did not start: {proc.stdout.read()[-3000:]}") from None
                time.sleep(0.3)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


@pytest.mark.slow
def test_the_server_answers_plain_http_and_keeps_serving_after_a_bad_request(runs, tmp_path):
    from gradio_client import Client

    with serving(runs["noise"]) as url:
        html = urllib.request.urlopen(url).read().decode()
        loaded = re.findall(r'(?:src|href)="([^"]+)"', html)  # scripts, styles, fonts, icons the page loads
        assert loaded and not [u for u in loaded if u.startswith(("http:", "https:", "//"))
                               and not u.startswith(url.rstrip("/"))], loaded  # nothing from outside
        config = json.loads(urllib.request.urlopen(url + "config").read())
        assert config["title"] == "ganforge: wgan_gp"
        assert "fonts.googleapis" not in json.dumps(config["theme_css"] if "theme_css" in config else config)
        client = Client(url, verbose=False)
        picture = client.predict(0, 4, api_name="/grid")
        from PIL import Image

        assert Image.open(picture).size == (70, 70)
        with pytest.raises(Exception, match="500 is greater than maximum value 64"):  # the slider's own check
            client.predict(0, 500, api_name="/grid")
        assert Image.open(client.predict(1, 1, api_name="/grid")).size == (32, 32)  # still serving
    with serving(runs["reference"]) as url:  # the style-morph video comes back as an MP4 file
        from gradio_client import handle_file

        photo = handle_file(str(_shape_picture(tmp_path / "photo.png")))
        video = Client(url, verbose=False).predict(photo, "square", photo, photo, api_name="/morph")
        path = Path(video["video"] if isinstance(video, dict) else video)
        assert path.suffix == ".mp4" and path.stat().st_size > 1000


def _browser(tmp_path: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # every host name but the local server's fails to resolve: the page must render as if unplugged
    offline = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,760",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}", offline):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def _element(driver, css: str, timeout: float = 60.0):
    """The element ``css`` selects, once the page has rendered it."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(lambda d: next(iter(d.find_elements(By.CSS_SELECTOR, css)), None))


def _picture_in(driver, elem_id: str, timeout: float = 60.0):
    """The <img> that appears in the output ``elem_id``, once loaded (naturalWidth > 0)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(lambda d: next(
        (img for img in d.find_elements(By.CSS_SELECTOR, f"#{elem_id} img")
         if d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img)), None))


def _error_toast(driver, timeout: float = 60.0) -> str:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(
        lambda d: d.execute_script("const t = document.querySelector('.toast-body, [data-testid=\"toast-body\"]');"
                                   "return t && t.innerText"))


def _shape_picture(path: Path, size: int = 48) -> Path:
    """A picture of the built-in shapes, saved as PNG at ``path``."""
    from PIL import Image

    from ganforge.data.shapes import ShapesDataset

    shape = ShapesDataset(length=1, image_size=size, view="attributes").get(0)["image"]
    Image.fromarray(((shape.permute(1, 2, 0) + 1) * 127.5).round().byte().numpy()).save(path)
    return path


def _size_of(driver, img) -> list[int]:
    return driver.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight]", img)


@pytest.mark.slow
@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and chromium-driver")
def test_the_page_of_every_kind_in_a_real_browser(runs, tmp_path):
    """Each kind's page draws a picture of the right size; a bad upload is our message, not a trace."""
    shots = Path(os.environ.get("GANFORGE_SCREENSHOTS", tmp_path))
    photo, bad = _shape_picture(tmp_path / "photo.png"), tmp_path / "not a picture.png"
    bad.write_bytes(b"this is text, not a PNG")
    driver = _browser(tmp_path)
    try:
        for kind in ("noise", "class"):  # 16 samples of 32 px: a 4 x 4 grid with 2 px padding
            # GANFORGE_SERVE_CLASS_RUN: a trained 32 px class-conditional run for the README's picture
            run = os.environ.get("GANFORGE_SERVE_CLASS_RUN", runs[kind]) if kind == "class" else runs[kind]
            with serving(Path(run)) as url:
                driver.get(url)
                _element(driver, "#draw").click()
                assert _size_of(driver, _picture_in(driver, "grid")) == [138, 138], kind
                driver.save_screenshot(str(shots / f"serve-{kind}.png"))
        with serving(runs["translation"]) as url:
            driver.get(url)
            _element(driver, "#input input[type=file]").send_keys(str(bad))
            time.sleep(1.0)
            _element(driver, "#draw").click()
            message = _error_toast(driver)
            assert "the image 'not a picture.png' is not a picture this page can read" in message, message
            assert "Traceback" not in driver.page_source
            driver.get(url)
            _element(driver, "#input input[type=file]").send_keys(str(photo))
            time.sleep(1.0)
            _element(driver, "#draw").click()
            assert _size_of(driver, _picture_in(driver, "grid")) == [70, 36]  # the input, then one target
            driver.save_screenshot(str(shots / "serve-translation.png"))
        with serving(runs["reference"]) as url:
            driver.get(url)
            _element(driver, "#input input[type=file]").send_keys(str(photo))
            time.sleep(1.0)
            _element(driver, "#draw").click()
            assert _size_of(driver, _picture_in(driver, "grid")) == [38, 20]  # the source, then the result
        with serving(runs["story"]) as url:
            driver.get(url)
            _element(driver, "#draw").click()
            frames = open_model(runs["story"]).gen.model_config.video_len
            assert _size_of(driver, _picture_in(driver, "grid")) == [2 + 2 * frames * 66, 68]  # frames | real
    finally:
        driver.quit()


def test_typed_stories_go_through_the_local_text_encoder(runs, tmp_path, monkeypatch):
    """The sentence-transformers API (a stand-in module: the package and its models are the user's)."""
    import sys
    import types

    story = open_model(runs["story"])
    frames, size, dim = story.gen.model_config.video_len, story.image_size, story.gen.model_config.text_dim

    class FakeEncoder:
        def __init__(self, path, device="cpu", local_files_only=False):
            assert local_files_only  # never a download

        def get_embedding_dimension(self):
            return dim

        def encode(self, sentences, convert_to_numpy=True):
            return np.stack([np.full(dim, len(s) / 10, np.float32) for s in sentences])

    monkeypatch.setitem(sys.modules, "sentence_transformers", types.SimpleNamespace(SentenceTransformer=FakeEncoder))
    text = "\n".join(f"Frame {i} adds a shape." for i in range(frames))
    with pytest.raises(ServeError, match="--text-encoder PATH"):
        drawing.typed_story(story, text, 0)
    (tmp_path / "encoder").mkdir()
    story.text_encoder = str(tmp_path / "encoder")
    assert drawing.typed_story(story, text, 0).shape == (size + 4, 2 + frames * (size + 2), 3)
    with pytest.raises(ServeError, match=f"type {frames} sentences, one per line"):
        drawing.typed_story(story, "Only one.", 0)
