"""The training configuration: a run's settings (YAML + overrides), optimisers and learning-rate schedules.

The chapter's recipe (section 18.4): the loss ``100 mean(R^2) + 30 mean(|R|)``, SGD with a step schedule
``[2e-3, 1e-3, 7e-4, 3e-4, 1e-4]`` changing every 100,000 images; momentum 0.9 (Procedure 18.1) and
Adam (0.9, 0.999, 1e-8; Procedure 18.2) as alternatives. Schedules are functions of *images seen*, so
a run's schedule does not depend on the batch size or the number of processes.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from .protocols import list_tasks, protocol_for_task, task_degradation

if TYPE_CHECKING:  # this module imports without torch, so that `hfdae train --help` is quick
    import torch

__all__ = [
    "resolve_mixed_precision",
    "ModelRecipe",
    "DataRecipe",
    "OptimizerRecipe",
    "ScheduleRecipe",
    "TrainingConfig",
    "LearningRateSchedule",
    "build_optimizer",
    "build_schedule",
    "load_training_config",
    "apply_overrides",
    "parse_override_arguments",
    "CHAPTER_RATES",
    "CHAPTER_IMAGES_PER_STAGE",
    "FREEZE_CHOICES",
    "DEFAULT_FINETUNE_LEARNING_RATE",
    "DEFAULT_FINETUNE_IMAGES",
    "finetune_config",
]

CHAPTER_RATES = (2e-3, 1e-3, 7e-4, 3e-4, 1e-4)
CHAPTER_IMAGES_PER_STAGE = 100_000
OPTIMIZERS = ("sgd", "momentum", "adam", "adamw")
SCHEDULES = ("step", "constant", "cosine")
MIXED_PRECISION = ("auto", "no", "bf16", "fp16")
FREEZE_CHOICES = ("none", "encoder")


@dataclass
class ModelRecipe:
    """Which model to train.

    Args:
        preset: a preset name (``small``, ``noskip``, ``skip``), used when ``init_from`` is empty.
        overrides: configuration fields to change from the preset (for example ``colour_space: gray``);
            with ``init_from``, only ``upsample: resize``, ``colour_space: gray`` and ``blocks_per_level`` with more
            blocks in the first level (the parent is converted, see :func:`hfdae.finetuning.convert_upsampling`,
            :func:`hfdae.finetuning.convert_to_gray` and :func:`hfdae.finetuning.deepen_first_level`).
        init_from: start from this checkpoint (folder, zoo name or Hub id) instead of fresh weights
            (fine-tuning; the parent is recorded in the new model's ``lineage``).
        task: what the model learns (``restore``, ``denoise``, ``deblur``, ``inpaint``; recorded in
            its config and choosing the validation protocol); None keeps the parent's (``restore``).
        mask_channel: give the model the inpainting mask as an extra input channel; a parent without
            one gets its first convolutions widened with zero weights (its output is unchanged).
        freeze: ``"none"`` or ``"encoder"`` (the encoder's weights and batch-norm statistics stay fixed,
            except, with ``mask_channel``, the first block's input convolutions, which hold the mask's weights).
    """

    preset: str = "skip"
    overrides: dict[str, Any] = field(default_factory=dict)
    init_from: str | None = None
    task: str | None = None
    mask_channel: bool = False
    freeze: str = "none"


@dataclass
class DataRecipe:
    """Where the training crops come from (see :func:`hfdae.data.crop_dataset`).

    Args:
        source: a folder of images, parquet file(s), a Hub dataset id, or ``"hfdae:samples"`` for the
            bundled sample photos.
        crop_size: side of the random training crops (the chapter's 128).
        split: the hash split of ``source`` to train on (``train``); None uses every image.
        validation_source: images for validation PSNR; None uses the ``validation`` split of ``source``.
        validation_split: the split of ``validation_source`` to use (None: all of it).
        validation_images: at most this many validation images.
        validation_crop: central crop side of validation images (0: whole images).
        shuffle_buffer: streaming shuffle buffer (examples); file order is shuffled per epoch too.
        crops_per_image: crops drawn from each image per epoch.
        num_workers: DataLoader worker processes.
        degradations: the degradation spec (see :func:`hfdae.degradations.build_degradation`);
            ``"chapter"`` draws one of the four per image.
        overexposure: fraction of clean crops given clipped highlights (see :func:`hfdae.data.crop_dataset`).
        noise_level_dropout: for models with ``noise_level_input``: the fraction of Gaussian-noise crops
            trained blind (no level given), so one checkpoint learns both uses. Crops of the other
            degradations are always blind.
    """

    source: str = "hfdae:samples"
    crop_size: int = 128
    split: str | None = "train"
    validation_source: str | None = None
    validation_split: str | None = "validation"
    validation_images: int = 16
    validation_crop: int = 256
    shuffle_buffer: int = 64
    crops_per_image: int = 1
    num_workers: int = 0
    degradations: Any = "chapter"
    overexposure: float = 0.0
    noise_level_dropout: float = 0.5


@dataclass
class OptimizerRecipe:
    """The optimiser: ``sgd``, ``momentum`` (SGD with ``momentum``), ``adam`` or ``adamw``.

    Args:
        name: the optimiser.
        momentum: for ``momentum`` (the chapter's 0.9).
        betas: for Adam / AdamW.
        eps: for Adam / AdamW.
        weight_decay: L2 (SGD, Adam) or decoupled (AdamW) weight decay.
        max_grad_norm: clip the gradient norm to this (0: no clipping).
    """

    name: str = "sgd"
    momentum: float = 0.9
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    max_grad_norm: float = 0.0


@dataclass
class ScheduleRecipe:
    """The learning rate as a function of images seen.

    Args:
        name: ``step`` (the chapter's), ``constant`` or ``cosine`` (linear warm-up then cosine decay).
        rates: ``step``: the rate of each stage, in order.
        images_per_stage: ``step``: images per stage (the last stage lasts to the end).
        learning_rate: ``constant`` and ``cosine``: the (peak) rate.
        warmup_images: ``cosine``: images of linear warm-up from 0.
        final_learning_rate: ``cosine``: the rate at ``max_images``.
    """

    name: str = "step"
    rates: list[float] = field(default_factory=lambda: list(CHAPTER_RATES))
    images_per_stage: int = CHAPTER_IMAGES_PER_STAGE
    learning_rate: float = 1e-3
    warmup_images: int = 0
    final_learning_rate: float = 0.0


@dataclass
class TrainingConfig:
    """Everything a training run needs; saved beside the run as ``training_config.yaml``.

    Args:
        output_dir: the run folder (checkpoints, log, learning curve, final and best models).
        model, data, optimizer, schedule: the recipe sections above.
        batch_size: crops per process per step.
        max_images: training budget in images seen (over all processes).
        gradient_accumulation_steps: micro-batches per optimiser step.
        mixed_precision: ``auto``, ``no``, ``bf16`` or ``fp16`` (autocast through Accelerate). ``auto``
            is bf16 on GPUs that support it and on CPUs with native bf16 instructions (AVX512-BF16 or
            AMX), else no: on a CPU without them bf16 convolutions run about 3x slower than fp32.
        channels_last: NHWC memory format (faster convolutions on CPUs and GPUs).
        compile: ``torch.compile`` the model.
        seed: seeds weights, data order, crops and degradations.
        log_every_images: images between log records.
        validate_every_images: images between validation passes (0: only at the end).
        checkpoint_every_images: images between full training-state checkpoints.
        keep_checkpoints: how many full checkpoints to keep.
        expected_processes: fail unless Accelerate runs exactly this many processes (None: take
            WORLD_SIZE from the launcher's environment when set).
        cpu: force the CPU even when a GPU is present.
        description: a line about the run for the model card.
    """

    output_dir: str = "runs/untitled"
    model: ModelRecipe = field(default_factory=ModelRecipe)
    data: DataRecipe = field(default_factory=DataRecipe)
    optimizer: OptimizerRecipe = field(default_factory=OptimizerRecipe)
    schedule: ScheduleRecipe = field(default_factory=ScheduleRecipe)
    batch_size: int = 16
    max_images: int = 500_000
    gradient_accumulation_steps: int = 1
    mixed_precision: str = "auto"
    channels_last: bool = True
    compile: bool = False
    seed: int = 0
    log_every_images: int = 800
    validate_every_images: int = 50_000
    checkpoint_every_images: int = 20_000
    keep_checkpoints: int = 2
    expected_processes: int | None = None
    cpu: bool = False
    description: str = ""

    def __post_init__(self) -> None:
        for name, section in (("model", ModelRecipe), ("data", DataRecipe), ("optimizer", OptimizerRecipe),
                              ("schedule", ScheduleRecipe)):
            value = getattr(self, name)
            if isinstance(value, dict):
                setattr(self, name, _build_section(section, value, name))
        self.optimizer.betas = tuple(self.optimizer.betas)
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first invalid field."""
        checks = [
            (self.batch_size >= 1, "batch_size", self.batch_size, "at least 1"),
            (self.max_images >= 1, "max_images", self.max_images, "at least 1"),
            (self.gradient_accumulation_steps >= 1, "gradient_accumulation_steps",
             self.gradient_accumulation_steps, "at least 1"),
            (self.mixed_precision in MIXED_PRECISION, "mixed_precision", self.mixed_precision, f"one of {MIXED_PRECISION}"),
            (self.log_every_images >= 1, "log_every_images", self.log_every_images, "at least 1"),
            (self.validate_every_images >= 0, "validate_every_images", self.validate_every_images, ">= 0"),
            (self.checkpoint_every_images >= 1, "checkpoint_every_images", self.checkpoint_every_images, "at least 1"),
            (self.keep_checkpoints >= 1, "keep_checkpoints", self.keep_checkpoints, "at least 1"),
            (self.optimizer.name in OPTIMIZERS, "optimizer.name", self.optimizer.name, f"one of {OPTIMIZERS}"),
            (0 <= self.optimizer.momentum < 1, "optimizer.momentum", self.optimizer.momentum, "in [0, 1)"),
            (self.optimizer.weight_decay >= 0, "optimizer.weight_decay", self.optimizer.weight_decay, ">= 0"),
            (self.schedule.name in SCHEDULES, "schedule.name", self.schedule.name, f"one of {SCHEDULES}"),
            (bool(self.schedule.rates) and all(rate > 0 for rate in self.schedule.rates), "schedule.rates",
             self.schedule.rates, "a non-empty list of positive rates"),
            (self.schedule.images_per_stage >= 1, "schedule.images_per_stage", self.schedule.images_per_stage, ">= 1"),
            (self.schedule.learning_rate > 0, "schedule.learning_rate", self.schedule.learning_rate, "positive"),
            (self.schedule.warmup_images >= 0, "schedule.warmup_images", self.schedule.warmup_images, ">= 0"),
            (self.data.crop_size >= 8, "data.crop_size", self.data.crop_size, "at least 8"),
            (self.data.crops_per_image >= 1, "data.crops_per_image", self.data.crops_per_image, "at least 1"),
            (self.data.num_workers >= 0, "data.num_workers", self.data.num_workers, ">= 0"),
            (0 <= self.data.noise_level_dropout <= 1, "data.noise_level_dropout", self.data.noise_level_dropout,
             "in [0, 1]"),
            (self.data.validation_images >= 0, "data.validation_images", self.data.validation_images, ">= 0"),
            (self.model.freeze in FREEZE_CHOICES, "model.freeze", self.model.freeze, f"one of {FREEZE_CHOICES}"),
            (self.model.task in (None, *list_tasks()), "model.task", self.model.task, f"None or one of {list_tasks()}"),
        ]
        for ok, name, value, expected in checks:
            if not ok:
                raise ValueError(f"training config: {name}={value!r} is invalid; expected {expected}")

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (YAML- and JSON-safe)."""
        values = dataclasses.asdict(self)
        values["optimizer"]["betas"] = list(self.optimizer.betas)
        return values

    def save(self, path: str | Path) -> Path:
        """Write the resolved configuration as YAML."""
        import yaml

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))
        return path


def _coerce(name: str, value: Any, default: Any) -> Any:
    """Convert ``value`` to the type of the field's default (YAML reads ``1e-3`` as a string)."""
    if default is None or value is None:
        return value
    try:
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise ValueError
            return value
        if isinstance(default, int):
            number = float(value)
            if number != int(number):
                raise ValueError
            return int(number)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, (list, tuple)):
            if not isinstance(value, (list, tuple)):
                raise ValueError
            items = [_coerce(name, item, default[0]) if default else item for item in value]
            return type(default)(items)
    except (TypeError, ValueError):
        raise ValueError(f"training config: {name}={value!r} is not a valid {type(default).__name__}") from None
    return value


def _default_of(field_: dataclasses.Field) -> Any:
    if field_.default is not dataclasses.MISSING:
        return field_.default
    if field_.default_factory is not dataclasses.MISSING:
        return field_.default_factory()
    return None


def _build_section(section: type, values: dict[str, Any], prefix: str):
    fields = {f.name: f for f in dataclasses.fields(section)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(f"training config: unknown key(s) {[f'{prefix}.{key}' for key in unknown]}; "
                         f"valid keys in '{prefix}': {sorted(fields)}")
    return section(**{key: _coerce(f"{prefix}.{key}", value, _default_of(fields[key])) for key, value in values.items()})


def training_config_from_dict(values: dict[str, Any]) -> TrainingConfig:
    """Build a :class:`TrainingConfig` from nested dicts, rejecting unknown keys by name."""
    fields = {f.name: f for f in dataclasses.fields(TrainingConfig)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(f"training config: unknown key(s) {unknown}; valid top-level keys: {sorted(fields)}")
    sections = ("model", "data", "optimizer", "schedule")
    values = {key: value if key in sections else _coerce(key, value, _default_of(fields[key]))
              for key, value in copy.deepcopy(values).items()}
    return TrainingConfig(**values)


def load_training_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> TrainingConfig:
    """Read a YAML training config (or start from the defaults) and apply dotted-key overrides.

    Args:
        path: a YAML file; None starts from the defaults.
        overrides: ``{"optimizer.name": "adam", "max_images": 1000}``.
    """
    values: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such training config")
        import yaml

        loaded = yaml.safe_load(path.read_text())
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: a training config must be a YAML mapping")
        values = loaded
    values = apply_overrides(values, overrides or {})
    return training_config_from_dict(values)


def apply_overrides(values: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of nested ``values`` with ``{"a.b": value}`` overrides set."""
    values = copy.deepcopy(values)
    for dotted, value in overrides.items():
        keys = dotted.split(".")
        target = values
        for key in keys[:-1]:
            target = target.setdefault(key, {})
            if not isinstance(target, dict):
                raise ValueError(f"override {dotted!r}: {key!r} is not a section")
        target[keys[-1]] = value
    return values


def parse_override_arguments(arguments: Iterable[str]) -> dict[str, Any]:
    """``["--optimizer.name", "adam", "--max_images=1000"]`` -> ``{"optimizer.name": "adam", "max_images": 1000}``.

    Values are parsed as YAML (numbers, booleans, lists); keys may use ``-`` or ``_``.
    """
    import yaml

    arguments = list(arguments)
    overrides: dict[str, Any] = {}
    index = 0
    while index < len(arguments):
        argument = arguments[index]
        if not argument.startswith("--"):
            raise ValueError(f"expected --key value, got {argument!r}")
        key = argument[2:]
        if "=" in key:
            key, raw = key.split("=", 1)
            index += 1
        else:
            if index + 1 >= len(arguments):
                raise ValueError(f"override --{key} has no value")
            raw = arguments[index + 1]
            index += 2
        overrides[key.replace("-", "_")] = yaml.safe_load(raw)
    return overrides


def resolve_mixed_precision(setting: str, use_cpu: bool = False) -> str:
    """Turn ``auto`` into ``bf16`` or ``no`` for this machine; other settings pass through."""
    import torch

    from .inference import has_native_bf16

    if setting != "auto":
        return setting
    device = "cuda" if not use_cpu and torch.cuda.is_available() else "cpu"
    return "bf16" if has_native_bf16(device) else "no"


# --- optimisers and schedules ----------------------------------------------------------------------


def build_optimizer(parameters, recipe: OptimizerRecipe, learning_rate: float) -> torch.optim.Optimizer:
    """The optimiser of a recipe (SGD, SGD with momentum, Adam or AdamW)."""
    import torch

    if recipe.name == "sgd":
        return torch.optim.SGD(parameters, lr=learning_rate, momentum=0.0, weight_decay=recipe.weight_decay)
    if recipe.name == "momentum":
        return torch.optim.SGD(parameters, lr=learning_rate, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    if recipe.name == "adam":
        return torch.optim.Adam(parameters, lr=learning_rate, betas=tuple(recipe.betas), eps=recipe.eps,
                                weight_decay=recipe.weight_decay)
    if recipe.name == "adamw":
        return torch.optim.AdamW(parameters, lr=learning_rate, betas=tuple(recipe.betas), eps=recipe.eps,
                                 weight_decay=recipe.weight_decay)
    raise ValueError(f"optimizer.name={recipe.name!r} is invalid; expected one of {OPTIMIZERS}")


class LearningRateSchedule:
    """The learning rate as a function of images seen (the chapter counts progress in images).

    Call it with ``images_seen`` for the rate; :meth:`stage` numbers the step schedule's stages (and
    is 0 for the other schedules), for colouring learning curves.
    """

    def __init__(self, recipe: ScheduleRecipe, max_images: int) -> None:
        self.recipe = recipe
        self.max_images = max_images

    def stage(self, images_seen: int) -> int:
        if self.recipe.name != "step":
            return 0
        return min(images_seen // self.recipe.images_per_stage, len(self.recipe.rates) - 1)

    def stage_boundaries(self) -> list[int]:
        """Images-seen counts at which the rate changes (the step schedule's stage starts)."""
        if self.recipe.name != "step":
            return []
        return [stage * self.recipe.images_per_stage for stage in range(1, len(self.recipe.rates))]

    def __call__(self, images_seen: int) -> float:
        recipe = self.recipe
        if recipe.name == "step":
            return float(recipe.rates[self.stage(images_seen)])
        if recipe.name == "constant":
            return float(recipe.learning_rate)
        if images_seen < recipe.warmup_images:
            return recipe.learning_rate * (images_seen + 1) / recipe.warmup_images
        span = max(1, self.max_images - recipe.warmup_images)
        progress = min(1.0, (images_seen - recipe.warmup_images) / span)
        cosine = 0.5 * (1 + math.cos(math.pi * progress))
        return recipe.final_learning_rate + (recipe.learning_rate - recipe.final_learning_rate) * cosine


def build_schedule(recipe: ScheduleRecipe, max_images: int) -> LearningRateSchedule:
    """The learning-rate schedule of a recipe."""
    return LearningRateSchedule(recipe, max_images)


# --- fine-tuning runs --------------------------------------------------------------------------------------

DEFAULT_FINETUNE_LEARNING_RATE = 1e-4
DEFAULT_FINETUNE_IMAGES = 20_000


def finetune_config(
    parent: str | os.PathLike,
    task: str,
    data: str,
    output_dir: str,
    learning_rate: float = DEFAULT_FINETUNE_LEARNING_RATE,
    freeze: str = "none",
    max_images: int = DEFAULT_FINETUNE_IMAGES,
    mask_channel: bool | None = None,
    task_options: dict[str, Any] | None = None,
    overrides: dict[str, Any] | None = None,
):
    """The :class:`TrainingConfig` of a fine-tuning run (``hfdae finetune``; run it with
    :func:`hfdae.training.train`, or :func:`hfdae.training.finetune`).

    Args:
        parent: the model to start from: a folder, zoo name, ``"default"`` or Hub id.
        task: a task of :func:`hfdae.protocols.list_tasks` (``"inpaint"``, ``"deblur"``, ``"denoise"`` ...).
        data: training images (folder, parquet, Hub dataset id); the ``train`` hash split is used
            and validation runs on its ``validation`` split with the task's protocol.
        output_dir: the run folder.
        learning_rate: the constant learning rate (small: the model is already trained).
        freeze: ``"none"`` or ``"encoder"`` (with the mask channel, the first block's input convolutions
            stay trainable: they hold the mask's weights).
        max_images: training images to see.
        mask_channel: give the model the mask as an input channel (default: True for ``inpaint``).
        task_options: the task's degradation options (see :func:`hfdae.protocols.task_degradation`).
        overrides: further training-config fields, dotted (``{"batch_size": 8, "data.crop_size": 96}``).
    """
    protocol = protocol_for_task(task)  # ValueError naming the tasks
    if learning_rate <= 0:
        raise ValueError(f"learning_rate must be positive, got {learning_rate}")
    mask_channel = protocol.mask_input if mask_channel is None else mask_channel
    if mask_channel and not protocol.mask_input:
        masked = [task for task in list_tasks() if protocol_for_task(task).mask_input]
        raise ValueError(f"mask_channel is for the {' and '.join(masked)} task, not {task!r}")
    # a local parent is named by the end of its path: the description travels in the model's card
    parent_name = "/".join(Path(parent).parts[-2:]) if Path(parent).exists() else str(parent)
    values = {
        "output_dir": output_dir,
        "description": f"fine-tuned from {parent_name} for {task}",
        "model": {"init_from": str(parent), "task": task, "mask_channel": mask_channel, "freeze": freeze},
        "data": {"source": data, "degradations": task_degradation(task, **(task_options or {}))},
        "optimizer": {"name": "adam"},
        "schedule": {"name": "constant", "learning_rate": learning_rate},
        "max_images": max_images,
        "validate_every_images": max(1, max_images // 4),
        "checkpoint_every_images": max(1, max_images // 4),
        "log_every_images": max(16, max_images // 100),
    }
    return training_config_from_dict(apply_overrides(values, overrides or {}))
