"""Streaming training data: image records, deterministic splits, random crops, sharding, loaders.

Clean crops come out of this module; degradations are not applied here (the training step applies
them per batch on the device with :mod:`hfdae.degradations`). Everything streams through Hugging
Face ``datasets.IterableDataset``, so sharding over processes and DataLoader workers, shuffling,
``set_epoch`` and ``state_dict`` resumption are the ones ``datasets`` provides. For image files
the crop order is a pure function of (seed, epoch, position), so a resumed stream continues exactly
(:func:`crop_dataset`).

Sources (:func:`image_records`):
    - a folder of images (searched recursively), one image file, or a list of files/folders:
      for crops, one shard per block of files (at least 4 blocks per process when there are enough
      files), so nodes and DataLoader workers each read different files;
    - parquet: one ``.parquet`` file, a list of them, or a folder holding only parquet files:
      one shard per row group; the image column is detected from the ``datasets`` features;
    - a Hub dataset id ``"org/name"`` (anything that is not an existing local path), streamed with
      ``datasets.load_dataset``.

Splits (:func:`split_of`) are by a stable hash of the file name, so every machine and Python run puts
the same file in the same split. Files that cannot be decoded are skipped with one warning per file
and process (:class:`UnreadableImageWarning`) and listed by :func:`skipped_images`.

Example:
    >>> dataset = crop_dataset("data/train/CBSD432", crop_size=128, split="train")
    >>> loader = make_dataloader(dataset, batch_size=16, num_workers=2)
    >>> for epoch in range(epochs):
    ...     dataset.set_epoch(epoch)
    ...     for clean in loader:  # float32 [16, 3, 128, 128] in [0, 1]
    ...         ...
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import warnings
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any, Union

import datasets
import numpy as np
import torch
from datasets.distributed import split_dataset_by_node
from PIL import Image

from .processing import (
    IMAGE_SUFFIXES,
    ImageReadError,
    ImageRecord,
    array_to_tensor,
    convert_channels,
    list_image_files,
    read_image,
)

__all__ = [
    "DEFAULT_SPLIT_FRACTIONS",
    "UnreadableImageWarning",
    "split_of",
    "split_files",
    "image_records",
    "crop_dataset",
    "collate_crops",
    "make_dataloader",
    "load_images",
    "skipped_images",
    "clear_skipped_images",
]

DEFAULT_SPLIT_FRACTIONS: Mapping[str, float] = MappingProxyType({"train": 0.9, "validation": 0.05, "test": 0.05})

Source = Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]]

# Columns whose value names a row, in order of preference (parquet and Hub sources).
_NAME_COLUMNS = ("name", "file_name", "filename", "path", "file_path", "image_path", "image_id", "id")
_IMAGE_COLUMN_NAMES = ("image", "img", "picture")
# "org/name" with nothing else: anything else that is not an existing path is a typo, not a Hub id.
_HUB_DATASET_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_PARQUET_BATCH_ROWS = 32

# name -> reason, for this process. Each file is warned about once per process, however many epochs.
_SKIPPED: dict[str, str] = {}


class UnreadableImageWarning(UserWarning):
    """An image file or record that could not be decoded and was skipped."""


def skipped_images() -> dict[str, str]:
    """The images this process skipped so far, as ``{name: reason}``.

    DataLoader workers are separate processes: what they skip is counted (and warned about) there.
    """
    return dict(_SKIPPED)


def clear_skipped_images() -> None:
    """Forget the skipped images, so that they are counted and warned about again."""
    _SKIPPED.clear()


def _note_skipped(name: str, error: Exception) -> None:
    if name not in _SKIPPED:
        _SKIPPED[name] = str(error)
        # The error names the file (read_image's messages start with the path, ours with the name).
        warnings.warn(f"skipped an unreadable image: {error}", UnreadableImageWarning, stacklevel=2)


# --------------------------------------------------------------------------------------------------
# Splits
# --------------------------------------------------------------------------------------------------


def _check_fractions(fractions: Mapping[str, float]) -> None:
    if not fractions or any(fraction < 0 for fraction in fractions.values()):
        raise ValueError(f"split fractions must be a non-empty mapping of non-negative numbers, got {dict(fractions)}")
    if abs(sum(fractions.values()) - 1.0) > 1e-6:
        raise ValueError(f"split fractions must sum to 1, got {dict(fractions)} (sum {sum(fractions.values())})")


def split_of(name: str, fractions: Mapping[str, float] = DEFAULT_SPLIT_FRACTIONS, salt: str = "hfdae") -> str:
    """The split a file belongs to, by a stable hash of its name.

    ``sha1(salt + name)`` mapped to ``[0, 1)`` is compared with the cumulative fractions (in the
    mapping's order), so the same name lands in the same split on every machine and Python run,
    whatever other files exist.

    Args:
        name: the file name (pass ``path.name``, not the full path, so moving a folder keeps splits).
        fractions: split name -> fraction of the files; must sum to 1.
        salt: change it to draw a different, equally stable, split.

    Returns:
        The split's name.
    """
    _check_fractions(fractions)
    digest = hashlib.sha1((salt + name).encode("utf-8")).digest()
    position = int.from_bytes(digest[:8], "big") / 2.0**64
    cumulative = 0.0
    for split, fraction in fractions.items():
        cumulative += fraction
        if position < cumulative:
            return split
    # Rounding can leave the sum a hair below 1: the top of the range goes to the last non-empty split.
    return [split for split, fraction in fractions.items() if fraction > 0][-1]


def split_files(
    paths: Sequence[str | os.PathLike],
    fractions: Mapping[str, float] = DEFAULT_SPLIT_FRACTIONS,
    salt: str = "hfdae",
) -> dict[str, list[Path]]:
    """Divide files into splits by :func:`split_of` of each file's name (not its folder).

    Args:
        paths: the files, in any order; each split keeps their order.
        fractions: split name -> fraction of the files; must sum to 1.
        salt: see :func:`split_of`.

    Returns:
        ``{split: [paths]}`` with every split of ``fractions`` present (possibly empty).
    """
    _check_fractions(fractions)
    splits: dict[str, list[Path]] = {split: [] for split in fractions}
    for path in map(Path, paths):
        splits[split_of(path.name, fractions, salt)].append(path)
    return splits


def _split_key(name: str) -> str:
    # Records are named by relative paths or "file.parquet#row"; the split hashes the last part only.
    return PurePosixPath(name).name


def _check_split(split: str | None, fractions: Mapping[str, float]) -> None:
    _check_fractions(fractions)
    if split is not None and split not in fractions:
        raise ValueError(f"unknown split {split!r}; the fractions define {list(fractions)}")


# --------------------------------------------------------------------------------------------------
# Sources and records
# --------------------------------------------------------------------------------------------------


@dataclass
class _SourcePlan:
    """What :func:`image_records` found: the records dataset plus what callers need to know about it."""

    label: str  # how messages name the source
    kind: str  # "images", "parquet" or "hub"
    generator: Any = None  # the records generator function (local sources), for probing
    gen_kwargs: dict[str, Any] = field(default_factory=dict)
    record_count: int | None = None  # records in the split, where known without reading the data


def _source_label(source: Source) -> str:
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    entries = list(source)
    shown = ", ".join(str(entry) for entry in entries[:3])
    return f"[{shown}{', ...' if len(entries) > 3 else ''}] ({len(entries)} paths)"


def _resolve_local(source: Source) -> tuple[str, list[Path], Path | None] | None:
    """("images" | "parquet", files, root the names are relative to), or None for a Hub id."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            images = list_image_files(path)
            parquets = sorted(p for p in path.rglob("*.parquet") if p.is_file())
            if images and parquets:
                raise ValueError(f"{path}: holds both image and parquet files; pass one kind (a sub-folder or a list)")
            if images or parquets:
                return ("images", images, path) if images else ("parquet", parquets, path)
            raise FileNotFoundError(
                f"{path}: no image files ({', '.join(IMAGE_SUFFIXES)}) or parquet files in this folder"
            )
        if path.is_file():
            if path.suffix.lower() == ".parquet":
                return "parquet", [path], path.parent
            if path.suffix.lower() in IMAGE_SUFFIXES:
                return "images", [path], path.parent
            raise ValueError(f"{path}: neither an image ({', '.join(IMAGE_SUFFIXES)}) nor a .parquet file")
        if isinstance(source, str) and _HUB_DATASET_ID.match(source):
            return None
        raise FileNotFoundError(f"{source}: no such file or folder, and not a Hub dataset id of the form 'org/name'")
    entries = [Path(entry) for entry in source]
    if not entries:
        raise ValueError("the list of sources is empty")
    parquets = [entry for entry in entries if entry.suffix.lower() == ".parquet"]
    if parquets and len(parquets) != len(entries):
        raise ValueError(f"{_source_label(source)}: mixes parquet files with other paths; pass one kind")
    for entry in entries:
        if not entry.exists():
            raise FileNotFoundError(f"{entry}: no such file or folder")
    if parquets:
        return "parquet", parquets, None
    images = list_image_files(entries)
    if not images:
        raise FileNotFoundError(f"{_source_label(source)}: no image files found")
    return "images", images, None


def _record_name(path: Path, root: Path | None) -> str:
    return path.relative_to(root).as_posix() if root is not None else path.as_posix()


def _file_records(paths: list[str], names: list[str]) -> Iterator[dict[str, Any]]:
    # Yield paths, not bytes: reading and decoding both happen in the crop map (in the workers), and
    # shuffle buffers and name-only passes stay cheap.
    for path, name in zip(paths, names):
        yield {"image": path, "name": name}


def _parquet_image_column(schema: Any, image_column: str | None, label: str) -> str:
    names = list(schema.names)
    if image_column is not None:
        if image_column not in names:
            raise ValueError(f"{label}: no column {image_column!r}; columns are {names}")
        return image_column
    features = datasets.Features.from_arrow_schema(schema)
    for column, feature in features.items():
        if isinstance(feature, datasets.Image):
            return column
    for column in names:
        if column.lower() in _IMAGE_COLUMN_NAMES:
            return column
    raise ValueError(f"{label}: no image column found (no Image feature, no column named image/img/picture); "
                     f"columns are {names}: pass image_column=")


def _name_column(columns: Sequence[str], image_column: str) -> str | None:
    lowered = {column.lower(): column for column in columns if column != image_column}
    return next((lowered[name] for name in _NAME_COLUMNS if name in lowered), None)


def _parquet_records(
    paths: list[str],
    row_groups: list[int],
    first_rows: list[int],
    file_names: list[str],
    image_column: str,
    name_column: str | None,
    split: str | None,
    fractions: tuple[tuple[str, float], ...],
    salt: str,
) -> Iterator[dict[str, Any]]:
    import pyarrow.parquet as pq

    split_fractions = dict(fractions)
    columns = [image_column] if name_column is None else [image_column, name_column]
    for path, row_group, first_row, file_name in zip(paths, row_groups, first_rows, file_names):
        parquet_file = pq.ParquetFile(path)
        row = first_row
        for batch in parquet_file.iter_batches(batch_size=_PARQUET_BATCH_ROWS, row_groups=[row_group], columns=columns):
            images = batch.column(image_column)
            row_names = batch.column(name_column).to_pylist() if name_column else None
            for index in range(batch.num_rows):
                # Without a name column the row's position in its file names it: stable across nodes,
                # workers and epochs (a map's running index is not: it counts what each worker sees).
                name = str(row_names[index]) if row_names else f"{file_name}#{row + index}"
                if split is None or split_of(_split_key(name), split_fractions, salt) == split:
                    yield {"image": images[index].as_py(), "name": name}
            row += batch.num_rows


def _plan_images(files: list[Path], root: Path | None, label: str, split: str | None,
                 fractions: Mapping[str, float], salt: str) -> _SourcePlan:
    names = [_record_name(path, root) for path in files]
    if split is not None:
        kept = [
            (path, name) for path, name in zip(files, names) if split_of(_split_key(name), fractions, salt) == split
        ]
        if not kept:
            raise ValueError(f"{label}: the {split!r} split is empty (0 of {len(files)} image files)")
        files, names = [path for path, _ in kept], [name for _, name in kept]
    return _SourcePlan(label, "images", _file_records, {"paths": [str(path) for path in files], "names": names},
                       record_count=len(files))


def _plan_parquet(files: list[Path], root: Path | None, label: str, split: str | None,
                  fractions: Mapping[str, float], salt: str, image_column: str | None) -> _SourcePlan:
    import pyarrow.parquet as pq

    first = pq.ParquetFile(files[0])
    schema = first.schema_arrow
    image_column = _parquet_image_column(schema, image_column, label)
    name_column = _name_column(schema.names, image_column)
    # One shard per row group: a single big parquet file still spreads over nodes and workers.
    paths, row_groups, first_rows, file_names = [], [], [], []
    total_rows = 0
    for path in files:
        metadata = pq.ParquetFile(path).metadata
        offset = 0
        for row_group in range(metadata.num_row_groups):
            rows = metadata.row_group(row_group).num_rows
            paths.append(str(path))
            row_groups.append(row_group)
            first_rows.append(offset)
            file_names.append(_record_name(path, root))
            offset += rows
        total_rows += offset
    if not paths:
        raise ValueError(f"{label}: the parquet files hold no rows")
    gen_kwargs = {
        "paths": paths,
        "row_groups": row_groups,
        "first_rows": first_rows,
        "file_names": file_names,
        "image_column": image_column,
        "name_column": name_column,
        "split": split,
        "fractions": tuple(fractions.items()),  # a tuple: datasets shards lists, and copies this whole
        "salt": salt,
    }
    return _SourcePlan(label, "parquet", _parquet_records, gen_kwargs,
                       record_count=total_rows if split is None else None)


def _hub_record(example: dict[str, Any], index: int, image_column: str, name_column: str | None) -> dict[str, Any]:
    name = str(example[name_column]) if name_column else f"row{index}"
    return {"image": example[image_column], "name": name}


def _hub_records(dataset_id: str, split: str | None, image_column: str | None) -> datasets.IterableDataset:
    records = datasets.load_dataset(dataset_id, split=split or "train", streaming=True)
    features = records.features or {}
    columns = list(features) if features else []
    if image_column is None:
        image_column = next((c for c, f in features.items() if isinstance(f, datasets.Image)), None)
        image_column = image_column or next((c for c in columns if c.lower() in _IMAGE_COLUMN_NAMES), "image")
    if isinstance(features.get(image_column), datasets.Image):
        # Decode ourselves (in the crop map), so an unreadable image is skipped instead of raising in datasets.
        records = records.cast_column(image_column, datasets.Image(decode=False))
    name_column = _name_column(columns, image_column)
    keep = [image_column] + ([name_column] if name_column else [])
    if columns:
        records = records.select_columns(keep)
    # The running index only names rows for messages: the Hub's own splits are used, not a hash split.
    return records.map(_hub_record, with_indices=True, remove_columns=keep,
                       fn_kwargs={"image_column": image_column, "name_column": name_column})


def _records_and_plan(source: Source, split: str | None, fractions: Mapping[str, float], salt: str,
                      image_column: str | None) -> tuple[datasets.IterableDataset, _SourcePlan]:
    label = _source_label(source)
    resolved = _resolve_local(source)
    if resolved is None:
        return _hub_records(str(source), split, image_column), _SourcePlan(label, "hub")
    _check_split(split, fractions)
    kind, files, root = resolved
    if kind == "images":
        plan = _plan_images(files, root, label, split, fractions, salt)
    else:
        plan = _plan_parquet(files, root, label, split, fractions, salt, image_column)
    records = datasets.IterableDataset.from_generator(plan.generator, gen_kwargs=plan.gen_kwargs)
    return records, plan


def image_records(
    source: Source,
    split: str | None = None,
    fractions: Mapping[str, float] = DEFAULT_SPLIT_FRACTIONS,
    salt: str = "hfdae",
    image_column: str | None = None,
) -> datasets.IterableDataset:
    """A streaming dataset of undecoded images ``{"image": ..., "name": str}``.

    ``"image"`` is a file path (image files), the stored value of the image column (parquet: a
    ``{"bytes", "path"}`` dict for an ``Image`` feature, or bytes), or whatever the Hub dataset holds
    (its ``Image`` column is cast to ``decode=False``). Nothing is decoded here.

    Args:
        source: a folder (searched recursively), an image file, a list of files/folders, a ``.parquet``
            file, a list of them or a folder holding only parquet files, or a Hub dataset id ``"org/name"``
            (anything that is not an existing local path; needs the network).
        split: a split of ``fractions`` (local sources: only that hash split's files or rows; names
            are hashed by :func:`split_of` of their last path part), or None for everything. For a
            Hub id this is the Hub's split (default ``"train"``) and ``fractions`` is not used.
        fractions: split name -> fraction, summing to 1.
        salt: see :func:`split_of`.
        image_column: parquet/Hub column holding the images; default: the first ``Image`` feature,
            else a column named image/img/picture. Rows are named by a name/path/id column if there
            is one, else ``"<file>.parquet#<row>"``.

    Returns:
        A ``datasets.IterableDataset``; image files give one shard per file, parquet one per row group.

    Raises:
        FileNotFoundError: a local path that does not exist (and is not an ``org/name`` id), or a folder
            without image or parquet files.
        ValueError: an unknown split, a split with no files, mixed sources, no image column.
    """
    return _records_and_plan(source, split, fractions, salt, image_column)[0]


# --------------------------------------------------------------------------------------------------
# Decoding and crops
# --------------------------------------------------------------------------------------------------


def _integer_array(array: np.ndarray, name: str) -> np.ndarray:
    # Arrays from generic columns arrive as int64 (lists): keep them only if they fit 8 or 16 bits.
    if array.dtype == bool:
        return array.astype(np.uint8) * 255
    if array.size and (array.min() < 0 or array.max() > 65535):
        raise ImageReadError(f"{name}: integer pixel values outside 0..65535")
    return array.astype(np.uint8 if not array.size or array.max() <= 255 else np.uint16)


def _decode_record(image: Any, name: str) -> ImageRecord:
    """Any stored image value -> :class:`ImageRecord`; raises ImageReadError naming ``name``."""
    if isinstance(image, dict):  # a datasets Image feature with decode=False
        image = image.get("bytes") or image.get("path")
    if image is None:
        raise ImageReadError(f"{name}: no image data")
    if isinstance(image, (str, os.PathLike)):
        return read_image(image)
    if isinstance(image, (bytes, bytearray, memoryview)):
        return read_image(bytes(image), name=name)
    if isinstance(image, Image.Image):
        try:
            image.load()
            return read_image(image)
        except (OSError, SyntaxError, ValueError) as error:
            raise ImageReadError(f"{name}: not a readable image ({error})") from error
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise ImageReadError(f"{name}: an image array must be H x W x 1/3/4, got shape {array.shape}")
    if np.issubdtype(array.dtype, np.floating):
        pixels = np.clip(array, 0, 1).astype(np.float32)
    elif array.dtype in (np.uint8, np.uint16):
        pixels = array
    elif np.issubdtype(array.dtype, np.integer) or array.dtype == bool:
        pixels = _integer_array(array, name)
    else:
        raise ImageReadError(f"{name}: unsupported image array dtype {array.dtype}")
    return ImageRecord(np.ascontiguousarray(pixels[:, :, :3] if pixels.shape[2] == 4 else pixels))


def _training_pixels(record: ImageRecord, channels: int) -> np.ndarray:
    pixels = record.pixels
    if np.issubdtype(pixels.dtype, np.floating):  # 32-bit float images: keep 16 bits, crops stay integer
        pixels = np.rint(np.clip(pixels, 0, 1) * 65535).astype(np.uint16)
    return convert_channels(pixels, channels)


def _random_crop(pixels: np.ndarray, crop_size: int, rng: np.random.Generator, flips: bool) -> np.ndarray:
    height, width = pixels.shape[:2]
    if height < crop_size or width < crop_size:
        pad_rows, pad_columns = max(crop_size - height, 0), max(crop_size - width, 0)
        pixels = np.pad(
            pixels,
            ((pad_rows // 2, pad_rows - pad_rows // 2), (pad_columns // 2, pad_columns - pad_columns // 2), (0, 0)),
            mode="reflect",
        )
        height, width = pixels.shape[:2]
    top = int(rng.integers(0, height - crop_size + 1))
    left = int(rng.integers(0, width - crop_size + 1))
    crop = pixels[top : top + crop_size, left : left + crop_size]
    if flips:
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        if rng.random() < 0.5:
            crop = crop[::-1]
    return np.ascontiguousarray(crop)  # a small copy, not a view that keeps the whole image alive


OVEREXPOSURE_MAX_GAIN = 2.0


def _overexpose(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Brighten a crop by a random gain in [1, OVEREXPOSURE_MAX_GAIN] and clip: clipped highlights.

    Photos with blown-out skies have large areas at exactly the top value; without such clean
    targets a model mistakes them for dense salt noise and paints over them.
    """
    top = np.iinfo(crop.dtype).max
    gain = 1.0 + (OVEREXPOSURE_MAX_GAIN - 1.0) * rng.random()
    return np.minimum(np.rint(crop.astype(np.float32) * gain), top).astype(crop.dtype)


def _name_entropy(name: str) -> int:
    # Python's hash() is salted per process; sha1 gives every worker and run the same number.
    return int.from_bytes(hashlib.sha1(name.encode("utf-8")).digest()[:8], "big")


class _CropSampler:
    """The function ``crop_dataset`` maps over records: decode one image, cut its random crops.

    Randomness comes from a generator seeded by (seed, epoch, name), never from global state, so
    crops are repeatable, differ per epoch, and no two workers share a stream. The epoch is read
    from the returned dataset's shared epoch counter, which ``set_epoch`` updates in place (also in
    persistent DataLoader workers).
    """

    def __init__(self, crop_size: int, channels: int, flips: bool, crops_per_image: int, seed: int,
                 source_label: str, record_count: int | None, overexposure: float = 0.0):
        self.crop_size = crop_size
        self.overexposure = overexposure
        self.channels = channels
        self.flips = flips
        self.crops_per_image = crops_per_image
        self.seed = seed
        self.source_label = source_label
        self.record_count = record_count
        self.epoch_counter: torch.Tensor | None = None  # bound to the final dataset's counter by crop_dataset
        self._decoded = 0
        self._failed_names: set[str] = set()

    def _epoch(self) -> int:
        return int(self.epoch_counter) if self.epoch_counter is not None else 0

    def __call__(self, batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        crops, names = self._cut(batch["image"], batch["name"], self._epoch())
        return {"crop": crops, "name": names}

    def _cut(self, images: Sequence[Any], image_names: Sequence[str], epoch: int) -> tuple[list[np.ndarray], list[str]]:
        """Decode each image and cut its crops (unreadable ones are skipped with a warning)."""
        crops: list[np.ndarray] = []
        names: list[str] = []
        for image, name in zip(images, image_names):
            try:
                pixels = _training_pixels(_decode_record(image, name), self.channels)
            except ImageReadError as error:
                _note_skipped(name, error)
                self._failed_names.add(name)
                self._check_something_decodes()
                continue
            self._decoded += 1
            rng = np.random.default_rng([self.seed, epoch, _name_entropy(name)])
            for _ in range(self.crops_per_image):
                crop = _random_crop(pixels, self.crop_size, rng, self.flips)
                if self.overexposure > 0 and rng.random() < self.overexposure:
                    crop = _overexpose(crop, rng)
                crops.append(crop)
                names.append(name)
        return crops, names

    def _check_something_decodes(self) -> None:
        # Counted per process (worker): only when this one process failed on every record of the
        # source is it certain that a pass can yield nothing.
        if self._decoded == 0 and self.record_count and len(self._failed_names) >= self.record_count:
            raise RuntimeError(_nothing_decodes_message(self.source_label, len(self._failed_names)))


# Tags that keep the seed sequences of the file order and of each block's crop order apart from each
# other and from the per-image crop streams ([seed, epoch, name hash]).
_FILE_ORDER_TAG = zlib.crc32(b"hfdae file order")
_BLOCK_ORDER_TAG = zlib.crc32(b"hfdae block order")
# Image sources are cut into at least this many blocks per process when they have the files, so that
# DataLoader workers (one block at a time each) all get work.
_MIN_BLOCKS_PER_PROCESS = 4


def _block_ids(blocks: list[int]) -> Iterator[dict[str, int]]:
    for block in blocks:
        yield {"block": block}


class _BlockCropper(_CropSampler):
    """Image files: the crops of one block of files, mixed; every position of an epoch's stream is a
    pure function of (seed, epoch, position).

    Each epoch, the files are permuted by ``(seed, epoch)`` (a full shuffle: file paths are cheap) and
    cut into blocks of ``files_per_block``; block ``k`` holds the ``k``-th slice. Mapped over block ids,
    this decodes the block's files, cuts their crops and mixes them by ``(seed, epoch, k)``. Nothing
    depends on what came before in the stream, so ``datasets``' state (which block, how many crops of
    it already yielded) resumes it exactly, whatever the DataLoader workers and processes, unlike a
    shuffle buffer, whose content a state dict does not hold.
    """

    def __init__(self, paths: list[str], names: list[str], files_per_block: int, shuffle: bool, **sampler_kwargs):
        super().__init__(**sampler_kwargs)
        self.paths = paths
        self.names = names
        self.files_per_block = files_per_block
        self.shuffle = shuffle
        self._order_cache: tuple[int, np.ndarray] | None = None

    def file_order(self, epoch: int) -> np.ndarray:
        """The order of the files in ``epoch`` (indices into the file list)."""
        if self._order_cache is None or self._order_cache[0] != epoch:
            count = len(self.paths)
            order = (np.random.default_rng([self.seed, epoch, _FILE_ORDER_TAG]).permutation(count) if self.shuffle
                     else np.arange(count))
            self._order_cache = (epoch, order)
        return self._order_cache[1]

    def __call__(self, batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        epoch = self._epoch()
        order = self.file_order(epoch)
        crops: list[np.ndarray] = []
        names: list[str] = []
        for block in batch["block"]:
            members = order[block * self.files_per_block : (block + 1) * self.files_per_block]
            block_crops, block_names = self._cut([self.paths[i] for i in members], [self.names[i] for i in members],
                                                 epoch)
            mixed = (np.random.default_rng([self.seed, epoch, _BLOCK_ORDER_TAG, block]).permutation(len(block_crops))
                     if self.shuffle and len(block_crops) > 1 else range(len(block_crops)))
            crops.extend(block_crops[i] for i in mixed)
            names.extend(block_names[i] for i in mixed)
        return {"crop": crops, "name": names}


def _files_per_block(file_count: int, shuffle_buffer: int, crops_per_image: int, num_processes: int) -> int:
    """Files whose crops are mixed together: about ``shuffle_buffer`` crops, but small enough that every
    process gets ``_MIN_BLOCKS_PER_PROCESS`` blocks when there are enough files."""
    wanted = max(1, math.ceil(shuffle_buffer / crops_per_image)) if shuffle_buffer > 1 else 1
    return max(1, min(wanted, file_count // (_MIN_BLOCKS_PER_PROCESS * num_processes)))


def _nothing_decodes_message(label: str, failed: int) -> str:
    return (f"{label}: no image could be read ({failed} of {failed} files or rows failed to decode; "
            "see the UnreadableImageWarning messages or hfdae.data.skipped_images())")


def _check_some_record_decodes(plan: _SourcePlan) -> None:
    """Decode records in order until one works (normally the first); raise if none does."""
    failed = 0
    for record in plan.generator(**plan.gen_kwargs):
        try:
            _decode_record(record["image"], record["name"])
            return
        except ImageReadError as error:
            _note_skipped(record["name"], error)
            failed += 1
    raise RuntimeError(_nothing_decodes_message(plan.label, failed))


def crop_dataset(
    source: Source,
    crop_size: int = 128,
    channels: int = 3,
    split: str | None = "train",
    fractions: Mapping[str, float] = DEFAULT_SPLIT_FRACTIONS,
    salt: str = "hfdae",
    shuffle_buffer: int = 256,
    seed: int = 0,
    flips: bool = True,
    crops_per_image: int = 1,
    num_processes: int = 1,
    process_index: int = 0,
    image_column: str | None = None,
    overexposure: float = 0.0,
) -> datasets.IterableDataset:
    """A streaming dataset of random clean training crops ``{"crop": array, "name": str}``.

    Each readable image gives ``crops_per_image`` crops of ``crop_size x crop_size`` (reflect-padded
    when the image is smaller), randomly flipped, converted to ``channels``, as H x W x C numpy
    arrays: uint8, or uint16 for 16-bit (and float) images. Decoding happens in the map, that is in
    the DataLoader workers. Unreadable files are skipped with an :class:`UnreadableImageWarning`
    (once per file and process) and counted by :func:`skipped_images`.

    Call ``set_epoch(epoch)`` on the returned dataset itself (not on one derived from it): it changes
    the order and the crops. ``state_dict()`` / ``load_state_dict()`` (or the DataLoader's, with any
    number of workers) resume where the state was taken (set the same epoch first). For image files
    the stream resumes exactly, crop for crop, whatever ``shuffle_buffer``: the order is a pure
    function of (seed, epoch, position) (files permuted per epoch, then mixed in blocks of about
    ``shuffle_buffer`` crops). Parquet and Hub rows go through ``datasets``' shuffle buffer instead,
    whose content a state dict does not hold: they resume exactly only with ``shuffle_buffer <= 1``.

    Args:
        source: see :func:`image_records`.
        crop_size: side of the square crops, in pixels.
        channels: 3 (gray images repeated) or 1 (colour images converted to luma).
        split: the hash split to read (``"train"``), or None for every file; see :func:`image_records`.
        fractions: split name -> fraction, summing to 1.
        salt: see :func:`split_of`.
        shuffle_buffer: 0: fixed order; 1: shuffled file order only; more: also mix crops, about this
            many at a time (image files: the crops of ``ceil(shuffle_buffer / crops_per_image)`` files
            at once, fewer when needed to give every process 4 blocks; parquet/Hub: a
            ``datasets`` shuffle buffer of this many crops).
        seed: seeds the shard order, the buffer and the crops; use the same on every process.
        flips: random horizontal and vertical flips.
        crops_per_image: crops cut from each decoded image (decoding is the costly part).
        num_processes: processes (nodes) sharing the data; each reads its own shards (blocks of image
            files, parquet row groups; ``split_dataset_by_node``), so each file is read once per epoch
            overall.
        process_index: this process's rank, ``0 <= process_index < num_processes``.
        image_column: parquet/Hub image column; see :func:`image_records`.
        overexposure: fraction of crops brightened by a random gain in [1, 2] and clipped, so that
            clean targets include blown-out highlights (large areas at the top value).

    Returns:
        A ``datasets.IterableDataset``; batch it with :func:`make_dataloader` (or :func:`collate_crops`).

    Raises:
        RuntimeError: no file of the source (split) can be decoded (checked up front for local sources).
    """
    if crop_size < 1:
        raise ValueError(f"crop_size must be at least 1, got {crop_size}")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    if crops_per_image < 1:
        raise ValueError(f"crops_per_image must be at least 1, got {crops_per_image}")
    if not 0.0 <= overexposure <= 1.0:
        raise ValueError(f"overexposure must be a fraction in [0, 1], got {overexposure}")
    if shuffle_buffer < 0 or seed < 0:
        raise ValueError(f"shuffle_buffer and seed must be non-negative, got {shuffle_buffer} and {seed}")
    if num_processes < 1 or not 0 <= process_index < num_processes:
        raise ValueError(f"need 0 <= process_index < num_processes, got {process_index} and {num_processes}")
    records, plan = _records_and_plan(source, split, fractions, salt, image_column)
    if plan.generator is not None:
        _check_some_record_decodes(plan)
    sampler_kwargs = dict(crop_size=crop_size, channels=channels, flips=flips, crops_per_image=crops_per_image,
                          seed=seed, source_label=plan.label, overexposure=overexposure,
                          record_count=plan.record_count if plan.kind == "images" else None)
    if plan.kind == "images":  # exact resume at any position: see _BlockCropper
        paths, names = plan.gen_kwargs["paths"], plan.gen_kwargs["names"]
        files_per_block = _files_per_block(len(paths), shuffle_buffer, crops_per_image, num_processes)
        sampler = _BlockCropper(paths, names, files_per_block, shuffle=shuffle_buffer > 0, **sampler_kwargs)
        blocks = datasets.IterableDataset.from_generator(
            _block_ids, gen_kwargs={"blocks": list(range(math.ceil(len(paths) / files_per_block)))})
        dataset = blocks.map(sampler, batched=True, batch_size=1, remove_columns=["block"])
    else:  # parquet and Hub rows: datasets' shuffle buffer (its content is not in a state dict)
        sampler = _CropSampler(**sampler_kwargs)
        dataset = records.map(sampler, batched=True, batch_size=1, remove_columns=["image", "name"])
        if shuffle_buffer > 0:
            dataset = dataset.shuffle(seed=seed, buffer_size=shuffle_buffer)
    if num_processes > 1:
        # "shards" reads each file on one process only; "auto" would fall back to every process
        # reading (and decoding) everything whenever the shard count is not a multiple of num_processes.
        strategy = "shards"
        if dataset.num_shards < num_processes:
            strategy = "examples"
            warnings.warn(f"{plan.label}: {dataset.num_shards} shards for {num_processes} processes: every process "
                          "reads every file and keeps 1 example in num_processes", stacklevel=2)
        dataset = split_dataset_by_node(dataset, rank=process_index, world_size=num_processes, strategy=strategy)
    # Every IterableDataset gets its own epoch counter (a shared-memory tensor): bind the final one.
    sampler.epoch_counter = dataset._epoch
    return dataset


# --------------------------------------------------------------------------------------------------
# Batches and loaders
# --------------------------------------------------------------------------------------------------


def collate_crops(examples: list[dict[str, Any]]) -> torch.Tensor:
    """Stack crop examples into a float32 batch ``[B, C, H, W]`` in ``[0, 1]`` (uint8 / 255, uint16 / 65535).

    Args:
        examples: dicts with a ``"crop"`` H x W x C array (other keys are ignored), as
            :func:`crop_dataset` yields them.
    """
    if not examples:
        raise ValueError("collate_crops needs at least one example")
    crops = [np.asarray(example["crop"]) for example in examples]
    if all(crop.dtype == np.uint8 for crop in crops):
        # Stack and transpose as uint8 (a quarter of the bytes), convert to float once.
        batch = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).contiguous()
        return batch.float().div_(255.0)
    return torch.stack([array_to_tensor(crop) for crop in crops])


def make_dataloader(
    dataset: datasets.IterableDataset | torch.utils.data.Dataset,
    batch_size: int,
    num_workers: int = 0,
    drop_last: bool = True,
    pin_memory: bool = False,
    collate_fn: Any = collate_crops,
) -> torch.utils.data.DataLoader:
    """A DataLoader over :func:`crop_dataset` batches.

    Workers are capped at ``dataset.num_shards`` (a worker without a shard would only stop) and kept
    alive between epochs (``persistent_workers``); ``dataset.set_epoch`` reaches them. Uses
    torchdata's ``StatefulDataLoader`` (a dependency of hfdae), whose ``state_dict`` holds every
    worker's position for exact resumption; a plain ``DataLoader`` if torchdata is missing.

    Args:
        dataset: the dataset, usually from :func:`crop_dataset`.
        batch_size: crops per batch.
        num_workers: worker processes (0: load in the calling process).
        drop_last: drop a last, smaller batch.
        pin_memory: pin batches for faster copies to a GPU.
        collate_fn: how examples become a batch; default :func:`collate_crops`.
    """
    shards = getattr(dataset, "num_shards", None)
    workers = min(num_workers, shards) if shards else num_workers
    try:
        from torchdata.stateful_dataloader import StatefulDataLoader as loader_class
    except ImportError:
        loader_class = torch.utils.data.DataLoader
    return loader_class(
        dataset,
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=collate_fn,
        drop_last=drop_last,
        pin_memory=pin_memory,
        persistent_workers=workers > 0,
    )


# --------------------------------------------------------------------------------------------------
# Whole images for evaluation
# --------------------------------------------------------------------------------------------------


def load_images(
    source: Source,
    channels: int = 3,
    split: str | None = None,
    fractions: Mapping[str, float] = DEFAULT_SPLIT_FRACTIONS,
    salt: str = "hfdae",
    limit: int | None = None,
) -> tuple[list[tuple[str, torch.Tensor]], list[str]]:
    """Whole images for evaluation: ``([(name, float tensor [C, H, W] in [0, 1])], unreadable names)``.

    Args:
        source: see :func:`image_records`.
        channels: 3 or 1 (converted as in :func:`crop_dataset`), or None to keep each image's own.
        split: a hash split, or None for everything; see :func:`image_records`.
        fractions: split name -> fraction, summing to 1.
        salt: see :func:`split_of`.
        limit: keep at most this many readable images, the first in the source's order (sorted file
            names for folders); None keeps all.

    Returns:
        The images sorted by name, and the sorted names of the records that could not be read (each
        also warned about, once per process).

    Raises:
        RuntimeError: no image could be read.
    """
    if channels not in (1, 3, None):
        raise ValueError(f"channels must be 1, 3 or None, got {channels}")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1 or None, got {limit}")
    records, plan = _records_and_plan(source, split, fractions, salt, None)
    images: list[tuple[str, torch.Tensor]] = []
    unreadable: list[str] = []
    for record in records:
        name = record["name"]
        try:
            decoded = _decode_record(record["image"], name)
        except ImageReadError as error:
            _note_skipped(name, error)
            unreadable.append(name)
            continue
        pixels = decoded.pixels if channels is None else convert_channels(decoded.pixels, channels)
        images.append((name, array_to_tensor(pixels)))
        if limit is not None and len(images) >= limit:
            break
    if not images:
        raise RuntimeError(_nothing_decodes_message(plan.label, len(unreadable)))
    return sorted(images, key=lambda item: item[0]), sorted(unreadable)
