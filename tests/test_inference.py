import os
import warnings

import numpy as np
import pytest
import torch

import hfdae

from hfdae import CheckpointError
from hfdae.inference import UntrainedModelWarning, denoise_files, is_trained, load_model, restore
from hfdae.samples import write_sample_folder

from conftest import make_model


def test_default_model_loads_offline_and_says_if_untrained():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = load_model()
    assert not model.training
    untrained_warnings = [w for w in caught if issubclass(w.category, UntrainedModelWarning)]
    assert bool(untrained_warnings) == (not is_trained(model))


def test_folder_model_loads_and_restores(tmp_path):
    model = make_model("small", images_seen=10)
    model.save_pretrained(tmp_path)
    loaded = load_model(tmp_path)
    assert is_trained(loaded)
    images = torch.rand(3, 3, 21, 34)
    restored = restore(loaded, images, batch_size=2)
    assert restored.shape == images.shape and 0 <= restored.min() and restored.max() <= 1


@pytest.mark.parametrize("model_colour, image_channels", [("rgb", 1), ("gray", 3), ("lab", 3), ("gray", 1)])
def test_restore_converts_channels_both_ways(model_colour, image_channels):
    model = make_model("small", model_colour).eval()
    images = torch.rand(2, image_channels, 16, 20)
    assert restore(model, images).shape == images.shape
    assert restore(model, images[0]).shape == images[0].shape


def test_load_model_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_model(tmp_path)
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(ValueError, match="not a file"):
        load_model(tmp_path / "weights.bin")


def test_load_model_refuses_a_mismatched_checkpoint(tmp_path):
    make_model("small").save_pretrained(tmp_path / "a")
    make_model("skip").save_pretrained(tmp_path / "b")
    (tmp_path / "a" / "config.json").write_bytes((tmp_path / "b" / "config.json").read_bytes())
    with pytest.raises(CheckpointError):
        load_model(tmp_path / "a")


def test_denoise_files_skips_unreadable_and_keeps_structure(tmp_path):
    inputs = tmp_path / "in"
    write_sample_folder(inputs / "nested", names=("coins", "chelsea"))
    (inputs / "corrupt.png").write_bytes(b"garbage")
    model = make_model("small").eval()
    report = denoise_files(model, [inputs], tmp_path / "out", progress=False)
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in report.written) == [
        "nested/chelsea.png",
        "nested/coins.png",
    ]
    assert list(report.failed) == [inputs / "corrupt.png"] and "corrupt.png" in report.failed[inputs / "corrupt.png"]


@pytest.mark.parametrize("tile, overlap", [(64, 16), (48, 24)])
def test_tiled_restoration_matches_whole_image(tile, overlap):
    """With a receptive field smaller than the overlap, tiling must reproduce the whole-image result;
    (benchmarks/tiling.py measures the trained default on a large image)."""
    from hfdae.metrics import psnr
    from hfdae.processing import array_to_tensor
    from hfdae.samples import sample_image

    clean = array_to_tensor(sample_image("coffee")[:150, :190]).unsqueeze(0)
    noisy = clean + 0.1 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    model = make_model("small", widths=[8], blocks_per_level=[1], predict_residual=True)  # a 7-pixel field
    for module in model.modules():  # calibrate batch norm on the image so eval-mode outputs are image-like
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None
    with torch.no_grad():
        model.train()(noisy)
    model.eval()
    whole = restore(model, noisy, tile_size=None, precision="fp32")
    tiled = restore(model, noisy, tile_size=tile, tile_overlap=overlap, precision="fp32")
    assert tiled.shape == whole.shape
    assert float(psnr(tiled, whole)[0]) > 45
    assert abs(float(psnr(tiled, clean)[0]) - float(psnr(whole, clean)[0])) < 0.05


def test_self_ensemble_is_the_mean_over_the_eight_transforms():
    model = make_model("small").eval()
    images = torch.rand(1, 3, 20, 28)
    expected = torch.zeros_like(images)
    with torch.no_grad():
        for flip in (False, True):
            flipped = images.flip(-1) if flip else images
            for turns in range(4):
                out = torch.rot90(model(torch.rot90(flipped, turns, (-2, -1))).reconstruction, -turns, (-2, -1))
                expected += (out.flip(-1) if flip else out) / 8
    torch.testing.assert_close(restore(model, images, self_ensemble=True, precision="fp32"), expected.clamp(0, 1))
    assert not torch.allclose(restore(model, images, precision="fp32"), expected.clamp(0, 1))  # the ensemble changes the result


def test_integer_tensors_are_refused():
    with pytest.raises(ValueError, match="uint8"):
        restore(make_model("small"), torch.zeros(1, 3, 8, 8, dtype=torch.uint8))


# --- nothing lost, nothing silently changed (issue 22) ------------------------------------------------
def _photos(folder, names=("a", "b", "c")):
    """Small distinct PNGs a.png, b.png, c.png made here."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for index, name in enumerate(names):
        Image.fromarray(np.full((12, 14, 3), 40 * index + 20, dtype=np.uint8)).save(folder / f"{name}.png")
    return folder


def _never_restore(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("restored although the run should have been refused first")

    monkeypatch.setattr("hfdae.inference.restore", refuse)


@pytest.mark.parametrize("case", ["folder into itself", "file onto itself", "file onto a link to itself",
                                  "files into their folder", "file onto a hard link to another input"])
def test_denoise_files_never_writes_over_an_input(case, tmp_path, monkeypatch):
    photos = _photos(tmp_path / "photos")
    inputs, output = {
        "folder into itself": ([photos], photos),
        "file onto itself": ([photos / "a.png"], photos / "a.png"),
        "file onto a link to itself": ([photos / "a.png"], tmp_path / "link.png"),
        "files into their folder": ([photos / "a.png", photos / "b.png"], photos),
        "file onto a hard link to another input": ([photos / "a.png", tmp_path / "other" / "a.png"], tmp_path / "other"),
    }[case]
    (tmp_path / "link.png").symlink_to(photos / "a.png")
    (tmp_path / "other").mkdir()
    os.link(photos / "b.png", tmp_path / "other" / "a.png")
    before = {path: path.read_bytes() for path in photos.iterdir()}
    _never_restore(monkeypatch)
    with pytest.raises(ValueError, match=r"would be written over the input .*(a|b)\.png.*nothing was restored"):
        denoise_files(make_model("small"), inputs, output, progress=False)
    assert {path: path.read_bytes() for path in photos.iterdir()} == before


def test_an_unwritable_output_is_reported_and_the_batch_goes_on(tmp_path, capsys):
    from hfdae.cli import main

    photos = _photos(tmp_path / "photos")
    (tmp_path / "out" / "b.png").mkdir(parents=True)  # a folder where b's restoration should go
    model = make_model("small", images_seen=1)
    report = denoise_files(model, [photos], tmp_path / "out", progress=False)
    assert [path.name for path in report.written] == ["a.png", "c.png"]
    assert list(report.not_written) == [photos / "b.png"] and "b.png is a folder" in report.not_written[photos / "b.png"]
    assert report.exit_status == 1 and "1 restoration(s) NOT written" in report.problems()[-1]
    model.save_pretrained(tmp_path / "model")
    code = main(["denoise", str(photos), "-o", str(tmp_path / "out"), "--model", str(tmp_path / "model")])
    error = capsys.readouterr().err
    assert code == 1 and "could not write the restoration of" in error and "b.png is a folder" in error


def test_a_write_that_fails_midway_keeps_what_was_there_and_goes_on(tmp_path, monkeypatch):
    import hfdae.image_io

    photos = _photos(tmp_path / "photos")
    out = tmp_path / "out"
    out.mkdir()
    (out / "b.png").write_bytes(b"an earlier result")
    original = hfdae.image_io._write_with_pillow

    def disk_full_for_b(pixels, alpha, path, *args):
        if path.name.startswith(".b."):
            raise OSError(28, "No space left on device")
        return original(pixels, alpha, path, *args)

    monkeypatch.setattr(hfdae.image_io, "_write_with_pillow", disk_full_for_b)
    report = denoise_files(make_model("small"), [photos], out, progress=False)
    assert [path.name for path in report.written] == ["a.png", "c.png"]
    assert "No space left on device" in report.not_written[photos / "b.png"]
    assert (out / "b.png").read_bytes() == b"an earlier result"
    assert sorted(path.name for path in out.iterdir()) == ["a.png", "b.png", "c.png"]  # no temporary files left


@pytest.mark.parametrize("inputs", ["folder", "file"])
def test_an_output_that_is_an_existing_file_is_refused_before_any_work(inputs, tmp_path, monkeypatch):
    photos = _photos(tmp_path / "photos")
    (tmp_path / "results").write_text("my notes")
    _never_restore(monkeypatch)
    with pytest.raises(ValueError, match="results is an existing file"):
        denoise_files(make_model("small"), photos if inputs == "folder" else photos / "a.png", tmp_path / "results",
                      progress=False)
    assert (tmp_path / "results").read_text() == "my notes"


def test_a_symbolic_link_loop_is_reported_as_one(tmp_path):
    photos = _photos(tmp_path / "photos", names=("a",))
    (photos / "loop.png").symlink_to("loop.png")
    report = denoise_files(make_model("small"), [photos], tmp_path / "out", progress=False)
    assert [path.name for path in report.written] == ["a.png"]
    assert "symbolic link loop" in report.failed[photos / "loop.png"]
    with pytest.raises(FileNotFoundError, match="loop.png: a symbolic link loop"):
        denoise_files(make_model("small"), [photos / "loop.png"], tmp_path / "out", progress=False)


@pytest.mark.parametrize("name", ["deep.png", "deep.tif"])
def test_denoise_files_keeps_sixteen_bit_colour(name, tmp_path):
    from test_image_io import read_sixteen_bit_file, sixteen_bit_array, write_sixteen_bit_file

    (tmp_path / "in").mkdir()
    write_sixteen_bit_file(tmp_path / "in" / name, sixteen_bit_array(3))
    report = denoise_files(make_model("small"), [tmp_path / "in"], tmp_path / "out", progress=False)
    written = read_sixteen_bit_file(report.written[0])
    assert written.dtype == np.uint16 and written.shape[2] == 3
    assert np.any(written % 257)  # values 8 bits cannot hold: not an 8-bit image scaled up


def test_denoise_files_keeps_orientation_and_profile(tmp_path):
    from PIL import Image, ImageOps
    from test_image_io import rotated_jpeg, srgb_profile

    (tmp_path / "in").mkdir()
    rotated_jpeg(tmp_path / "in" / "phone.jpg")
    report = denoise_files(make_model("small"), [tmp_path / "in"], tmp_path / "out", progress=False)
    with Image.open(report.written[0]) as written:
        assert written.getexif().get(0x0112) == 6 and written.info["icc_profile"] == srgb_profile()
        assert ImageOps.exif_transpose(written).size[0] < ImageOps.exif_transpose(written).size[1]  # portrait


def test_tile_overlap_must_be_smaller_than_the_tile():
    with pytest.raises(ValueError, match="tile_overlap"):
        restore(make_model("small"), torch.rand(1, 3, 32, 32), tile_size=16, tile_overlap=16)


def test_the_embedded_default_is_trained_and_restores():
    """The shipped default must be a trained model that beats the degraded input on a bundled photo."""
    from hfdae.evaluation import degrade_for_evaluation
    from hfdae.metrics import psnr
    from hfdae.processing import array_to_tensor, center_crop
    from hfdae.samples import sample_image

    model = load_model()
    assert is_trained(model) and model.config.images_seen > 0
    clean = center_crop(array_to_tensor(sample_image("chelsea")), 96).unsqueeze(0)
    for condition in ("gaussian", "salt_pepper", "knockout"):
        degraded = degrade_for_evaluation(clean, condition, "chelsea").images
        assert psnr(restore(model, degraded, precision="fp32"), clean)[0] > psnr(degraded.clamp(0, 1), clean)[0] + 2, condition


# --- the strength control: noise_level (issue 18) -----------------------------------------------------
def _noise_model(**overrides):
    model = make_model("small", space_to_depth_factor=2, noise_level_input=True, predict_residual=True, **overrides)
    return model.eval()


@pytest.mark.parametrize("noise_level", [None, 0.1, "auto", "vector", "map"])
def test_restore_takes_every_form_of_noise_level(noise_level):
    model = _noise_model()
    images = torch.rand(2, 3, 40, 44)
    level = {"vector": torch.tensor([0.05, 0.1]), "map": torch.full((2, 1, 40, 44), 0.1)}.get(noise_level, noise_level)
    fast = restore(model, images, noise_level=level, precision="fp32")
    plain = restore(model, images, noise_level=level, precision="fp32", fast=False)
    assert fast.shape == images.shape
    torch.testing.assert_close(fast, plain, atol=1e-4, rtol=0)


def test_restore_refuses_a_noise_level_for_blind_models():
    with pytest.raises(ValueError, match="no noise-level input"):
        restore(make_model("small"), torch.rand(1, 3, 16, 16), noise_level=0.1)
    with pytest.raises(ValueError, match="noise_level='strong'"):
        restore(_noise_model(), torch.rand(1, 3, 16, 16), noise_level="strong")


def test_auto_noise_level_is_the_estimate():
    model = _noise_model()
    images = torch.rand(2, 3, 32, 32)
    estimate = hfdae.estimate_noise_level(images)
    torch.testing.assert_close(restore(model, images, noise_level="auto", precision="fp32"),
                               restore(model, images, noise_level=estimate, precision="fp32"))


@pytest.mark.parametrize("sigma", [5, 15, 25, 50])
def test_noise_estimate_is_close_to_the_true_sigma_on_a_smooth_image(sigma):
    from hfdae.processing import array_to_tensor
    from hfdae.samples import sample_image

    clean = array_to_tensor(sample_image("coffee")).unsqueeze(0)
    noisy = clean + sigma / 255 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    estimate = float(hfdae.estimate_noise_level(noisy)[0]) * 255
    assert abs(estimate - sigma) < 0.15 * sigma + 1.5, estimate


def test_tiled_restoration_with_a_noise_map_matches_whole_image():
    from hfdae.metrics import psnr

    model = make_model("small", widths=[8], blocks_per_level=[1], space_to_depth_factor=2, noise_level_input=True,
                       predict_residual=True).eval()  # a receptive field well inside the overlap
    images = torch.rand(1, 3, 150, 190)
    level = torch.linspace(0, 0.2, 190).expand(1, 1, 150, 190).contiguous()  # a map that varies across the image
    whole = restore(model, images, tile_size=None, noise_level=level, precision="fp32")
    tiled = restore(model, images, tile_size=64, tile_overlap=24, noise_level=level, precision="fp32")
    assert float(psnr(tiled, whole)[0]) > 45
    shifted = restore(model, images, tile_size=64, tile_overlap=24, noise_level=level.flip(-1), precision="fp32")
    assert float(psnr(shifted, whole)[0]) < float(psnr(tiled, whole)[0])  # the map really travels with each tile


def test_self_ensemble_transforms_the_noise_map_with_the_image():
    model = _noise_model()
    images = torch.rand(1, 3, 20, 28)
    level = torch.rand(1, 1, 20, 28) * 0.2
    expected = torch.zeros_like(images)
    with torch.no_grad():
        for flip in (False, True):
            flipped, flipped_level = (images.flip(-1), level.flip(-1)) if flip else (images, level)
            for turns in range(4):
                out = model(torch.rot90(flipped, turns, (-2, -1)),
                            noise_level=torch.rot90(flipped_level, turns, (-2, -1))).reconstruction
                out = torch.rot90(out, -turns, (-2, -1))
                expected += (out.flip(-1) if flip else out) / 8
    actual = restore(model, images, self_ensemble=True, noise_level=level, precision="fp32", fast=False)
    torch.testing.assert_close(actual, expected.clamp(0, 1))


# --- precision (the 'auto' choice: tests/test_precision.py) --------------------------------------------


def test_bf16_restore_stays_close_to_fp32():
    model = make_model("small", predict_residual=True).eval()
    images = torch.rand(1, 3, 32, 32)
    difference = (hfdae.restore(model, images, precision="bf16") - hfdae.restore(model, images, precision="fp32")).abs()
    assert 0 < difference.max() < 0.05  # bf16 really ran (not identical) and stays close


@pytest.mark.parametrize("task", ["restore", "photo"])
def test_jpeg_photos_bring_advice_to_use_the_photo_model_unless_it_is_the_one(task, tmp_path):
    from PIL import Image

    inputs = tmp_path / "in"
    inputs.mkdir()
    pixels = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(inputs / "phone.jpg", quality=95)
    Image.fromarray(pixels).save(inputs / "scan.png")
    model = make_model("small", task=task).eval()
    report = denoise_files(model, [inputs], tmp_path / "out", progress=False)
    assert len(report.written) == 2
    if task == "photo":
        assert report.lossy_inputs == [] and report.advice() == []
    else:
        assert report.lossy_inputs == [inputs / "phone.jpg"]
        (advice,) = report.advice()
        assert "phone.jpg" in advice and "--model photo" in advice
