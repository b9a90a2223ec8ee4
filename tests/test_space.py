"""The Gradio demo (hfdae.space): its functions called directly, its API through gradio_client against the
app served on 127.0.0.1, the exported Space folder started from its own wheel, and a visitor's session in
headless Chromium through Playwright.

The browser test needs Debian's chromium on PATH (`make test` installs it) and fails, naming what is
missing, without it: it never skips.
"""

from __future__ import annotations

import ast
import io
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

gr = pytest.importorskip("gradio", reason="the space extra (gradio) is not installed")

import hfdae  # noqa: E402
import hfdae.space  # noqa: E402
from hfdae.cli import main  # noqa: E402
from hfdae.degradations import JPEGCompression, PoissonGaussianNoise  # noqa: E402
from hfdae.inference import estimate_noise_level  # noqa: E402
from hfdae.metrics import psnr  # noqa: E402
from hfdae.processing import array_to_tensor  # noqa: E402
from hfdae.samples import sample_image  # noqa: E402
from hfdae.space import (  # noqa: E402
    ALREADY_DEGRADED,
    DEFAULT_MODEL_LABEL,
    DEGRADATION_CONTROLS,
    DenoisingSpace,
    ModelAbilities,
    build_demo,
    export_space,
    models_from_environment,
    parse_model_specs,
    space_app_source,
    space_readme,
    synthetic_degradation,
)

from conftest import make_model  # noqa: E402

DEGRADATIONS = tuple(DEGRADATION_CONTROLS)  # the chapter's four and the phone photo
SIDE = 128
MAX_PIXELS = 200 * 200  # small, so the refusal of large uploads is cheap to test
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
PROJECT = Path(__file__).resolve().parent.parent
SPACE_FOLDER = PROJECT / "spaces" / "hfdae-demo"


def _png_tensor(source: str | Path | bytes) -> torch.Tensor:
    """A PNG file (or its bytes) as a [1, 3, H, W] tensor, checking that it is a PNG."""
    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
        assert image.format == "PNG"
        return array_to_tensor(np.asarray(image.convert("RGB"))).unsqueeze(0)


def _psnr(image: torch.Tensor, reference: torch.Tensor) -> float:
    return float(psnr(image, reference)[0])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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
def text_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("text") / "notes.png"
    path.write_text("a text file named like an image\n")
    return path


@pytest.fixture(scope="module")
def space(tmp_path_factory) -> DenoisingSpace:
    return DenoisingSpace(max_pixels=MAX_PIXELS, output_dir=tmp_path_factory.mktemp("space"))


@pytest.fixture(scope="module")
def task_models(tmp_path_factory) -> dict[str, str]:
    """Tiny untrained models with the configs of each kind of zoo model, saved as folders: ``{label: folder}``."""
    folder = tmp_path_factory.mktemp("task-models")
    kinds = {
        "restorer": {},
        "deblurrer": {"task": "deblur", "training_summary": {"degradations": {"chain": [{"name": "blur"}, "gaussian"]}}},
        "inpainter": {"task": "inpaint", "extra_input_channels": 1},
        "photo": {"task": "denoise", "training_summary": {"degradations": {"chain": ["poisson_gaussian", "jpeg"]}}},
        "strength": {"noise_level_input": True},
        "grey": {"colour_space": "gray"},
    }
    models = {}
    for label, overrides in kinds.items():
        overrides = dict(overrides)
        colour_space = overrides.pop("colour_space", "rgb")
        model = make_model("small", colour_space=colour_space, images_seen=1, **overrides)
        model.save_pretrained(folder / label)
        models[label] = str(folder / label)
    return models


@pytest.fixture(scope="module")
def task_space(task_models, tmp_path_factory) -> DenoisingSpace:
    return DenoisingSpace(task_models, output_dir=tmp_path_factory.mktemp("task-space"))


@pytest.fixture
def restore_options(monkeypatch):
    """The keyword arguments of every ``restore`` call the app makes, in order, with the images given."""
    calls = []
    real_restore = hfdae.space.restore

    def spy(model, images, **options):
        calls.append({**options, "images": images.clone()})
        return real_restore(model, images, **options)

    monkeypatch.setattr(hfdae.space, "restore", spy)
    return calls


def _launch(demo: gr.Blocks) -> str:
    demo.launch(server_name="127.0.0.1", server_port=_free_port(), prevent_thread_lock=True, quiet=True,
                **demo.space.launch_options())
    return demo.local_url


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """The demo served on 127.0.0.1 (a free port), as ``(url, space)``."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
        patch.setenv("GRADIO_TEMP_DIR", str(tmp_path_factory.mktemp("gradio")))
        demo = build_demo(max_pixels=MAX_PIXELS, output_dir=tmp_path_factory.mktemp("app"))
        try:
            yield _launch(demo), demo.space
        finally:
            demo.close()


# --------------------------------------------------------------------------------------------------
# The app's functions, called directly
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("degradation", DEGRADATIONS)
def test_denoise_a_synthesised_degradation_gives_lossless_pngs_and_metrics(space, clean_path, clean_array, degradation):
    result = space.denoise(clean_path, degradation, seed=0)
    clean = array_to_tensor(clean_array).unsqueeze(0)
    degraded, restored = _png_tensor(result.degraded), _png_tensor(result.restored)
    assert degraded.shape == restored.shape == clean.shape
    # the reported numbers are those of the files shown and downloaded: nothing lossy in between
    assert _psnr(degraded, clean) == pytest.approx(result.psnr_degraded, abs=1e-6)
    assert _psnr(restored, clean) == pytest.approx(result.psnr_restored, abs=1e-6)
    assert 0 < result.ssim_degraded <= 1 and 0 < result.ssim_restored <= 1
    assert result.model == DEFAULT_MODEL_LABEL and result.seconds > 0
    assert "PSNR (dB)" in result.summary() and f"{result.psnr_restored:.2f}" in result.summary()
    if degradation in ("gaussian", "salt_pepper", "knockout"):  # what the default was trained to undo
        assert result.psnr_restored > result.psnr_degraded + 2
        assert result.ssim_restored > result.ssim_degraded


def test_large_images_are_restored_in_tiles_with_progress(tmp_path, clean_array, restore_options):
    space = DenoisingSpace(output_dir=tmp_path, tile_pixels=SIDE * SIDE)
    reports = []
    tiled = space.denoise(np.tile(clean_array, (5, 1, 1)), "gaussian", 25, 0,
                          progress=lambda done, total: reports.append((done, total)))
    whole = space.denoise(clean_array, "gaussian", 25, 0)
    assert [options.get("tile_size") for options in restore_options] == [hfdae.space.TILE_SIZE, None]
    assert reports == [(1, 2), (2, 2)]  # 640 rows: two tiles of 512, each reported
    assert tiled.psnr_restored > tiled.psnr_degraded + 2 and whole.psnr_restored > whole.psnr_degraded + 2


def test_the_seed_fixes_the_degradation(space, clean_array):
    first = space.denoise(clean_array, "gaussian", 25, seed=3)
    again = space.denoise(clean_array, "gaussian", 25, seed=3)
    other = space.denoise(clean_array, "gaussian", 25, seed=4)
    assert first.degraded.read_bytes() == again.degraded.read_bytes() != other.degraded.read_bytes()
    assert first.degraded.parent != again.degraded.parent  # each request has its own folder


def test_amounts_are_in_each_degradations_own_units():
    assert synthetic_degradation("gaussian", 25).sigma == pytest.approx(25 / 255)  # sigma, 0-255 scale
    assert synthetic_degradation("salt_pepper", 10).fraction == pytest.approx(0.10)  # percent of pixels
    assert synthetic_degradation("blur", 1.5).sigma == pytest.approx(1.5)  # pixels
    assert synthetic_degradation("knockout", 30).max_blocks == 30  # blocks per 128x128
    noise, jpeg = synthetic_degradation("phone_photo", 20).degradations
    assert isinstance(noise, PoissonGaussianNoise) and isinstance(jpeg, JPEGCompression)
    assert noise.shot * 0.5 + noise.read**2 == pytest.approx((20 / 255) ** 2)  # sigma 20 at mid-grey
    assert jpeg.subsampling == "4:2:0"
    for name, control in DEGRADATION_CONTROLS.items():
        assert synthetic_degradation(name) == synthetic_degradation(name, control.default)
        with pytest.raises(gr.Error, match=re.escape(control.label)):
            synthetic_degradation(name, control.maximum + 1)
    with pytest.raises(gr.Error, match="unknown degradation"):
        synthetic_degradation("jpeg", 50)


def test_an_already_degraded_upload_is_restored_without_metrics(space, clean_array):
    result = space.denoise(clean_array, ALREADY_DEGRADED)
    assert result.psnr_degraded is result.psnr_restored is result.ssim_restored is None
    assert np.array_equal(np.asarray(Image.open(result.degraded)), clean_array)
    assert "No clean reference" in result.summary()


def test_an_upload_above_the_pixel_limit_is_refused_with_the_rule_for_a_web_visitor(space, large_path):
    with pytest.raises(gr.Error) as refused:
        space.denoise(large_path, "gaussian")
    message = refused.value.message
    assert re.search(r"250x170 = 42,500 pixels, above this demo's limit of 40,000 pixels \(0.04 MP, for example"
                     r" 200x200\)", message)
    assert "`" not in message and "hfdae" not in message  # no markup, no command-line advice
    with pytest.raises(gr.Error, match="250x170"):
        space.denoise(np.zeros((170, 250, 3), np.uint8), "gaussian")
    background = np.zeros((170, 250, 4), np.uint8)
    with pytest.raises(gr.Error, match="250x170"):
        space.inpaint({"background": background, "layers": [background], "composite": background})


def test_only_the_configured_models_are_offered(space, clean_array, tmp_path):
    make_model("small", images_seen=1).save_pretrained(tmp_path / "elsewhere")
    for label in (str(tmp_path / "elsewhere"), "default", "org/some-model"):
        with pytest.raises(gr.Error, match="unknown model"):
            space.denoise(clean_array, "gaussian", model=label)
    with pytest.raises(gr.Error, match="unknown model"):
        space.compare(clean_array, "gaussian", models=[DEFAULT_MODEL_LABEL, "default"])


def test_missing_or_unreadable_uploads_say_so_naming_the_file(space, tmp_path, text_path):
    with pytest.raises(gr.Error, match="Upload an image"):
        space.denoise(None, "gaussian")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    for path in (tmp_path / "broken.png", text_path):
        with pytest.raises(gr.Error, match=rf"{path.name} is not an image this demo can read"):
            space.denoise(path, "gaussian")


@pytest.mark.parametrize("component", ["image", "editor"])
def test_the_upload_components_name_an_unreadable_file_instead_of_failing_bare(text_path, component):
    """Gradio's own components raise a bare exception (shown as "Error") when the file is not an image."""
    from gradio.components.image_editor import EditorData
    from gradio.data_classes import FileData

    payload = FileData(path=str(text_path), orig_name=text_path.name)
    if component == "image":
        with pytest.raises(gr.Error, match="notes.png is not an image"):
            hfdae.space._image_upload(type="filepath", image_mode=None).preprocess(payload)
        with pytest.raises(Exception) as bare:
            gr.Image(type="numpy").preprocess(payload)
        assert not isinstance(bare.value, gr.Error)
    else:
        with pytest.raises(gr.Error, match="is not an image"):
            hfdae.space._paint_editor(type="numpy").preprocess(EditorData(background=payload, layers=[], composite=None))


def test_the_module_leaves_no_stub_file_behind():
    """Gradio writes a .pyi next to the module of any component subclass; the app subclasses none."""
    assert not Path(hfdae.space.__file__).with_suffix(".pyi").exists()


def test_compare_runs_every_chosen_model_on_the_same_input(tmp_path, clean_array):
    space = DenoisingSpace({"first": "default", "second": "default"}, output_dir=tmp_path)
    reports = []
    results = space.compare(clean_array, "gaussian", 25, 0, progress=lambda *report: reports.append(report))
    assert [result.model for result in results] == ["first", "second"]
    assert reports == [("first", 1, 1), ("second", 1, 1)]
    assert results[0].degraded == results[1].degraded
    assert results[0].psnr_restored == pytest.approx(results[1].psnr_restored)  # same weights, same input
    assert results[0].restored != results[1].restored
    assert [result.model for result in space.compare(clean_array, "blur", models=["second"])] == ["second"]
    with pytest.raises(gr.Error, match="at least one model"):
        space.compare(clean_array, "gaussian", models=[])


def _editor_value(clean_array: np.ndarray, rows: slice, columns: slice) -> dict:
    background = np.dstack([clean_array, np.full(clean_array.shape[:2], 255, np.uint8)])
    layer = np.zeros_like(background)
    layer[rows, columns] = (255, 0, 255, 255)
    return {"background": background, "layers": [layer], "composite": background}


def test_inpaint_fills_only_the_painted_pixels_and_feeds_the_model_zeros_there(space, clean_array, restore_options):
    result = space.inpaint(_editor_value(clean_array, slice(60, 64), slice(20, 100)))
    restored = np.asarray(Image.open(result.restored))
    holes = np.asarray(Image.open(result.degraded))
    painted = np.zeros(clean_array.shape[:2], bool)
    painted[60:64, 20:100] = True
    assert np.array_equal(restored[~painted], clean_array[~painted])  # every unpainted pixel kept
    assert (holes[painted] == 0).all()  # shown as what the model gets
    model_input = restore_options[-1]["images"][0].permute(1, 2, 0).numpy()
    assert (model_input[painted] == 0).all()  # zeros in the holes, as in training, never the paint colour
    assert np.allclose(model_input[~painted] * 255, clean_array[~painted], atol=1e-3)
    assert result.psnr_restored > result.psnr_degraded + 5  # scored inside the painted area
    assert "painted area" in result.summary()
    with pytest.raises(gr.Error, match="Paint over"):
        space.inpaint(_editor_value(clean_array, slice(0, 0), slice(0, 0)))


def test_an_uploaded_mask_adds_holes_and_must_match_the_image(space, clean_array, tmp_path, restore_options):
    mask = np.zeros(clean_array.shape[:2], np.uint8)
    mask[10:20, 30:50] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    editor = _editor_value(clean_array, slice(60, 64), slice(20, 100))
    result = space.inpaint(editor, mask=tmp_path / "mask.png")
    holes = np.asarray(Image.open(result.degraded))
    assert (holes[10:20, 30:50] == 0).all() and (holes[60:64, 20:100] == 0).all()
    assert (restore_options[-1]["images"][0, :, 10:20, 30:50] == 0).all()
    unpainted = space.inpaint(_editor_value(clean_array, slice(0, 0), slice(0, 0)), mask=tmp_path / "mask.png")
    assert "1.2% of the pixels" in unpainted.condition  # the mask alone is enough: 200 of 16,384 pixels
    Image.fromarray(mask[:100]).save(tmp_path / "short-mask.png")
    with pytest.raises(gr.Error, match=r"The mask is 128x100 but the image is 128x128"):
        space.inpaint(editor, mask=tmp_path / "short-mask.png")


def test_a_model_with_a_mask_input_gets_the_mask(tmp_path, clean_array, restore_options):
    make_model("small", extra_input_channels=1, images_seen=1).save_pretrained(tmp_path / "mask-model")
    space = DenoisingSpace({DEFAULT_MODEL_LABEL: "default", "inpainting": str(tmp_path / "mask-model")},
                           output_dir=tmp_path / "out")
    assert space.inpainting_labels() == ["inpainting"]
    result = space.inpaint(_editor_value(clean_array, slice(10, 30), slice(10, 30)))
    assert result.model == "inpainting"  # chosen by default for the Inpaint tab
    extra = restore_options[-1]["extra_inputs"]
    assert extra.shape == (1, 1, SIDE, SIDE) and extra.sum() == 400 and extra[0, 0, 10:30, 10:30].all()
    assert space.denoise(clean_array, "knockout", model="inpainting").psnr_restored is not None
    assert restore_options[-1]["extra_inputs"].sum() > 0  # the knocked-out blocks
    assert space.denoise(clean_array, "gaussian", model="inpainting").psnr_restored is not None
    assert restore_options[-1]["extra_inputs"].sum() == 0  # no holes
    space.denoise(clean_array, "knockout", model=DEFAULT_MODEL_LABEL)
    assert restore_options[-1]["extra_inputs"] is None  # the default model takes no mask


# What each kind of model is offered for: read from its config, never from its name.
OFFERED = {
    "gaussian": ["restorer", "photo", "strength", "grey"],
    "salt_pepper": ["restorer", "strength", "grey"],
    "blur": ["deblurrer"],
    "knockout": ["restorer", "inpainter", "strength", "grey"],
    "phone_photo": ["photo"],
    "none": ["restorer", "photo", "strength", "grey"],
    "inpaint": ["inpainter"],
}


@pytest.mark.parametrize("job", list(OFFERED))
def test_the_models_offered_for_each_job_follow_from_their_configs(task_space, job):
    assert task_space.labels_for(job) == OFFERED[job]
    suggested = task_space.suggested_label(job, current="restorer")
    assert suggested == ("restorer" if "restorer" in OFFERED[job] else OFFERED[job][0])


def test_the_model_notes_say_honestly_what_a_model_cannot_do_and_what_to_choose(task_space):
    blur_note = task_space.model_note("restorer", "blur")
    assert "not a deblurring model" in blur_note and "Choose **deblurrer**" in blur_note
    assert "not a deblurring model" not in task_space.model_note("deblurrer", "blur")
    jpeg_note = task_space.model_note("restorer", ALREADY_DEGRADED, jpeg=True)
    assert "JPEG" in jpeg_note and "Choose **photo**" in jpeg_note
    assert task_space.suggested_label(ALREADY_DEGRADED, jpeg=True, current="restorer") == "photo"
    assert "thin strokes" in task_space.model_note("restorer", "inpaint")  # the note follows the model chosen
    assert "given the mask" in task_space.model_note("inpainter", "inpaint")
    assert "Inpaint tab" in task_space.model_note("inpainter", "gaussian")
    assert "grey" in task_space.model_note("grey", "gaussian")
    assert "Noise level" in task_space.model_note("strength", "gaussian")
    assert "Noise level" not in task_space.model_note("restorer", "gaussian")
    lonely = DenoisingSpace(output_dir=task_space.output_dir / "lonely")
    assert "No model here is trained for it" in lonely.model_note(DEFAULT_MODEL_LABEL, "blur")


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, ModelAbilities("restore", False, False, False, frozenset({"gaussian", "salt_pepper", "blur", "knockout"}))),
        ({"task": "deblur"}, ModelAbilities("deblur", False, False, False, frozenset({"blur"}))),
        ({"extra_input_channels": 1, "task": "inpaint",
          "training_summary": {"degradations": {"name": "inpaint_mask", "max_boxes": 3}}},
         ModelAbilities("inpaint", True, False, False, frozenset({"inpaint_mask"}))),
        ({"noise_level_input": True, "training_summary": {"degradations": {"choice": [{"name": "gaussian"}, "jpeg"]}}},
         ModelAbilities("restore", False, True, False, frozenset({"gaussian", "jpeg"}))),
        ({"colour_space": "gray", "training_summary": {"degradations": "chapter"}},
         ModelAbilities("restore", False, False, True, frozenset({"gaussian", "salt_pepper", "blur", "knockout"}))),
    ],
)
def test_abilities_are_read_from_the_config(overrides, expected):
    assert ModelAbilities.from_config(hfdae.DenoisingAutoencoderConfig.from_preset("small", **overrides)) == expected


def test_the_noise_level_control_reaches_models_with_a_noise_level_input(task_space, clean_array, restore_options):
    noisy = task_space.denoise(clean_array, "gaussian", 30, 0, model="strength", noise_level="auto")
    degraded = _png_tensor(noisy.degraded)
    expected = float(estimate_noise_level(degraded)[0])
    assert restore_options[-1]["noise_level"] == pytest.approx(expected)
    assert noisy.noise_level == pytest.approx(expected * 255)
    assert 20 < noisy.noise_level < 40  # the estimate is near the sigma 30 added
    assert f"sigma {noisy.noise_level:.1f}/255 (estimated from the image)" in noisy.summary()
    task_space.denoise(clean_array, "gaussian", 30, 0, model="strength", noise_level=12.5)
    assert restore_options[-1]["noise_level"] == pytest.approx(12.5 / 255)
    blind = task_space.denoise(clean_array, "gaussian", 30, 0, model="strength", noise_level=None)
    assert restore_options[-1]["noise_level"] is None and blind.noise_level is None
    other = task_space.denoise(clean_array, "gaussian", 30, 0, model="restorer", noise_level="auto")
    assert restore_options[-1]["noise_level"] is None and other.noise_level is None  # it has no such input
    with pytest.raises(gr.Error, match="between 0 and 255"):
        task_space.denoise(clean_array, "gaussian", 30, 0, model="strength", noise_level=300)


def test_a_restoration_that_changes_nothing_says_so(space, clean_array, monkeypatch):
    monkeypatch.setattr(hfdae.space, "restore", lambda model, images, **options: images.clone())
    result = space.denoise(clean_array, "blur", 1.5, 0)
    assert result.gain == pytest.approx(0.0)
    assert "left the blur almost as it was (+0.00 dB)" in result.summary()
    assert "not a deblurring model" in result.summary()
    monkeypatch.setattr(hfdae.space, "restore", lambda model, images, **options: torch.zeros_like(images))
    assert re.search(r"made the image worse \(-\d+\.\d\d dB\)", space.denoise(clean_array, "gaussian").summary())


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


def test_hfdae_space_export_writes_the_folder_with_the_given_models(monkeypatch, tmp_path, capsys):
    calls = []
    monkeypatch.setattr("hfdae.space.export_space", lambda *arguments, **options: calls.append((arguments, options))
                        or Path(arguments[0]))
    assert main(["space", "--export", str(tmp_path / "out"), "--model", "default", "--model", "holes=inpaint"]) == 0
    assert calls == [((str(tmp_path / "out"), {DEFAULT_MODEL_LABEL: "default", "holes": "inpaint"}),
                      {"wheel": None, "overwrite": False})]
    assert "hf upload USER/NAME" in capsys.readouterr().out
    assert main(["space", "--export", str(tmp_path / "out"), "--wheel", "hfdae.whl", "--overwrite"]) == 0
    assert calls[-1][1] == {"wheel": "hfdae.whl", "overwrite": True}
    monkeypatch.setattr("hfdae.space.export_space", export_space)
    assert main(["space", "--export", str(tmp_path / "hub"), "--model", "org/some-model"]) == 2
    assert "download a Hub model first" in capsys.readouterr().err


def test_hfdae_space_without_gradio_says_how_to_install_it(monkeypatch, capsys):
    monkeypatch.delitem(sys.modules, "hfdae.space")
    monkeypatch.setitem(sys.modules, "gradio", None)  # makes `import gradio` fail
    assert main(["space"]) == 2
    assert "pip install 'hfdae[space]'" in capsys.readouterr().err


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
# The Space folder: checked in, and exported with its wheel and models
# --------------------------------------------------------------------------------------------------


def _front_matter(readme: str) -> dict:
    import yaml

    return yaml.safe_load(readme.split("---")[1])


def _requirement_names(requirements: str) -> set[str]:
    """The package names of a requirements file (the pinned versions depend on the environment)."""
    return {re.match(r"[A-Za-z0-9._-]+", line).group(0).lower() for line in requirements.splitlines()
            if line and not line.startswith(("#", "-"))}


def test_the_checked_in_space_folder_is_what_export_writes_for_the_default_model():
    assert (SPACE_FOLDER / "app.py").read_text() == space_app_source({DEFAULT_MODEL_LABEL: "default"})
    assert (SPACE_FOLDER / "README.md").read_text() == space_readme({DEFAULT_MODEL_LABEL: "default"})
    front_matter = _front_matter((SPACE_FOLDER / "README.md").read_text())
    assert front_matter["sdk"] == "gradio" and front_matter["sdk_version"] == gr.__version__
    assert front_matter["app_file"] == "app.py"
    assert front_matter["python_version"] == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert "github.com" not in (SPACE_FOLDER / "requirements.txt").read_text()  # no repository to clone


def test_export_refuses_what_a_space_would_have_to_download_and_a_folder_in_use(tmp_path):
    with pytest.raises(ValueError, match="download a Hub model first"):
        export_space(tmp_path / "space", {"hub": "org/some-model"})
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not empty"):
        export_space(tmp_path / "used")
    assert (tmp_path / "used" / "notes.txt").read_text() == "keep me"
    make_model("small").save_pretrained(tmp_path / "model")
    (tmp_path / "model" / "model.safetensors").unlink()
    with pytest.raises(ValueError, match="no model.safetensors"):
        export_space(tmp_path / "space", {"broken": str(tmp_path / "model")})
    assert not (tmp_path / "space").exists()  # checked before anything is written


def test_the_exported_space_starts_from_its_own_wheel_and_model_folders(tmp_path, clean_path):
    """The folder export_space writes runs as a Space runs it (``python app.py`` in the folder), outside
    the checkout, with hfdae from the shipped wheel and the inpainting model from its copied folder."""
    from gradio_client import Client, handle_file

    make_model("small", extra_input_channels=1, task="inpaint", images_seen=1).save_pretrained(tmp_path / "inpainter")
    folder = export_space(tmp_path / "space", ["default", f"holes={tmp_path / 'inpainter'}"])
    wheel, = (folder / "wheels").glob("hfdae-*.whl")
    requirements = (folder / "requirements.txt").read_text()
    assert f"torch=={torch.__version__.split('+')[0]}" in requirements and "whl/cpu" in requirements
    assert f"transformers=={__import__('transformers').__version__}" in requirements
    assert "gradio" not in requirements.replace("# gradio comes", "")  # the Space installs it from sdk_version
    assert _requirement_names(requirements) == _requirement_names((SPACE_FOLDER / "requirements.txt").read_text())
    assert sorted(path.name for path in (folder / "models" / "holes").iterdir()) == ["config.json", "model.safetensors"]
    assert _front_matter((folder / "README.md").read_text())["sdk_version"] == gr.__version__

    port = _free_port()
    environment = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "HFDAE_ZOO_DIR")}
    environment.update(GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port), GRADIO_ANALYTICS_ENABLED="False",
                       HF_HUB_OFFLINE="1", GRADIO_TEMP_DIR=str(tmp_path / "gradio"), PYTHONUNBUFFERED="1")
    check = "import app, hfdae; print('HFDAE_FROM', hfdae.__file__, flush=True); app.demo.launch(**app.space.launch_options())"
    server = subprocess.Popen([sys.executable, "-c", check], cwd=folder, env=environment, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            line = server.stdout.readline()
            if not line and server.poll() is not None:
                pytest.fail("the exported app exited:\n" + "".join(lines))
            lines.append(line)
            if "127.0.0.1" in line and "http" in line:
                break
        else:
            pytest.fail("the exported app did not start in 240 s:\n" + "".join(lines))
        origin = next(line for line in lines if line.startswith("HFDAE_FROM")).split()[1]
        assert Path(origin).is_relative_to(folder / ".hfdae" / wheel.stem), origin  # the wheel's hfdae, not ours
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        (before, after), summary, _, _ = client.predict(handle_file(str(clean_path)), "gaussian", 25, 0,
                                                        DEFAULT_MODEL_LABEL, "blind", 25, api_name="/denoise")
        assert "PSNR (dB)" in summary and Path(after).suffix == ".png"
        assert client.view_api(return_format="dict", print_info=False)["named_endpoints"]["/inpaint"]
    finally:
        server.terminate()
        server.wait(timeout=30)


# --------------------------------------------------------------------------------------------------
# The served app, through gradio_client
# --------------------------------------------------------------------------------------------------


def test_the_api_offers_the_three_tabs_only(app):
    from gradio_client import Client

    url, _ = app
    endpoints = Client(url, verbose=False).view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert sorted(endpoints) == ["/compare", "/denoise", "/inpaint"]  # the page's helper events are private


def test_the_api_denoises_and_returns_a_before_after_pair_of_pngs(app, clean_path, clean_array):
    from gradio_client import Client, handle_file

    url, _ = app
    client = Client(url, verbose=False)
    (degraded, restored), summary, download, _ = client.predict(
        handle_file(str(clean_path)), "gaussian", 25, 0, DEFAULT_MODEL_LABEL, "blind", 25, api_name="/denoise")
    clean = array_to_tensor(clean_array).unsqueeze(0)
    assert _psnr(_png_tensor(restored), clean) > _psnr(_png_tensor(degraded), clean) + 2
    assert download["visible"] is True  # shown once there is a result (a component update)
    assert Path(download["value"]).read_bytes() == Path(restored).read_bytes()
    assert "PSNR (dB)" in summary

    gallery, table, _ = client.predict(handle_file(str(clean_path)), "salt_pepper", 5, 0, [DEFAULT_MODEL_LABEL],
                                       "blind", 25, api_name="/compare")
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
    (holes, filled), summary, _ = Client(url, verbose=False).predict(value, DEFAULT_MODEL_LABEL, None,
                                                                     api_name="/inpaint")
    painted = editor["layers"][0][:, :, 3] > 0
    assert (np.asarray(Image.open(holes))[painted] == 0).all()
    assert np.array_equal(np.asarray(Image.open(filled))[~painted], clean_array[~painted])
    assert "painted area" in summary


def test_the_api_refuses_large_uploads_non_images_and_unknown_models(app, clean_path, large_path, text_path):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    url, _ = app
    client = Client(url, verbose=False)
    with pytest.raises(AppError, match=r"250x170 = 42,500 pixels, above this demo's limit of 40,000"):
        client.predict(handle_file(str(large_path)), "gaussian", 25, 0, DEFAULT_MODEL_LABEL, "blind", 25,
                       api_name="/denoise")
    with pytest.raises(AppError, match="notes.png is not an image"):
        client.predict(handle_file(str(text_path)), "gaussian", 25, 0, [DEFAULT_MODEL_LABEL], "blind", 25,
                       api_name="/compare")
    with pytest.raises(AppError, match="not in the list of choices"):
        client.predict(handle_file(str(clean_path)), "gaussian", 25, 0, "/tmp", "blind", 25, api_name="/denoise")


def test_the_server_serves_no_file_outside_its_outputs(app):
    import httpx

    url, space = app
    for outside in ("/etc/passwd", str(Path(hfdae.__file__).resolve()), str(Path.cwd().resolve() / "pyproject.toml")):
        assert httpx.get(f"{url}gradio_api/file={outside}").status_code == 403
    example = space.output_dir.resolve() / "examples" / "chelsea.png"
    assert httpx.get(f"{url}gradio_api/file={example}").status_code == 200


# --------------------------------------------------------------------------------------------------
# A visitor's session in a real browser
# --------------------------------------------------------------------------------------------------


def _chromium() -> str:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.fail("playwright is not installed (pip install -e '.[dev]')")
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("there is no chromium on PATH: `make test` installs Debian's chromium (apt-get install chromium)")
    return executable


def test_a_visitor_session_in_headless_chromium(tmp_path, text_path):
    """Desktop (1280 px) then phone (390 px): every tab names a non-image upload; an oversize upload (by pixels
    or by bytes) is refused in the page at once, before anything is sent; a result is a before/after slider of
    two PNGs, and only then is the download offered; on a phone the result comes before the examples."""
    from playwright.sync_api import sync_playwright

    executable = _chromium()
    oversize = tmp_path / "oversize.png"
    Image.new("RGB", (2100, 2000), (90, 120, 150)).save(oversize)  # 4.2 MP, a small file
    heavy = tmp_path / "heavy.png"
    heavy.write_bytes(b"\0" * (33 * 10**6))  # above the byte limit of a 4 MP demo (32 MB)
    shots = Path(os.environ.get("HFDAE_SCREENSHOT_DIR") or tmp_path / "screenshots")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
        patch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
        demo = build_demo(output_dir=tmp_path / "app")  # the real limit: 4 MP
        url = _launch(demo)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
                try:
                    _desktop_session(browser.new_page(viewport={"width": 1280, "height": 900}), url, demo.space,
                                     text_path, oversize, heavy, shots)
                    _phone_session(browser.new_page(viewport={"width": 390, "height": 844}), url, shots)
                finally:
                    browser.close()
        finally:
            demo.close()
    assert Image.open(shots / "space-desktop.png").width == 1280
    assert Image.open(shots / "space-phone.png").width == 390


def _refusal(page, upload: str) -> str:
    box = page.locator(f"#{upload}-refusal")
    box.wait_for(timeout=20_000)
    return box.inner_text()


def _restore_example(page) -> None:
    page.locator("#denoise-examples").get_by_text("Cat + Gaussian noise").click()
    page.locator("#denoise-input img").first.wait_for(timeout=30_000)
    assert not page.locator("#denoise-download").is_visible()  # nothing to download yet
    page.locator("#denoise-run").click()
    page.locator("#denoise-summary").get_by_text("PSNR (dB)").wait_for(timeout=60_000)


def _desktop_session(page, url, space, text_path, oversize, heavy, shots) -> None:
    page.goto(url)
    for tab in ("denoise", "compare"):  # a file that is not an image: named, on upload, in the page
        if tab == "compare":
            page.get_by_role("tab", name="Compare").click()
        page.locator(f"#{tab}-input input[type=file]").set_input_files(str(text_path))
        page.locator(f"#{tab}-notice .hfdae-alert").wait_for(timeout=30_000)
        assert "notes.png is not an image this demo can read" in page.locator(f"#{tab}-notice").inner_text()
    refused = _refusal_after(page, "compare-input", heavy)
    assert "heavy.png is 33.0 MB, more than this demo accepts (32.0 MB)" in refused
    assert "4,000,000 pixels (4 MP, for example 2000x2000)" in refused

    page.get_by_role("tab", name="Inpaint").click()
    page.locator("#inpaint-input input[type=file]").first.wait_for(state="attached")
    started = time.monotonic()
    refused = _refusal_after(page, "inpaint-input", oversize)
    assert time.monotonic() - started < 10  # at once: nothing is uploaded, painted or restored first
    assert refused.startswith("The image is 2100x2000 = 4,200,000 pixels, above this demo's limit of 4,000,000")
    assert "`" not in refused and "hfdae" not in refused
    assert page.locator("#inpaint-input").get_by_text("Upload an image").is_visible()  # the canvas stayed empty
    page.locator("#inpaint-input input[type=file]").first.set_input_files(str(text_path))
    page.wait_for_function("document.querySelector('#inpaint-input-refusal').textContent.includes('notes.png')")
    assert "notes.png is not an image your browser can show" in page.locator("#inpaint-input-refusal").inner_text()

    page.get_by_role("tab", name="Denoise").click()
    _restore_example(page)
    before, after = (page.locator("#denoise-result img").nth(index).get_attribute("src") for index in (0, 1))
    assert before.endswith("-degraded.png") and after.endswith(".png") and before != after
    pictures = {name: _png_tensor(page.request.get(source).body()) for name, source in (("before", before), ("after", after))}
    clean = _png_tensor(space.output_dir / "examples" / "chelsea.png")
    assert _psnr(pictures["after"], clean) > _psnr(pictures["before"], clean) + 2
    # the download button appears with the result, possibly a render later: waited for, not polled once
    page.locator("#denoise-download").wait_for(state="visible", timeout=10_000)
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / "space-desktop.png"), full_page=True)


def _refusal_after(page, upload: str, path: Path) -> str:
    page.locator(f"#{upload} input[type=file]").first.set_input_files(str(path))
    return _refusal(page, upload)


def _phone_session(page, url, shots) -> None:
    page.goto(url)
    header = page.locator("#hfdae-header")
    header.get_by_text("Restore photos").wait_for(timeout=30_000)
    assert header.locator("table").count() == 0  # a how-to, not a developer's table
    assert page.evaluate("document.querySelector('#hfdae-header').scrollWidth <= document.documentElement.clientWidth")
    _restore_example(page)
    result = page.locator("#denoise-result").bounding_box()
    examples = page.locator("#denoise-examples").bounding_box()
    assert result["y"] + result["height"] <= examples["y"]  # the result first, then the examples
    page.screenshot(path=str(shots / "space-phone.png"), full_page=True)
