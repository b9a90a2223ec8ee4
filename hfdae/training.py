"""Training with Accelerate: the chapter's recipe, learning curves, checkpoints, resume, several processes.

>>> from hfdae.recipe import load_training_config
>>> from hfdae.training import Trainer
>>> result = Trainer(load_training_config("configs/tiny.yaml")).train()

A run folder holds::

    training_config.yaml   the resolved configuration
    log.jsonl              one JSON record per log interval (loss, lr, images/s) and per validation
    learning_curve.png     the chapter-style curve
    checkpoints/           full training state every ``checkpoint_every_images`` (atomic; see below)
    final/  best/          save_pretrained model folders (config.json + model.safetensors)

Checkpoints are written to a temporary folder and renamed, then the ``latest`` pointer is replaced
atomically, so a kill at any moment leaves the last good checkpoint intact. ``resume=True`` continues
exactly where the last checkpoint stopped: model, optimiser, data position, images seen; the
learning rate and the degradations are functions of images seen and step, so they follow.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import time
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .configuration_hfdae import DenoisingAutoencoderConfig
from .distributed import batches_checked_together, check_together
from .modeling_hfdae import DenoisingAutoencoder
from .recipe import TrainingConfig, build_optimizer, build_schedule, resolve_mixed_precision

__all__ = [
    "Trainer",
    "TrainingResult",
    "TrainingDivergedError",
    "RunFolderError",
    "NoCheckpointError",
    "train",
    "resolve_data_source",
    "SAMPLES_SOURCE",
]

logger = logging.getLogger(__name__)

SAMPLES_SOURCE = "hfdae:samples"
CHECKPOINTS = "checkpoints"
LOG = "log.jsonl"
LATEST_POINTER = "latest"
STATE_FILE = "trainer_state.json"
# everything a run writes into its folder: what --overwrite may delete, and nothing else
RUN_FILES = ("training_config.yaml", LOG, LOG + ".tmp", "learning_curve.png", CHECKPOINTS, "final",
             "final.tmp", "best", "best.tmp")


class TrainingDivergedError(RuntimeError):
    """The loss or a parameter became NaN or infinite."""


class RunFolderError(FileExistsError):
    """The run folder already holds a run (and neither resume nor overwrite was asked for), or holds other files."""


class NoCheckpointError(FileNotFoundError):
    """``resume`` was asked for but the run folder holds no complete checkpoint."""


@dataclass
class TrainingResult:
    """What a finished run produced."""

    output_dir: Path
    images_seen: int
    steps: int
    final_model: Path
    best_model: Path | None
    best_validation_psnr: float | None
    wall_seconds: float
    records: list[dict] = field(default_factory=list)


def resolve_data_source(source: str) -> str:
    """Map ``"hfdae:samples"`` to a folder of the bundled sample photos (written once to a cache folder)."""
    if source != SAMPLES_SOURCE:
        return source
    from .samples import SAMPLE_NAMES, write_sample_folder

    cache = Path(os.environ.get("HFDAE_CACHE", Path.home() / ".cache" / "hfdae")) / "samples"
    if not all((cache / f"{name}.png").is_file() for name in SAMPLE_NAMES):
        staging = cache.with_name(f"samples.tmp-{os.getpid()}")
        write_sample_folder(staging)
        shutil.rmtree(cache, ignore_errors=True)
        try:
            staging.rename(cache)
        except OSError:  # another process won the race: use its folder
            shutil.rmtree(staging, ignore_errors=True)
    return str(cache)


def _step_seed(seed: int, step: int, process_index: int) -> int:
    return zlib.crc32(f"{seed}/{step}/{process_index}".encode())


def _hardware_description() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"
    processor = platform.processor() or platform.machine()
    return f"CPU ({processor}, {os.cpu_count()} cores)"


class Trainer:
    """One training run of a :class:`~hfdae.recipe.TrainingConfig`.

    Args:
        config: the run's configuration.
        resume: continue from the run folder's last checkpoint.
        overwrite: delete whatever the run folder holds and start afresh.

    The model is built (or loaded) in the constructor, so ``trainer.model`` can be inspected or hooked
    before :meth:`train`.
    """

    def __init__(self, config: TrainingConfig, resume: bool = False, overwrite: bool = False) -> None:
        from accelerate import Accelerator
        from accelerate.utils import set_seed
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # the per-save "Writing model shards" bars

        if resume and overwrite:
            raise ValueError("resume and overwrite exclude each other")
        self.config = config
        self.output_dir = Path(config.output_dir)
        self.accelerator = Accelerator(
            mixed_precision=resolve_mixed_precision(config.mixed_precision, config.cpu),
            gradient_accumulation_steps=config.gradient_accumulation_steps,
            cpu=config.cpu,
        )
        self._check_process_count()
        if self.accelerator.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed crop sizes: cuDNN times its algorithms once, keeps the fastest
        self._resuming = resume
        self._prepare_run_folder(resume, overwrite)
        set_seed(config.seed)

        self.model = self._build_model()
        self.schedule = build_schedule(config.schedule, config.max_images)
        trainable = [parameter for parameter in self.model.parameters() if parameter.requires_grad]
        self.optimizer = build_optimizer(trainable, config.optimizer, self.schedule(0))
        from .degradations import build_degradation

        self.degradation = build_degradation(config.data.degradations)
        self.images_seen = 0
        self.steps = 0
        self.epoch = 0
        self.best_validation_psnr: float | None = None
        self.records: list[dict] = []
        self._start_time = time.time()
        self._elapsed_before_resume = 0.0
        self._last_validation_at: int | None = None

        self.dataset, self.loader = self._build_data()
        self.validation_images = self._load_validation_images()
        if config.compile:  # before prepare, so that DDP wraps the compiled module
            self.model = torch.compile(self.model)
        self.model, self.optimizer = self.accelerator.prepare(self.model, self.optimizer)
        if resume:
            self._load_checkpoint()

    # --- set-up ------------------------------------------------------------------------------------

    def _check_process_count(self) -> None:
        launched = os.environ.get("WORLD_SIZE")
        expected = self.config.expected_processes or (int(launched) if launched else None)
        actual = self.accelerator.num_processes
        if expected is not None and actual != expected:
            raise RuntimeError(
                f"Accelerate runs {actual} process(es) but {expected} were launched or expected: the launcher"
                " started independent copies. On CPU use `ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu"
                " --num_processes N ...` or `ACCELERATE_USE_CPU=1 torchrun --nproc_per_node N ...`"
            )

    def _bare_model(self) -> DenoisingAutoencoder:
        """The model without DDP or torch.compile wrappers (for saving, validation, checks)."""
        model = self.accelerator.unwrap_model(self.model, keep_torch_compile=False)
        return getattr(model, "_orig_mod", model)  # a compiled module inside DDP

    @property
    def task(self) -> str:
        """What the model learns (its config's ``task``; it chooses the validation protocol)."""
        return self._bare_model().config.task

    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process

    def _prepare_run_folder(self, resume: bool, overwrite: bool) -> None:
        holds_run = (self.output_dir / "training_config.yaml").exists() or (self.output_dir / CHECKPOINTS).exists()
        if resume:
            if self._latest_checkpoint() is None:
                raise NoCheckpointError(f"{self.output_dir}: no checkpoint to resume from")
        elif holds_run and not overwrite:
            raise RunFolderError(
                f"{self.output_dir} already holds a training run; pass resume=True (--resume) to continue it or"
                " overwrite=True (--overwrite) to replace it"
            )
        self.accelerator.wait_for_everyone()
        if overwrite and self.output_dir.exists():
            foreign = sorted(path.name for path in self.output_dir.iterdir() if path.name not in RUN_FILES)
            if foreign:
                raise RunFolderError(
                    f"{self.output_dir} holds files that are not a training run's ({', '.join(foreign[:5])}):"
                    " refusing to overwrite it; choose another output_dir"
                )
        self.accelerator.wait_for_everyone()
        if self.is_main:
            if overwrite:
                for name in RUN_FILES:
                    path = self.output_dir / name
                    shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
            self.output_dir.mkdir(parents=True, exist_ok=True)
            if resume:
                self._warn_about_config_changes()
            self.config.save(self.output_dir / "training_config.yaml")
        self.accelerator.wait_for_everyone()

    def _warn_about_config_changes(self) -> None:
        import yaml

        saved_path = self.output_dir / "training_config.yaml"
        if not saved_path.exists():
            return
        saved = yaml.safe_load(saved_path.read_text())
        current = self.config.to_dict()
        changed = sorted(key for key in set(saved) | set(current) if saved.get(key) != current.get(key))
        if changed:
            warnings.warn(f"resuming {self.output_dir} with changed settings: {changed}", stacklevel=3)

    def _build_model(self) -> DenoisingAutoencoder:
        from .finetuning import frozen_modules, input_convolutions, record_parent, widen_input_channels

        recipe = self.config.model
        if recipe.init_from:
            self._check_parent_overrides(recipe.overrides)
        checkpoint = self._latest_checkpoint() if self._resuming else None
        if recipe.init_from and checkpoint is not None:
            # a resumed fine-tune: the checkpoint holds the widened or converted model and its lineage; the parent
            # need not be reachable any more (its weights are overwritten by the checkpoint's anyway)
            model = DenoisingAutoencoder(DenoisingAutoencoderConfig.from_pretrained(checkpoint / "model"))
        elif recipe.init_from:
            from .inference import load_model

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = load_model(recipe.init_from)
            record_parent(model, recipe.init_from)
            model = self._convert_parent(model, recipe.overrides)
        else:
            overrides = dict(recipe.overrides)
            if recipe.mask_channel:
                overrides.setdefault("extra_input_channels", 1)
            model = DenoisingAutoencoder(DenoisingAutoencoderConfig.from_preset(recipe.preset, **overrides))
        if recipe.mask_channel and model.config.extra_input_channels == 0:
            model = widen_input_channels(model, 1)
        if recipe.task is not None:
            model.config.task = recipe.task
        self._frozen = frozen_modules(model, recipe.freeze)
        for module in self._frozen:
            module.requires_grad_(False)
        if recipe.mask_channel and self._frozen:
            # the mask's (zero-initialised) weights live in the first convolutions: a frozen encoder
            # would keep them at zero and the mask would never reach the output
            for convolution in input_convolutions(model):
                convolution.requires_grad_(True)
        if self.config.channels_last:
            model = model.to(memory_format=torch.channels_last)
        return self._train_mode(model)

    @staticmethod
    def _check_parent_overrides(overrides: dict) -> None:
        """With ``model.init_from``, ``model.overrides`` may only hold the architecture changes that keep
        the parent's weights meaningful (:data:`hfdae.finetuning.PARENT_OVERRIDES`)."""
        from .finetuning import PARENT_OVERRIDES

        unsupported = sorted(set(overrides) - set(PARENT_OVERRIDES))
        if unsupported:
            raise ValueError(f"model.overrides {unsupported} cannot change a model loaded with model.init_from;"
                             f" only {list(PARENT_OVERRIDES)} (converted by hfdae.finetuning.convert_upsampling) can")

    @staticmethod
    def _convert_parent(model: DenoisingAutoencoder, overrides: dict) -> DenoisingAutoencoder:
        """Apply ``model.overrides`` (checked by :meth:`_check_parent_overrides`) to a loaded parent."""
        from .finetuning import convert_upsampling

        if "upsample" in overrides and overrides["upsample"] != model.config.upsample:
            model = convert_upsampling(model, overrides["upsample"])
        return model

    def _train_mode(self, model: DenoisingAutoencoder) -> DenoisingAutoencoder:
        """Training mode, except frozen parts: their batch norms keep their running statistics."""
        model.train()
        for module in self._frozen:
            module.eval()
        return model

    def _build_data(self):
        from .data import crop_dataset, make_dataloader

        data = self.config.data
        with self.accelerator.main_process_first():  # the main process writes the sample cache once
            source = resolve_data_source(data.source)
        dataset = crop_dataset(
            source,
            crop_size=data.crop_size,
            channels=self.model.config.image_channels,
            split=data.split,
            shuffle_buffer=data.shuffle_buffer,
            seed=self.config.seed,
            crops_per_image=data.crops_per_image,
            overexposure=data.overexposure,
            num_processes=self.accelerator.num_processes,
            process_index=self.accelerator.process_index,
        )
        loader = make_dataloader(
            dataset, self.config.batch_size, num_workers=data.num_workers, pin_memory=torch.cuda.is_available()
        )
        return dataset, loader

    def _load_validation_images(self) -> list[tuple[str, torch.Tensor]]:
        data = self.config.data
        if data.validation_images == 0 or not self.is_main:
            return []
        from .data import load_images
        from .processing import center_crop

        source = resolve_data_source(data.validation_source or data.source)
        try:
            images, _ = load_images(
                source, self.model.config.image_channels, split=data.validation_split, limit=data.validation_images
            )
        except (RuntimeError, FileNotFoundError, ValueError) as error:
            warnings.warn(f"no validation images ({error}); the best model will be the final one", stacklevel=2)
            return []
        crop = data.validation_crop or None
        return [(name, center_crop(image, crop)) for name, image in images]

    # --- the loop ----------------------------------------------------------------------------------

    def train(self) -> TrainingResult:
        """Train until ``max_images`` images have been seen; returns where everything was written."""
        from tqdm.auto import tqdm

        config = self.config
        accelerator = self.accelerator
        images_per_step = config.batch_size * accelerator.num_processes
        progress = tqdm(
            total=config.max_images, initial=self.images_seen, unit="img", unit_scale=True,
            disable=not self.is_main, desc=self.output_dir.name, dynamic_ncols=True,
        )
        interval = _IntervalStats()
        next_log = self._next_multiple(config.log_every_images)
        next_checkpoint = self._next_multiple(config.checkpoint_every_images)
        next_validation = self._next_multiple(config.validate_every_images) if config.validate_every_images else None
        interval_start = time.time()

        empty_epochs_in_a_row = 0
        while self.images_seen < config.max_images:
            self.dataset.set_epoch(self.epoch)
            batches_this_epoch = 0
            for clean in batches_checked_together(accelerator, self.loader):  # a failing process stops all
                batches_this_epoch += 1
                learning_rate = self.schedule(self.images_seen)
                loss = self._train_step(clean, learning_rate)
                self.steps += 1
                self.images_seen += images_per_step
                interval.add(loss, learning_rate)
                progress.update(images_per_step)

                if self.images_seen >= next_log or self.images_seen >= config.max_images:
                    seconds = time.time() - interval_start
                    record = interval.record(self.images_seen, self.steps, self.schedule.stage(self.images_seen - 1),
                                             interval.steps * images_per_step / max(seconds, 1e-9))
                    self._check_parameters_finite(learning_rate)
                    self._log(record)
                    progress.set_postfix(loss=f"{record['loss']:.3f}", lr=f"{learning_rate:.1e}",
                                         img_s=f"{record['images_per_second']:.1f}")
                    interval = _IntervalStats()
                    interval_start = time.time()
                    next_log = self._next_multiple(config.log_every_images)
                if next_validation is not None and self.images_seen >= next_validation:
                    self._validate()
                    next_validation = self._next_multiple(config.validate_every_images)
                # only between optimiser steps: a checkpoint never splits a gradient-accumulation cycle
                if (self.images_seen >= next_checkpoint and self.images_seen < config.max_images
                        and accelerator.sync_gradients):
                    self.save_checkpoint()
                    next_checkpoint = self._next_multiple(config.checkpoint_every_images)
                if self.images_seen >= config.max_images:
                    break
            else:
                # one empty epoch is normal right after resuming from a checkpoint taken at an epoch's end
                empty_epochs_in_a_row = empty_epochs_in_a_row + 1 if batches_this_epoch == 0 else 0
                if empty_epochs_in_a_row > 1:
                    check_together(accelerator, RuntimeError(
                        f"{config.data.source}: an epoch gave no batch of {config.batch_size}; the data (split) has"
                        " fewer images than one batch per process"
                    ))
                self.epoch += 1
        progress.close()
        if self._last_validation_at != self.images_seen:  # decided alike on every process
            self._validate()
        return self._finish()

    def _next_multiple(self, every: int) -> int:
        return (self.images_seen // every + 1) * every

    def _train_step(self, clean: torch.Tensor, learning_rate: float) -> torch.Tensor:
        accelerator = self.accelerator
        memory_format = torch.channels_last if self.config.channels_last else torch.contiguous_format
        clean = clean.to(accelerator.device, non_blocking=True).contiguous(memory_format=memory_format)
        # degradations are drawn per step and process from a fixed seed: reproducible and resumable
        generator = torch.Generator(device=clean.device).manual_seed(
            _step_seed(self.config.seed, self.steps, accelerator.process_index)
        )
        degraded = self.degradation(clean, generator=generator)
        extra_inputs = None
        if self._bare_model().config.extra_input_channels:  # the inpainting mask (zeros where nothing is masked)
            mask = degraded.mask if degraded.mask is not None else torch.zeros_like(clean[:, :1])
            extra_inputs = mask.to(clean.dtype).contiguous(memory_format=memory_format)
        noise_level = self._noise_level(degraded, generator)
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate
        with accelerator.accumulate(self.model):
            with accelerator.autocast():
                output = self.model(pixel_values=degraded.images, labels=clean, extra_inputs=extra_inputs,
                                    noise_level=noise_level)
            accelerator.backward(output.loss)
            if self.config.optimizer.max_grad_norm > 0 and accelerator.sync_gradients:
                accelerator.clip_grad_norm_(self.model.parameters(), self.config.optimizer.max_grad_norm)
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        parts = torch.stack([output.loss.detach().float(), output.mse.float(), output.l1.float(),
                             output.out_of_range.float()])
        parts = accelerator.reduce(parts, reduction="mean")
        if not torch.isfinite(parts[0]):
            self._diverged(f"the loss is {parts[0].item()}", learning_rate)
        return parts

    def _noise_level(self, degraded, generator: torch.Generator) -> torch.Tensor | None:
        """For a model with a noise-level input: each crop's Gaussian sigma, or NaN (blind) for crops without
        Gaussian noise and for a ``data.noise_level_dropout`` fraction of the others."""
        if not self._bare_model().config.noise_level_input:
            return None
        from .degradations import gaussian_sigma

        sigma = gaussian_sigma(self.degradation, degraded)
        dropped = torch.rand(sigma.shape, generator=generator, device=sigma.device) < self.config.data.noise_level_dropout
        return torch.where(dropped, torch.full_like(sigma, float("nan")), sigma)

    def _diverged(self, what: str, learning_rate: float) -> None:
        latest = self._latest_checkpoint()
        kept = f"the last good checkpoint is {latest}" if latest else "no checkpoint had been written yet"
        raise TrainingDivergedError(
            f"training diverged at step {self.steps + 1} ({self.images_seen:,} images seen, learning rate"
            f" {learning_rate:.3g}): {what}. {kept}. Try a smaller learning rate (for example"
            f" {learning_rate / 3:.2g}), gradient clipping (optimizer.max_grad_norm), or `hfdae lr-find`."
        )

    def _check_parameters_finite(self, learning_rate: float) -> None:
        for name, parameter in self._bare_model().named_parameters():
            if not torch.isfinite(parameter).all():
                self._diverged(f"parameter {name} is not finite", learning_rate)

    def _log(self, record: dict) -> None:
        self.records.append(record)
        if self.is_main:
            with open(self.output_dir / LOG, "a") as log:
                log.write(json.dumps(record) + "\n")

    # --- validation --------------------------------------------------------------------------------

    def _validate(self) -> float | None:
        self.accelerator.wait_for_everyone()
        self._last_validation_at = self.images_seen
        value = None
        if self.is_main and self.validation_images:
            from .evaluation import AVERAGE, TASK_PROTOCOLS, Method, evaluate, protocol_conditions

            model = self._bare_model()
            protocol = TASK_PROTOCOLS[model.config.task]
            report = evaluate([Method.from_model(model, "model")], self.validation_images, protocol,
                              seed=self.config.seed, with_ssim=False, progress=False)
            self._train_mode(model)
            per_condition = {c: report.summary("model", c)["mean"] for c in protocol_conditions(protocol)}
            # the chapter's five-output average; other protocols: the mean over their conditions
            per_condition[AVERAGE] = (report.summary("model", AVERAGE)["mean"] if protocol == "seed"
                                      else sum(per_condition.values()) / len(per_condition))
            value = per_condition[AVERAGE]
            record = {"images_seen": self.images_seen, "steps": self.steps, "validation_psnr": value,
                      "validation_psnr_per_condition": per_condition}
            self._log(record)
            if self.best_validation_psnr is None or value > self.best_validation_psnr:
                self.best_validation_psnr = value
                self._save_model(self.output_dir / "best")
        self.accelerator.wait_for_everyone()
        return value

    # --- checkpoints -------------------------------------------------------------------------------

    def _checkpoints_dir(self) -> Path:
        return self.output_dir / CHECKPOINTS

    def _latest_checkpoint(self) -> Path | None:
        pointer = self._checkpoints_dir() / LATEST_POINTER
        if pointer.is_file():
            candidate = self._checkpoints_dir() / pointer.read_text().strip()
            if (candidate / STATE_FILE).is_file():
                return candidate
        # no (valid) pointer: the newest complete checkpoint folder, if any
        complete = sorted(path for path in self._checkpoints_dir().glob("images-*") if (path / STATE_FILE).is_file())
        return complete[-1] if complete else None

    def _model_for_saving(self) -> DenoisingAutoencoder:
        model = self._bare_model()
        model.config.images_seen = self.images_seen
        model.config.training_summary = self._training_summary()
        return model

    def _save_model(self, folder: Path) -> Path:
        model = self._model_for_saving()
        staging = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        model.save_pretrained(staging)
        shutil.rmtree(folder, ignore_errors=True)
        staging.rename(folder)
        return folder

    def save_checkpoint(self) -> Path:
        """Write the full training state atomically; returns the checkpoint folder."""
        accelerator = self.accelerator
        name = f"images-{self.images_seen:012d}"
        final = self._checkpoints_dir() / name
        staging = self._checkpoints_dir() / f".tmp-{name}"
        accelerator.wait_for_everyone()
        if self.is_main:
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
        accelerator.wait_for_everyone()
        # every process saves its own data position (processes may hold different file counts, so
        # their epochs can drift apart by one)
        torch.save({"epoch": self.epoch, "loader": self.loader.state_dict()},
                   staging / f"data_state_rank{accelerator.process_index}.pt")
        accelerator.wait_for_everyone()
        if self.is_main:
            self._model_for_saving().save_pretrained(staging / "model")
            torch.save(self.optimizer.state_dict(), staging / "optimizer.pt")
            if accelerator.scaler is not None:  # fp16 loss scaling
                torch.save(accelerator.scaler.state_dict(), staging / "scaler.pt")
            torch.save({"cpu": torch.get_rng_state(),
                        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
                       staging / "rng_state.pt")
            state = {
                "images_seen": self.images_seen,
                "steps": self.steps,
                "best_validation_psnr": self.best_validation_psnr,
                "num_processes": accelerator.num_processes,
                "elapsed_seconds": self._elapsed(),
            }
            # the state file is written last: a folder without it is incomplete
            (staging / STATE_FILE).write_text(json.dumps(state, indent=2))
            shutil.rmtree(final, ignore_errors=True)
            staging.rename(final)
            pointer = self._checkpoints_dir() / LATEST_POINTER
            pointer_staging = pointer.with_name(LATEST_POINTER + ".tmp")
            pointer_staging.write_text(name)
            os.replace(pointer_staging, pointer)
            self._prune_checkpoints(keep=final)
            if self.records:
                self._plot()
        accelerator.wait_for_everyone()
        return final

    def _prune_checkpoints(self, keep: Path) -> None:
        complete = sorted(path for path in self._checkpoints_dir().glob("images-*") if path.is_dir())
        for old in complete[: max(0, len(complete) - self.config.keep_checkpoints)]:
            if old != keep:
                shutil.rmtree(old, ignore_errors=True)

    def _load_checkpoint(self) -> None:
        checkpoint = self._latest_checkpoint()
        state = json.loads((checkpoint / STATE_FILE).read_text())
        if state["num_processes"] != self.accelerator.num_processes:
            raise RuntimeError(
                f"{checkpoint} was written by {state['num_processes']} process(es); resume it with the same number"
                f" (this run has {self.accelerator.num_processes})"
            )
        from safetensors.torch import load_file

        model = self._bare_model()
        weights = load_file(checkpoint / "model" / "model.safetensors", device=str(self.accelerator.device))
        missing, unexpected = model.load_state_dict(weights, strict=False)
        if missing or unexpected:
            raise RuntimeError(f"{checkpoint}: checkpoint does not match the model: missing {missing}, unexpected {unexpected}")
        self.optimizer.load_state_dict(torch.load(checkpoint / "optimizer.pt", weights_only=True,
                                                  map_location=self.accelerator.device))
        if self.accelerator.scaler is not None and (checkpoint / "scaler.pt").is_file():
            self.accelerator.scaler.load_state_dict(torch.load(checkpoint / "scaler.pt", weights_only=True))
        rng = torch.load(checkpoint / "rng_state.pt", weights_only=True)
        torch.set_rng_state(rng["cpu"])
        if rng["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        data_state = torch.load(checkpoint / f"data_state_rank{self.accelerator.process_index}.pt", weights_only=True)
        self.images_seen = state["images_seen"]
        self.steps = state["steps"]
        self.epoch = data_state["epoch"]
        # best/ may have been written after this checkpoint: its own record of its PSNR wins
        best_config = self.output_dir / "best" / "config.json"
        best_summary = json.loads(best_config.read_text()).get("training_summary") if best_config.is_file() else None
        self.best_validation_psnr = (best_summary or {}).get("best_validation_psnr", state["best_validation_psnr"])
        self._elapsed_before_resume = state.get("elapsed_seconds", 0.0)
        self._start_time = time.time()
        self.dataset.set_epoch(self.epoch)
        self.loader.load_state_dict(data_state["loader"])
        if self.is_main:  # records written after the checkpoint will be written again: drop them
            self.records = self._read_log(up_to=self.images_seen)
            staging = self.output_dir / (LOG + ".tmp")
            staging.write_text("".join(json.dumps(record) + "\n" for record in self.records))
            os.replace(staging, self.output_dir / LOG)
        self.accelerator.wait_for_everyone()
        logger.info("resumed %s at %d images seen", checkpoint, self.images_seen)

    def _read_log(self, up_to: int) -> list[dict]:
        return [record for record in read_log(self.output_dir, missing_ok=True) if record["images_seen"] <= up_to]

    # --- the end -----------------------------------------------------------------------------------

    def _elapsed(self) -> float:
        return self._elapsed_before_resume + time.time() - self._start_time

    def _training_summary(self) -> dict[str, Any]:
        config = self.config
        return {
            "description": config.description,
            "data": config.data.source,
            "data_split": config.data.split,
            "crop_size": config.data.crop_size,
            "degradations": config.data.degradations,
            "optimizer": config.optimizer.name,
            "schedule": config.schedule.name,
            "schedule_rates": list(config.schedule.rates) if config.schedule.name == "step" else None,
            "learning_rate": config.schedule.learning_rate if config.schedule.name != "step" else None,
            "batch_size": config.batch_size * self.accelerator.num_processes * config.gradient_accumulation_steps,
            "images_seen": self.images_seen,
            "mixed_precision": self.accelerator.mixed_precision,
            "hardware": _hardware_description(),
            "processes": self.accelerator.num_processes,
            "wall_seconds": round(self._elapsed(), 1),
            "best_validation_psnr": self.best_validation_psnr,
            "seed": config.seed,
            "task": self._bare_model().config.task,
            "init_from": config.model.init_from,
            "freeze": config.model.freeze,
        }

    def _plot(self) -> None:
        from .plots import learning_curve

        learning_curve(self.records, self.output_dir / "learning_curve.png", title=str(self.output_dir.name))

    def _finish(self) -> TrainingResult:
        accelerator = self.accelerator
        accelerator.wait_for_everyone()
        final = self.output_dir / "final"
        best = self.output_dir / "best"
        if self.is_main:
            self._save_model(final)
            if not best.exists():  # no validation images: the best is the final model
                shutil.copytree(final, best)
            self._plot()
        accelerator.wait_for_everyone()
        return TrainingResult(
            output_dir=self.output_dir,
            images_seen=self.images_seen,
            steps=self.steps,
            final_model=final,
            best_model=best if best.exists() else None,
            best_validation_psnr=self.best_validation_psnr,
            wall_seconds=self._elapsed(),
            records=self.records,
        )


class _IntervalStats:
    """Sums of the step values between two log records, kept as tensors until the record is written."""

    def __init__(self) -> None:
        self.sums: torch.Tensor | None = None
        self.steps = 0
        self.learning_rate = 0.0

    def add(self, parts: torch.Tensor, learning_rate: float) -> None:
        self.sums = parts if self.sums is None else self.sums + parts
        self.steps += 1
        self.learning_rate = learning_rate

    def record(self, images_seen: int, steps: int, stage: int, images_per_second: float) -> dict:
        means = (self.sums / max(1, self.steps)).tolist()
        return {
            "images_seen": images_seen,
            "steps": steps,
            "loss": means[0],
            "mse": means[1],
            "l1": means[2],
            "out_of_range": means[3],
            "learning_rate": self.learning_rate,
            "stage": stage,
            "images_per_second": images_per_second,
            "time": time.time(),
        }


def read_log(run_dir: str | Path, missing_ok: bool = False) -> list[dict]:
    """The records of a training run's ``log.jsonl``, in order: one per log interval (``images_seen``,
    ``loss`` and its parts, ``learning_rate``, ``images_per_second``...) and one per validation
    (``validation_psnr``). A folder without a log raises ``FileNotFoundError`` naming the file, or gives
    ``[]`` with ``missing_ok``."""
    path = Path(run_dir) / LOG
    if not path.is_file():
        if missing_ok:
            return []
        raise FileNotFoundError(f"{path}: no training log here (is {run_dir} a training run folder?)")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def train(config: TrainingConfig, resume: bool = False, overwrite: bool = False) -> TrainingResult:
    """Train a model; see :class:`Trainer`."""
    return Trainer(config, resume=resume, overwrite=overwrite).train()
