import warnings

import pytest
import torch

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
