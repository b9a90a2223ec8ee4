"""hfdae.pipeline_hfdae: transformers' pipeline("image-restoration") with hfdae installed, and as remote code
from the local Hub mirror (olah, see tests/test_hub.py) in a process where hfdae cannot be imported."""

from __future__ import annotations

import functools
import http.server
import json
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import pipeline

import hfdae
from hfdae import hub
from hfdae.image_processing_hfdae import DenoisingAutoencoderImageProcessor
from hfdae.pipeline_hfdae import ImageRestorationPipeline
from hfdae.remote_code import PIPELINE_CODE_FILES, write_pipeline_files

from conftest import make_model
from test_hub import _git_repo, _run_child, mirror  # noqa: F401  (the olah mirror fixture)

FP32 = {"precision": "fp32"}  # restorations compared as numbers: never bf16, whatever the CPU


def _image(height=30, width=44, mode="RGB") -> Image.Image:
    rng = np.random.default_rng(1)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).convert(mode)


def _hole_mask(height=30, width=44) -> np.ndarray:
    mask = np.zeros((height, width), dtype=bool)
    mask[8:19, 10:31] = True
    return mask


def _folder(tmp_path: Path, name: str = "model", **overrides) -> tuple[hfdae.DenoisingAutoencoder, Path]:
    model = make_model("small", **overrides).eval()
    model.config.images_seen = 100
    model.save_pretrained(tmp_path / name)
    write_pipeline_files(tmp_path / name, include_code=False)
    return model, tmp_path / name


def _expected(model, image, **restore_options) -> np.ndarray:
    """hfdae.restore on the image as a [0, 1] tensor, rounded to 8 bits: what the pipeline must give."""
    tensor = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)
    restored = hfdae.restore(model, tensor, **restore_options)
    return np.rint(restored.permute(1, 2, 0).numpy() * 255).astype(np.uint8)


# --- with hfdae installed ------------------------------------------------------------------------------------


def test_the_task_is_registered_and_restores_as_hfdae_restore(tmp_path):
    model, folder = _folder(tmp_path)
    restorer = pipeline("image-restoration", model=str(folder))
    assert isinstance(restorer, ImageRestorationPipeline)
    assert isinstance(restorer.image_processor, DenoisingAutoencoderImageProcessor)
    image = _image()
    result = restorer(image, **FP32)
    assert result["image"].mode == "RGB" and result["image"].size == image.size and result["strength"] is None
    np.testing.assert_array_equal(np.asarray(result["image"]), _expected(model, image, **FP32))


@pytest.mark.parametrize("options", [{"tile_size": 24, "tile_overlap": 8}, {"self_ensemble": True}])
def test_tiling_and_self_ensemble_are_pipeline_arguments(tmp_path, options):
    model, folder = _folder(tmp_path)
    image = _image()
    result = pipeline("image-restoration", model=str(folder))(image, **options, **FP32)
    np.testing.assert_array_equal(np.asarray(result["image"]), _expected(model, image, **options, **FP32))
    if "tile_size" in options:  # the tiles make a difference, so the argument did reach restore
        assert not np.array_equal(np.asarray(result["image"]), _expected(model, image, **FP32))


def test_arguments_given_at_construction_hold_for_every_call(tmp_path):
    model, folder = _folder(tmp_path)
    image = _image()
    restorer = pipeline("image-restoration", model=str(folder), tile_size=24, tile_overlap=8, **FP32)
    tiled = _expected(model, image, tile_size=24, tile_overlap=8, **FP32)
    np.testing.assert_array_equal(np.asarray(restorer(image)["image"]), tiled)
    np.testing.assert_array_equal(np.asarray(restorer(image, tile_overlap=8)["image"]), tiled)
    whole = _expected(model, image, tile_size=None, **FP32)
    np.testing.assert_array_equal(np.asarray(restorer(image, tile_size=None)["image"]), whole)


def test_strength_is_the_noise_sigma_and_auto_estimates_it(tmp_path):
    model, folder = _folder(tmp_path, noise_level_input=True)
    restorer = pipeline("image-restoration", model=str(folder))
    image = _image()
    fixed = restorer(image, strength=25, **FP32)
    assert fixed["strength"] == pytest.approx(25)
    np.testing.assert_array_equal(np.asarray(fixed["image"]), _expected(model, image, noise_level=25 / 255, **FP32))
    auto = restorer(image, strength="auto", **FP32)
    estimate = hfdae.estimate_noise_level(torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).permute(2, 0, 1)[None])
    assert auto["strength"] == pytest.approx(float(estimate[0]) * 255, rel=1e-6)
    np.testing.assert_array_equal(np.asarray(auto["image"]), _expected(model, image, noise_level="auto", **FP32))


def test_a_mask_restores_the_holes_only(tmp_path):
    model, folder = _folder(tmp_path, extra_input_channels=1)
    image, mask = _image(), _hole_mask()
    result = pipeline("image-restoration", model=str(folder))(image, mask=Image.fromarray(mask), **FP32)["image"]
    pixels = np.asarray(result)
    np.testing.assert_array_equal(pixels[~mask], np.asarray(image)[~mask])
    holes = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).permute(2, 0, 1)
    holes[:, torch.from_numpy(mask)] = 0
    restored = hfdae.restore(model, holes, extra_inputs=torch.from_numpy(mask).float()[None], **FP32)
    expected = np.rint(restored.permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    np.testing.assert_array_equal(pixels[mask], expected[mask])


@pytest.mark.parametrize("make_input, check", [
    (lambda: _image(mode="L"), lambda out: out.mode == "L"),
    (lambda: _image(mode="RGBA"), lambda out: out.mode == "RGBA"),
    (lambda: (np.asarray(_image()).astype(np.uint16) * 257), lambda out: out.dtype == np.uint16 and out.shape == (30, 44, 3)),
    (lambda: torch.rand(3, 30, 44), lambda out: out.dtype == torch.float32 and out.shape == (3, 30, 44)),
    (lambda: {"image": _image(), "mask": None}, lambda out: out.mode == "RGB"),
])
def test_inputs_of_every_kind_come_back_in_their_form(tmp_path, make_input, check):
    _, folder = _folder(tmp_path)
    restorer = pipeline("image-restoration", model=str(folder))
    assert check(restorer(make_input(), **FP32)["image"])
    assert len(restorer([make_input(), make_input()], **FP32)) == 2


def test_paths_and_urls_load_as_pil_images(tmp_path):
    model, folder = _folder(tmp_path)
    image = _image()
    served = tmp_path / "served"
    served.mkdir()
    image.save(served / "photo.png")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        restorer = pipeline("image-restoration", model=str(folder))
        url = f"http://127.0.0.1:{server.server_address[1]}/photo.png"
        for source in (served / "photo.png", str(served / "photo.png"), url):
            np.testing.assert_array_equal(np.asarray(restorer(source, **FP32)["image"]), _expected(model, image, **FP32))
        with pytest.raises(OSError, match="missing.png: could not be downloaded"):
            restorer(url.replace("photo", "missing"))
    finally:
        server.shutdown()
        server.server_close()


def test_bad_arguments_and_inputs_are_refused_by_name(tmp_path):
    _, folder = _folder(tmp_path)
    restorer = pipeline("image-restoration", model=str(folder))
    with pytest.raises(ValueError, match="no noise-level input"):
        restorer(_image(), strength=25)
    with pytest.raises(ValueError, match="strength=300"):
        restorer(_image(), strength=300)
    with pytest.raises(ValueError, match="strength='high'"):
        restorer(_image(), strength="high")
    with pytest.raises(FileNotFoundError, match="nowhere.png: no such file"):
        restorer(str(tmp_path / "nowhere.png"))
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(ValueError, match="text.png: not a readable image"):
        restorer(str(tmp_path / "text.png"))
    with pytest.raises(ValueError, match="'picture'"):
        restorer({"picture": _image()})
    with pytest.raises(ValueError, match="batch_size=2"):
        restorer([_image(), _image()], batch_size=2)


def test_a_model_object_or_a_folder_without_processor_config_gets_one_from_the_model(tmp_path):
    model = make_model("skip", colour_space="gray")
    model.save_pretrained(tmp_path / "bare")  # no preprocessor_config.json
    for source in (model, str(tmp_path / "bare")):
        restorer = pipeline("image-restoration", model=source)
        assert restorer.image_processor.image_channels == 1
        assert restorer.image_processor.size_multiple == model.config.size_multiple
    DenoisingAutoencoderImageProcessor(image_channels=1, size_multiple=2).save_pretrained(tmp_path / "bare")  # wrong
    with pytest.raises(ValueError, match="size_multiple=2 but the model's configuration gives 16"):
        pipeline("image-restoration", model=str(tmp_path / "bare"))


@pytest.mark.skipif(not (Path(hfdae.__file__).parent / "default_model" / "model.safetensors").is_file(),
                    reason="no embedded default model in this checkout")
def test_without_a_model_the_embedded_default_restores():
    restorer = pipeline("image-restoration")
    assert restorer.model.config.images_seen > 0
    assert restorer(np.zeros((12, 12), dtype=np.uint8), **FP32)["image"].shape == (12, 12)


# --- remote code from the Hub mirror ---------------------------------------------------------------------------


REMOTE_PIPELINE_CHILD = r"""
import importlib.abc, json, sys

class BlockHfdae(importlib.abc.MetaPathFinder):
    # hfdae is installed in this venv (editable); make it unimportable, as for someone without it
    def find_spec(self, name, path=None, target=None):
        if name == "hfdae" or name.startswith("hfdae."):
            raise ModuleNotFoundError(f"No module named {name!r}")

if sys.argv[1] == "without-hfdae":
    sys.meta_path.insert(0, BlockHfdae())
    options = {"trust_remote_code": True}
else:
    import hfdae
    options = {}

import numpy as np
from huggingface_hub import snapshot_download
from PIL import Image
from transformers import AutoImageProcessor, pipeline

image, mask = Image.open("input.png"), Image.open("mask.png")
arguments = dict(mask=mask, strength=25, tile_size=24, tile_overlap=8, precision="fp32")
restorer = pipeline("image-restoration", model="org/dae-pipeline", **options)
result = restorer(image, **arguments)
np.save(sys.argv[1] + ".npy", np.asarray(result["image"]))
auto = restorer(image, strength="auto", precision="fp32")
# a downloaded folder too; olah answers a probe for a file the repo lacks (processor_config.json) with 401
# where the Hub answers 404, so the processor is loaded from the folder to see it come from the repo's files
folder = snapshot_download("org/dae-pipeline")
from_folder = pipeline("image-restoration", model=folder, **options)(image, **arguments)
processor = AutoImageProcessor.from_pretrained(folder, **options)
print(json.dumps({"pipeline": type(restorer).__module__, "processor": type(processor).__module__,
                  "processor_settings": {key: value for key, value in processor.to_dict().items() if key != "auto_map"},
                  "model": type(restorer.model).__module__, "mode": result["image"].mode,
                  "folder_same": bool(np.array_equal(np.asarray(from_folder["image"]), np.asarray(result["image"]))),
                  "auto_strength": auto["strength"],
                  "hfdae_loaded": any(name.split(".")[0] == "hfdae" for name in sys.modules)}))
"""


@pytest.fixture(scope="module")
def pipeline_repo(mirror, tmp_path_factory):  # noqa: F811
    """org/dae-pipeline on the mirror: a model with a mask input and a noise-level input, as pushed."""
    root = tmp_path_factory.mktemp("pipeline-repo")
    model = make_model("small", extra_input_channels=1, noise_level_input=True).eval()
    model.config.images_seen = 100
    model.save_pretrained(root / "model")
    folder = hub.build_model_folder(root / "model", root / "hub-folder", repo_id="org/dae-pipeline")
    _git_repo(mirror["root"] / "mirrors" / "models" / "org" / "dae-pipeline", folder)
    return {"url": mirror["url"], "folder": folder, "model": model}


def test_a_pushed_folder_carries_the_pipeline_code(pipeline_repo):
    folder = pipeline_repo["folder"]
    config = json.loads((folder / "config.json").read_text())
    assert config["custom_pipelines"]["image-restoration"]["impl"] == "pipeline_hfdae.ImageRestorationPipeline"
    assert json.loads((folder / "preprocessor_config.json").read_text())["auto_map"] == {
        "AutoImageProcessor": "image_processing_hfdae.DenoisingAutoencoderImageProcessor"}
    assert set(PIPELINE_CODE_FILES) <= {path.name for path in folder.iterdir()}
    hub.check_model_folder(folder)


@pytest.mark.parametrize("who", ["without-hfdae", "with-hfdae"])
def test_pipeline_from_the_mirror(pipeline_repo, tmp_path, who):
    image, mask = _image(), _hole_mask()
    image.save(tmp_path / "input.png")
    Image.fromarray(mask).save(tmp_path / "mask.png")
    result = _run_child(REMOTE_PIPELINE_CHILD.replace("sys.argv[1]", repr(who)),
                        {"HF_ENDPOINT": pipeline_repo["url"], "HF_HOME": str(tmp_path / "hf"),
                         "PYTHONPATH": str(Path(hfdae.__file__).parent.parent)}, tmp_path)  # this hfdae, if any
    if who == "without-hfdae":
        assert result["hfdae_loaded"] is False
        assert all(result[key].startswith("transformers_modules.") for key in ("pipeline", "processor", "model"))
    else:  # the installed package serves the task, without trust_remote_code
        assert (result["pipeline"], result["processor"], result["model"]) == (
            "hfdae.pipeline_hfdae", "hfdae.image_processing_hfdae", "hfdae.modeling_hfdae")
    assert result["mode"] == "RGB" and result["folder_same"]
    settings = DenoisingAutoencoderImageProcessor.from_model_config(pipeline_repo["model"]).to_dict()
    assert result["processor_settings"] == settings
    local = pipeline("image-restoration", model=str(pipeline_repo["folder"]))
    expected = local(image, mask=Image.fromarray(mask), strength=25, tile_size=24, tile_overlap=8, **FP32)["image"]
    np.testing.assert_array_equal(np.load(tmp_path / f"{who}.npy"), np.asarray(expected))
    assert result["auto_strength"] == pytest.approx(local(image, strength="auto", **FP32)["strength"], rel=1e-6)
