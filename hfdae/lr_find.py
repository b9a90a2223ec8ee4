"""``hfdae lr-find``: the chapter's rule of thumb for the initial learning rate, as a command.

"Try a value larger than you think will work (1e-2 has a following), then reduce it till the model
does not diverge" (section 18.4.3). Each rate gets a short run of the same recipe from the same
initial weights, at a constant rate; the plot shows the final loss against the rate, and the
suggestion is the rate with the lowest final loss among those that did not diverge.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .training_config import TrainingConfig

__all__ = ["DEFAULT_RATES", "DEFAULT_IMAGES_PER_RATE", "LearningRateTrial", "LearningRateSearch", "find_learning_rate"]

DEFAULT_RATES = (1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4)
DEFAULT_IMAGES_PER_RATE = 2000


@dataclass
class LearningRateTrial:
    """One short run: its rate, whether it diverged and its final (smoothed) training loss."""

    learning_rate: float
    diverged: bool
    final_loss: float | None
    losses: list[float] = field(default_factory=list)


@dataclass
class LearningRateSearch:
    """All trials, the suggested rate and the plot file."""

    trials: list[LearningRateTrial]
    suggested: float
    largest_stable: float
    plot: Path

    def table(self) -> str:
        lines = ["| learning rate | diverged | final loss |", "|---|---|---|"]
        for trial in self.trials:
            loss = "-" if trial.final_loss is None else f"{trial.final_loss:.3f}"
            lines.append(f"| {trial.learning_rate:.3g} | {'yes' if trial.diverged else 'no'} | {loss} |")
        return "\n".join(lines)


def find_learning_rate(
    config: TrainingConfig, rates: list[float] = DEFAULT_RATES, images_per_rate: int = DEFAULT_IMAGES_PER_RATE,
    output_dir: str | Path = "lr_find"
) -> LearningRateSearch:
    """Run a short trial of ``config`` at each constant rate (largest first); plot and suggest.

    Args:
        config: the recipe to tune (its optimiser, model, data and degradations are kept).
        rates: learning rates to try.
        images_per_rate: training images per trial.
        output_dir: where ``lr_find.png`` and ``results.json`` go.
    """
    from .training import Trainer, TrainingDivergedError

    if not rates:
        raise ValueError("rates: give at least one learning rate")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    trials = []
    scratch = Path(tempfile.mkdtemp(prefix="hfdae-lr-find-"))
    try:
        for rate in sorted(rates, reverse=True):
            trial_config = copy.deepcopy(config)
            trial_config.output_dir = str(scratch / f"lr-{rate:g}")
            trial_config.max_images = images_per_rate
            trial_config.schedule.name = "constant"
            trial_config.schedule.learning_rate = rate
            trial_config.validate_every_images = 0
            trial_config.data.validation_images = 0
            trial_config.checkpoint_every_images = images_per_rate * 10
            trial_config.log_every_images = max(trial_config.batch_size, images_per_rate // 20)
            trainer = Trainer(trial_config, overwrite=True)
            try:
                result = trainer.train()
                losses = [record["loss"] for record in result.records if "loss" in record]
                tail = losses[-max(1, len(losses) // 4):]
                final = sum(tail) / len(tail)
                diverged = not math.isfinite(final)
            except TrainingDivergedError:
                losses = [record["loss"] for record in trainer.records if "loss" in record]
                final, diverged = None, True
            trials.append(LearningRateTrial(rate, diverged, final, losses))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    stable = [trial for trial in trials if not trial.diverged and trial.final_loss is not None]
    if not stable:
        raise RuntimeError(f"every learning rate in {sorted(rates)} diverged; try smaller ones")
    suggested = min(stable, key=lambda trial: trial.final_loss).learning_rate
    largest_stable = max(trial.learning_rate for trial in stable)
    plot = _plot(trials, suggested, output_dir / "lr_find.png")
    (output_dir / "results.json").write_text(json.dumps(
        {"suggested": suggested, "largest_stable": largest_stable, "images_per_rate": images_per_rate,
         "trials": [trial.__dict__ for trial in trials]}, indent=2))
    return LearningRateSearch(trials, suggested, largest_stable, plot)


def _plot(trials: list[LearningRateTrial], suggested: float, path: Path) -> Path:
    from .plots import pyplot, save_figure

    figure, axis = pyplot().subplots(figsize=(6, 4))
    stable = [t for t in trials if not t.diverged]
    axis.plot([t.learning_rate for t in stable], [t.final_loss for t in stable], "o-", label="final training loss")
    for trial in trials:
        if trial.diverged:
            axis.axvline(trial.learning_rate, color="red", linestyle=":", linewidth=1)
    axis.axvline(suggested, color="green", linewidth=1, label=f"suggested {suggested:.2g}")
    axis.set_xscale("log")
    axis.set_xlabel("learning rate (red: diverged)")
    axis.set_ylabel("training loss at the end of the trial")
    axis.legend(fontsize=8)
    axis.grid(alpha=0.3)
    return save_figure(figure, path)
