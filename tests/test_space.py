"""The Gradio demo (hfdae.space): its functions called directly, its API through gradio_client against the
app served on 127.0.0.1, and one end-to-end run in headless Chromium through Playwright.

The browser test needs Debian's chromium on PATH (`make test` installs it) and fails, naming what is
missing, without it: it never skips.
"""

from __future__ import annotations

import ast
import io
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

gr = pytest.importorskip("gradio", reason="the space extra (gradio) is not installed")

import hfdae  # noqa: E402
import hfdae.space  # noqa: E402
from hfdae.cli import main  # noqa: E402
from hfdae.metrics import psnr  # noqa: E402
from hfdae.processing import array_to_tensor  # noqa: E402
from hfdae.samples import sample_image  # noqa: E402
from hfdae.space import (  # noqa: E402
    ALREADY_DEGRADED,
    DEFAULT_MODEL_LABEL,
    DenoisingSpace,
    build_demo,
    models_from_environment,
    parse_model_specs,
    synthetic_degradation,
)

from conftest import make_model  # noqa: E402

DEGRADATIONS = ("gaussian", "salt_pepper", "blur", "knockout")
SIDE = 128
MAX_PIXELS = 200 * 200  # small, so the refusal of large uploads is cheap to test
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


def _png_tensor(source: str | Path | bytes) -> torch.Tensor:
    """A PNG file (or its bytes) as a [1, 3, H, W] tensor, checking that it is a PNG."""
    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
        assert image.format == "PNG"
        return array_to_tensor(np.asarray(image.convert("RGB"))).unsqueeze(0)


def _psnr(image: torch.Tensor, reference: torch.Tensor) -> float:
    return float(psnr(image, reference)[0])


@pytest.fixture(scope="module")
def clean_array() -> np.ndarray:
    """A 128x128 crop of a bundled photo: the clean reference."""
    photo = sample_image("chelsea")
    top, left = (photo.shape[0] - SIDE) // 2, (photo.shape[1] - SIDE) // 2
    return np.ascontiguousarray(photo[top : top + SIDE, left : left + SIDE])


@pytest.fixture(scope="module")
def clean_path(clean_array, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("upload") / "cat.png"
    Image.fromarray(clean_array).save(path)
    return path


@pytest.fixture(scope="module")
def large_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("large") / "large.png"
    Image.new("RGB", (250, 170), (90, 120, 150)).save(path)  # 42,500 pixels > MAX_PIXELS
    return path


@pytest.fixture(scope="module")
def space(tmp_path_factory) -> DenoisingSpace:
    return DenoisingSpace(max_pixels=MAX_PIXELS, output_dir=tmp_path_factory.mktemp("space"))


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """The demo served on 127.0.0.1 (a free port), as ``(url, space)``."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
        patch.setenv("GRADIO_TEMP_DIR", str(tmp_path_factory.mktemp("gradio")))
        demo = build_demo(max_pixels=MAX_PIXELS, output_dir=tmp_path_factory.mktemp("app"))
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                    **demo.space.launch_options())
        try:
            yield demo.local_url, demo.space
        finally:
            demo.close()


# --------------------------------------------------------------------------------------------------
# The app's functions, called directly
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("degradation", DEGRADATIONS)
def test_denoise_a_synthesised_degradation_gives_lossless_pngs_and_metrics(space, clean_path, clean_array, degradation):
    result = space.denoise(clean_path, degradation, strength=0.5, seed=0)
    clean = array_to_tensor(clean_array).unsqueeze(0)
    degraded, restored = _png_tensor(result.degraded), _png_tensor(result.restored)
    assert degraded.shape == restored.shape == clean.shape
    # the reported numbers are those of the files shown and downloaded: nothing lossy in between
    assert _psnr(degraded, clean) == pytest.approx(result.psnr_degraded, abs=1e-6)
    assert _psnr(restored, clean) == pytest.approx(result.psnr_restored, abs=1e-6)
    assert 0 < result.ssim_degraded <= 1 and 0 < result.ssim_restored <= 1
    assert result.model == DEFAULT_MODEL_LABEL and result.seconds > 0
    assert "PSNR (dB)" in result.summary() and f"{result.psnr_restored:.2f}" in result.summary()
    if degradation != "blur":  # the default model is weakest on blur; the three others it must clearly undo
        assert result.psnr_restored > result.psnr_degraded + 2
        assert result.ssim_restored > result.ssim_degraded


@pytest.fixture
def restore_options(monkeypatch):
    """The keyword arguments of every ``restore`` call the app makes, in order."""
    calls = []
    real_restore = hfdae.space.restore

    def spy(model, images, **options):
        calls.append(options)
        return real_restore(model, images, **options)

    monkeypatch.setattr(hfdae.space, "restore", spy)
    return calls


def test_large_images_are_restored_in_tiles(tmp_path, clean_array, restore_options):
    space = DenoisingSpace(output_dir=tmp_path, tile_pixels=SIDE * SIDE)
    tiled = space.denoise(np.tile(clean_array, (5, 1, 1)), "gaussian", 0.5, 0)  # 640 rows: two tiles of 512
    whole = space.denoise(clean_array, "gaussian", 0.5, 0)
    assert [options.get("tile_size") for options in restore_options] == [hfdae.space.TILE_SIZE, None]
    assert tiled.psnr_restored > tiled.psnr_degraded + 2 and whole.psnr_restored > whole.psnr_degraded + 2


def test_the_seed_fixes_the_degradation(space, clean_array):
    first = space.denoise(clean_array, "gaussian", 0.5, seed=3)
    again = space.denoise(clean_array, "gaussian", 0.5, seed=3)
    other = space.denoise(clean_array, "gaussian", 0.5, seed=4)
    assert first.degraded.read_bytes() == again.degraded.read_bytes() != other.degraded.read_bytes()
    assert first.degraded.parent != again.degraded.parent  # each request has its own folder


def test_strength_maps_to_the_documented_levels():
    assert synthetic_degradation("gaussian", 0.5).sigma == pytest.approx(25 / 255)
    assert synthetic_degradation("salt_pepper", 1.0).fraction == pytest.approx(0.10)
    assert synthetic_degradation("blur", 0.5).sigma == pytest.approx(1.5)
    assert synthetic_degradation("knockout", 0.5).max_blocks == 30
    with pytest.raises(gr.Error, match="strength"):
        synthetic_degradation("gaussian", 1.5)
    with pytest.raises(gr.Error, match="unknown degradation"):
        synthetic_degradation("jpeg", 0.5)


def test_an_already_degraded_upload_is_restored_without_metrics(space, clean_array):
    result = space.denoise(clean_array, ALREADY_DEGRADED, 0.5, 0)
    assert result.psnr_degraded is result.psnr_restored is result.ssim_restored is None
    assert np.array_equal(np.asarray(Image.open(result.degraded)), clean_array)
    assert "No clean reference" in result.summary()


def test_an_upload_above_the_pixel_limit_is_refused_naming_both_sizes(space, large_path):
    with pytest.raises(gr.Error, match=r"250x170 = 42,500 pixels.*limit of 40,000 pixels"):
        space.denoise(large_path, "gaussian", 0.5, 0)
    with pytest.raises(gr.Error, match="250x170"):
        space.denoise(np.zeros((170, 250, 3), np.uint8), "gaussian", 0.5, 0)
    background = np.zeros((170, 250, 4), np.uint8)
    with pytest.raises(gr.Error, match="250x170"):
        space.inpaint({"background": background, "layers": [background], "composite": background})


def test_only_the_configured_models_are_offered(space, clean_array, tmp_path):
    make_model("small", images_seen=1).save_pretrained(tmp_path / "elsewhere")
    for label in (str(tmp_path / "elsewhere"), "default", "org/some-model"):
        with pytest.raises(gr.Error, match="unknown model"):
            space.denoise(clean_array, "gaussian", 0.5, 0, model=label)
    with pytest.raises(gr.Error, match="unknown model"):
        space.compare(clean_array, "gaussian", 0.5, 0, models=[DEFAULT_MODEL_LABEL, "default"])


def test_missing_or_unreadable_uploads_say_so(space, tmp_path):
    with pytest.raises(gr.Error, match="Upload an image"):
        space.denoise(None, "gaussian", 0.5, 0)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(gr.Error, match="broken.png"):
        space.denoise(tmp_path / "broken.png", "gaussian", 0.5, 0)


def test_compare_runs_every_chosen_model_on_the_same_input(tmp_path, clean_array):
    space = DenoisingSpace({"first": "default", "second": "default"}, output_dir=tmp_path)
    results = space.compare(clean_array, "gaussian", 0.5, 0)
    assert [result.model for result in results] == ["first", "second"]
    assert results[0].degraded == results[1].degraded
    assert results[0].psnr_restored == pytest.approx(results[1].psnr_restored)  # same weights, same input
    assert results[0].restored != results[1].restored
    assert [result.model for result in space.compare(clean_array, "blur", 0.5, 0, models=["second"])] == ["second"]
    with pytest.raises(gr.Error, match="at least one model"):
        space.compare(clean_array, "gaussian", 0.5, 0, models=[])


def _editor_value(clean_array: np.ndarray, rows: slice, columns: slice) -> dict:
    background = np.dstack([clean_array, np.full(clean_array.shape[:2], 255, np.uint8)])
    layer = np.zeros_like(background)
    layer[rows, columns] = (255, 0, 255, 255)
    return {"background": background, "layers": [layer], "composite": background}


def test_inpaint_fills_only_the_painted_pixels(space, clean_array):
    result = space.inpaint(_editor_value(clean_array, slice(60, 64), slice(20, 100)))
    restored = np.asarray(Image.open(result.restored))
    holes = np.asarray(Image.open(result.degraded))
    painted = np.zeros(clean_array.shape[:2], bool)
    painted[60:64, 20:100] = True
    assert np.array_equal(restored[~painted], clean_array[~painted])  # every unpainted pixel kept
    assert (holes[painted] == 0).all()  # masked pixels are set to 0 before restoring
    assert result.psnr_restored > result.psnr_degraded + 5  # scored inside the painted area
    assert "painted area" in result.summary()
    with pytest.raises(gr.Error, match="Paint over"):
        space.inpaint(_editor_value(clean_array, slice(0, 0), slice(0, 0)))


def test_a_model_with_a_mask_input_gets_the_mask(tmp_path, clean_array, restore_options):
    make_model("small", extra_input_channels=1, images_seen=1).save_pretrained(tmp_path / "mask-model")
    space = DenoisingSpace({DEFAULT_MODEL_LABEL: "default", "inpainting": str(tmp_path / "mask-model")},
                           output_dir=tmp_path / "out")
    assert space.inpainting_labels() == ["inpainting"]
    result = space.inpaint(_editor_value(clean_array, slice(10, 30), slice(10, 30)))
    assert result.model == "inpainting"  # chosen by default for the Inpaint tab
    assert restore_options[-1].get("extra_inputs").shape == (1, 1, SIDE, SIDE) and restore_options[-1].get("extra_inputs").sum() == 400 and restore_options[-1].get("extra_inputs")[0, 0, 10:30, 10:30].all()
    assert space.denoise(clean_array, "knockout", 0.5, 0, model="inpainting").psnr_restored is not None
    assert restore_options[-1].get("extra_inputs").sum() > 0  # the knocked-out blocks
    assert space.denoise(clean_array, "gaussian", 0.5, 0, model="inpainting").psnr_restored is not None
    assert restore_options[-1].get("extra_inputs").sum() == 0  # no holes
    space.denoise(clean_array, "knockout", 0.5, 0)
    assert restore_options[-1].get("extra_inputs") is None  # the default model takes no mask


def test_model_specs_parse_from_the_command_line_and_the_environment(monkeypatch):
    assert parse_model_specs(None) == {DEFAULT_MODEL_LABEL: "default"}
    assert parse_model_specs(["default"]) == {DEFAULT_MODEL_LABEL: "default"}
    assert parse_model_specs(["mine=runs/x/best", "org/name"]) == {"mine": "runs/x/best", "org/name": "org/name"}
    assert parse_model_specs(" a = default , b=org/inpaint ") == {"a": "default", "b": "org/inpaint"}
    with pytest.raises(ValueError, match="two models are labelled"):
        parse_model_specs(["a=default", "a=org/name"])
    with pytest.raises(ValueError, match="no spec"):
        parse_model_specs(["a="])
    monkeypatch.setenv("HFDAE_SPACE_MODELS", "denoiser=default, inpainter=org/inpaint")
    assert models_from_environment() == {"denoiser": "default", "inpainter": "org/inpaint"}
    monkeypatch.delenv("HFDAE_SPACE_MODELS")
    assert models_from_environment() == {DEFAULT_MODEL_LABEL: "default"}


def test_hfdae_space_launches_on_localhost_with_the_given_models(monkeypatch):
    calls = []
    monkeypatch.setattr("hfdae.space.launch", lambda models, **options: calls.append((models, options)))
    assert main(["space", "--model", "a=default", "--model", "org/name", "--port", "7000", "--max-pixels", "999"]) == 0
    models, options = calls[0]
    assert models == {"a": "default", "org/name": "org/name"}
    assert options["server_name"] == "127.0.0.1" and options["server_port"] == 7000 and options["max_pixels"] == 999


def test_hfdae_space_without_gradio_says_how_to_install_it(monkeypatch, capsys):
    monkeypatch.delitem(sys.modules, "hfdae.space")
    monkeypatch.setitem(sys.modules, "gradio", None)  # makes `import gradio` fail
    assert main(["space"]) == 2
    assert "pip install 'hfdae[space]'" in capsys.readouterr().err


SPACE_FOLDER = Path(__file__).resolve().parent.parent / "spaces" / "hfdae-demo"


def test_the_space_folder_is_a_gradio_space_of_this_package(monkeypatch, tmp_path):
    import runpy
    import tomllib

    import yaml

    readme = (SPACE_FOLDER / "README.md").read_text()
    front_matter = yaml.safe_load(readme.split("---")[1])
    assert front_matter["sdk"] == "gradio" and front_matter["sdk_version"] == gr.__version__
    assert (SPACE_FOLDER / front_matter["app_file"]).is_file()
    project = tomllib.loads((SPACE_FOLDER.parent.parent / "pyproject.toml").read_text())["project"]
    assert front_matter["license"] == project["license"].lower()
    assert isinstance(front_matter["models"], list)
    requirements = (SPACE_FOLDER / "requirements.txt").read_text()
    assert "hfdae[space]" in requirements and "whl/cpu" in requirements

    monkeypatch.setenv("HFDAE_SPACE_MODELS", "denoiser=default")
    monkeypatch.setenv("HFDAE_SPACE_MAX_PIXELS", "12345")
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the app's own output folder goes here too
    app = runpy.run_path(str(SPACE_FOLDER / "app.py"), run_name="space_app")  # builds, does not launch
    assert isinstance(app["demo"], gr.Blocks)
    assert app["space"].labels == ["denoiser"] and app["space"].max_pixels == 12345


def test_no_other_module_imports_gradio():
    package = Path(hfdae.__file__).parent
    for source in package.glob("*.py"):
        if source.name == "space.py":
            continue
        for node in ast.walk(ast.parse(source.read_text())):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(name.split(".")[0] == "gradio" for name in names), f"{source.name} imports gradio"


# --------------------------------------------------------------------------------------------------
# The served app, through gradio_client
# --------------------------------------------------------------------------------------------------


def test_the_api_denoises_and_returns_pngs(app, clean_path, clean_array):
    from gradio_client import Client, handle_file

    url, _ = app
    client = Client(url, verbose=False)
    degraded, restored, summary, download = client.predict(
        handle_file(str(clean_path)), "gaussian", 0.5, 0, DEFAULT_MODEL_LABEL, api_name="/denoise")
    clean = array_to_tensor(clean_array).unsqueeze(0)
    assert _psnr(_png_tensor(restored), clean) > _psnr(_png_tensor(degraded), clean) + 2
    assert Path(download).read_bytes() == Path(restored).read_bytes()
    assert "PSNR (dB)" in summary

    gallery, table = client.predict(handle_file(str(clean_path)), "salt_pepper", 0.5, 0, [DEFAULT_MODEL_LABEL],
                                    api_name="/compare")
    assert [Path(item["image"]).suffix for item in gallery] == [".png", ".png"]
    assert gallery[1]["caption"].startswith(DEFAULT_MODEL_LABEL) and "dB" in gallery[1]["caption"]
    assert "| model | PSNR (dB) | SSIM | time (s) |" in table


def test_the_api_inpaints_the_painted_layer(app, clean_array, tmp_path):
    from gradio_client import Client, handle_file

    editor = _editor_value(clean_array, slice(60, 64), slice(20, 100))
    Image.fromarray(editor["background"]).save(tmp_path / "background.png")
    Image.fromarray(editor["layers"][0]).save(tmp_path / "paint.png")
    value = {"background": handle_file(str(tmp_path / "background.png")),
             "layers": [handle_file(str(tmp_path / "paint.png"))], "composite": None}
    url, _ = app
    holes, filled, summary, _ = Client(url, verbose=False).predict(value, DEFAULT_MODEL_LABEL, api_name="/inpaint")
    painted = editor["layers"][0][:, :, 3] > 0
    assert (np.asarray(Image.open(holes))[painted] == 0).all()
    assert np.array_equal(np.asarray(Image.open(filled))[~painted], clean_array[~painted])
    assert "painted area" in summary


def test_the_api_refuses_large_uploads_and_unknown_models(app, clean_path, large_path):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    url, _ = app
    client = Client(url, verbose=False)
    with pytest.raises(AppError, match=r"250x170 = 42,500 pixels.*limit of 40,000"):
        client.predict(handle_file(str(large_path)), "gaussian", 0.5, 0, DEFAULT_MODEL_LABEL, api_name="/denoise")
    with pytest.raises(AppError, match="not in the list of choices"):
        client.predict(handle_file(str(clean_path)), "gaussian", 0.5, 0, "/tmp", api_name="/denoise")


def test_the_server_serves_no_file_outside_its_outputs(app):
    import httpx

    url, space = app
    for outside in ("/etc/passwd", str(Path(hfdae.__file__).resolve()), str(Path.cwd().resolve() / "pyproject.toml")):
        assert httpx.get(f"{url}gradio_api/file={outside}").status_code == 403
    example = space.output_dir.resolve() / "examples" / "chelsea.png"
    assert httpx.get(f"{url}gradio_api/file={example}").status_code == 200


# --------------------------------------------------------------------------------------------------
# End to end in a real browser
# --------------------------------------------------------------------------------------------------


def test_denoise_in_headless_chromium(request, clean_path, clean_array, tmp_path):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed (pip install -e '.[dev]')")
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("there is no chromium on PATH: `make test` installs Debian's chromium (apt-get install chromium)")
    url, _ = request.getfixturevalue("app")  # only now: no server is started when the browser is missing
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            page.locator("#denoise-input input[type=file]").set_input_files(str(clean_path))
            page.locator("#denoise-input img").first.wait_for(timeout=30_000)  # the upload is in
            page.locator("#denoise-degradation").get_by_label("Gaussian noise").check()
            page.locator("#denoise-run").click()
            page.locator("#denoise-restored img").first.wait_for(timeout=60_000)
            page.locator("#denoise-summary").get_by_text("PSNR (dB)").wait_for(timeout=30_000)
            images = {}
            for name in ("degraded", "restored"):
                source = page.locator(f"#denoise-{name} img").first.get_attribute("src")
                assert source.endswith(".png"), source
                response = page.request.get(source)
                assert response.ok
                images[name] = _png_tensor(response.body())
            screenshot = tmp_path / "space-denoise.png"
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    clean = array_to_tensor(clean_array).unsqueeze(0)
    assert _psnr(images["restored"], clean) > _psnr(images["degraded"], clean) + 2
    assert Image.open(screenshot).size[0] >= 1400
    if os.environ.get("HFDAE_SCREENSHOT_DIR"):
        Path(os.environ["HFDAE_SCREENSHOT_DIR"]).mkdir(parents=True, exist_ok=True)
        shutil.copy(screenshot, Path(os.environ["HFDAE_SCREENSHOT_DIR"]) / screenshot.name)
