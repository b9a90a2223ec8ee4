import warnings

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
    whole = restore(model, noisy, tile_size=None)
    tiled = restore(model, noisy, tile_size=tile, tile_overlap=overlap)
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


def test_denoise_files_refuses_to_overwrite_its_inputs(tmp_path):
    write_sample_folder(tmp_path / "photos", names=("coins",))
    with pytest.raises(ValueError, match="own input"):
        denoise_files(make_model("small"), [tmp_path / "photos"], tmp_path / "photos", progress=False)


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
        assert psnr(restore(model, degraded), clean)[0] > psnr(degraded.clamp(0, 1), clean)[0] + 2, condition


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


# --- precision ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("native", "expected"), [(False, "fp32"), (True, "bf16")])
def test_auto_precision_uses_bf16_only_where_native(monkeypatch, native, expected):
    from hfdae.inference import inference_precision

    monkeypatch.setattr("hfdae.inference._cpu_has_native_bf16", lambda: native)
    assert inference_precision("auto", torch.device("cpu")) == expected
    assert inference_precision("fp32", torch.device("cpu")) == "fp32"
    with pytest.raises(ValueError, match="precision='fp16'"):
        inference_precision("fp16", torch.device("cpu"))


def test_bf16_restore_stays_close_to_fp32():
    model = make_model("small", predict_residual=True).eval()
    images = torch.rand(1, 3, 32, 32)
    difference = (hfdae.restore(model, images, precision="bf16") - hfdae.restore(model, images, precision="fp32")).abs()
    assert 0 < difference.max() < 0.05  # bf16 really ran (not identical) and stays close
