"""Smoke tests of scripts/: each script runs on small inputs (or on the committed results it reports on).

The scripts regenerate measured pages of docs/ (docs/reproduction.md, docs/finetuning.md); these tests keep
them running as the library changes under them. The shell scripts run with stand-ins for ``hfdae`` and
``python`` on PATH that record their arguments, so the tests check what they would run (every config and
script they name exists) without training anything.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from hfdae.samples import write_sample_folder

from conftest import make_model

REPO_ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = REPO_ROOT / "scripts"


def run_python_script(script: Path, *arguments: str, monkeypatch, capsys) -> str:
    """Run a Python script in this process (as ``python SCRIPT ARGUMENTS``) and return what it printed."""
    import runpy

    monkeypatch.syspath_prepend(str(script.parent))  # as python puts the script's folder first
    monkeypatch.setattr(sys, "argv", [str(script), *arguments])
    runpy.run_path(str(script), run_name="__main__")
    return capsys.readouterr().out


def run_script(*arguments: str, cwd: Path = REPO_ROOT, env: dict | None = None) -> str:
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "MPLBACKEND": "Agg", **(env or {})}
    result = subprocess.run(list(arguments), cwd=cwd, env=environment, capture_output=True, text=True)
    assert result.returncode == 0, f"{arguments} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_report_prints_the_tables_of_the_committed_results(tmp_path, monkeypatch, capsys):
    output = run_python_script(SCRIPTS / "reproduction" / "report.py", "core", "heads", "runs", "--runs", str(tmp_path),
                               monkeypatch=monkeypatch, capsys=capsys)
    assert "## core" in output and "| skip-adam |" in output and "(reference)" in output
    assert "paired difference (average) vs skip-adam" in output and "ahead on" in output
    assert "## heads" in output and "## runs" in output


def test_paired_differences_of_the_committed_inpainting_evaluation(monkeypatch, capsys):
    results = REPO_ROOT / "docs" / "finetuning" / "inpaint-validation" / "results.json"
    output = run_python_script(SCRIPTS / "finetuning" / "paired.py", str(results),
                               "runs/zoo-inpaint/best=runs/zoo-inpaint-scratch/best", monkeypatch=monkeypatch,
                               capsys=capsys)
    assert output.startswith("- runs/zoo-inpaint/best - runs/zoo-inpaint-scratch/best: PSNR ")
    assert "(ahead on" in output and "SSIM" in output


def test_losses_compares_two_runs_logs(tmp_path, monkeypatch, capsys):
    for name, scale in (("tuned", 1.0), ("scratch", 2.0)):
        (tmp_path / name).mkdir()
        records = [{"images_seen": seen, "loss": scale * 10 / seen} for seen in range(100, 3100, 100)]
        (tmp_path / name / "log.jsonl").write_text("".join(json.dumps(record) + "\n" for record in records))
    output = run_python_script(SCRIPTS / "finetuning" / "losses.py", str(tmp_path / "tuned"), str(tmp_path / "scratch"),
                               monkeypatch=monkeypatch, capsys=capsys)
    assert "has the lower training loss at 30 of the 30 points" in output


@pytest.fixture(scope="module")
def held_out(tmp_path_factory):
    """Two photos and a tiny model, as the held-out data and a run's model."""
    folder = tmp_path_factory.mktemp("held-out")
    write_sample_folder(folder / "images", names=("coins", "chelsea"))
    make_model("small", images_seen=1).save_pretrained(folder / "model")
    return folder


@pytest.mark.parametrize("script", ["sharpness.py", "clamp_gradient.py"])
def test_measurement_scripts_run_on_small_images(held_out, script, monkeypatch, capsys):
    output = run_python_script(SCRIPTS / "reproduction" / script, "--data", str(held_out / "images"), "--split", "",
                               "--crop", "32", "--runs", str(held_out / "model"), monkeypatch=monkeypatch, capsys=capsys)
    assert "2 images of" in output and "| model |" in output
    assert any(line.startswith(f"| {held_out / 'model'} |") for line in output.splitlines())  # the model's row


def _stand_ins(folder: Path) -> Path:
    """``hfdae`` and ``python`` that append their arguments to calls.log and succeed."""
    folder.mkdir()
    for name in ("hfdae", "python"):
        path = folder / name
        path.write_text(f'#!/usr/bin/env bash\necho "{name} $*" >> "{folder}/calls.log"\n')
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return folder


def test_the_reproduction_training_script_runs_each_group_from_its_config(tmp_path):
    bin_dir = _stand_ins(tmp_path / "bin")
    run_script("bash", str(SCRIPTS / "reproduction" / "train.sh"), "core", "heads", "long", cwd=REPO_ROOT,
               env={"PATH": f"{bin_dir}:{os.environ['PATH']}"})
    calls = (bin_dir / "calls.log").read_text().splitlines()
    assert all(call.startswith("hfdae train --config configs/reproduction.yaml") for call in calls)
    assert (REPO_ROOT / "configs" / "reproduction.yaml").is_file()
    assert any("runs/repro-long-skip-adam" in call for call in calls) and len(calls) >= 3 + 7 + 4


def test_the_reproduction_evaluation_script_names_scripts_that_exist(tmp_path):
    import re

    bin_dir = _stand_ins(tmp_path / "bin")
    work = tmp_path / "work"
    (work / "docs" / "reproduction").mkdir(parents=True)
    script = (SCRIPTS / "reproduction" / "evaluate.sh").read_text()
    names = {name for group in re.findall(r"\$\((?:final|models best) ([^)]*)\)", script) for name in group.split()}
    for name in names:  # every run it evaluates, finished
        for checkpoint in ("final", "best"):
            (work / "runs" / f"repro-{name}" / checkpoint).mkdir(parents=True, exist_ok=True)
            (work / "runs" / f"repro-{name}" / checkpoint / "model.safetensors").touch()
    run_script("bash", str(SCRIPTS / "reproduction" / "evaluate.sh"), cwd=work,
               env={"PATH": f"{bin_dir}:{os.environ['PATH']}"})
    calls = (bin_dir / "calls.log").read_text().splitlines()
    assert any(call.startswith("hfdae evaluate") for call in calls)
    scripts = [call.split()[1] for call in calls if call.startswith("python ")]
    assert scripts and all((REPO_ROOT / script).is_file() for script in scripts), scripts


def test_the_robustness_matrix_puts_every_model_under_every_condition(tmp_path, monkeypatch, capsys):
    from hfdae.processing import array_to_tensor, save_image
    from hfdae.samples import sample_image

    data = tmp_path / "data"
    save_image(array_to_tensor(sample_image("coffee")[60:100, 80:128]), data / "coffee.png")
    model = tmp_path / "model"
    make_model("small").save_pretrained(model)
    output = run_python_script(SCRIPTS / "robustness_matrix.py", str(model), "--data", str(data), "--limit", "1",
                               "--protocols", "seed", "deblur", "--output", str(tmp_path / "matrix"),
                               monkeypatch=monkeypatch, capsys=capsys)
    header, table = output.split("| model |", 1)
    columns = table.splitlines()[0]
    for column in ("seed/identity", "seed/knockout", "deblur/blur2", "deblur/average"):
        assert f"`{column}`" in columns
    assert f"| {model} |" in output and "| input (no restoration) |" in output
    assert (tmp_path / "matrix" / "matrix.png").stat().st_size > 0
    assert (tmp_path / "matrix" / "deblur" / "results.json").exists()
