"""Faults from outside: a training run killed with SIGKILL mid-epoch resumes exactly; a process of several
that has no data (or fails) stops them all with one message instead of a hang.

The cases (and what the user gets) are listed in docs/faults.md.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from hfdae.recipe import TrainingConfig

REPOSITORY = Path(__file__).resolve().parent.parent

# Trains a config; with KILL_AT > 0 the process sends itself SIGKILL in that step's forward pass (a real
# `kill -9`: no exception, no clean-up, DataLoader workers orphaned).
DRIVER = """
import os, signal, sys
from hfdae.recipe import load_training_config
from hfdae.training import Trainer

config_path, kill_at, resume = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "resume"
trainer = Trainer(load_training_config(config_path), resume=resume)
steps = {"count": 0}

def kill_at_step(module, inputs, output):
    steps["count"] += 1
    if steps["count"] == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)

if kill_at:
    trainer.model.register_forward_hook(kill_at_step)
trainer.train()
"""

FILES, CROPS_PER_IMAGE, BATCH = 36, 2, 4
IMAGES_PER_EPOCH = FILES * CROPS_PER_IMAGE  # 72: the checkpoint at 80 images is 8 crops into epoch 1, the end at 120


@pytest.fixture(scope="module")
def small_photos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("small_photos")
    rng = np.random.default_rng(7)
    ramp = np.linspace(0, 200, 22)[None, :, None]
    for index in range(FILES):
        pixels = np.clip(ramp + rng.normal(0, 20, (20, 22, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"photo_{index:02d}.png")
    return folder


def _config(photos: Path, output_dir: Path) -> Path:
    config = TrainingConfig(
        output_dir=str(output_dir),
        model={"preset": "small", "overrides": {"widths": [8, 16], "blocks_per_level": [1, 1]}},
        data={"source": str(photos), "split": None, "crop_size": 16, "crops_per_image": CROPS_PER_IMAGE,
              "shuffle_buffer": 64, "num_workers": 2, "validation_images": 0, "degradations": "gaussian"},
        optimizer={"name": "adam"},
        schedule={"name": "constant", "learning_rate": 3e-3},
        batch_size=BATCH, max_images=120, log_every_images=20, validate_every_images=0,
        checkpoint_every_images=40, mixed_precision="no", channels_last=False, seed=11,
    )
    path = output_dir.parent / f"{output_dir.name}.yaml"
    config.save(path)
    return path


def _train(config: Path, kill_at: int = 0, resume: bool = False) -> subprocess.CompletedProcess:
    # One thread: a tiny model gains nothing from more, and beside 2 DataLoader workers on a busy 2-core
    # machine, spinning OpenMP threads made each step 20x slower.
    environment = {**os.environ, "PYTHONPATH": f"{REPOSITORY}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
                   "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", DRIVER, str(config), str(kill_at), "resume" if resume else "fresh"],
                          capture_output=True, text=True, env=environment, timeout=300)


def _losses(run: Path) -> list[tuple[int, float]]:
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    return [(record["images_seen"], record["loss"]) for record in records if "loss" in record]


def test_a_run_killed_mid_epoch_resumes_bit_for_bit(small_photos, tmp_path):
    straight = _train(_config(small_photos, tmp_path / "straight"))
    assert straight.returncode == 0, straight.stderr[-2000:]

    interrupted_config = _config(small_photos, tmp_path / "interrupted")
    killed = _train(interrupted_config, kill_at=25)  # step 25 = images 97..100, after the checkpoint at 80
    assert killed.returncode == -signal.SIGKILL
    checkpoints = tmp_path / "interrupted" / "checkpoints"
    assert (checkpoints / "latest").read_text() == "images-000000000080"
    data_state = torch.load(checkpoints / "images-000000000080" / "data_state_rank0.pt", weights_only=False)
    assert data_state["epoch"] == 1 and 80 % IMAGES_PER_EPOCH != 0  # mid-epoch, not on a boundary

    resumed = _train(interrupted_config, resume=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    expected = load_file(tmp_path / "straight" / "final" / "model.safetensors")
    actual = load_file(tmp_path / "interrupted" / "final" / "model.safetensors")
    assert expected.keys() == actual.keys()
    different = sorted(name for name in expected if not torch.equal(expected[name], actual[name]))
    assert different == [], f"{len(different)} of {len(expected)} tensors differ: {different[:5]}"
    assert _losses(tmp_path / "interrupted") == _losses(tmp_path / "straight")
