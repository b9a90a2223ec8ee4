"""Restore every image of a ``datasets`` dataset: streaming, batched, resumable, sharded over processes.

>>> import hfdae, datasets
>>> hfdae.restore_dataset("colour", "user/noisy-photos", split="test", output_dir="restored")
>>> datasets.load_dataset("restored", split="test")             # the same rows, the images restored

Run the same script under ``accelerate launch`` (or ``torchrun``) to share the work between processes
(one GPU to many machines): each process restores its own part and writes its own files into the shared
``output_dir``; the result does not depend on how many processes made it.

The output folder (Hub-ready; ``push_to_hub=REPO`` uploads it):

``data/{split}-{shard:05d}-{block:06d}.parquet``
    Rows ``[block * rows_per_file, (block + 1) * rows_per_file)`` of the source's data shard ``shard``, with
    every column of the source; the image column holds the restoration (lossless PNG, or TIFF for modes
    PNG cannot hold; mode and bit depth kept) and keeps the source's file name. Written atomically (a
    temporary file renamed), so a killed run leaves whole files only.
``restoration_state.json``
    The model (name and a fingerprint of its weights), the source and the settings of every split restored
    here. A rerun with the same settings skips the files already written (resume after a kill); other
    settings are refused, naming the one that differs.
``README.md``
    A dataset card whose ``configs`` name the splits, so ``load_dataset(output_dir)`` and the Hub find them.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import torch

from .image_processing_hfdae import DenoisingAutoencoderImageProcessor
from .inference import load_model, restore
from .modeling_hfdae import DenoisingAutoencoder

__all__ = ["restore_dataset", "DatasetRestorationReport", "STATE_FILE", "DATA_FOLDER"]

logger = logging.getLogger(__name__)

STATE_FILE = "restoration_state.json"
DATA_FOLDER = "data"
CARD_FILE = "README.md"
_STATE_VERSION = 1
# modes a PNG holds as they are (16-bit gray included); the others are written as TIFF
_PNG_MODES = ("1", "L", "LA", "RGB", "RGBA", "I;16")


@dataclass
class DatasetRestorationReport:
    """What :func:`restore_dataset` did in this process.

    Args:
        output_dir: the output folder.
        split: the split restored.
        files_written: data files this process wrote.
        files_skipped: data files of this process's part that were already there (a resumed run).
        rows_restored: rows this process restored.
        failed: rows whose image could not be decoded or restored, ``"shard S row R (file name)"`` -> the
            error; they are kept with their image unchanged.
        total_rows: rows in the split's output, all processes together (when it is complete).
        commit_url: the Hub commit, with ``push_to_hub`` (main process only).
    """

    output_dir: Path
    split: str
    files_written: list[Path] = field(default_factory=list)
    files_skipped: list[Path] = field(default_factory=list)
    rows_restored: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    total_rows: int | None = None
    commit_url: str | None = None


def restore_dataset(
    model: DenoisingAutoencoder | str | os.PathLike,
    dataset: Any,
    output_dir: str | os.PathLike | None = None,
    *,
    split: str = "train",
    column: str = "image",
    mask_column: str | None = None,
    config_name: str | None = None,
    push_to_hub: str | None = None,
    private: bool | None = None,
    token: str | bool | None = None,
    batch_size: int = 8,
    rows_per_file: int = 128,
    noise_level: float | str | None = None,
    tile_size: int | str | None = "auto",
    self_ensemble: bool = False,
    precision: str = "auto",
    progress: bool = True,
) -> DatasetRestorationReport:
    """Restore the images of one split of a dataset into a Hub-ready folder (see the module docstring).

    Args:
        model: an hfdae model, or what :func:`hfdae.load_model` takes (zoo name, folder, Hub id).
        dataset: a Hub dataset id or a local folder (read with ``datasets.load_dataset(..., streaming=True)``),
            or a ``datasets`` ``IterableDataset``, ``Dataset`` or dataset dict.
        output_dir: the output folder (resumable). Default with ``push_to_hub``: a folder named after the repo
            in the working directory.
        split: the split to restore.
        column: the image column (a ``datasets.Image`` feature).
        mask_column: for inpainting, a column of masks (images, white marks the holes; see
            :class:`~hfdae.DenoisingAutoencoderImageProcessor`): outside the holes the images stay as they were.
        config_name: the dataset's configuration (``name`` of ``load_dataset``).
        push_to_hub: a dataset repo id to upload the folder to once every process is done (one commit of
            ``data/`` and the card, from the main process).
        private, token: for the Hub repo, with ``push_to_hub``.
        batch_size: images per forward pass (images of one size are batched together).
        rows_per_file: rows per data file: the unit of work shared between processes and of resuming.
        noise_level, tile_size, self_ensemble, precision: as for :func:`hfdae.restore` (``noise_level`` in the
            [0, 1] scale, or ``"auto"`` per image).
        progress: show a tqdm progress bar (main process).

    Returns:
        This process's :class:`DatasetRestorationReport`.

    Raises:
        ValueError: an unknown column, a column that does not hold images, an output folder restored with
            other settings or holding data without a state file.
    """
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    if output_dir is None:
        if push_to_hub is None:
            raise ValueError("give output_dir (a local folder, used to resume) or push_to_hub (a dataset repo id)")
        output_dir = Path(push_to_hub.split("/")[-1])
    if not isinstance(rows_per_file, int) or rows_per_file < 1:
        raise ValueError(f"rows_per_file must be a positive integer, got {rows_per_file!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    output_dir = Path(output_dir)
    state = PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"))  # as accelerate's own AcceleratorState reads it
    model_name = str(model) if not isinstance(model, torch.nn.Module) else (model.config._name_or_path or "in-memory model")
    if not isinstance(model, torch.nn.Module):
        model = load_model(model)
    model = model.to(state.device).eval()
    processor = DenoisingAutoencoderImageProcessor.from_model_config(model.config, do_pad=False)
    if noise_level is not None and not model.config.noise_level_input:
        raise ValueError(f"noise_level={noise_level!r} given, but the model has no noise-level input (it restores"
                         " blind); leave noise_level out")
    if mask_column is not None and not model.config.extra_input_channels:
        logger.info("the model has no mask input: it fills the holes of %r blind", mask_column)

    source, stream = _open(dataset, split, config_name)
    stream = _undecoded(stream, column, mask_column)
    settings = {
        "model": model_name, "model_fingerprint": _fingerprint(model), "source": source, "config_name": config_name,
        "column": column, "mask_column": mask_column, "rows_per_file": rows_per_file, "noise_level": noise_level,
        "tile_size": tile_size, "self_ensemble": self_ensemble, "precision": precision,
    }
    # every process checks the folder (reading only), then the main process records the settings
    recorded = _check_state(output_dir, split, settings)
    state.wait_for_everyone()
    if state.is_main_process:
        _write_state(output_dir, recorded, split, settings)
    state.wait_for_everyone()

    report = DatasetRestorationReport(output_dir, split)
    restore_options = {"noise_level": noise_level, "tile_size": tile_size, "self_ensemble": self_ensemble,
                       "precision": precision, "batch_size": batch_size}
    from tqdm.auto import tqdm

    split_info = (stream.info.splits or {}).get(split)
    total = -(-split_info.num_examples // state.num_processes) if split_info and split_info.num_examples else None
    bar = tqdm(desc=f"restore {split}", unit="image", total=total, disable=not (progress and state.is_main_process))
    (output_dir / DATA_FOLDER).mkdir(parents=True, exist_ok=True)
    for shard, block, rows in _my_blocks(stream, rows_per_file, state.process_index, state.num_processes):
        path = output_dir / DATA_FOLDER / f"{split}-{shard:05d}-{block:06d}.parquet"
        if path.is_file():  # written before a kill: resume after it
            report.files_skipped.append(path)
            continue
        rows = list(rows)
        failures = len(report.failed)
        _write_parquet(_restore_rows(model, processor, rows, shard, block * rows_per_file, column, mask_column,
                                     restore_options, report), stream.features, path)
        report.files_written.append(path)
        report.rows_restored += len(rows) - (len(report.failed) - failures)
        bar.update(len(rows))
    bar.close()

    state.wait_for_everyone()
    if state.is_main_process:
        report.total_rows = _finish(output_dir, split, settings)
        if push_to_hub is not None:
            report.commit_url = _push(output_dir, push_to_hub, private=private, token=token)
    state.wait_for_everyone()
    return report


# --- the source ---------------------------------------------------------------------------------------------------


def _open(dataset: Any, split: str, config_name: str | None):
    """-> (a name for the source, a streaming IterableDataset of the split)."""
    import datasets

    if isinstance(dataset, (str, os.PathLike)):
        source = os.fspath(dataset)
        stream = datasets.load_dataset(source, name=config_name, split=split, streaming=True)
        return (str(Path(source).resolve()) if Path(source).exists() else source), stream
    if isinstance(dataset, (datasets.DatasetDict, datasets.IterableDatasetDict)):
        if split not in dataset:
            raise ValueError(f"split={split!r} is not in the dataset; it has {sorted(dataset)}")
        dataset = dataset[split]
    if isinstance(dataset, datasets.Dataset):
        dataset = dataset.to_iterable_dataset()
    if not isinstance(dataset, datasets.IterableDataset):
        raise TypeError(f"dataset must be a Hub id, a folder or a datasets dataset, got {type(dataset).__name__}")
    name = dataset.info.dataset_name or dataset.info.builder_name or "in-memory dataset"
    return name, dataset


def _undecoded(stream, column: str, mask_column: str | None):
    """The stream with its image columns left encoded: rows other processes restore are never decoded."""
    import datasets

    features = stream.features
    if features is None:
        raise ValueError("the dataset does not declare its features; declare the image column first, for example"
                         f" dataset = dataset.cast_column({column!r}, datasets.Image())")
    for name in (column, mask_column):
        if name is None:
            continue
        if name not in features:
            raise ValueError(f"column={name!r} is not a column of the dataset; it has {sorted(features)}")
        if not isinstance(features[name], datasets.Image):
            raise ValueError(f"column {name!r} holds {features[name]}, not images; name the image column with column=")
        stream = stream.cast_column(name, datasets.Image(decode=False))
    return stream


def _my_blocks(stream, rows_per_file: int, rank: int, world: int) -> Iterator[tuple[int, int, Iterator[dict]]]:
    """(data shard, block, its rows) for this process. With at least as many data shards as processes each
    process reads only its shards; otherwise every process reads every row (undecoded) and takes every
    ``world``-th block. Either way a block is named by (shard, block), whatever the number of processes."""
    shards = stream.num_shards
    whole_shards = shards >= world
    for shard in range(shards):
        if whole_shards and shard % world != rank:
            continue
        rows = stream.shard(num_shards=shards, index=shard) if shards > 1 else stream
        for block, group in itertools.groupby(enumerate(rows), key=lambda pair: pair[0] // rows_per_file):
            if whole_shards or block % world == rank:
                yield shard, block, (row for _, row in group)


# --- restoring ------------------------------------------------------------------------------------------------------


def _restore_rows(model, processor, rows: list[dict], shard: int, first_row: int, column: str,
                  mask_column: str | None, restore_options: dict, report: DatasetRestorationReport) -> list[dict]:
    """Restore the image of every row, images of one size in batches; a row that fails keeps its image."""
    import datasets

    decoder = datasets.Image()
    originals, masks, inputs, labels = {}, {}, {}, {}
    for index, row in enumerate(rows):
        path = row[column].get("path")
        labels[index] = f"shard {shard} row {first_row + index}" + (f" ({Path(path).name})" if path else "")
        try:
            image = decoder.decode_example(row[column])
        except Exception as error:  # PIL raises several types for bad data
            _fail(report, labels[index], f"{column}: not a readable image ({error})")
            continue
        mask = None
        if mask_column is not None and row[mask_column] is not None:
            try:
                mask = decoder.decode_example(row[mask_column])
            except Exception as error:
                _fail(report, labels[index], f"{mask_column}: not a readable image ({error})")
                continue
        try:
            inputs[index] = processor(image, masks=None if mask is None else [mask], return_tensors="pt")
        except ValueError as error:  # a mode, range or mask size the processor refuses: named, kept
            _fail(report, labels[index], str(error))
            continue
        originals[index], masks[index] = image, mask
    by_size: dict[tuple[int, ...], list[int]] = {}
    for index, features in inputs.items():
        by_size.setdefault(tuple(features["pixel_values"].shape[-2:]), []).append(index)
    output_rows = [dict(row) for row in rows]
    for indices in by_size.values():
        pixel_values = torch.cat([inputs[index]["pixel_values"] for index in indices])
        extra = [inputs[index].get("extra_inputs") for index in indices]
        restored = restore(model, pixel_values, extra_inputs=None if extra[0] is None else torch.cat(extra),
                           **restore_options)
        images = processor.post_process_image_restoration(
            restored, [originals[index] for index in indices], [masks[index] for index in indices])
        for index, image in zip(indices, images):
            output_rows[index][column] = {"bytes": _encode(image), "path": _output_name(rows[index][column], image)}
    return output_rows


def _output_name(value: dict, image) -> str | None:
    """The source file's name, with the suffix of the format the restoration is stored in."""
    if not value.get("path"):
        return None
    return Path(value["path"]).with_suffix(".png" if image.mode in _PNG_MODES else ".tiff").name


def _fail(report: DatasetRestorationReport, label: str, message: str) -> None:
    report.failed[label] = message
    logger.warning("kept unrestored: %s: %s", label, message)


def _encode(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG" if image.mode in _PNG_MODES else "TIFF")
    return buffer.getvalue()


def _write_parquet(rows: list[dict], features, path: Path) -> None:
    """Write the rows to ``path`` atomically (a temporary file renamed)."""
    import datasets

    features = features.copy()
    for name, feature in features.items():
        if isinstance(feature, datasets.Image):  # the columns read undecoded are images again in the output
            features[name] = datasets.Image()
    partial = path.with_name(path.name + ".partial")
    datasets.Dataset.from_list(rows, features=features).to_parquet(partial)
    os.replace(partial, path)


def _rows_in(path: Path) -> int:
    import pyarrow.parquet

    return pyarrow.parquet.read_metadata(path).num_rows


def _fingerprint(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().flatten().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


# --- the state file, the card, the push -----------------------------------------------------------------------------


def _read_state(output_dir: Path) -> dict:
    path = output_dir / STATE_FILE
    try:
        state = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not a readable state file ({error}); restore into an empty folder") from error
    if state.get("version") != _STATE_VERSION or not isinstance(state.get("splits"), dict):
        raise ValueError(f"{path}: not a restoration state file of this hfdae version; restore into an empty folder")
    return state


def _check_state(output_dir: Path, split: str, settings: dict) -> dict:
    """The state recorded in ``output_dir`` (empty for a new folder); raise where this run cannot continue it."""
    if output_dir.exists() and not output_dir.is_dir():
        raise ValueError(f"output_dir {output_dir} is a file; give a folder")
    if not (output_dir / STATE_FILE).is_file():
        data = output_dir / DATA_FOLDER
        if data.is_dir() and any(data.glob("*.parquet")):
            raise ValueError(f"{output_dir} holds data files but no {STATE_FILE}: it was not written by"
                             " restore_dataset, or its state was deleted; restore into an empty folder")
        return {"version": _STATE_VERSION, "splits": {}}
    recorded = _read_state(output_dir)
    previous = recorded["splits"].get(split)
    if previous is not None:
        for key, value in settings.items():
            if previous["settings"].get(key) != value:
                raise ValueError(
                    f"{output_dir} holds split {split!r} restored with {key}={previous['settings'].get(key)!r}, not"
                    f" {value!r}; rerun with the same settings to resume, or restore into another folder"
                )
    return recorded


def _write_state(output_dir: Path, recorded: dict, split: str, settings: dict, **extra: Any) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    entry = recorded["splits"].setdefault(split, {"settings": settings, "complete": False})
    entry.update(extra)
    partial = output_dir / (STATE_FILE + ".partial")
    partial.write_text(json.dumps(recorded, indent=2, sort_keys=True) + "\n")
    os.replace(partial, output_dir / STATE_FILE)


def _finish(output_dir: Path, split: str, settings: dict) -> int:
    """Record the split as complete (with its row count) and write the card; returns the row count."""
    files = sorted((output_dir / DATA_FOLDER).glob(f"{split}-*.parquet"))
    rows = sum(_rows_in(path) for path in files)
    _write_state(output_dir, _read_state(output_dir), split, settings, complete=True, rows=rows, files=len(files))
    _write_card(output_dir)
    return rows


def _write_card(output_dir: Path) -> None:
    import yaml

    state = _read_state(output_dir)
    configs = [{"config_name": "default", "data_files": [
        {"split": split, "path": f"{DATA_FOLDER}/{split}-*.parquet"} for split in sorted(state["splits"])]}]
    metadata = {"configs": configs, "tags": ["hfdae", "image-restoration"]}
    lines = ["---", yaml.safe_dump(metadata, sort_keys=False).rstrip(), "---", "",
             "# Restored images", "",
             "Every image of the splits below was restored by an `hfdae` model with"
             " `hfdae.restore_dataset`; the other columns are the source's, unchanged.", "",
             "| split | source | column | model | rows |", "|---|---|---|---|---|"]
    for split, entry in sorted(state["splits"].items()):
        settings = entry["settings"]
        lines.append(f"| {split} | {settings['source']} | {settings['column']} | {settings['model']}"
                     f" | {entry.get('rows', 'in progress')} |")
    (output_dir / CARD_FILE).write_text("\n".join(lines) + "\n")


def _push(output_dir: Path, repo_id: str, private: bool | None, token: str | bool | None) -> str:
    """Upload the data files and the card in one commit; returns the commit's URL."""
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi(token=token)
    files = sorted((output_dir / DATA_FOLDER).glob("*.parquet"))
    operations = [CommitOperationAdd(path_in_repo=f"{DATA_FOLDER}/{path.name}", path_or_fileobj=str(path))
                  for path in files]
    operations.append(CommitOperationAdd(path_in_repo=CARD_FILE, path_or_fileobj=str(output_dir / CARD_FILE)))
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    commit = api.create_commit(repo_id, operations, repo_type="dataset",
                               commit_message=f"Restored with hfdae ({len(files)} data files)")
    return commit.commit_url
