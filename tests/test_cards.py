"""hfdae.cards: every number of a model card comes from a file, and the card says only what a reader can use.

Rendered cards parse with ``ModelCard.load`` and their ``model-index`` equals the evaluation files. The run and
evaluation fixtures here are shared with tests/test_hub.py.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from huggingface_hub import ModelCard
from huggingface_hub.repocard_data import model_index_to_eval_results

import hfdae
from hfdae import cards
from hfdae.evaluation import CHAPTER_CONDITIONS, EvaluationReport, MethodRow
from hfdae.protocols import list_tasks, protocol_for_task

from conftest import make_model

REPO_ROOT = Path(__file__).resolve().parent.parent


# --- a small trained-looking run, its evaluations ---------------------------------------------------------


def _evaluation(protocol: str, model_label: str, data: str = "/data/test/TinySet", images=("a", "b")):
    """An EvaluationReport as `hfdae evaluate` makes it, with made-up but distinct values."""
    conditions = list(CHAPTER_CONDITIONS) if protocol == "seed" else ["sigma15", "sigma25", "sigma50"]
    report = EvaluationReport(protocol, data, list(images), conditions=conditions, machine="CPU test (1 thread)")
    methods = {model_label: 30.0, "input (no restoration)": 20.0, "BM3D": 25.0}
    report.rows = {model_label: MethodRow("model", model_label), "input (no restoration)": MethodRow("input", "input"),
                   "BM3D": MethodRow("baseline", "bm3d")}
    for number, (method, base) in enumerate(methods.items()):
        report.values[method] = {}
        for index, condition in enumerate(conditions):
            if method == "input (no restoration)" and condition == "identity":
                continue
            entry = {"psnr": {name: base + index + 0.123 * (position + 1) + 0.01 * number
                              for position, name in enumerate(images)},
                     "seconds": {name: 0.01 for name in images}}
            if protocol == "seed":
                entry["ssim"] = {name: 0.5 + 0.01 * index + 0.001 * position for position, name in enumerate(images)}
            report.values[method][condition] = entry
        if protocol == "seed" and "identity" in report.values[method]:
            report.values[method]["average"] = {
                metric: {name: sum(report.values[method][c][metric][name] for c in conditions) / 5 for name in images}
                for metric in ("psnr", "ssim")}
    return report


@pytest.fixture
def run_dir(tmp_path) -> Path:
    """A run folder as hfdae.training writes it: best/ and final/, log.jsonl, training_config.yaml, curve."""
    from PIL import Image

    run = tmp_path / "run-tiny"
    model = make_model("small")
    model.config.images_seen = 4_800
    model.config.lineage = [{"model": "parent/dae", "task": "restore", "images_seen": 3_000, "description": "base"}]
    model.config.training_summary = {
        "description": "tiny test run", "data": "/data/train/TinyTrain", "data_split": "train", "crop_size": 32,
        "degradations": "chapter", "optimizer": "adam", "schedule": "cosine", "schedule_rates": None,
        "learning_rate": 0.001, "batch_size": 4, "images_seen": 4_800, "mixed_precision": "no",
        "hardware": "CPU (test, 2 cores)", "processes": 1, "wall_seconds": 125.0, "best_validation_psnr": 27.5,
        "seed": 0,
    }
    model.save_pretrained(run / "best")
    model.save_pretrained(run / "final")
    records = [{"images_seen": 1600 * step, "steps": 400 * step, "loss": 5.0 / step, "stage": 0,
                "learning_rate": 1e-3} for step in (1, 2, 3)]
    records.append({"images_seen": 4800, "steps": 1200, "validation_psnr": 27.5,
                    "validation_psnr_per_condition": {"gaussian": 25.0, "average": 27.5}})
    (run / "log.jsonl").write_text("".join(json.dumps(record) + "\n" for record in records))
    (run / "training_config.yaml").write_text(yaml.safe_dump({
        "output_dir": str(run), "model": {"preset": "small"},
        "data": {"source": "/data/train/TinyTrain", "crop_size": 32, "degradations": "chapter"},
        "optimizer": {"name": "adam", "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.0},
        "schedule": {"name": "cosine", "learning_rate": 0.001, "warmup_images": 100, "final_learning_rate": 1e-5},
        "batch_size": 4, "max_images": 4800, "mixed_precision": "auto", "channels_last": True, "seed": 0}))
    Image.new("RGB", (8, 8), (200, 30, 30)).save(run / "learning_curve.png")
    return run


@pytest.fixture
def evaluations(tmp_path, run_dir) -> list[Path]:
    label = str(run_dir / "best")
    return [_evaluation("seed", label).save(tmp_path / "eval-seed"),
            _evaluation("awgn", label).save(tmp_path / "eval-awgn")]


def _assert_model_index_matches(card: ModelCard, evaluation_paths: list[Path], method: str | None = None) -> None:
    _, results = model_index_to_eval_results(card.data.to_dict()["model-index"])
    found = [(result.dataset_config, result.metric_type, result.metric_value) for result in results]
    assert len(found) == len({key[:2] for key in found})  # one entry per protocol-condition and metric
    expected = {}
    # where several files evaluate the same protocol and condition, the one over the most images counts
    for path in sorted(evaluation_paths, key=lambda path: len(EvaluationReport.load(path).images)):
        report = EvaluationReport.load(path)
        row = method or report.methods_of_kind("model")[0]
        for condition in report.values[row]:
            for metric, digits in (("psnr", 2), ("ssim", 4)):
                if (summary := report.summary(row, condition, metric)) is not None:
                    expected[(f"{report.protocol}-{condition}", metric)] = round(summary["mean"], digits)
    assert {key[:2]: key[2] for key in found} == expected


# --- model cards ---------------------------------------------------------------------------------------------


def test_card_metadata_and_sections_come_from_the_files(tmp_path, run_dir, evaluations):
    card = cards.render_model_card(run_dir / "best", evaluations=evaluations, repo_id="me/tiny-dae")
    card.save(tmp_path / "README.md")
    loaded = ModelCard.load(tmp_path / "README.md")
    data = loaded.data
    assert data.library_name == "hfdae" and data.license == "apache-2.0" and data.pipeline_tag == "image-to-image"
    assert {"image-denoising", "autoencoder", "hfdae"} <= set(data.tags)
    # each model-index entry names the task its protocol measures
    assert {(result.dataset_config.split("-")[0], result.task_name) for result in data.eval_results} == \
        {("seed", "Image restoration"), ("awgn", "Image denoising")}
    assert data.datasets is None  # local folders (TinyTrain, TinySet) are no Hub datasets
    _assert_model_index_matches(loaded, evaluations)
    text = loaded.text
    for expected in ("import hfdae", 'AutoModel.from_pretrained("me/tiny-dae")', "trust_remote_code=True",
                     "`small`", "4,800", "2.1 min", "CPU (test, 2 cores)", "cosine from 0.001 to 1e-05",
                     "salt_pepper", "![Learning curve", "learning_curve.png", "| 4,800 | 25.00 | 27.50 |",
                     "synthetic", "Real camera noise", "Forsyth", "U-Net", "Deep Residual Learning", "DnCNN",
                     "BM3D", "`seed` protocol", "`awgn` protocol", r"mean(\|R\|)",
                     "| fine-tuned from | an earlier training run (task restore, 3,000 images seen: base) |",
                     # the headlines: the protocol's headline column, named by the registry's label
                     "**32.18 dB** five-output average on TinySet (`seed` protocol; 2 images; identity 30.18",
                     "**31.18 dB** PSNR at Gaussian noise sigma 25 on TinySet (`awgn` protocol; 2 images;"
                     " sigma15 30.18, sigma50 32.18 dB)"):
        assert expected in text, expected
    # baselines are in the tables, never in model-index
    assert "input (no restoration)" in text
    assert all(result.dataset_config.split("-")[0] in ("seed", "awgn") for result in
               model_index_to_eval_results(data.to_dict()["model-index"])[1])
    assert "UNTRAINED" not in text
    assert "Notes and reproduction" not in text


@pytest.mark.parametrize("task", list_tasks())
def test_card_tags_and_model_index_name_the_model_s_task(tmp_path, task):
    protocol = protocol_for_task(task)
    model = make_model("small", task=task, extra_input_channels=int(protocol.mask_input))
    model.config.images_seen = 100
    model.save_pretrained(tmp_path / "model")
    conditions = protocol.condition_names()
    report = EvaluationReport(protocol.name, "/data/test/TinySet", ["a"], conditions=conditions, machine="CPU test")
    report.rows = {"model": MethodRow("model", "model")}
    report.values["model"] = {condition: {"psnr": {"a": 30.0}, "seconds": {"a": 0.01}} for condition in conditions}
    card = cards.render_model_card(tmp_path / "model", evaluations=[report.save(tmp_path / "evaluation")])
    assert set(protocol.hub_tags) <= set(card.data.tags) and set(cards.CARD_TAGS) <= set(card.data.tags)
    assert ("denoising" in card.data.tags) == (task in ("restore", "denoise", "photo"))
    assert {result.task_name for result in card.data.eval_results} == {protocol.task_name}


def test_card_says_which_split_an_evaluation_used_and_that_its_data_was_converted(tmp_path, run_dir):
    report = _evaluation("awgn", str(run_dir / "best"), data="/data/train/TinyTrain")
    report.split, report.converted_to = "validation", "gray"
    card = cards.render_model_card(run_dir / "best", evaluations=[report.save(tmp_path / "eval")])
    assert "on TinyTrain (validation split, read as gray) (`awgn` protocol" in card.text
    results = card.data.eval_results
    assert {result.dataset_split for result in results} == {"validation"}
    assert {result.dataset_type for result in results} == {"TinyTrain"}
    assert "TinyTrain (validation split, read as gray, awgn protocol, sigma25)" in {r.dataset_name for r in results}


def test_training_files_take_each_file_from_the_run_else_from_the_model_folder(tmp_path, run_dir):
    folder = tmp_path / "hub-folder"
    folder.mkdir()
    (folder / cards.FOLDER_TRAINING_CONFIG).write_text("kept: copy\n")
    (folder / cards.FOLDER_VALIDATION_LOG).write_text(json.dumps({"images_seen": 7, "validation_psnr": 1.0}) + "\n")
    empty_run = tmp_path / "run-without-files"
    empty_run.mkdir()
    for run in (None, empty_run):  # no run folder, or one that lost its files: the folder's copies
        found = cards.training_files(folder, run)
        assert found.config == folder / cards.FOLDER_TRAINING_CONFIG and found.learning_curve is None
        assert [record["images_seen"] for record in found.records] == [7]
    found = cards.training_files(folder, run_dir)  # the run's own files first
    assert found.config == run_dir / "training_config.yaml" and found.learning_curve == run_dir / "learning_curve.png"
    assert found.records[-1]["images_seen"] == 4800


def test_card_notes_are_rendered_verbatim(tmp_path, run_dir):
    notes = tmp_path / "notes.md"
    notes.write_text("Trained with:\n\n```bash\nhfdae train --config configs/zoo-colour.yaml\n```\n")
    card = cards.render_model_card(run_dir / "best", notes=notes)
    assert "## Notes and reproduction\n\nTrained with:\n\n```bash\nhfdae train --config configs/zoo-colour.yaml\n```" \
        in str(card)


def test_card_of_the_shipped_zoo_model_matches_its_published_results(tmp_path):
    """zoo/colour (the embedded default) with the `hfdae evaluate` outputs it carries (both protocols)."""
    folder = REPO_ROOT / "zoo" / "colour"
    evaluation_paths = sorted(folder.glob("eval-*.json"))
    assert {json.loads(path.read_text())["protocol"] for path in evaluation_paths} >= {"seed", "awgn"}
    row = "runs/zoo-colour-stage4/best"  # its evaluations also hold its earlier stages (zoo/train.sh colour)
    card = cards.render_model_card(folder, evaluations=evaluation_paths, learning_curve=folder / "learning_curve.png",
                                 card_dir=tmp_path, repo_id="hfdae/hfdae-colour", model_method=row)
    card.save(tmp_path / "README.md")
    loaded = ModelCard.load(tmp_path / "README.md")
    _assert_model_index_matches(loaded, evaluation_paths, method=row)
    _assert_model_index_matches(ModelCard.load(folder / "README.md"), evaluation_paths, method=row)  # the committed card too
    assert "DnCNN (dncnn_color_blind)" in loaded.text and "FFDNet" in loaded.text
    # links are relative to where the card is saved
    assert os.path.relpath(folder / "learning_curve.png", tmp_path) in loaded.text
    # the embedded default is this model
    assert (hfdae.inference.DEFAULT_MODEL_DIR / "model.safetensors").read_bytes() == \
        (folder / "model.safetensors").read_bytes()


def test_card_says_when_the_model_is_untrained_and_asks_which_row_is_the_model(tmp_path):
    make_model("small").save_pretrained(tmp_path / "untrained")
    card = cards.render_model_card(tmp_path / "untrained")
    assert "UNTRAINED" in card.text and "model-index" not in str(card)
    report = _evaluation("awgn", "first/model")
    report.values["second/model"] = report.values["first/model"]
    path = report.save(tmp_path / "two-models")
    with pytest.raises(ValueError, match="cannot tell which row"):
        cards.render_model_card(tmp_path / "untrained", evaluations=[path])
    card = cards.render_model_card(tmp_path / "untrained", evaluations=[path], model_method="second/model")
    _assert_model_index_matches(card, [path], method="second/model")


@pytest.mark.parametrize("source", ["default", "colour"])
def test_cards_of_the_default_and_of_zoo_names(tmp_path, source, capsys):
    from hfdae.cli import main

    assert main(["card", source, "--output", str(tmp_path / "README.md")]) == 0
    card = ModelCard.load(tmp_path / "README.md")
    assert card.data.library_name == "hfdae" and "UNTRAINED" not in card.text
    assert "widths 32-64-128-256" in card.text  # the embedded flagship's architecture, read from its config


def test_the_shipped_inpainting_model_s_card_names_its_metric_and_its_mask(tmp_path):
    """zoo/inpaint with its committed evaluation (this model's row, stage 2, beside stage 1's)."""
    folder = REPO_ROOT / "zoo" / "inpaint"
    if not (folder / "model.safetensors").is_file():
        pytest.skip("zoo/inpaint is not in this checkout")
    evaluation = sorted(folder.glob("eval-inpaint-*.json"))
    text = str(cards.render_model_card(folder, evaluations=evaluation, repo_id="hfdae/hfdae-inpaint",
                                       model_method="runs/zoo-inpaint-stage2/best"))
    label = hfdae.protocols.get_protocol("inpaint").headline_label
    headline = next(line for line in text.splitlines() if label in line and line.startswith("- **"))
    assert "five-output average" not in headline and "`inpaint` protocol" in headline
    assert "extra_inputs=mask" in text and "hfdae denoise" not in text
    assert "runs/zoo-colour" not in text.split("<details>")[0]  # lineage rows name no local paths
    assert "| fine-tuned from | `colour-v1` (task restore" in text  # a zoo parent is named
