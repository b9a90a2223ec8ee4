"""Files in, files out: bit depth, alpha, orientation, ICC profile and lossless-ness survive, and faults
(links that lead nowhere, folders in the way, failed writes) are named and lose nothing."""

import functools
import io
import os
import sys

import imagecodecs
import numpy as np
import pytest
import tifffile
from PIL import Image, ImageCms, ImageOps

from hfdae.image_io import (
    ImageReadError,
    ImageWriteError,
    list_image_files,
    read_image,
    unwritable_reason,
    write_image,
)
from hfdae.image_io import _webp_is_lossless
from hfdae.processing import save_image, to_tensor

HEIGHT, WIDTH = 12, 17
# channels (1 gray, 2 gray + alpha, 3 RGB, 4 RGBA) x the two 16-bit formats
SIXTEEN_BIT_CASES = [(channels, suffix) for channels in (1, 2, 3, 4) for suffix in (".png", ".tif")]


def sixteen_bit_array(channels: int) -> np.ndarray:
    """Values that 8 bits cannot hold (odd, not multiples of 257), different in every channel."""
    rng = np.random.default_rng(channels)
    return (rng.integers(0, 65535 // 2, (HEIGHT, WIDTH, channels)) * 2 + 1).astype(np.uint16)


def write_sixteen_bit_file(path, array: np.ndarray) -> None:
    """Made with the codecs directly (not with hfdae), so reading is tested against an independent writer."""
    if path.suffix == ".png":
        path.write_bytes(imagecodecs.png_encode(np.ascontiguousarray(array)))
    else:
        colour = array.shape[2] >= 3
        tifffile.imwrite(path, array[:, :, 0] if array.shape[2] == 1 else array,
                         photometric="rgb" if colour else "minisblack",
                         extrasamples=["unassalpha"] if array.shape[2] in (2, 4) else None)


def read_sixteen_bit_file(path) -> np.ndarray:
    array = imagecodecs.png_decode(path.read_bytes()) if path.suffix == ".png" else tifffile.imread(path)
    return array[:, :, None] if array.ndim == 2 else array


@functools.lru_cache
def srgb_profile() -> bytes:
    """An sRGB ICC profile (made once: its header holds the time it was made)."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def rotated_jpeg(path, orientation: int = 6) -> np.ndarray:
    """A JPEG whose EXIF says 'turn me' (6: 90 degrees clockwise) and with an sRGB profile; returns its pixels."""
    pixels = np.zeros((HEIGHT * 2, WIDTH * 2, 3), dtype=np.uint8)
    pixels[: HEIGHT, :, 0] = 255  # a red top half, so a turn is visible
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(pixels).save(path, exif=exif.tobytes(), icc_profile=srgb_profile(), quality=95)
    return pixels


@pytest.mark.parametrize(("channels", "suffix"), SIXTEEN_BIT_CASES)
def test_sixteen_bit_files_read_with_all_sixteen_bits(channels, suffix, tmp_path):
    array = sixteen_bit_array(channels)
    path = tmp_path / f"deep{suffix}"
    write_sixteen_bit_file(path, array)
    record = read_image(path)
    assert record.bit_depth == 16 and record.pixels.dtype == np.uint16
    colour_channels = 3 if channels >= 3 else 1
    np.testing.assert_array_equal(record.pixels, array[:, :, :colour_channels])
    if channels in (2, 4):
        np.testing.assert_array_equal(record.alpha, array[:, :, -1])
    else:
        assert record.alpha is None


@pytest.mark.parametrize(("module", "suffix"), [("imagecodecs", ".png"), ("tifffile", ".tiff")])
def test_without_the_sixteen_bit_codecs_eight_bit_files_still_read_and_sixteen_bit_ones_name_the_package(
        module, suffix, tmp_path, monkeypatch):
    # the pipeline's remote code runs where hfdae (and with it imagecodecs and tifffile) is not installed
    deep, plain = tmp_path / f"deep{suffix}", tmp_path / f"plain{suffix}"
    write_sixteen_bit_file(deep, sixteen_bit_array(3))
    Image.fromarray(np.full((HEIGHT, WIDTH, 3), 7, dtype=np.uint8)).save(plain)
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError
    assert read_image(plain).bit_depth == 8
    with pytest.raises(ImportError, match=f"16-bit .*needs the `{module}` package"):
        read_image(deep)


@pytest.mark.parametrize(("channels", "suffix"), SIXTEEN_BIT_CASES)
def test_sixteen_bit_in_sixteen_bit_out(channels, suffix, tmp_path):
    """Through a float tensor (what a model sees) and back: every 16-bit value returns exactly."""
    array = sixteen_bit_array(channels)
    source = tmp_path / f"in{suffix}"
    write_sixteen_bit_file(source, array)
    record = read_image(source)
    output = save_image(to_tensor(record.pixels)[0], tmp_path / f"out{suffix}", like=record)
    written = read_sixteen_bit_file(output)
    assert written.dtype == np.uint16
    np.testing.assert_array_equal(written, array)


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp", ".tif"])
def test_orientation_and_colour_profile_are_carried_over(suffix, tmp_path):
    rotated_jpeg(tmp_path / "in.jpg")
    record = read_image(tmp_path / "in.jpg")
    assert record.orientation == 6 and record.icc_profile == srgb_profile()
    output = save_image(to_tensor(record.pixels)[0], tmp_path / f"out{suffix}", like=record)
    with Image.open(output) as written:
        assert written.getexif().get(0x0112) == 6
        assert written.info.get("icc_profile") == srgb_profile()
        upright = ImageOps.exif_transpose(written)
        assert upright.size == (HEIGHT * 2, WIDTH * 2)  # displayed turned, as the input is
        assert np.asarray(upright)[:, -1, 0].mean() > 200  # the red half is on the right once turned


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_orientation_and_profile_survive_in_sixteen_bit_colour_files(suffix, tmp_path):
    array = sixteen_bit_array(3)
    record = read_image(_as_file(tmp_path / f"in{suffix}", array))
    record.orientation, record.icc_profile = 8, srgb_profile()
    output = write_image(record.pixels, tmp_path / f"out{suffix}", like=record)
    again = read_image(output)
    assert again.orientation == 8 and again.icc_profile == srgb_profile() and again.bit_depth == 16


def _as_file(path, array):
    write_sixteen_bit_file(path, array)
    return path


def test_a_format_without_orientation_gets_its_pixels_turned_upright(tmp_path):
    pixels = rotated_jpeg(tmp_path / "in.jpg")
    record = read_image(tmp_path / "in.jpg")
    output = write_image(record.pixels, tmp_path / "out.bmp", like=record)
    with Image.open(output) as written:
        assert written.size == (HEIGHT * 2, WIDTH * 2) and written.getexif().get(0x0112) is None
        assert np.asarray(written)[:, -1, 0].mean() > 200 and pixels.shape == (HEIGHT * 2, WIDTH * 2, 3)


@pytest.mark.parametrize("lossless", [True, False])
def test_webp_keeps_its_lossless_or_lossy_mode(lossless, tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "in.webp", lossless=lossless)
    record = read_image(tmp_path / "in.webp")
    assert record.lossless is lossless
    output = write_image(record.pixels, tmp_path / "out.webp", like=record)
    assert _webp_is_lossless(output.read_bytes()) is lossless
    if lossless:
        np.testing.assert_array_equal(read_image(output).pixels, record.pixels)


def test_lossless_webp_with_alpha_stays_lossless(tmp_path):
    image = Image.fromarray(np.random.default_rng(1).integers(0, 256, (HEIGHT, WIDTH, 4), dtype=np.uint8), "RGBA")
    image.save(tmp_path / "in.webp", lossless=True)
    record = read_image(tmp_path / "in.webp")
    output = write_image(record.pixels, tmp_path / "out.webp", alpha=record.alpha, like=record)
    again = read_image(output)
    np.testing.assert_array_equal(again.pixels, record.pixels)
    np.testing.assert_array_equal(again.alpha, record.alpha)


def test_a_jpeg_is_recorded_as_lossy(tmp_path):
    rotated_jpeg(tmp_path / "in.jpg")
    assert read_image(tmp_path / "in.jpg").lossless is False


@pytest.mark.parametrize(("make", "message"), [
    (lambda path: os.symlink(path.name, path), "a symbolic link loop"),
    (lambda path: os.symlink("gone.png", path), "a broken symbolic link .to gone.png"),
    (lambda path: path.mkdir(), "a folder"),
    (lambda path: None, "no such file"),
])
def test_paths_that_lead_to_no_image_are_named_for_what_they_are(make, message, tmp_path):
    path = tmp_path / "photo.png"
    make(path)
    with pytest.raises(ImageReadError, match=f"photo.png: {message}"):
        read_image(path)


def test_links_that_lead_nowhere_are_listed_so_they_are_reported(tmp_path):
    Image.new("RGB", (4, 4)).save(tmp_path / "good.png")
    os.symlink("loop.png", tmp_path / "loop.png")
    os.symlink("missing.png", tmp_path / "broken.png")
    assert [path.name for path in list_image_files(tmp_path)] == ["broken.png", "good.png", "loop.png"]
    with pytest.raises(FileNotFoundError, match="loop.png: a symbolic link loop"):
        list_image_files(tmp_path / "loop.png")
    with pytest.raises(FileNotFoundError, match="nothing.png: no such file or folder"):
        list_image_files(tmp_path / "nothing.png")


def test_unwritable_paths_are_named_before_writing(tmp_path):
    (tmp_path / "folder.png").mkdir()
    (tmp_path / "file").write_text("not a folder")
    assert "is a folder" in unwritable_reason(tmp_path / "folder.png")
    assert "file is a file, not a folder" in unwritable_reason(tmp_path / "file" / "deeper" / "out.png")
    assert unwritable_reason(tmp_path / "new" / "out.png") is None
    with pytest.raises(ImageWriteError, match="folder.png: cannot write here"):
        write_image(np.zeros((4, 4, 3), np.uint8), tmp_path / "folder.png")


def test_a_failed_write_keeps_the_file_that_was_there_and_leaves_no_debris(tmp_path, monkeypatch):
    path = tmp_path / "out.png"
    write_image(np.full((4, 4, 3), 7, np.uint8), path)
    before = path.read_bytes()

    def disk_full(self, target, *args, **kwargs):
        open(target, "wb").write(b"half an ima")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", disk_full)
    with pytest.raises(ImageWriteError, match="out.png: could not be written .No space left"):
        write_image(np.zeros((4, 4, 3), np.uint8), path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_an_unknown_output_suffix_is_refused(tmp_path):
    with pytest.raises(ImageWriteError, match="unknown image suffix '.txt'"):
        write_image(np.zeros((4, 4, 3), np.uint8), tmp_path / "out.txt")


def test_bytes_are_read_like_files():
    buffer = io.BytesIO()
    Image.new("RGB", (5, 3), (1, 2, 3)).save(buffer, "PNG")
    record = read_image(buffer.getvalue(), name="upload")
    assert record.size == (3, 5) and record.format == "PNG"
    with pytest.raises(ImageReadError, match="upload: not a readable image"):
        read_image(b"garbage", name="upload")
