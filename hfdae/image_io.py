"""Image files <-> arrays, keeping what a restoration must not change.

A restored file keeps its input's bit depth (16-bit gray and colour PNG and TIFF stay 16-bit), alpha
channel, EXIF block (so the orientation tag still turns the picture the right way up), ICC colour
profile and lossless-ness (a lossless WebP is written lossless). Pillow reads and writes everything it
can; what it cannot keep goes through well-kept codecs instead: 16-bit colour PNG through
``imagecodecs`` (Pillow decodes 48-bit RGB as 8-bit) and 16-bit TIFF through ``tifffile``.

Files are written atomically (a temporary file in the same folder, then renamed), so a failed write
never leaves half an image, nor destroys a file that was there before.

>>> record = read_image("photo.tif")         # uint16 H x W x 3, bit_depth 16, icc_profile, orientation ...
>>> write_image(record.pixels, "copy.tif", like=record)
"""

from __future__ import annotations

import errno
import importlib
import importlib.util
import io
import os
import stat
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

__all__ = [
    "IMAGE_SUFFIXES",
    "ImageReadError",
    "ImageWriteError",
    "ImageRecord",
    "read_image",
    "write_image",
    "unwritable_reason",
    "list_image_files",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".gif")

# The formats each suffix writes, and what they can carry.
_FORMAT_OF_SUFFIX = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF",
                     ".webp": "WEBP", ".ppm": "PPM", ".pgm": "PPM", ".gif": "GIF"}
_SIXTEEN_BIT_FORMATS = ("PNG", "TIFF")
_EXIF_FORMATS = ("JPEG", "PNG", "WEBP", "TIFF")  # the others cannot hold an orientation tag: pixels are turned
_ICC_FORMATS = ("JPEG", "PNG", "WEBP", "TIFF")
_NO_ALPHA_FORMATS = ("JPEG", "PPM")
_LOSSY_TIFF_COMPRESSIONS = ("jpeg", "tiff_jpeg", "webp")  # as Pillow names them
_LOSSY_TIFF_CODECS = ("JPEG", "OJPEG", "WEBP", "JPEG2000", "JPEGXL", "JPEGXR")  # as tifffile does
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*")
_ORIENTATION_TAG = 0x0112
JPEG_QUALITY = 95


class ImageReadError(OSError):
    """A file that is not a readable image (missing, truncated, corrupt or of an unknown format)."""


class ImageWriteError(OSError):
    """An image that could not be written (the path is a folder, a folder on the way is a file, no permission ...)."""


@dataclass
class ImageRecord:
    """An image as read from a file, with what is needed to write the result back alike.

    Args:
        pixels: H x W x C array (C = 1 or 3), uint8, uint16 or float32 in [0, 1].
        alpha: H x W alpha channel of the same dtype, or None.
        bit_depth: 8 or 16 (32 for float images).
        source_mode: the PIL mode the image had (``"RGBA"``, ``"I;16"`` ...; ``"RGB;16"`` for 16-bit colour).
        path: the file it came from, if any.
        format: the file format as Pillow names it (``"PNG"``, ``"JPEG"``, ``"TIFF"`` ...), if known.
        exif: the raw EXIF block, if the file had one (written back where the output format can hold it).
        orientation: the EXIF orientation tag (1: as stored; 6: turn 90 degrees clockwise to display ...).
        icc_profile: the ICC colour profile, if any.
        lossless: whether the file was stored without loss (False for JPEG, lossy WebP, JPEG-in-TIFF).
    """

    pixels: np.ndarray
    alpha: np.ndarray | None = None
    bit_depth: int = 8
    source_mode: str = "RGB"
    path: Path | None = None
    format: str | None = None
    exif: bytes | None = None
    orientation: int = 1
    icc_profile: bytes | None = None
    lossless: bool = True

    @property
    def channels(self) -> int:
        return self.pixels.shape[2]

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)."""
        return self.pixels.shape[0], self.pixels.shape[1]


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------


def _path_problem(path: Path) -> str | None:
    """Why ``path`` cannot be opened as a file, in words, or None if it can be."""
    try:
        status = os.stat(path)
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "a symbolic link loop (the link never reaches a file)"
        if isinstance(error, FileNotFoundError):
            if path.is_symlink():
                return f"a broken symbolic link (to {os.readlink(path)}, which does not exist)"
            return "no such file"
        if isinstance(error, PermissionError):
            return "permission denied"
        return str(error)
    if stat.S_ISDIR(status.st_mode):
        return "a folder, not an image file"
    return None


def read_image(source: str | os.PathLike | Image.Image | bytes, name: str | None = None) -> ImageRecord:
    """Read a file, encoded bytes or a PIL image of any common mode into an :class:`ImageRecord`.

    16-bit gray and colour PNG and TIFF come back as uint16 (with alpha if they have one); EXIF,
    orientation, ICC profile and lossless-ness are recorded so :func:`write_image` can keep them.

    Args:
        source: a path, the encoded bytes of an image file, or a PIL image.
        name: how to name the image in errors (default: the path).

    Raises:
        ImageReadError: naming the file when it is missing, a broken link or link loop, a folder,
            truncated, corrupt or not an image.
    """
    if isinstance(source, Image.Image):
        return _record_from_pil(source, path=None)
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, label, path = bytes(source), name or "image bytes", None
    else:
        path = Path(source)
        label = name or str(path)
        problem = _path_problem(path)
        if problem:
            raise ImageReadError(f"{label}: {problem}")
        try:
            data = path.read_bytes()
        except OSError as error:
            raise ImageReadError(f"{label}: could not be read ({error.strerror or error})") from error
    try:
        record = _sixteen_bit_tiff(data, path) if data[:4] in _TIFF_MAGIC else None
        if record is None:
            with Image.open(io.BytesIO(data)) as image:
                image.load()  # decode now, so a truncated file fails here and not later
                record = _record_from_pil(image, path)
                _add_metadata(record, image, data)
            if _is_sixteen_bit_png_with_colour_or_alpha(data):
                record = _with_pixels(record, _split_alpha(_decode_png_16(data)), "PNG")
    except UnidentifiedImageError as error:  # its own message may only show "<_io.BytesIO ...>"
        raise ImageReadError(f"{label}: not a readable image (unknown format or corrupt data)") from error
    except (OSError, SyntaxError, ValueError, RuntimeError, Image.DecompressionBombError) as error:
        if isinstance(error, ImageReadError):
            raise
        raise ImageReadError(f"{label}: not a readable image ({error})") from error
    return record


def _record_from_pil(image: Image.Image, path: Path | None) -> ImageRecord:
    mode = image.mode
    alpha = None
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode == "PA":
        image = image.convert("RGBA")
    elif mode in ("1", "CMYK", "YCbCr", "LAB", "HSV", "RGBX"):
        image = image.convert("L" if mode == "1" else "RGB")
    if image.mode in ("RGBA", "LA", "La", "RGBa"):
        if image.mode in ("La", "RGBa"):  # premultiplied alpha: undo it before splitting
            image = image.convert(image.mode.upper())
        alpha = np.asarray(image.getchannel("A"))
        image = image.convert("RGB" if image.mode == "RGBA" else "L")
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        pixels, bit_depth = np.asarray(image).astype(np.uint16), 16
    elif image.mode == "I":
        values = np.asarray(image)
        if values.min() < 0 or values.max() > 65535:
            raise ImageReadError(f"{path or 'image'}: 32-bit integer values outside 0..65535 are not supported")
        pixels, bit_depth = values.astype(np.uint16), 16
    elif image.mode == "F":
        pixels, bit_depth = np.clip(np.asarray(image, dtype=np.float32), 0, 1), 32
    elif image.mode in ("L", "RGB"):
        pixels, bit_depth = np.asarray(image), 8
    else:
        pixels, bit_depth = np.asarray(image.convert("RGB")), 8
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    return ImageRecord(np.ascontiguousarray(pixels), alpha, bit_depth, mode, path)


def _add_metadata(record: ImageRecord, image: Image.Image, data: bytes) -> None:
    record.format = image.format
    record.icc_profile = image.info.get("icc_profile") or None
    exif = image.info.get("exif")
    record.exif = exif if isinstance(exif, bytes) and exif else None
    record.orientation = int(image.getexif().get(_ORIENTATION_TAG, 1) or 1)
    if image.format == "JPEG":
        record.lossless = False
    elif image.format == "WEBP":
        record.lossless = _webp_is_lossless(data)
    elif image.format == "TIFF":
        record.lossless = str(image.info.get("compression", "raw")) not in _LOSSY_TIFF_COMPRESSIONS


def _webp_is_lossless(data: bytes) -> bool:
    """Whether a WebP file's image data is VP8L (lossless), walking its RIFF chunks (and animation frames)."""
    def chunks(start: int, end: int):
        while start + 8 <= end:
            kind, size = data[start : start + 4], struct.unpack("<I", data[start + 4 : start + 8])[0]
            yield kind, start + 8, size
            start += 8 + size + (size & 1)

    kinds = set()
    for kind, offset, size in chunks(12, len(data)):
        kinds.add(kind)
        if kind == b"ANMF":  # a frame: 16 bytes of position and timing, then its own chunks
            kinds.update(sub for sub, _, _ in chunks(offset + 16, offset + size))
    return b"VP8L" in kinds and b"VP8 " not in kinds


def _is_sixteen_bit_png_with_colour_or_alpha(data: bytes) -> bool:
    # IHDR is the first chunk: bit depth at byte 24, colour type at 25 (0 gray, 2 RGB, 4 gray+alpha, 6 RGBA).
    # Pillow keeps 16 bits only for plain gray (I;16).
    return data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 25 and data[24] == 16 and data[25] in (2, 4, 6)


def _sixteen_bit_codec(module: str, purpose: str):
    """``imagecodecs`` or ``tifffile``: dependencies of hfdae, optional for the pipeline's remote code (which
    reads 8-bit images without them), so a missing one is named when a 16-bit file needs it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(f"{purpose} needs the `{module}` package (pip install {module})") from error


def _decode_png_16(data: bytes) -> np.ndarray:
    imagecodecs = _sixteen_bit_codec("imagecodecs", "reading a 16-bit colour PNG")
    pixels = imagecodecs.png_decode(data)
    return pixels[:, :, None] if pixels.ndim == 2 else pixels


def _split_alpha(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """H x W x {1, 2, 3, 4} -> (H x W x {1, 3}, H x W alpha or None)."""
    if pixels.shape[2] in (2, 4):
        return np.ascontiguousarray(pixels[:, :, :-1]), np.ascontiguousarray(pixels[:, :, -1])
    return np.ascontiguousarray(pixels), None


def _with_pixels(record: ImageRecord, split: tuple[np.ndarray, np.ndarray | None], file_format: str) -> ImageRecord:
    pixels, alpha = split
    channels = {1: "L", 3: "RGB"}[pixels.shape[2]] + ("A" if alpha is not None else "")
    record.pixels, record.alpha, record.bit_depth = pixels, alpha, 16
    record.source_mode, record.format = f"{channels};16", file_format
    return record


def _tiff_has_sixteen_bit_samples(data: bytes) -> bool:
    """Whether Pillow reads 16 bits per sample in the first page's BitsPerSample tag (258)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            bits = image.tag_v2.get(258, (8,))
    except (UnidentifiedImageError, OSError, AttributeError):
        return False
    return 16 in (bits if isinstance(bits, tuple) else (bits,))


def _sixteen_bit_tiff(data: bytes, path: Path | None) -> ImageRecord | None:
    """A 16-bit gray or RGB TIFF (with or without alpha) read whole with tifffile, or None for any other
    TIFF (Pillow reads those; it keeps 16 bits only for plain gray and cannot open gray + alpha)."""
    if importlib.util.find_spec("tifffile") is None and not _tiff_has_sixteen_bit_samples(data):
        return None  # without tifffile (the pipeline's remote code) Pillow reads the 8-bit TIFFs
    tifffile = _sixteen_bit_codec("tifffile", "reading a 16-bit TIFF")
    try:
        tiff = tifffile.TiffFile(io.BytesIO(data))
    except (tifffile.TiffFileError, ValueError):
        return None  # let Pillow try, and name the problem
    with tiff:
        page = tiff.pages[0]
        photometric = getattr(page.photometric, "name", "")
        if page.dtype != np.uint16 or photometric not in ("MINISBLACK", "RGB"):
            return None
        pixels = page.asarray()
        if "S" in page.axes and page.axes.index("S") < page.axes.index("Y"):  # planar: samples first
            pixels = np.moveaxis(pixels, page.axes.index("S"), -1)
        tags = page.tags
        orientation = int(tags[274].value) if 274 in tags else 1
        icc_profile = bytes(tags[34675].value) if 34675 in tags else None
        lossless = getattr(page.compression, "name", "") not in _LOSSY_TIFF_CODECS
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    record = ImageRecord(pixels, path=path, orientation=orientation, icc_profile=icc_profile, lossless=lossless)
    return _with_pixels(record, _split_alpha(np.ascontiguousarray(pixels)), "TIFF")


# --------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------


def unwritable_reason(path: str | os.PathLike) -> str | None:
    """Why an image cannot be written to ``path`` (checked before any work), or None if it can be.

    A path that is a folder, a file standing where a folder of the path should be, and a folder
    without write permission are caught; a full disk shows only when writing.
    """
    path = Path(path)
    if path.is_dir():
        return f"{path} is a folder"
    for parent in path.parents:
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                return f"{parent} is a file, not a folder"
            if not os.access(parent, os.W_OK | os.X_OK):
                return f"no permission to write into {parent}"
            return None
    return None


def write_image(
    pixels: np.ndarray, path: str | os.PathLike, alpha: np.ndarray | None = None, like: ImageRecord | None = None
) -> Path:
    """Write an H x W x C (C = 1 or 3) uint8 or uint16 array to ``path``, the format chosen by its suffix.

    uint16 stays 16-bit in PNG and TIFF (other formats get 8 bits). With ``like`` (the record of the
    input), the output carries its EXIF block, orientation and ICC profile where the format can hold
    them (an output format without EXIF gets its pixels turned upright instead), and a lossless input
    is written with the format's lossless mode (WebP; PNG, TIFF, BMP are always lossless).

    Args:
        pixels: the image, uint8 or uint16 (float arrays in [0, 1] are written with 8 bits).
        path: where; the folder is created. An existing file is replaced atomically.
        alpha: an H x W alpha channel, or None (JPEG and PPM/PGM drop it).
        like: the :class:`ImageRecord` whose metadata to keep.

    Raises:
        ImageWriteError: naming the path when it cannot be written.
    """
    path = Path(path)
    file_format = _FORMAT_OF_SUFFIX.get(path.suffix.lower())
    if file_format is None:
        raise ImageWriteError(f"{path}: unknown image suffix {path.suffix!r}; use one of {', '.join(IMAGE_SUFFIXES)}")
    problem = unwritable_reason(path)
    if problem:
        raise ImageWriteError(f"{path}: cannot write here ({problem})")
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if file_format in _NO_ALPHA_FORMATS:
        alpha = None
    sixteen = pixels.dtype == np.uint16 and file_format in _SIXTEEN_BIT_FORMATS
    pixels, alpha = (_to_16(pixels), _to_16(alpha)) if sixteen else (_to_8(pixels), _to_8(alpha))
    staging = path.with_name(f".{path.stem}.hfdae-tmp-{os.getpid()}{path.suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if sixteen and file_format == "TIFF":
            _write_tiff_16(pixels, alpha, staging, like)
        elif sixteen and not (pixels.shape[2] == 1 and alpha is None):  # Pillow writes 16-bit gray (I;16) itself
            staging.write_bytes(_encode_png_16(pixels, alpha, like))
        else:
            _write_with_pillow(pixels, alpha, staging, file_format, like)
        os.replace(staging, path)
    except OSError as error:
        staging.unlink(missing_ok=True)
        raise ImageWriteError(f"{path}: could not be written ({error.strerror or error})") from error
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    return path


def _to_8(array: np.ndarray | None) -> np.ndarray | None:
    if array is None or array.dtype == np.uint8:
        return array
    if array.dtype == np.uint16:
        return np.rint(array.astype(np.float64) / 257).astype(np.uint8)
    return np.rint(np.clip(array, 0, 1) * 255).astype(np.uint8)


def _to_16(array: np.ndarray | None) -> np.ndarray | None:
    if array is None or array.dtype == np.uint16:
        return array
    return array.astype(np.uint16) * 257 if array.dtype == np.uint8 else np.rint(np.clip(array, 0, 1) * 65535).astype(np.uint16)


def _pil_image(pixels: np.ndarray, alpha: np.ndarray | None) -> Image.Image:
    image = Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)
    if alpha is not None:
        image.putalpha(Image.fromarray(alpha))
    return image


# PIL.ImageOps.exif_transpose's table: orientation -> the transpose that shows the image upright.
_UPRIGHT = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
            5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
            8: Image.Transpose.ROTATE_90}


def _exif_for(like: ImageRecord) -> bytes | None:
    if like.exif:
        return like.exif
    if like.orientation != 1:  # e.g. a TIFF's orientation tag: carried as a one-tag EXIF block
        exif = Image.Exif()
        exif[_ORIENTATION_TAG] = like.orientation
        return exif.tobytes()
    return None


def _write_with_pillow(pixels: np.ndarray, alpha: np.ndarray | None, path: Path, file_format: str,
                       like: ImageRecord | None) -> None:
    image = _pil_image(pixels, alpha)
    options: dict = {}
    if file_format == "JPEG":
        options["quality"] = JPEG_QUALITY
    if file_format == "WEBP":
        lossless = like.lossless if like is not None else True
        options.update(lossless=True, quality=100, method=4) if lossless else options.update(quality=JPEG_QUALITY)
    if like is not None:
        if like.icc_profile and file_format in _ICC_FORMATS:
            options["icc_profile"] = like.icc_profile
        exif = _exif_for(like)
        if exif and file_format in _EXIF_FORMATS:
            options["exif"] = exif
        elif like.orientation in _UPRIGHT:  # BMP, PPM, GIF hold no orientation: turn the pixels instead
            image = image.transpose(_UPRIGHT[like.orientation])
    image.save(path, format=file_format, **options)


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _encode_png_16(pixels: np.ndarray, alpha: np.ndarray | None, like: ImageRecord | None) -> bytes:
    """16-bit PNG with imagecodecs; the ICC profile (iCCP) and EXIF (eXIf) chunks go right after IHDR."""
    imagecodecs = _sixteen_bit_codec("imagecodecs", "writing a 16-bit PNG")

    stacked = pixels if alpha is None else np.concatenate([pixels, alpha[:, :, None]], axis=2)
    encoded = imagecodecs.png_encode(np.ascontiguousarray(stacked))
    extra = b""
    if like is not None:
        if like.icc_profile:
            extra += _png_chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(like.icc_profile))
        exif = _exif_for(like)
        if exif:
            extra += _png_chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\x00\x00") else exif)
    header_end = 8 + 8 + 13 + 4  # signature, IHDR length and type, IHDR data, CRC
    return encoded[:header_end] + extra + encoded[header_end:]


def _write_tiff_16(pixels: np.ndarray, alpha: np.ndarray | None, path: Path, like: ImageRecord | None) -> None:
    tifffile = _sixteen_bit_codec("tifffile", "writing a 16-bit TIFF")

    stacked = pixels if alpha is None else np.concatenate([pixels, alpha[:, :, None]], axis=2)
    if stacked.shape[2] == 1:
        stacked = stacked[:, :, 0]
    options: dict = {"photometric": "rgb" if pixels.shape[2] == 3 else "minisblack", "compression": "zlib"}
    if alpha is not None:
        options["extrasamples"] = ["unassalpha"]
    if like is not None:
        if like.icc_profile:
            options["iccprofile"] = like.icc_profile
        if like.orientation != 1:
            options["extratags"] = [(274, "H", 1, like.orientation, True)]
    tifffile.imwrite(path, stacked, **options)


# --------------------------------------------------------------------------------------------------
# Listing
# --------------------------------------------------------------------------------------------------


def list_image_files(paths: list[str | os.PathLike] | str | os.PathLike, recursive: bool = True) -> list[Path]:
    """Expand files and folders into a sorted list of image files (by suffix).

    Links inside a folder that lead nowhere (broken, or a loop) are listed too, so that reading them
    reports them by name instead of their vanishing silently.

    Raises:
        FileNotFoundError: a path given directly that does not exist, saying so (or that it is a
            broken symbolic link or a link loop).
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    found: list[Path] = []
    for entry in map(Path, paths):
        if entry.is_dir():
            pattern = "**/*" if recursive else "*"
            found.extend(sorted(
                path for path in entry.glob(pattern)
                if path.suffix.lower() in IMAGE_SUFFIXES and (path.is_file() or path.is_symlink() and not path.exists())
            ))
        elif entry.exists():
            found.append(entry)
        else:
            problem = _path_problem(entry)
            raise FileNotFoundError(f"{entry}: {'no such file or folder' if problem == 'no such file' else problem}")
    return found
