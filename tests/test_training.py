import json
import os
from pathlib import Path

import pytest
import torch

from hfdae import DenoisingAutoencoder
from hfdae.processing import save_image, array_to_tensor
from hfdae.training_config import (
    LearningRateSchedule,
    ScheduleRecipe,
    TrainingConfig,
    load_training_config,
    parse_override_arguments,
)
from hfdae.samples import SAMPLE_NAMES, sample_image
from hfdae.runs import checkpoint_model, read_log
from hfdae.training import NoCheckpointError, RunFolderError, Trainer, TrainingDivergedError

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """Twelve small real photos (crops of scikit-image's bundled samples)."""
    folder = tmp_path_factory.mktemp("photos")
    for index, name in enumerate(SAMPLE_NAMES[:12]):
        array = sample_image(name)[40:104, 60:124]
        save_image(array_to_tensor(array), folder / f"{index:02d}_{name}.png")
    return folder


def tiny_config(image_folder, output_dir, **overrides) -> TrainingConfig:
    values = {
        "output_dir": str(output_dir),
        "model": {"preset": "small", "overrides": {"widths": [8, 16, 16], "blocks_per_level": [1, 1, 1]}},
        "data": {"source": str(image_folder), "split": None, "crop_size": 32, "shuffle_buffer": 1,
                 "validation_source": str(image_folder), "validation_split": None, "validation_images": 2,
                 "validation_crop": 32},
        "optimizer": {"name": "adam"},
        "schedule": {"name": "constant", "learning_rate": 3e-3},
        "batch_size": 4,
        "max_images": 96,
        "log_every_images": 8,
        "validate_every_images": 0,
        "checkpoint_every_images": 48,
        "channels_last": False,
        "seed": 3,
    }
    for dotted, value in overrides.items():
        target = values
        *parents, leaf = dotted.split(".")
        for key in parents:
            target = target[key]
        target[leaf] = value
    return TrainingConfig(**values)


def parameters_of(folder) -> dict[str, torch.Tensor]:
    return DenoisingAutoencoder.from_pretrained(folder).state_dict()


def test_a_tiny_run_lowers_the_loss_and_writes_the_run_folder(image_folder, tmp_path):
    config = tiny_config(image_folder, tmp_path / "run", max_images=240)
    result = Trainer(config).train()
    losses = [record["loss"] for record in result.records if "loss" in record]
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5
    assert result.images_seen == 240
    for name in ("training_config.yaml", "log.jsonl", "learning_curve.png", "final/model.safetensors",
                 "best/config.json"):
        assert (tmp_path / "run" / name).exists(), name
    final = DenoisingAutoencoder.from_pretrained(result.final_model)
    assert final.config.images_seen == 240
    assert final.config.training_summary["optimizer"] == "adam"
    assert load_training_config(tmp_path / "run" / "training_config.yaml").max_images == 240


def test_resume_gives_the_same_parameters_as_an_uninterrupted_run(image_folder, tmp_path):
    Trainer(tiny_config(image_folder, tmp_path / "straight")).train()

    interrupted = Trainer(tiny_config(image_folder, tmp_path / "interrupted"))
    calls = {"count": 0}

    def stop_after_the_checkpoint(module, inputs, output):
        calls["count"] += 1
        if calls["count"] == 15:  # step 15 = images 57..60, after the checkpoint at 48 images
            raise KeyboardInterrupt

    interrupted.model.register_forward_hook(stop_after_the_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        interrupted.train()
    assert (tmp_path / "interrupted" / "checkpoints" / "latest").read_text() == "images-000000000048"

    resumed = Trainer(tiny_config(image_folder, tmp_path / "interrupted"), resume=True)
    assert resumed.images_seen == 48
    resumed.train()
    straight = parameters_of(tmp_path / "straight" / "final")
    again = parameters_of(tmp_path / "interrupted" / "final")
    for name, tensor in straight.items():
        torch.testing.assert_close(again[name], tensor, rtol=0, atol=1e-6, msg=name)
    records = [json.loads(line) for line in open(tmp_path / "interrupted" / "log.jsonl")]
    logged = [record["images_seen"] for record in records if "loss" in record]
    assert logged == sorted(logged) and len(logged) == len(set(logged))  # no duplicate records after resume


def test_an_injected_nan_stops_the_run_and_keeps_the_last_good_checkpoint(image_folder, tmp_path):
    trainer = Trainer(tiny_config(image_folder, tmp_path / "run"))
    calls = {"count": 0}

    def poison(module, inputs, output):
        calls["count"] += 1
        if calls["count"] == 16:
            output.reconstruction = output.reconstruction * float("nan")
            output.loss = output.loss * float("nan")
        return output

    trainer.model.register_forward_hook(poison)
    with pytest.raises(TrainingDivergedError, match=r"step 16 .*learning rate 0\.003.*smaller learning rate"):
        trainer.train()
    latest = tmp_path / "run" / "checkpoints" / "images-000000000048"
    model = checkpoint_model(latest)
    assert all(torch.isfinite(tensor).all() for tensor in model.state_dict().values())
    assert not (tmp_path / "run" / "final").exists()


def test_a_crash_while_checkpointing_leaves_the_previous_checkpoint(image_folder, tmp_path, monkeypatch):
    config = tiny_config(image_folder, tmp_path / "run", checkpoint_every_images=24, max_images=60)
    trainer = Trainer(config)
    original_save = torch.save
    saves = {"count": 0}

    def failing_save(obj, path, *args, **kwargs):
        if str(path).endswith("optimizer.bin"):  # Accelerate's save_state writes the optimiser with torch.save
            saves["count"] += 1
            if saves["count"] == 2:
                raise OSError("disk full (simulated)")
        return original_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match="simulated"):
        trainer.train()
    monkeypatch.setattr(torch, "save", original_save)
    checkpoints = tmp_path / "run" / "checkpoints"
    assert (checkpoints / "latest").read_text() == "images-000000000024"
    resumed = Trainer(config, resume=True)
    assert resumed.images_seen == 24
    assert resumed.train().images_seen == 60


def test_a_run_folder_is_never_overwritten_by_accident(image_folder, tmp_path):
    config = tiny_config(image_folder, tmp_path / "run", max_images=8)
    Trainer(config).train()
    with pytest.raises(RunFolderError, match="--resume"):
        Trainer(config)
    Trainer(config, overwrite=True).train()
    with pytest.raises(NoCheckpointError, match="no checkpoint"):
        Trainer(tiny_config(image_folder, tmp_path / "empty"), resume=True)
    precious = tmp_path / "notes"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    with pytest.raises(RunFolderError, match="thesis.tex"):
        Trainer(tiny_config(image_folder, precious, max_images=8), overwrite=True)
    assert (precious / "thesis.tex").exists()


def test_step_schedule_changes_at_the_right_image_counts(image_folder, tmp_path):
    schedule = LearningRateSchedule(ScheduleRecipe(name="step", rates=[3.0, 2.0, 1.0], images_per_stage=100), 1000)
    assert [schedule(n) for n in (0, 99, 100, 199, 200, 10_000)] == [3.0, 3.0, 2.0, 2.0, 1.0, 1.0]
    assert schedule.stage_boundaries() == [100, 200]
    config = tiny_config(image_folder, tmp_path / "run", max_images=48, log_every_images=4,
                         schedule={"name": "step", "rates": [3e-3, 1e-3, 5e-4], "images_per_stage": 16})
    records = [r for r in Trainer(config).train().records if "loss" in r]
    # a record at images_seen n was made with the rate in force for the step ending there
    for record in records:
        expected = [3e-3, 1e-3, 5e-4][min((record["images_seen"] - 1) // 16, 2)]
        assert record["learning_rate"] == pytest.approx(expected), record


def test_cosine_schedule_warms_up_and_decays():
    schedule = LearningRateSchedule(
        ScheduleRecipe(name="cosine", learning_rate=1.0, warmup_images=10, final_learning_rate=0.2), 110
    )
    assert schedule(0) == pytest.approx(0.1) and schedule(4) == pytest.approx(0.5) and schedule(9) == pytest.approx(1.0)
    assert schedule(60) == pytest.approx(0.6) and schedule(110) == pytest.approx(0.2)


def test_the_process_count_is_checked(image_folder, tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")  # as if a launcher had started 2 independent copies
    with pytest.raises(RuntimeError, match="independent copies"):
        Trainer(tiny_config(image_folder, tmp_path / "run"))


def test_config_overrides_and_errors(tmp_path):
    overrides = parse_override_arguments(["--optimizer.name", "momentum", "--max_images=100", "--data.crop-size", "64",
                                          "--schedule.learning_rate", "1e-3", "--optimizer.eps", "1e-8"])
    assert overrides["optimizer.name"] == "momentum" and overrides["data.crop_size"] == 64
    config = load_training_config(CONFIGS / "seed-skip.yaml", overrides)
    assert (config.optimizer.name, config.max_images, config.data.crop_size) == ("momentum", 100, 64)
    # YAML reads 1e-3 as a string: the config converts it to the field's type
    assert config.schedule.learning_rate == 1e-3 and config.optimizer.eps == 1e-8
    with pytest.raises(ValueError, match="batch_size"):
        load_training_config(None, {"batch_size": 16.5})
    with pytest.raises(ValueError, match="optimizer.nme"):
        load_training_config(None, {"optimizer.nme": "adam"})
    with pytest.raises(ValueError, match="optimizer.name"):
        load_training_config(None, {"optimizer.name": "lbfgs"})
    with pytest.raises(ValueError, match="max_images"):
        load_training_config(None, {"max_images": 0})


@pytest.mark.parametrize("name", sorted(path.name for path in CONFIGS.glob("*.yaml")))
def test_every_shipped_config_loads(name):
    from hfdae import list_presets

    config = load_training_config(CONFIGS / name)
    assert config.model.preset in list_presets()


TWO_PROCESS_WORKER = """
import sys, torch
sys.path.insert(0, {tests!r})
from test_training import tiny_config
from hfdae.training import Trainer
# validation at the last step too: the processes must agree on whether to validate again at the end
trainer = Trainer(tiny_config({images!r}, {output!r} + "/run", max_images=64, expected_processes=2,
                              validate_every_images=32))
result = trainer.train()
model = trainer._bare_model()
torch.save({{"steps": result.steps, "images_seen": result.images_seen,
             "num_processes": trainer.accelerator.num_processes,
             "parameters": torch.cat([p.detach().flatten() for p in model.parameters()])}},
           {output!r} + f"/rank{{trainer.accelerator.process_index}}.pt")
"""


def test_two_cpu_processes_train_one_model(image_folder, tmp_path):
    """Two gloo processes launched as a user would (torchrun in CPU mode), not forked from pytest:
    a fork after torch's thread pool has started can deadlock."""
    import subprocess
    import sys

    worker = tmp_path / "worker.py"
    worker.write_text(TWO_PROCESS_WORKER.format(tests=str(Path(__file__).parent), images=str(image_folder),
                                                output=str(tmp_path)))
    environment = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    completed = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(worker)],
        env=environment, capture_output=True, text=True, timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert all(rank["num_processes"] == 2 for rank in ranks)
    # 64 images with batch 4 on each of 2 processes: 8 steps of 8 images (the global batch)
    assert all(rank["images_seen"] == 64 and rank["steps"] == 8 for rank in ranks)
    torch.testing.assert_close(ranks[0]["parameters"], ranks[1]["parameters"], rtol=0, atol=0)
    saved = torch.cat([p.flatten() for p in DenoisingAutoencoder.from_pretrained(tmp_path / "run" / "final").parameters()])
    torch.testing.assert_close(saved, ranks[0]["parameters"], rtol=0, atol=0)


def test_lr_find_marks_divergence_and_suggests_a_stable_rate(image_folder, tmp_path):
    from hfdae.lr_find import find_learning_rate

    config = tiny_config(image_folder, tmp_path / "unused", optimizer={"name": "sgd"})
    search = find_learning_rate(config, [1e6, 1e-2, 1e-3], images_per_rate=24, output_dir=tmp_path / "lr")
    by_rate = {trial.learning_rate: trial for trial in search.trials}
    assert by_rate[1e6].diverged
    assert search.suggested in (1e-2, 1e-3) and search.largest_stable == 1e-2
    assert (tmp_path / "lr" / "lr_find.png").exists()
    assert json.loads((tmp_path / "lr" / "results.json").read_text())["suggested"] == search.suggested


def test_train_command_line(image_folder, tmp_path, capsys):
    import yaml

    from hfdae.cli import main

    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(tiny_config(image_folder, tmp_path / "run").to_dict()))
    assert main(["train", "--config", str(config_path), "--max_images", "16", "--optimizer.name", "momentum"]) == 0
    assert "trained on 16 images" in capsys.readouterr().out
    assert load_training_config(tmp_path / "run" / "training_config.yaml").optimizer.name == "momentum"
    assert main(["train", "--config", str(config_path)]) == 2  # the folder holds a run: refused
    assert "--resume" in capsys.readouterr().err


def test_gradient_accumulation_updates_once_per_cycle(image_folder, tmp_path):
    config = tiny_config(image_folder, tmp_path / "run", max_images=32, gradient_accumulation_steps=2)
    config.data.validation_images = 0  # only training forwards below
    trainer = Trainer(config)
    snapshots = []

    def record_parameters(module, inputs, output):
        snapshots.append(next(module.parameters()).detach().clone())

    trainer.model.register_forward_hook(record_parameters)
    result = trainer.train()
    assert result.images_seen == 32 and result.steps == 8
    # parameters change between micro-batches 2k-1 and 2k+1 (an update), never within a cycle
    changes = [not torch.equal(before, after) for before, after in zip(snapshots, snapshots[1:])]
    assert changes == [False, True] * 3 + [False]


def _fit_to_budget_script():
    import importlib.util

    path = CONFIGS.parent / "zoo" / "fit_to_budget.py"
    spec = importlib.util.spec_from_file_location("fit_to_budget", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return path, module


def test_fit_to_budget_writes_the_crop_budget_into_the_config_and_trains_it(image_folder, tmp_path):
    """zoo/fit_to_budget.py with a given rate: max_images and the intervals rewritten in place, then the run."""
    import subprocess
    import sys

    import yaml

    config = tiny_config(image_folder, tmp_path / "run")
    config_path = tmp_path / "stage.yaml"
    config.save(config_path)
    script, _ = _fit_to_budget_script()
    result = subprocess.run([sys.executable, str(script), str(config_path), "--seconds", "2", "--rate", "100"],
                            cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    sized = yaml.safe_load(config_path.read_text())
    # 0.85 x 100 crops/s x 2 s = 170 crops, in four quarters of whole batches of 4: 4 x 40
    assert (sized["max_images"], sized["validate_every_images"], sized["checkpoint_every_images"]) == (160, 40, 40)
    final = DenoisingAutoencoder.from_pretrained(tmp_path / "run" / "final")
    assert final.config.images_seen == 160


def test_fit_to_budget_probe_measures_a_rate_and_cleans_up(image_folder, tmp_path, monkeypatch):
    config = tiny_config(image_folder, tmp_path / "run")
    config_path = tmp_path / "stage.yaml"
    config.save(config_path)
    monkeypatch.chdir(tmp_path)
    _, module = _fit_to_budget_script()
    assert module.probe_rate(config_path, steps=12) > 0
    assert not (tmp_path / "run-probe").exists() and not (tmp_path / "run-probe.yaml").exists()
    with pytest.raises(ValueError, match="max_images"):
        (tmp_path / "bad.yaml").write_text("output_dir: x\n")
        module.rewrite(tmp_path / "bad.yaml", max_images=8)


def test_read_log_gives_the_records_in_order_and_names_a_missing_log(image_folder, tmp_path):
    result = Trainer(tiny_config(image_folder, tmp_path / "run", validate_every_images=48)).train()
    records = read_log(tmp_path / "run")
    assert records == result.records
    assert any("validation_psnr" in record for record in records) and "loss" in records[0]
    with pytest.raises(FileNotFoundError, match="log.jsonl"):
        read_log(tmp_path)


def test_a_noise_level_model_is_told_the_gaussian_sigma_of_a_share_of_its_crops(image_folder, tmp_path, monkeypatch):
    """Gaussian crops get their sigma except a noise_level_dropout share; other crops are always blind."""
    config = tiny_config(image_folder, tmp_path / "run", max_images=48)
    config.model.overrides.update({"space_to_depth_factor": 2, "noise_level_input": True, "predict_residual": True})
    config.data.degradations = {"choice": ["gaussian", "knockout"], "weights": [1, 1]}
    config.data.noise_level_dropout = 0.5
    seen = []
    original = DenoisingAutoencoder.forward

    def spy(self, *args, **kwargs):
        if self.training and kwargs.get("labels") is not None:
            seen.append(kwargs["noise_level"].clone())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(DenoisingAutoencoder, "forward", spy)
    trainer = Trainer(config)
    trainer.train()
    levels = torch.cat(seen)
    assert levels.numel() == 48
    known = levels[~torch.isnan(levels)]
    assert 0 < known.numel() < 48 and (known >= 0).all() and (known <= 50 / 255 + 1e-6).all()
    assert DenoisingAutoencoder.from_pretrained(tmp_path / "run" / "final").config.noise_level_input
