"""hfdae.image_processing_hfdae: inputs of every kind in, model inputs out, restorations back in the same form."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoImageProcessor

import hfdae
from hfdae.image_processing_hfdae import DenoisingAutoencoderImageProcessor
from hfdae.processing import read_image

from conftest import make_model

RNG = np.random.default_rng(0)


def _pil(mode: str, size=(23, 17)) -> Image.Image:
    """A random image of ``mode`` (width, height = size)."""
    width, height = size
    if mode in ("I;16", "I"):
        values = RNG.integers(0, 65536, (height, width)).astype(np.uint16)
        image = Image.fromarray(values)  # I;16
        return image if mode == "I;16" else image.convert("I")
    if mode == "F":
        return Image.fromarray(RNG.random((height, width)).astype(np.float32))
    rgba = Image.fromarray(RNG.integers(0, 256, (height, width, 4), dtype=np.uint8), "RGBA")
    if mode == "P":
        return rgba.convert("RGB").quantize(64)
    return rgba.convert(mode)


def _array(channels: int | None, dtype) -> np.ndarray:
    shape = (19, 26) if channels is None else (19, 26, channels)
    if dtype == np.uint8:
        return RNG.integers(0, 256, shape, dtype=np.uint8)
    if dtype == np.uint16:
        return RNG.integers(0, 65536, shape).astype(np.uint16)
    return RNG.random(shape).astype(dtype)


def _round_trip(processor, image):
    """preprocess then post-process the pixels themselves (an identity 'model')."""
    inputs = processor(image)
    return processor.post_process_image_restoration(inputs["pixel_values"], [image])[0]


# --- the form of the input comes back ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA", "I;16", "I", "F"])
def test_pil_images_come_back_in_their_mode_with_their_pixels(mode):
    image = _pil(mode)
    processor = DenoisingAutoencoderImageProcessor(size_multiple=8)
    result = _round_trip(processor, image)
    assert result.mode == image.mode and result.size == image.size
    np.testing.assert_array_equal(np.asarray(result), np.asarray(image))


@pytest.mark.parametrize("mode, expected", [("P", "RGB"), ("1", "L")])
def test_palette_and_bilevel_images_come_back_as_the_mode_that_holds_a_restoration(mode, expected):
    image = _pil(mode)
    result = _round_trip(DenoisingAutoencoderImageProcessor(), image)
    assert result.mode == expected
    np.testing.assert_array_equal(np.asarray(result), np.asarray(image.convert(expected)))


@pytest.mark.parametrize("mode", ["CMYK", "YCbCr", "RGBX"])
def test_modes_restored_through_rgb_are_converted_back(mode):
    image = _pil(mode)
    result = _round_trip(DenoisingAutoencoderImageProcessor(), image)
    assert result.mode == mode and result.size == image.size
    np.testing.assert_array_equal(np.asarray(result), np.asarray(image.convert("RGB").convert(mode)))


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA", "P", "1", "I;16", "I", "CMYK"])
def test_pixels_agree_with_hfdae_processing(mode):
    """The processor is self-contained (it ships as remote code), so it must read images as processing.py does."""
    image = _pil(mode)
    record = read_image(image)
    scale = {8: 255, 16: 65535}[record.bit_depth]
    expected = torch.from_numpy(record.pixels.astype(np.float32) / scale).permute(2, 0, 1)
    channels = expected.shape[0]
    pixel_values = DenoisingAutoencoderImageProcessor(image_channels=channels)(image)["pixel_values"][0]
    torch.testing.assert_close(pixel_values, expected, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
@pytest.mark.parametrize("channels", [None, 1, 2, 3, 4])
def test_numpy_arrays_come_back_with_their_shape_dtype_and_alpha(channels, dtype):
    array = _array(channels, dtype)
    result = _round_trip(DenoisingAutoencoderImageProcessor(size_multiple=16), array)
    assert result.shape == array.shape and result.dtype == array.dtype
    if np.issubdtype(dtype, np.floating):
        np.testing.assert_allclose(result, array, rtol=0, atol=1e-6)
    else:
        np.testing.assert_array_equal(result, array)


@pytest.mark.parametrize("shape", [(3, 12, 20), (1, 12, 20), (4, 12, 20), (12, 20)])
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.float64])
def test_torch_tensors_come_back_with_their_shape_and_dtype(shape, dtype):
    tensor = torch.rand(shape, dtype=torch.float64)
    tensor = (tensor * 255).round().to(torch.uint8) if dtype == torch.uint8 else tensor.to(dtype)
    result = _round_trip(DenoisingAutoencoderImageProcessor(size_multiple=8), tensor)
    assert result.shape == tensor.shape and result.dtype == tensor.dtype
    torch.testing.assert_close(result, tensor, rtol=0, atol=0 if dtype == torch.uint8 else 1e-6)


def test_a_batch_tensor_is_a_list_of_images():
    batch = torch.rand(3, 3, 8, 8)
    processor = DenoisingAutoencoderImageProcessor()
    inputs = processor(batch)
    assert inputs["pixel_values"].shape == (3, 3, 8, 8)
    results = processor.post_process_image_restoration(inputs["pixel_values"], batch)
    assert len(results) == 3 and all(torch.allclose(result, image) for result, image in zip(results, batch))


def test_gray_models_get_luma_and_colour_inputs_come_back_in_colour():
    image = _pil("RGB")
    processor = DenoisingAutoencoderImageProcessor(image_channels=1)
    inputs = processor(image)
    expected = np.asarray(image.convert("L"), dtype=np.float32) / 255
    np.testing.assert_allclose(inputs["pixel_values"][0, 0].numpy(), expected, rtol=0, atol=1 / 255 + 1e-6)
    result = processor.post_process_image_restoration(inputs["pixel_values"], [image])[0]
    assert result.mode == "RGB"
    pixels = np.asarray(result)
    assert (pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all()


# --- padding, model inputs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("preset, overrides", [("small", {}), ("skip", {}), ("small", {"space_to_depth_factor": 2})])
def test_padded_inputs_give_the_model_s_own_restoration(preset, overrides):
    model = make_model(preset, **overrides).eval()
    processor = DenoisingAutoencoderImageProcessor.from_model_config(model.config)
    assert processor.size_multiple == model.config.size_multiple
    image = torch.rand(3, 21, 35)
    inputs = processor(image)
    assert all(side % model.config.size_multiple == 0 for side in inputs["pixel_values"].shape[-2:])
    with torch.no_grad():
        padded = model(**inputs).reconstruction
        direct = model(image.unsqueeze(0)).reconstruction
    restored = processor.post_process_image_restoration(padded, [image])[0]
    torch.testing.assert_close(restored, direct[0].clamp(0, 1), rtol=0, atol=0)


def test_masks_become_extra_inputs_and_holes_are_filled():
    model = make_model("small", extra_input_channels=1).eval()
    processor = DenoisingAutoencoderImageProcessor.from_model_config(model.config, do_pad=False)
    image = _pil("RGB", (16, 12))
    mask = np.zeros((12, 16), dtype=bool)
    mask[3:7, 4:11] = True
    inputs = processor(image, masks=[Image.fromarray(mask)])
    assert torch.equal(inputs["extra_inputs"][0, 0], torch.from_numpy(mask).float())
    assert (inputs["pixel_values"][0][:, torch.from_numpy(mask)] == 0).all()
    assert (processor(image)["extra_inputs"] == 0).all()  # no mask: nothing masked
    with torch.no_grad():
        restored = model(**inputs).reconstruction
    result = processor.post_process_image_restoration(restored, [image], masks=[mask])[0]
    outside = ~mask
    np.testing.assert_array_equal(np.asarray(result)[outside], np.asarray(image)[outside])
    assert not np.array_equal(np.asarray(result)[mask], np.asarray(image)[mask])


def test_noise_levels_go_to_models_with_the_input_and_are_refused_by_the_others():
    model = make_model("small", noise_level_input=True).eval()
    processor = DenoisingAutoencoderImageProcessor.from_model_config(model.config)
    images = [torch.rand(3, 16, 16), torch.rand(3, 16, 16)]
    inputs = processor(images, noise_level=25 / 255)
    torch.testing.assert_close(inputs["noise_level"], torch.full((2,), 25 / 255))
    with torch.no_grad():
        expected = model(torch.stack(images), noise_level=25 / 255).reconstruction
        torch.testing.assert_close(model(**inputs).reconstruction, expected, rtol=0, atol=0)
    assert processor(images, noise_level=[0.1, 0.2])["noise_level"].tolist() == pytest.approx([0.1, 0.2])
    with pytest.raises(ValueError, match="above 1"):
        processor(images, noise_level=25)
    with pytest.raises(ValueError, match="3 noise levels for 2 images"):
        processor(images, noise_level=[0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="auto"):
        processor(images, noise_level="auto")
    with pytest.raises(ValueError, match="no noise-level input"):
        DenoisingAutoencoderImageProcessor()(images, noise_level=0.1)


def test_images_of_different_sizes_stack_only_as_lists():
    processor = DenoisingAutoencoderImageProcessor(size_multiple=8)
    images = [torch.rand(3, 10, 10), torch.rand(3, 20, 12)]
    with pytest.raises(ValueError, match="different sizes"):
        processor(images)
    lists = processor(images, return_tensors=None)["pixel_values"]
    assert [tuple(pixels.shape) for pixels in lists] == [(1, 3, 16, 16), (1, 3, 24, 16)]
    results = processor.post_process_image_restoration(lists, images)
    assert [tuple(result.shape) for result in results] == [(3, 10, 10), (3, 20, 12)]


@pytest.mark.parametrize("bad, message", [
    (np.zeros((8, 8), dtype=np.int64), "int64 images are not supported"),
    (np.full((8, 8, 3), 2.0, dtype=np.float32), r"values in \[0, 1\]"),
    (np.zeros((8, 8, 5), dtype=np.uint8), "H x W x C with C in 1-4"),
    (torch.zeros(8, 8, 3), r"\[C, H, W\]"),
    (torch.zeros(3, 8, 8, dtype=torch.int32), "int32 tensors are not supported"),
    ("photo.png", "expected a PIL image"),
])
def test_bad_images_are_refused_by_name(bad, message):
    with pytest.raises((ValueError, TypeError), match=message) as error:
        DenoisingAutoencoderImageProcessor()([torch.rand(3, 8, 8), bad])
    assert "images[1]" in str(error.value)


def test_bad_masks_are_refused_by_name():
    processor = DenoisingAutoencoderImageProcessor(extra_input_channels=1)
    with pytest.raises(ValueError, match=r"masks\[0\] is \(4, 4\).*\(8, 8\)"):
        processor(torch.rand(3, 8, 8), masks=[np.zeros((4, 4), dtype=bool)])
    with pytest.raises(ValueError, match="2 masks for 1 images"):
        processor(torch.rand(3, 8, 8), masks=[None, None])


# --- saving, loading, fitting the model ----------------------------------------------------------------------


@pytest.mark.parametrize("preset", ["small", "skip", "flagship"])
def test_saved_as_preprocessor_config_and_found_by_auto_image_processor(tmp_path, preset):
    model = make_model(preset, noise_level_input=True)
    processor = DenoisingAutoencoderImageProcessor.from_model_config(model)
    processor.save_pretrained(tmp_path)
    assert (tmp_path / "preprocessor_config.json").is_file()
    loaded = AutoImageProcessor.from_pretrained(tmp_path)
    assert type(loaded) is DenoisingAutoencoderImageProcessor
    assert loaded.to_dict() == processor.to_dict()
    loaded.check_model_config(model.config)
    other = make_model("small", colour_space="gray")
    with pytest.raises(ValueError, match="image_channels=3 but the model's configuration gives 1"):
        loaded.check_model_config(other.config)


def test_the_processor_file_is_self_contained():
    """It ships as remote code: only torch, numpy, PIL, transformers and the standard library."""
    source = Path(hfdae.__file__).with_name("image_processing_hfdae.py").read_text()
    roots = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "no relative imports: the processor loads on its own"
            roots.add(node.module.split(".")[0])
    assert roots <= {"torch", "numpy", "PIL", "transformers", "__future__", "dataclasses", "typing"}, roots
