import numpy as np
import pytest
import torch
from PIL import Image

from hfdae.processing import (
    ImageReadError,
    array_to_tensor,
    convert_channels,
    read_image,
    save_image,
    tensor_to_array,
    to_tensor,
)
from hfdae.samples import sample_image

HEIGHT, WIDTH = 23, 31


def _rgb() -> np.ndarray:
    return np.ascontiguousarray(sample_image("coffee")[:HEIGHT, :WIDTH])


def make_image(mode: str) -> Image.Image:
    rgb = Image.fromarray(_rgb())
    if mode == "I;16":
        gray = np.asarray(rgb.convert("L")).astype(np.uint16) * 257 + 3
        return Image.fromarray(gray)
    if mode == "I":
        return Image.fromarray(np.asarray(rgb.convert("L")).astype(np.int32) * 200)
    if mode == "P+transparency":
        image = rgb.convert("P")
        image.info["transparency"] = 0
        return image
    if mode in ("RGBA", "LA"):
        image = rgb.convert(mode)
        image.putalpha(Image.fromarray(np.arange(HEIGHT * WIDTH, dtype=np.uint8).reshape(HEIGHT, WIDTH)))
        return image
    return rgb.convert(mode)


MODES = ["1", "L", "LA", "P", "P+transparency", "RGB", "RGBA", "CMYK", "YCbCr", "I;16", "I"]
EXPECTED = {  # mode -> (channels, bit depth, has alpha)
    "1": (1, 8, False), "L": (1, 8, False), "LA": (1, 8, True), "P": (3, 8, False),
    "P+transparency": (3, 8, True), "RGB": (3, 8, False), "RGBA": (3, 8, True), "CMYK": (3, 8, False),
    "YCbCr": (3, 8, False), "I;16": (1, 16, False), "I": (1, 16, False),
}


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_reads_to_an_array(mode):
    record = read_image(make_image(mode))
    channels, bit_depth, has_alpha = EXPECTED[mode]
    assert record.size == (HEIGHT, WIDTH)
    assert record.channels == channels and record.bit_depth == bit_depth
    assert (record.alpha is not None) == has_alpha
    assert record.pixels.dtype == (np.uint16 if bit_depth == 16 else np.uint8)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("channels", [1, 3])
def test_every_mode_converts_to_a_model_tensor(mode, channels, tmp_path):
    suffix = ".tiff" if mode in ("CMYK", "YCbCr", "I") else ".png"
    path = tmp_path / f"image{suffix}"
    image = make_image(mode)
    image.save(path) if mode != "YCbCr" else image.convert("RGB").save(path)
    tensor = to_tensor(path, channels)
    assert tensor.shape == (1, channels, HEIGHT, WIDTH) and tensor.dtype == torch.float32
    assert 0 <= tensor.min() and tensor.max() <= 1


def test_sixteen_bit_values_are_kept(tmp_path):
    image = make_image("I;16")
    path = tmp_path / "deep.png"
    image.save(path)
    tensor = to_tensor(path)
    expected = np.asarray(image).astype(np.float64) / 65535
    np.testing.assert_allclose(tensor[0, 0].numpy(), expected, atol=1e-6)


def test_save_keeps_size_bit_depth_channels_and_alpha(tmp_path):
    for mode, suffix in [("I;16", ".png"), ("RGBA", ".png"), ("L", ".png"), ("RGB", ".jpg"), ("LA", ".png")]:
        source = tmp_path / f"in_{mode.replace(';', '')}{suffix}"
        make_image(mode).save(source)
        record = read_image(source)
        restored = to_tensor(record.pixels, 3)[0]  # as if a colour model restored it
        out = save_image(restored, tmp_path / f"out_{source.name}", like=record)
        written = read_image(out)
        assert written.size == record.size and written.channels == record.channels
        assert written.bit_depth == record.bit_depth
        if record.alpha is not None:
            np.testing.assert_array_equal(written.alpha, record.alpha)
        if suffix == ".png":  # lossless: the pixel values come back exactly
            np.testing.assert_array_equal(written.pixels, record.pixels)


def test_array_dtypes_and_shapes():
    rgb = _rgb()
    assert to_tensor(rgb).shape == (1, 3, HEIGHT, WIDTH)
    assert to_tensor(rgb[:, :, 0]).shape == (1, 1, HEIGHT, WIDTH)
    floats = rgb.astype(np.float32) / 255
    torch.testing.assert_close(to_tensor(floats), to_tensor(rgb))
    with pytest.raises(ValueError, match="dtype"):
        array_to_tensor(rgb.astype(np.int64))


def test_tensor_array_round_trip_is_exact_for_uint8():
    rgb = _rgb()
    np.testing.assert_array_equal(tensor_to_array(array_to_tensor(rgb)), rgb)


def test_gray_conversion_matches_pil():
    rgb = _rgb()
    ours = convert_channels(rgb, 1)[:, :, 0].astype(int)
    pil = np.asarray(Image.fromarray(rgb).convert("L")).astype(int)
    assert np.abs(ours - pil).max() <= 1


def test_tensor_channel_conversion():
    gray = torch.rand(1, 1, 8, 8)
    assert to_tensor(gray, 3).shape == (1, 3, 8, 8)
    torch.testing.assert_close(to_tensor(to_tensor(gray, 3), 1), gray)


@pytest.mark.parametrize("content", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40])
def test_unreadable_files_raise_naming_the_file(content, tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(content)
    with pytest.raises(ImageReadError, match="broken.png"):
        read_image(path)


def test_truncated_png_raises(tmp_path):
    path = tmp_path / "cut.png"
    Image.fromarray(_rgb()).save(path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ImageReadError, match="cut.png"):
        read_image(path)


def test_missing_file_raises(tmp_path):
    with pytest.raises(ImageReadError, match="nothing.png"):
        read_image(tmp_path / "nothing.png")
