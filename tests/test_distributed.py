"""Two CPU processes (accelerate.debug_launcher, gloo): a failure in one stops both with the same message."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hfdae.distributed import CollectiveError, batches_checked_together, check_together

pytestmark = pytest.mark.timeout(240)  # without the check these would hang: fail instead


def _launch(function, *args) -> None:
    from accelerate import debug_launcher
    from accelerate.state import AcceleratorState

    # the forked children inherit accelerate's process-wide state: after an earlier test built an Accelerator in
    # this pytest process, they would each see a single process (rank 0 of 1) instead of two
    AcceleratorState._reset_state(reset_partial_state=True)
    debug_launcher(function, args=args, num_processes=2)


def _record_outcome(folder: str, rank: int, outcome: dict) -> None:
    (Path(folder) / f"rank{rank}.json").write_text(json.dumps(outcome))


def _outcomes(folder: Path) -> list[dict]:
    return [json.loads((folder / f"rank{rank}.json").read_text()) for rank in range(2)]


def _one_process_fails_in_its_loader(folder: str) -> None:
    from accelerate import Accelerator

    torch.set_num_threads(1)  # forked from pytest: an OpenMP pool started in the parent must not be used
    accelerator = Accelerator(cpu=True)
    rank = accelerator.process_index

    def batches():
        yield 1
        if rank == 1:
            raise OSError("disk gone (simulated)")
        yield 2

    steps = 0
    try:
        for _ in batches_checked_together(accelerator, batches()):
            steps += 1
            accelerator.reduce(torch.ones(1), reduction="sum")  # the collective of a training step
        _record_outcome(folder, rank, {"steps": steps, "error": None})
    except CollectiveError as error:
        _record_outcome(folder, rank, {"steps": steps, "error": str(error), "processes": accelerator.num_processes})


def test_a_failing_loader_in_one_process_stops_both_with_the_same_message(tmp_path):
    _launch(_one_process_fails_in_its_loader, str(tmp_path))
    first, second = _outcomes(tmp_path)
    assert first["processes"] == 2
    assert first["error"] == second["error"] == (
        "process 1 of 2 failed, so every process stopped: OSError: disk gone (simulated)")
    assert first["steps"] == second["steps"] == 1


def test_check_together_with_one_process_raises_the_error_itself():
    class Single:
        num_processes = 1

    check_together(Single())
    with pytest.raises(ValueError, match="plain"):
        check_together(Single(), ValueError("plain"))


def _train_on_uneven_shards(folder: str, photos: str) -> None:
    import torch

    from hfdae.training_config import TrainingConfig
    from hfdae.training import Trainer

    torch.set_num_threads(1)  # forked from pytest: an OpenMP pool started in the parent must not be used
    config = TrainingConfig(
        output_dir=str(Path(folder) / "run"),
        model={"preset": "small", "overrides": {"widths": [8], "blocks_per_level": [1]}},
        data={"source": photos, "split": None, "crop_size": 8, "shuffle_buffer": 64, "validation_images": 0,
              "degradations": "gaussian"},
        batch_size=5, max_images=40, log_every_images=10, validate_every_images=0, checkpoint_every_images=1000,
        mixed_precision="no", channels_last=False, cpu=True, expected_processes=2,
    )
    trainer = Trainer(config)
    rank = trainer.accelerator.process_index
    try:
        trainer.train()
        _record_outcome(folder, rank, {"error": None})
    except CollectiveError as error:
        _record_outcome(folder, rank, {"error": str(error)})


def test_a_process_with_fewer_files_than_a_batch_stops_both_processes(tmp_path):
    """Nine files over two processes: 5 and 4 crops per epoch; batches of 5 leave process 1 without any."""
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for index in range(9):
        Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(photos / f"p{index}.png")
    _launch(_train_on_uneven_shards, str(tmp_path), str(photos))
    first, second = _outcomes(tmp_path)
    assert first["error"] == second["error"]
    assert first["error"].startswith("process 1 of 2 failed, so every process stopped: RuntimeError: ")
    assert "an epoch gave no batch of 5" in first["error"] and str(photos) in first["error"]
