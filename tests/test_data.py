"""Tests for hfdae.data: records, splits, crops, sharding, resumption and loaders (no network, no real data)."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
from PIL import Image

import hfdae.data
from hfdae.data import (
    UnreadableImageWarning,
    clear_skipped_images,
    collate_crops,
    crop_dataset,
    image_records,
    load_images,
    make_dataloader,
    skipped_images,
    split_files,
    split_of,
)
from hfdae.processing import read_image
from hfdae.samples import write_sample_folder

UNREADABLE = {"corrupt.png", "truncated.png"}
READABLE = {"astronaut.png", "coffee.png", "gray.png", "rgba.png", "deep.png", "small.png", "tiny.png"}
HALVES = {"a": 0.5, "b": 0.5}


@pytest.fixture(autouse=True)
def isolated_huggingface(tmp_path, monkeypatch):
    """Keep datasets' caches in a temporary folder, never touch the network, start each test unwarned."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf" / "datasets"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # datasets reads these once at import: patch the module too.
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf" / "datasets")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    clear_skipped_images()
    yield
    clear_skipped_images()


def _save(array: np.ndarray, path: Path) -> Path:
    Image.fromarray(array).save(path)
    return path


@pytest.fixture(scope="session")
def mixed_folder(tmp_path_factory) -> Path:
    """Photos plus every awkward case: corrupt, truncated, gray, RGBA, 16-bit, smaller than a crop."""
    folder = tmp_path_factory.mktemp("mixed")
    write_sample_folder(folder, ("astronaut", "coffee"))
    rng = np.random.default_rng(0)
    (folder / "corrupt.png").write_bytes(rng.integers(0, 256, 3000, dtype=np.uint8).tobytes())
    whole = (folder / "astronaut.png").read_bytes()
    (folder / "truncated.png").write_bytes(whole[: len(whole) // 2])
    _save(rng.integers(0, 256, (50, 60), dtype=np.uint8), folder / "gray.png")
    _save(rng.integers(0, 256, (40, 45, 4), dtype=np.uint8), folder / "rgba.png")
    _save(rng.integers(0, 65536, (48, 40), dtype=np.uint16), folder / "deep.png")  # PIL mode I;16
    _save(rng.integers(0, 256, (20, 12, 3), dtype=np.uint8), folder / "small.png")
    _save(rng.integers(0, 256, (1, 2, 3), dtype=np.uint8), folder / "tiny.png")
    assert Image.open(folder / "deep.png").mode == "I;16"
    return folder


@pytest.fixture(scope="session")
def noise_folder(tmp_path_factory) -> Path:
    """Nine small random RGB images (fast to decode), two in a sub-folder."""
    folder = tmp_path_factory.mktemp("noise")
    rng = np.random.default_rng(1)
    (folder / "sub").mkdir()
    for index in range(9):
        parent = folder / "sub" if index < 2 else folder
        _save(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8), parent / f"noise_{index}.png")
    return folder


def _all_names(folder: Path) -> set[str]:
    return {path.relative_to(folder).as_posix() for path in folder.rglob("*.png")}


def _crops_by_name(dataset) -> dict[str, np.ndarray]:
    return {example["name"]: example["crop"] for example in dataset}


def _names_and_crops(examples: list[dict]) -> list[tuple[str, bytes]]:
    """A collate_fn for tests: keep names (collate_crops drops them)."""
    return [(example["name"], example["crop"].tobytes()) for example in examples]


# --------------------------------------------------------------------------------------------------
# Crops from awkward files
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 3])
def test_awkward_files_stream_and_unreadable_ones_are_skipped(mixed_folder, channels):
    with pytest.warns(UnreadableImageWarning) as caught:
        dataset = crop_dataset(mixed_folder, crop_size=32, channels=channels, split=None, shuffle_buffer=4)
        examples = list(dataset)
    messages = [str(warning.message) for warning in caught if issubclass(warning.category, UnreadableImageWarning)]
    for name in UNREADABLE:
        assert sum(name in message for message in messages) == 1, messages
    assert set(skipped_images()) == UNREADABLE
    assert {example["name"] for example in examples} == READABLE
    assert len(examples) == len(READABLE)
    for example in examples:
        crop = example["crop"]
        assert isinstance(crop, np.ndarray)
        assert crop.shape == (32, 32, channels)
        assert crop.dtype == (np.uint16 if example["name"] == "deep.png" else np.uint8)

    # The tiny image is reflect-padded: every crop pixel is one of its own pixels.
    tiny = np.asarray(Image.open(mixed_folder / "tiny.png"))
    tiny_crop = next(example["crop"] for example in examples if example["name"] == "tiny.png")
    if channels == 3:
        assert {tuple(pixel) for pixel in tiny_crop.reshape(-1, 3)} <= {tuple(pixel) for pixel in tiny.reshape(-1, 3)}

    # Once per file per process: a second epoch skips silently.
    with warnings.catch_warnings(record=True) as again:
        warnings.simplefilter("always")
        assert len(list(dataset)) == len(READABLE)
    assert not [warning for warning in again if issubclass(warning.category, UnreadableImageWarning)]


def test_folder_where_nothing_decodes_raises(tmp_path):
    for name in ("bad_a.png", "bad_b.jpg"):
        (tmp_path / name).write_bytes(b"not an image at all" * 10)
    with pytest.warns(UnreadableImageWarning), pytest.raises(RuntimeError, match=r"no image could be read \(2 of 2"):
        list(crop_dataset(tmp_path, split=None))


def test_pass_where_nothing_decodes_raises_while_iterating(tmp_path):
    _save(np.zeros((40, 40, 3), np.uint8), tmp_path / "fine.png")
    dataset = crop_dataset(tmp_path, crop_size=16, split=None)
    (tmp_path / "fine.png").write_bytes(b"broken after the dataset was built")
    with pytest.warns(UnreadableImageWarning, match="fine.png"), pytest.raises(RuntimeError, match=str(tmp_path)):
        list(dataset)


# --------------------------------------------------------------------------------------------------
# Splits
# --------------------------------------------------------------------------------------------------


def test_split_is_deterministic_stable_and_respects_fractions():
    names = [f"image_{index:04d}.png" for index in range(1000)]
    splits = [split_of(name) for name in names]
    assert splits == [split_of(name) for name in names]
    # Pinned: a sha1 split does not depend on the machine, the Python run or PYTHONHASHSEED.
    assert {index: split_of(f"image_{index:04d}.png") for index in PINNED_SPLITS} == PINNED_SPLITS
    counts = {split: splits.count(split) for split in ("train", "validation", "test")}
    assert 860 <= counts["train"] <= 940 and 25 <= counts["validation"] <= 75 and 25 <= counts["test"] <= 75

    by_split = split_files([Path("one/folder") / name for name in names])
    moved = split_files([Path("another") / name for name in names])
    assert {split: [p.name for p in paths] for split, paths in by_split.items()} == {
        split: [p.name for p in paths] for split, paths in moved.items()
    }
    listed = [path.name for paths in by_split.values() for path in paths]
    assert len(listed) == len(set(listed)) == 1000  # disjoint and covering
    assert {split: len(paths) for split, paths in by_split.items()} == counts

    assert [split_of(name, salt="other") for name in names] != splits
    with pytest.raises(ValueError, match="sum to 1"):
        split_of("x.png", {"train": 0.9, "test": 0.2})


PINNED_SPLITS = {0: "train", 13: "test", 28: "validation", 36: "validation", 67: "test"}


def test_image_records_hash_split_of_a_folder(noise_folder):
    expected = split_files(sorted(noise_folder.rglob("*.png")), HALVES)
    seen = {}
    for split in HALVES:
        records = list(image_records(noise_folder, split=split, fractions=HALVES))
        seen[split] = {record["name"] for record in records}
        assert {Path(name).name for name in seen[split]} == {path.name for path in expected[split]}
    assert seen["a"].isdisjoint(seen["b"]) and seen["a"] | seen["b"] == _all_names(noise_folder)
    with pytest.raises(ValueError, match="unknown split"):
        image_records(noise_folder, split="validation", fractions=HALVES)


def test_unknown_sources_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing_folder"):
        image_records(tmp_path / "missing_folder")
    with pytest.raises(FileNotFoundError, match="not/a/hub/id"):
        image_records("not/a/hub/id")
    with pytest.raises(FileNotFoundError, match="no image files"):
        image_records(tmp_path)


# --------------------------------------------------------------------------------------------------
# Sharding over processes
# --------------------------------------------------------------------------------------------------


def test_two_processes_read_every_file_exactly_once(noise_folder, monkeypatch):
    opened = []

    def counting_read_image(source):
        opened.append(Path(source).name)
        return read_image(source)

    seen = []
    for rank in (0, 1):
        dataset = crop_dataset(noise_folder, crop_size=16, split=None, num_processes=2, process_index=rank)
        with monkeypatch.context() as patch:  # count iteration only, not the up-front readability probe
            patch.setattr(hfdae.data, "read_image", counting_read_image)
            names = [example["name"] for example in dataset]
        assert len(names) == len(set(names)) > 0
        seen.append(set(names))
    assert seen[0].isdisjoint(seen[1])
    assert seen[0] | seen[1] == _all_names(noise_folder)
    # Each file was decoded by one process only (not decoded everywhere and then dropped).
    assert sorted(opened) == sorted(Path(name).name for name in _all_names(noise_folder))


# --------------------------------------------------------------------------------------------------
# Parquet
# --------------------------------------------------------------------------------------------------


def _write_parquet(path: Path) -> Path:
    """Five random images and one undecodable row, as datasets writes them (Image feature), in three row groups."""
    rng = np.random.default_rng(2)
    images = [Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)) for _ in range(5)]
    rows = images + [{"bytes": b"junk, not a PNG", "path": None}]
    table = datasets.Dataset.from_dict({"image": rows}, features=datasets.Features({"image": datasets.Image()}))
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(str(path), batch_size=2)
    return path


def test_parquet_source_yields_crops_and_skips_bad_rows(tmp_path):
    folder = tmp_path / "parquet"
    _write_parquet(folder / "images.parquet")

    with pytest.warns(UnreadableImageWarning, match=r"images\.parquet#5"):
        dataset = crop_dataset(folder / "images.parquet", crop_size=24, split=None, shuffle_buffer=3)
        examples = list(dataset)
    assert dataset.num_shards == 3
    assert sorted(example["name"] for example in examples) == [f"images.parquet#{row}" for row in range(5)]
    assert all(example["crop"].shape == (24, 24, 3) and example["crop"].dtype == np.uint8 for example in examples)

    # A folder of parquet files, hash-split by row name.
    halves = {
        split: {record["name"] for record in image_records(folder, split=split, fractions=HALVES)} for split in HALVES
    }
    assert halves["a"] | halves["b"] == {f"images.parquet#{row}" for row in range(6)}
    assert all(split_of(name, HALVES) == split for split, names in halves.items() for name in names)


def test_hub_id_streams_through_load_dataset(tmp_path, monkeypatch):
    """No network: load_dataset is replaced by the same call on a local parquet file."""
    _write_parquet(tmp_path / "hub.parquet")
    calls = []
    real_load_dataset = datasets.load_dataset

    def local_load_dataset(path, split=None, streaming=False):
        calls.append((path, split, streaming))
        return real_load_dataset("parquet", data_files={"train": str(tmp_path / "hub.parquet")}, split=split,
                                 streaming=streaming)

    monkeypatch.setattr(hfdae.data.datasets, "load_dataset", local_load_dataset)
    # shuffle_buffer=0: a shuffled parquet stream from load_dataset sleeps 5 s at the end of each pass.
    with pytest.warns(UnreadableImageWarning, match="row5"):
        examples = list(crop_dataset("someone/photos", crop_size=24, split=None, shuffle_buffer=0))
    assert calls == [("someone/photos", "train", True)]
    assert [example["name"] for example in examples] == [f"row{row}" for row in range(5)]
    assert all(example["crop"].shape == (24, 24, 3) for example in examples)


# --------------------------------------------------------------------------------------------------
# Randomness, epochs, resumption
# --------------------------------------------------------------------------------------------------


def test_same_seed_same_crops_and_epochs_differ(noise_folder):
    def run(seed: int = 0, epoch: int = 0):
        dataset = crop_dataset(noise_folder, crop_size=16, split=None, shuffle_buffer=4, seed=seed)
        dataset.set_epoch(epoch)
        return [(example["name"], example["crop"].tobytes()) for example in dataset]

    first = run()
    np.random.seed(123)  # global state must not matter
    torch.manual_seed(123)
    assert run() == first
    next_epoch = run(epoch=1)
    assert sorted(name for name, _ in next_epoch) == sorted(name for name, _ in first)
    assert [name for name, _ in next_epoch] != [name for name, _ in first]
    first_crops, next_crops = dict(first), dict(next_epoch)
    moved = sum(first_crops[name] != next_crops[name] for name in first_crops)
    assert moved >= len(first_crops) - 1  # one crop may land on the same spot by chance
    assert run(seed=1) != first


@pytest.mark.parametrize("shuffle_buffer", [0, 1])
def test_resuming_from_state_dict_continues_with_the_same_crops(noise_folder, shuffle_buffer):
    def build():
        dataset = crop_dataset(noise_folder, crop_size=16, split=None, crops_per_image=2,
                               shuffle_buffer=shuffle_buffer, seed=3)
        dataset.set_epoch(1)
        return dataset

    dataset = build()
    iterator = iter(dataset)
    head = [next(iterator) for _ in range(5)]  # stops between the two crops of one image
    state = dataset.state_dict()
    rest = [(example["name"], example["crop"].tobytes()) for example in iterator]
    assert len(head) + len(rest) == 2 * len(_all_names(noise_folder))

    resumed = build()
    resumed.load_state_dict(state)
    assert [(example["name"], example["crop"].tobytes()) for example in resumed] == rest


@pytest.fixture(scope="session")
def many_files_folder(tmp_path_factory) -> Path:
    """Thirty-six tiny random images: enough files for several blocks with a shipped-size buffer."""
    folder = tmp_path_factory.mktemp("many")
    rng = np.random.default_rng(2)
    for index in range(36):
        _save(rng.integers(0, 256, (20, 22, 3), dtype=np.uint8), folder / f"img_{index:02d}.png")
    return folder


@pytest.mark.parametrize(("epoch", "batches_before"), [(0, 5), (1, 3)])
def test_a_loader_with_a_shipped_size_buffer_and_two_workers_resumes_exactly(many_files_folder, epoch, batches_before):
    """Mid-epoch (and mid-block: crops_per_image 2, batches of 3), 2 workers, shuffle_buffer 64."""
    def build():
        dataset = crop_dataset(many_files_folder, crop_size=8, split=None, crops_per_image=2, shuffle_buffer=64,
                               seed=5)
        return dataset, make_dataloader(dataset, batch_size=3, num_workers=2, collate_fn=_names_and_crops)

    dataset, loader = build()
    assert loader.num_workers == 2 and dataset.num_shards >= 2
    dataset.set_epoch(epoch)
    iterator = iter(loader)
    head = [next(iterator) for _ in range(batches_before)]
    state = loader.state_dict()
    rest = list(iterator)
    assert sorted(name for batch in head + rest for name, _ in batch) == sorted(
        name for name in _all_names(many_files_folder) for _ in range(2))  # every crop once

    resumed_dataset, resumed_loader = build()
    resumed_dataset.set_epoch(epoch)
    resumed_loader.load_state_dict(state)
    assert list(resumed_loader) == rest


def test_the_crop_order_is_a_pure_function_of_seed_epoch_and_position(many_files_folder):
    def stream(seed, epoch, shuffle_buffer=64):
        dataset = crop_dataset(many_files_folder, crop_size=8, split=None, crops_per_image=2,
                               shuffle_buffer=shuffle_buffer, seed=seed)
        dataset.set_epoch(epoch)
        return [(example["name"], example["crop"].tobytes()) for example in dataset]

    first = stream(5, 0)
    assert stream(5, 0) == first
    names = [name for name, _ in first]
    assert names != sorted(names)  # shuffled ...
    neighbours = sum(a == b for a, b in zip(names, names[1:]))
    assert neighbours < len(names) // 4  # ... and the two crops of an image are mixed apart, not side by side
    assert [name for name, _ in stream(5, 1)] != names and stream(6, 0) != first
    fixed = [name for name, _ in stream(5, 0, shuffle_buffer=0)]
    assert fixed == sorted(fixed)


# --------------------------------------------------------------------------------------------------
# Batches and loaders
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stateful", [True, False], ids=["torchdata", "plain"])
def test_dataloader_with_two_workers_reads_every_file_once_per_epoch(noise_folder, monkeypatch, stateful):
    if stateful:
        pytest.importorskip("torchdata.stateful_dataloader")
    else:  # make the torchdata import fail: the plain DataLoader must work as well
        monkeypatch.setitem(sys.modules, "torchdata.stateful_dataloader", None)
    dataset = crop_dataset(noise_folder, crop_size=16, split=None, shuffle_buffer=4)
    loader = make_dataloader(dataset, batch_size=2, num_workers=2, drop_last=False, collate_fn=_names_and_crops)
    assert loader.num_workers == 2 and loader.persistent_workers
    assert (type(loader).__name__ == "StatefulDataLoader") == stateful
    epochs = []
    for epoch in range(2):
        dataset.set_epoch(epoch)
        seen = [item for batch in loader for item in batch]
        assert sorted(name for name, _ in seen) == sorted(_all_names(noise_folder))
        epochs.append(dict(seen))
    # The persistent workers saw the new epoch: the crops changed.
    assert sum(epochs[0][name] != epochs[1][name] for name in epochs[0]) >= len(epochs[0]) // 2

    batch = next(iter(make_dataloader(dataset, batch_size=4)))
    assert batch.dtype == torch.float32 and batch.shape == (4, 3, 16, 16)
    assert 0.0 <= batch.min() and batch.max() <= 1.0

    one_file = crop_dataset(noise_folder / "noise_5.png", crop_size=16, split=None)
    assert make_dataloader(one_file, batch_size=1, num_workers=2).num_workers == 1


def test_collate_crops_scales_by_bit_depth():
    eight = np.full((4, 5, 3), 255, np.uint8)
    eight[0, 0] = (0, 51, 102)
    sixteen = np.full((4, 5, 3), 65535, np.uint16)
    batch = collate_crops([{"crop": eight, "name": "a"}, {"crop": eight}])
    assert batch.shape == (2, 3, 4, 5) and batch.dtype == torch.float32 and batch.is_contiguous()
    assert torch.allclose(batch[0, :, 0, 0], torch.tensor([0.0, 0.2, 0.4]))
    mixed = collate_crops([{"crop": eight}, {"crop": sixteen}])
    assert torch.allclose(mixed[1], torch.ones(3, 4, 5)) and torch.allclose(mixed[0], batch[0])


# --------------------------------------------------------------------------------------------------
# Whole images
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 3])
def test_load_images_returns_sorted_tensors_and_unreadable_names(mixed_folder, channels):
    with pytest.warns(UnreadableImageWarning):
        images, unreadable = load_images(mixed_folder, channels=channels)
    assert [name for name, _ in images] == sorted(READABLE)
    assert unreadable == sorted(UNREADABLE)
    for name, tensor in images:
        assert tensor.dtype == torch.float32 and tensor.ndim == 3 and tensor.shape[0] == channels
        assert 0.0 <= tensor.min() and tensor.max() <= 1.0
    sizes = dict((name, tuple(tensor.shape[1:])) for name, tensor in images)
    assert sizes["tiny.png"] == (1, 2) and sizes["astronaut.png"] == (512, 512)

    limited, _ = load_images(mixed_folder, channels=channels, limit=2)
    assert [name for name, _ in limited] == ["astronaut.png", "coffee.png"]


def test_load_images_raises_when_nothing_is_readable(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"\x89PNG but not really")
    with pytest.warns(UnreadableImageWarning), pytest.raises(RuntimeError, match="1 of 1"):
        load_images(tmp_path)


def test_overexposure_clips_highlights_in_the_chosen_fraction_of_crops(noise_folder):
    def crops(overexposure: float) -> dict[str, np.ndarray]:
        dataset = crop_dataset(noise_folder, crop_size=16, split=None, shuffle_buffer=0, overexposure=overexposure)
        return {example["name"]: example["crop"] for example in dataset}

    plain, always = crops(0.0), crops(1.0)
    assert plain.keys() == always.keys()
    for name, crop in plain.items():
        brightened = always[name]
        assert brightened.dtype == np.uint8
        # a gain >= 1 then clipping: never darker, saturated at least where the original was
        assert (brightened.astype(int) >= crop).all()
        assert (brightened == 255).mean() > (crop == 255).mean()
    with pytest.raises(ValueError, match="overexposure must be a fraction in \\[0, 1\\], got 1.5"):
        crop_dataset(noise_folder, crop_size=16, split=None, overexposure=1.5)
