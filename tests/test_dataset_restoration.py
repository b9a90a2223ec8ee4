"""hfdae.dataset_restoration: a whole dataset restored, streaming, resumable after a kill, shared by processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import datasets
import numpy as np
import pytest
import pyarrow.parquet
import torch
from PIL import Image

import hfdae
from hfdae.dataset_restoration import DATA_FOLDER, STATE_FILE, restore_dataset
from hfdae.image_processing_hfdae import DenoisingAutoencoderImageProcessor

from conftest import make_model

REPO_ROOT = Path(__file__).resolve().parent.parent
FP32 = {"precision": "fp32"}  # restorations compared as numbers: never bf16, whatever the CPU
# (width, height, mode) of the source images: sizes repeat so batches form, modes and bit depths vary
SOURCE_IMAGES = [(24, 20, "RGB"), (24, 20, "RGB"), (20, 16, "L"), (24, 20, "RGBA"), (16, 16, "I;16"), (24, 20, "RGB"),
                 (18, 14, "RGB")]


def _source_image(index: int) -> Image.Image:
    width, height, mode = SOURCE_IMAGES[index]
    rng = np.random.default_rng(index)
    if mode == "I;16":
        return Image.fromarray(rng.integers(0, 65536, (height, width)).astype(np.uint16))
    return Image.fromarray(rng.integers(0, 256, (height, width, 4), dtype=np.uint8), "RGBA").convert(mode)


@pytest.fixture
def image_folder(tmp_path) -> Path:
    """An imagefolder (one data shard) with a caption column from metadata.jsonl."""
    folder = tmp_path / "photos"
    folder.mkdir()
    lines = []
    for index in range(len(SOURCE_IMAGES)):
        _source_image(index).save(folder / f"photo{index}.png")
        lines.append(json.dumps({"file_name": f"photo{index}.png", "caption": f"caption {index}"}))
    (folder / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture
def parquet_dataset(tmp_path) -> Path:
    """The same rows as two parquet files (two data shards), the way the Hub stores datasets."""
    folder = tmp_path / "parquet-source"
    (folder / "data").mkdir(parents=True)
    features = datasets.Features({"image": datasets.Image(), "caption": datasets.Value("string")})
    for part, indices in enumerate((range(0, 4), range(4, len(SOURCE_IMAGES)))):
        rows = {"image": [_source_image(index) for index in indices], "caption": [f"caption {index}" for index in indices]}
        datasets.Dataset.from_dict(rows, features=features).to_parquet(folder / "data" / f"train-0000{part}-of-00002.parquet")
    return folder


def _model(**overrides) -> hfdae.DenoisingAutoencoder:
    model = make_model("small", **overrides).eval()
    model.config.images_seen = 100
    return model


def _contents(output_dir: Path) -> dict[str, list[tuple]]:
    """Every data file's rows, decoded: {file name: [(caption, mode, pixels), ...]}."""
    contents = {}
    for path in sorted((output_dir / DATA_FOLDER).glob("*.parquet")):
        rows = datasets.Dataset.from_parquet(str(path), cache_dir=str(output_dir.parent / "cache"))
        contents[path.name] = [(row["caption"], row["image"].mode, np.asarray(row["image"])) for row in rows]
    return contents


def _assert_same_contents(first: dict, second: dict) -> None:
    assert list(first) == list(second)
    for name in first:
        assert [row[:2] for row in first[name]] == [row[:2] for row in second[name]], name
        for row, other in zip(first[name], second[name]):
            np.testing.assert_array_equal(row[2], other[2], err_msg=f"{name}, {row[0]}")


# --- one process ---------------------------------------------------------------------------------------------


def test_every_row_is_restored_with_its_columns_mode_and_bit_depth(image_folder, tmp_path):
    model = _model()
    report = restore_dataset(model, image_folder, tmp_path / "out", rows_per_file=3, batch_size=2, progress=False,
                             **FP32)
    assert report.rows_restored == report.total_rows == len(SOURCE_IMAGES) and not report.failed
    assert [path.name for path in report.files_written] == [f"train-00000-00000{block}.parquet" for block in range(3)]
    restored = datasets.load_dataset(str(tmp_path / "out"), split="train", cache_dir=str(tmp_path / "cache"))
    assert restored.column_names == ["image", "caption"] and len(restored) == len(SOURCE_IMAGES)
    processor = DenoisingAutoencoderImageProcessor.from_model_config(model.config, do_pad=False)
    for index, row in enumerate(restored):
        source = _source_image(index)
        expected = processor.post_process_image_restoration(
            hfdae.restore(model, processor(source)["pixel_values"], **FP32), [source])[0]
        assert row["caption"] == f"caption {index}" and row["image"].mode == source.mode
        np.testing.assert_array_equal(np.asarray(row["image"]), np.asarray(expected))
    card = (tmp_path / "out" / "README.md").read_text()
    assert "path: data/train-*.parquet" in card and str(image_folder) in card
    state = json.loads((tmp_path / "out" / STATE_FILE).read_text())
    assert state["splits"]["train"]["complete"] and state["splits"]["train"]["rows"] == len(SOURCE_IMAGES)


def test_a_rerun_skips_what_is_written_and_other_settings_are_refused(image_folder, tmp_path):
    model, output = _model(), tmp_path / "out"
    first = restore_dataset(model, image_folder, output, rows_per_file=3, progress=False, **FP32)
    times = {path: path.stat().st_mtime_ns for path in first.files_written}
    again = restore_dataset(model, image_folder, output, rows_per_file=3, progress=False, **FP32)
    assert again.files_written == [] and again.files_skipped == first.files_written and again.rows_restored == 0
    assert {path: path.stat().st_mtime_ns for path in first.files_written} == times
    with pytest.raises(ValueError, match="rows_per_file=3, not 4"):
        restore_dataset(model, image_folder, output, rows_per_file=4, progress=False, **FP32)
    with pytest.raises(ValueError, match="model_fingerprint="):
        restore_dataset(make_model("small", colour_space="gray"), image_folder, output, rows_per_file=3,
                        progress=False, **FP32)
    (output / STATE_FILE).unlink()
    with pytest.raises(ValueError, match="holds data files but no restoration_state.json"):
        restore_dataset(model, image_folder, output, rows_per_file=3, progress=False, **FP32)


def test_bad_columns_and_options_are_refused_by_name(image_folder, tmp_path):
    model = _model()
    with pytest.raises(ValueError, match="column='picture' is not a column of the dataset; it has"):
        restore_dataset(model, image_folder, tmp_path / "a", column="picture", progress=False)
    with pytest.raises(ValueError, match="column 'caption' holds .*string.*, not images"):
        restore_dataset(model, image_folder, tmp_path / "b", column="caption", progress=False)
    with pytest.raises(ValueError, match="no noise-level input"):
        restore_dataset(model, image_folder, tmp_path / "c", noise_level="auto", progress=False)
    with pytest.raises(ValueError, match="give output_dir"):
        restore_dataset(model, image_folder, progress=False)


def test_an_unreadable_image_is_kept_and_reported(tmp_path):
    rows = {"image": [{"bytes": b"not an image", "path": "broken.png"}, _source_image(0)], "caption": ["bad", "good"]}
    features = datasets.Features({"image": datasets.Image(), "caption": datasets.Value("string")})
    source = datasets.Dataset.from_dict(rows, features=features)
    report = restore_dataset(_model(), source, tmp_path / "out", progress=False, **FP32)
    assert list(report.failed) == ["shard 0 row 0 (broken.png)"] and "not a readable image" in report.failed[
        "shard 0 row 0 (broken.png)"]
    assert report.rows_restored == 1 and report.total_rows == 2
    table = pyarrow.parquet.read_table(next((tmp_path / "out" / DATA_FOLDER).glob("*.parquet"))).to_pylist()
    assert table[0]["image"]["bytes"] == b"not an image" and table[1]["image"]["path"] is None


def test_a_mask_column_restores_the_holes_only(tmp_path):
    image = _source_image(0)
    holes = np.zeros((image.height, image.width), dtype=bool)
    holes[5:12, 4:15] = True
    features = datasets.Features({"image": datasets.Image(), "holes": datasets.Image()})
    source = datasets.Dataset.from_dict({"image": [image], "holes": [Image.fromarray(holes)]}, features=features)
    restore_dataset(_model(extra_input_channels=1), source, tmp_path / "out", mask_column="holes", progress=False,
                    **FP32)
    restored = np.asarray(datasets.load_dataset(str(tmp_path / "out"), split="train",
                                                cache_dir=str(tmp_path / "cache"))[0]["image"])
    np.testing.assert_array_equal(restored[~holes], np.asarray(image)[~holes])
    assert not np.array_equal(restored[holes], np.asarray(image)[holes])


def test_push_to_hub_uploads_the_data_files_and_the_card_in_one_commit(image_folder, tmp_path, monkeypatch):
    """No server here accepts uploads: the exact operations are checked instead."""
    from huggingface_hub import HfApi

    calls = []
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **options: calls.append(("create", repo_id, options)))

    def create_commit(self, repo_id, operations, **options):
        calls.append(("commit", repo_id, options, {op.path_in_repo: Path(op.path_or_fileobj).read_bytes()
                                                   for op in operations}))
        return type("CommitInfo", (), {"commit_url": f"https://hub/{repo_id}/commit/1"})()

    monkeypatch.setattr(HfApi, "create_commit", create_commit)
    monkeypatch.chdir(tmp_path)
    report = restore_dataset(_model(), image_folder, push_to_hub="me/restored-photos", rows_per_file=4,
                             progress=False, **FP32)
    output = tmp_path / "restored-photos"  # the default output folder: the repo's name
    assert report.output_dir == Path("restored-photos") and report.commit_url == "https://hub/me/restored-photos/commit/1"
    (kind, repo, options), (_, commit_repo, commit_options, files) = calls[0], calls[1][:4]
    assert (kind, repo, options["repo_type"], options["exist_ok"]) == ("create", "me/restored-photos", "dataset", True)
    assert commit_repo == "me/restored-photos" and commit_options["repo_type"] == "dataset"
    local = {f"{DATA_FOLDER}/{path.name}": path.read_bytes() for path in (output / DATA_FOLDER).glob("*.parquet")}
    assert files == {**local, "README.md": (output / "README.md").read_bytes()} and len(local) == 2


# --- several processes -----------------------------------------------------------------------------------------

WORKER = r"""
import json, os, signal, sys
import torch
from accelerate import PartialState, debug_launcher
import hfdae
from hfdae import dataset_restoration

source, output, processes, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

def run():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = hfdae.DenoisingAutoencoder(hfdae.DenoisingAutoencoderConfig.from_preset("small"))
    model.config.images_seen = 100
    if kill_at:  # die as a kill -9 would, in the middle of writing the kill_at-th file
        write, written = dataset_restoration._write_parquet, []
        def write_then_die(rows, features, path):
            if len(written) + 1 == kill_at:
                path.with_name(path.name + ".partial").write_bytes(b"half a parquet file")
                os.kill(os.getpid(), signal.SIGKILL)
            write(rows, features, path)
            written.append(path)
        dataset_restoration._write_parquet = write_then_die
    report = hfdae.restore_dataset(model, source, output, rows_per_file=2, batch_size=2, precision="fp32",
                                   progress=False)
    assert report.rows_restored == sum(dataset_restoration._rows_in(path) for path in report.files_written)
    state = PartialState()
    with open(f"{output}.rank{state.process_index}.json", "w") as file:
        json.dump({"rank": state.process_index, "processes": state.num_processes,
                   "written": [path.name for path in report.files_written]}, file)

if processes == 1:
    run()
else:
    debug_launcher(run, num_processes=processes)
"""


def _run_worker(tmp_path: Path, source: Path, output: Path, processes: int, kill_at: int = 0):
    """The worker in a fresh interpreter: forking pytest after torch's thread pool started can deadlock."""
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER)
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
                   "HF_DATASETS_CACHE": str(tmp_path / "cache")}
    return subprocess.run([sys.executable, str(worker), str(source), str(output), str(processes), str(kill_at)],
                          env=environment, capture_output=True, text=True, timeout=300)


@pytest.fixture
def one_thread():
    """The worker processes run on one thread each; so do the references they are compared with."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _reference(source: Path, output: Path) -> dict:
    """The one-process run, in this process, as the worker makes it."""
    torch.manual_seed(0)
    model = hfdae.DenoisingAutoencoder(hfdae.DenoisingAutoencoderConfig.from_preset("small"))
    model.config.images_seen = 100
    restore_dataset(model, source, output, rows_per_file=2, batch_size=2, progress=False, **FP32)
    return _contents(output)


@pytest.mark.parametrize("source", ["image_folder", "parquet_dataset"])
def test_two_processes_write_what_one_process_writes(source, tmp_path, request, one_thread):
    """One data shard (every process reads all, each restores every other file) and two shards (each
    process reads its own): the union of the two processes' files is the one-process output."""
    folder = request.getfixturevalue(source)
    completed = _run_worker(tmp_path, folder, tmp_path / "out", processes=2)
    assert completed.returncode == 0, completed.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"out.rank{rank}.json").read_text()) for rank in (0, 1)]
    assert [(rank["rank"], rank["processes"]) for rank in ranks] == [(0, 2), (1, 2)]
    assert all(rank["written"] for rank in ranks) and not set(ranks[0]["written"]) & set(ranks[1]["written"])
    two, one = _contents(tmp_path / "out"), _reference(folder, tmp_path / "reference")
    _assert_same_contents(one, two)
    assert sum(len(rows) for rows in one.values()) == len(SOURCE_IMAGES)
    shards = {name.split("-")[1] for name in one}
    assert shards == ({"00000"} if source == "image_folder" else {"00000", "00001"})


def test_a_killed_run_resumes_after_its_last_whole_file(image_folder, tmp_path, one_thread):
    killed = _run_worker(tmp_path, image_folder, tmp_path / "out", processes=1, kill_at=3)
    assert killed.returncode == -9, killed.stderr[-3000:]
    data = tmp_path / "out" / DATA_FOLDER
    before = {path.name: path.stat().st_mtime_ns for path in data.glob("*.parquet")}
    assert sorted(before) == ["train-00000-000000.parquet", "train-00000-000001.parquet"]
    assert (data / "train-00000-000002.parquet.partial").read_bytes() == b"half a parquet file"

    resumed = _reference(image_folder, tmp_path / "out")
    assert all((data / name).stat().st_mtime_ns == time for name, time in before.items())  # not written again
    assert not list(data.glob("*.partial"))
    _assert_same_contents(resumed, _reference(image_folder, tmp_path / "uninterrupted"))


def test_the_command_line_restores_a_dataset(image_folder, tmp_path, capsys):
    from hfdae.cli import main

    _model().save_pretrained(tmp_path / "model")
    arguments = ["denoise", "--dataset", str(image_folder), "--output", str(tmp_path / "out"), "--model",
                 str(tmp_path / "model"), "--split", "train", "--column", "image"]
    assert main(arguments) == 0
    assert f"restored {len(SOURCE_IMAGES)} row(s)" in capsys.readouterr().out
    rows = datasets.load_dataset(str(tmp_path / "out"), split="train", cache_dir=str(tmp_path / "cache"))
    assert len(rows) == len(SOURCE_IMAGES)
    assert main(arguments) == 0 and "1 file(s) were already there" in capsys.readouterr().out
    assert main(["denoise", "--dataset", str(image_folder), "--model", str(tmp_path / "model")]) == 2
    assert "--dataset needs --output DIR" in capsys.readouterr().err
    assert main(["denoise", "--model", str(tmp_path / "model")]) == 2
    assert "or --dataset" in capsys.readouterr().err
