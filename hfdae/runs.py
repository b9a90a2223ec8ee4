"""Run folders and model sources: the one place that knows the layout of a training run and what a model
source string means.

A training run folder holds::

    training_config.yaml   the resolved training configuration
    log.jsonl              one JSON record per log interval (loss, lr, images/s) and per validation
    learning_curve.png     the chapter-style curve
    checkpoints/           full training states (``images-<images seen>/``, ``latest`` names the newest)
    final/  best/          model folders (``save_pretrained``: config.json + model.safetensors)

Every write is atomic: a folder is written under a temporary name and renamed, the ``latest`` pointer and
the log are replaced with ``os.replace``, so a kill at any moment leaves the last good checkpoint (and the
last good model folders) intact. A checkpoint is Accelerate's ``save_state`` (model weights as safetensors,
optimiser, gradient scaler, the random states of every process), plus the model's ``config.json``, each
process's data position and ``trainer_state.json``, which is written last: a folder without it is incomplete.

A model source (``hfdae.load_model``, ``--model``, ``hfdae card``, ``hfdae push``, ``model.init_from``) is,
in this order: ``"default"`` (the embedded model), a zoo name (:mod:`hfdae.zoo`), a model folder, a run
folder (its ``best/`` model, or ``final/``), or a Hub repo id (:func:`resolve_model_source`).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .configuration_hfdae import DenoisingAutoencoderConfig
from .modeling_hfdae import DenoisingAutoencoder
from .zoo import EMBEDDED_MODEL_DIR, ZOO, ZooEntry, ZooModelUnavailableError

__all__ = [
    "TRAINING_CONFIG",
    "read_jsonl",
    "validation_records",
    "LOG",
    "LEARNING_CURVE",
    "CHECKPOINTS",
    "BEST",
    "FINAL",
    "RUN_FILES",
    "DEFAULT_MODEL",
    "RunFolderError",
    "is_run_folder",
    "check_run_folder",
    "clear_run_folder",
    "read_log",
    "append_log",
    "rewrite_log",
    "save_model_folder",
    "latest_checkpoint",
    "write_checkpoint",
    "read_checkpoint",
    "checkpoint_config",
    "checkpoint_model",
    "ModelSource",
    "resolve_model_source",
]

TRAINING_CONFIG = "training_config.yaml"
LOG = "log.jsonl"
LEARNING_CURVE = "learning_curve.png"
CHECKPOINTS = "checkpoints"
BEST = "best"
FINAL = "final"
LATEST_POINTER = "latest"
STATE_FILE = "trainer_state.json"
CHECKPOINT_MODEL = "model"  # the model's config.json inside a checkpoint (to rebuild a widened or converted model)
# everything a run writes into its folder: what an overwrite may delete, and nothing else
RUN_FILES = (TRAINING_CONFIG, LOG, LOG + ".tmp", LEARNING_CURVE, CHECKPOINTS, FINAL, FINAL + ".tmp", BEST, BEST + ".tmp")
DEFAULT_MODEL = "default"


class RunFolderError(FileExistsError):
    """The run folder already holds a run (and neither resume nor overwrite was asked for), or holds other files."""


# --- the run folder ------------------------------------------------------------------------------------------


def is_run_folder(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` holds a training run (its configuration, log or checkpoints)."""
    folder = Path(folder)
    return any((folder / name).exists() for name in (TRAINING_CONFIG, LOG, CHECKPOINTS))


def check_run_folder(folder: str | os.PathLike, resume: bool, overwrite: bool) -> None:
    """Raise :class:`RunFolderError` where starting a run in ``folder`` would lose something.

    A folder holding a run needs ``resume`` or ``overwrite``; ``overwrite`` refuses a folder that also holds
    files no run writes (it would delete them).
    """
    folder = Path(folder)
    holds_run = (folder / TRAINING_CONFIG).exists() or (folder / CHECKPOINTS).exists()
    if holds_run and not (resume or overwrite):
        raise RunFolderError(f"{folder} already holds a training run; pass resume=True (--resume) to continue it or"
                             " overwrite=True (--overwrite) to replace it")
    if overwrite and folder.exists():
        foreign = sorted(path.name for path in folder.iterdir() if path.name not in RUN_FILES)
        if foreign:
            raise RunFolderError(f"{folder} holds files that are not a training run's ({', '.join(foreign[:5])}):"
                                 " refusing to overwrite it; choose another output_dir")


def clear_run_folder(folder: str | os.PathLike) -> None:
    """Delete what a run wrote into ``folder`` (only :data:`RUN_FILES`)."""
    for name in RUN_FILES:
        path = Path(folder) / name
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)


def read_log(run_dir: str | os.PathLike, missing_ok: bool = False) -> list[dict]:
    """The records of a run's ``log.jsonl``, in order: one per log interval (``images_seen``, ``loss`` and its
    parts, ``learning_rate``, ``images_per_second`` ...) and one per validation (``validation_psnr``,
    ``validation_psnr_per_condition``, ``validation_metric``). A folder without a log raises
    ``FileNotFoundError`` naming the file, or gives ``[]`` with ``missing_ok``."""
    path = Path(run_dir) / LOG
    if not path.is_file():
        if missing_ok:
            return []
        raise FileNotFoundError(f"{path}: no training log here (is {run_dir} a training run folder?)")
    return read_jsonl(path)


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """The records of a JSON-lines file (one JSON object per line; blank lines skipped)."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def validation_records(records: list[dict]) -> list[dict]:
    """The validation records among a run's log records (those with ``validation_psnr``)."""
    return [record for record in records if "validation_psnr" in record]


def append_log(run_dir: str | os.PathLike, record: dict) -> None:
    """Add one record to the run's log."""
    with open(Path(run_dir) / LOG, "a") as log:
        log.write(json.dumps(record) + "\n")


def rewrite_log(run_dir: str | os.PathLike, records: list[dict]) -> None:
    """Replace the run's log with ``records`` atomically (on resume, records after the checkpoint are dropped)."""
    staging = Path(run_dir) / (LOG + ".tmp")
    staging.write_text("".join(json.dumps(record) + "\n" for record in records))
    os.replace(staging, Path(run_dir) / LOG)


def _replace_folder(staging: Path, folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)


def save_model_folder(model: DenoisingAutoencoder, folder: str | os.PathLike) -> Path:
    """``model.save_pretrained(folder)`` atomically (written under ``folder.tmp``, then renamed)."""
    folder = Path(folder)
    staging = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    _replace_folder(staging, folder)
    return folder


# --- checkpoints ---------------------------------------------------------------------------------------------


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint of a run (the ``latest`` pointer, else the newest complete folder), or None."""
    checkpoints = Path(run_dir) / CHECKPOINTS
    pointer = checkpoints / LATEST_POINTER
    if pointer.is_file():
        candidate = checkpoints / pointer.read_text().strip()
        if (candidate / STATE_FILE).is_file():
            return candidate
    complete = sorted(path for path in checkpoints.glob("images-*") if (path / STATE_FILE).is_file())
    return complete[-1] if complete else None


def write_checkpoint(accelerator, run_dir: str | os.PathLike, state: dict[str, Any], config: DenoisingAutoencoderConfig,
                     process_state: dict[str, Any], keep: int, on_written: Callable[[], None] | None = None) -> Path:
    """Write a full training state atomically; every process calls this. Returns the checkpoint folder.

    Args:
        accelerator: the run's ``Accelerator`` (its ``save_state`` writes the model, optimiser, scaler and
            random states of every process).
        run_dir: the run folder.
        state: the trainer's counters (``images_seen`` names the checkpoint); written last, as ``trainer_state.json``.
        config: the model's configuration (saved beside, to rebuild a widened or converted model on resume).
        process_state: this process's own state (its data position), saved per process.
        keep: how many checkpoints to keep (older ones are deleted after the new one is complete).
        on_written: called on the main process once the checkpoint is in place (e.g. to redraw the curve).
    """
    checkpoints = Path(run_dir) / CHECKPOINTS
    name = f"images-{int(state['images_seen']):012d}"
    final = checkpoints / name
    staging = checkpoints / f".tmp-{name}"
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(staging))
    # every process saves its own data position (processes may hold different file counts, so their epochs
    # can drift apart by one)
    torch.save(process_state, staging / f"data_state_rank{accelerator.process_index}.pt")
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        config.save_pretrained(staging / CHECKPOINT_MODEL)
        (staging / STATE_FILE).write_text(json.dumps({**state, "num_processes": accelerator.num_processes}, indent=2))
        _replace_folder(staging, final)
        pointer = checkpoints / LATEST_POINTER
        pointer_staging = pointer.with_name(LATEST_POINTER + ".tmp")
        pointer_staging.write_text(name)
        os.replace(pointer_staging, pointer)
        complete = sorted(path for path in checkpoints.glob("images-*") if path.is_dir())
        for old in complete[: max(0, len(complete) - keep)]:
            if old != final:
                shutil.rmtree(old, ignore_errors=True)
        if on_written is not None:
            on_written()
    accelerator.wait_for_everyone()
    return final


def read_checkpoint(accelerator, checkpoint: str | os.PathLike, model: torch.nn.Module | None = None,
                    optimizer: torch.optim.Optimizer | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Restore a checkpoint of :func:`write_checkpoint` into the prepared model and optimiser (Accelerate's
    ``load_state``: strict). Returns ``(trainer state, this process's state)``.

    Checkpoints written before hfdae used ``save_state`` (``model/model.safetensors``, ``optimizer.pt``,
    ``rng_state.pt``) are read too; they need ``model`` (unwrapped) and ``optimizer``.

    Raises:
        RuntimeError: the checkpoint was written by another number of processes, or does not match the model.
    """
    checkpoint = Path(checkpoint)
    state = json.loads((checkpoint / STATE_FILE).read_text())
    if state["num_processes"] != accelerator.num_processes:
        raise RuntimeError(f"{checkpoint} was written by {state['num_processes']} process(es); resume it with the same"
                           f" number (this run has {accelerator.num_processes})")
    if (checkpoint / "optimizer.pt").is_file():
        _read_legacy_checkpoint(accelerator, checkpoint, model, optimizer)
    else:
        accelerator.load_state(str(checkpoint))
    process_state = torch.load(checkpoint / f"data_state_rank{accelerator.process_index}.pt", weights_only=True)
    return state, process_state


def _read_legacy_checkpoint(accelerator, checkpoint: Path, model, optimizer) -> None:
    from safetensors.torch import load_file

    weights = load_file(checkpoint / CHECKPOINT_MODEL / "model.safetensors", device=str(accelerator.device))
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise RuntimeError(f"{checkpoint}: checkpoint does not match the model: missing {missing}, unexpected {unexpected}")
    optimizer.load_state_dict(torch.load(checkpoint / "optimizer.pt", weights_only=True, map_location=accelerator.device))
    if accelerator.scaler is not None and (checkpoint / "scaler.pt").is_file():
        accelerator.scaler.load_state_dict(torch.load(checkpoint / "scaler.pt", weights_only=True))
    rng = torch.load(checkpoint / "rng_state.pt", weights_only=True)
    torch.set_rng_state(rng["cpu"])
    if rng["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])


def checkpoint_config(checkpoint: str | os.PathLike) -> DenoisingAutoencoderConfig:
    """The model configuration saved in a checkpoint."""
    return DenoisingAutoencoderConfig.from_pretrained(Path(checkpoint) / CHECKPOINT_MODEL)


def checkpoint_model(checkpoint: str | os.PathLike) -> DenoisingAutoencoder:
    """The model of a checkpoint (to look at or evaluate it before the run has written ``best/`` or ``final/``),
    in eval mode; loading is strict."""
    from safetensors.torch import load_file

    checkpoint = Path(checkpoint)
    model = DenoisingAutoencoder(checkpoint_config(checkpoint))
    legacy = checkpoint / CHECKPOINT_MODEL / "model.safetensors"
    weights = load_file(legacy if legacy.is_file() else checkpoint / "model.safetensors")
    # the keys of the prepared model: torch.compile and DDP wrap it in `_orig_mod.` and `module.`
    prefixes = ("module.", "_orig_mod.")
    cleaned = {}
    for key, tensor in weights.items():
        while key.startswith(prefixes):
            key = key.split(".", 1)[1]
        cleaned[key] = tensor
    model.load_state_dict(cleaned, strict=True)
    return model.eval()


# --- model sources -------------------------------------------------------------------------------------------


@dataclass
class ModelSource:
    """What a model source string resolved to.

    Args:
        name: the string as given.
        kind: ``"default"``, ``"zoo"``, ``"folder"``, ``"run"`` or ``"hub"``.
        location: the model folder, or the Hub repo id (``kind="hub"``, or a published zoo entry not on this machine).
        run_dir: the training run folder when the model is a run's ``best/`` or ``final/``, else None.
        zoo_entry: the zoo entry, for zoo names (and ``default``).
    """

    name: str
    kind: str
    location: str | None
    run_dir: Path | None = None
    zoo_entry: ZooEntry | None = None

    @property
    def folder(self) -> Path | None:
        """The local model folder, or None (a Hub id; or the default without embedded weights)."""
        if self.location is None or self.kind == "hub" or not Path(self.location).is_dir():
            return None
        return Path(self.location)

    def load(self, **from_pretrained_kwargs) -> DenoisingAutoencoder:
        """Load the model strictly (``CheckpointError`` on mismatched weights), in eval mode.

        The default without embedded weights is the ``skip`` preset with seeded random weights (``images_seen``
        0). A Hub id is tried through the Hub (with ``HF_HUB_OFFLINE=1``: the local cache only).
        """
        if self.location is None:  # the default, in a build without embedded weights
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                return DenoisingAutoencoder(DenoisingAutoencoderConfig.from_preset("skip")).eval()
        if self.folder is not None:
            return DenoisingAutoencoder.from_pretrained(self.folder, **from_pretrained_kwargs)
        from huggingface_hub import constants

        if constants.HF_HUB_OFFLINE:  # fail at once from the cache, not after the Hub's retries
            from_pretrained_kwargs.setdefault("local_files_only", True)
        try:
            return DenoisingAutoencoder.from_pretrained(self.location, **from_pretrained_kwargs)
        except OSError as error:
            where = f"zoo model {self.zoo_entry.name!r}, published as " if self.zoo_entry else ""
            offline = " (HF_HUB_OFFLINE is set and it is not in the local cache)" if constants.HF_HUB_OFFLINE else ""
            raise OSError(f"{where}Hub repo {self.location!r} could not be loaded{offline}: {error}") from error


def _run_model(folder: Path, checkpoint: str) -> Path | None:
    return folder / checkpoint if (folder / checkpoint / "config.json").is_file() else None


def resolve_model_source(source: str | os.PathLike | None = None, checkpoint: str = BEST) -> ModelSource:
    """What a model source string means, in this order:

    1. None or ``"default"``: the embedded default (the zoo entry marked embedded);
    2. a zoo name (``"colour"``, ``"inpaint"`` ...) that is not also a local path: the zoo entry's folder on this
       machine, or its Hub id where published; otherwise :class:`~hfdae.zoo.ZooModelUnavailableError` at once,
       saying how to get it;
    3. a model folder (``config.json``);
    4. a training run folder: its ``best/`` (or ``checkpoint``) model;
    5. anything else: a Hub repo id.

    Args:
        source: the source string or path.
        checkpoint: ``"best"`` or ``"final"``: which model of a run folder.

    Raises:
        ValueError: ``source`` is a file, or ``checkpoint`` is neither best nor final.
        FileNotFoundError: a folder that is neither a model nor a run folder.
        ZooModelUnavailableError: a zoo model that is not on this machine and not published.
    """
    if checkpoint not in (BEST, FINAL):
        raise ValueError(f"checkpoint={checkpoint!r} is not valid; choose 'best' or 'final'")
    name = DEFAULT_MODEL if source is None else str(source)
    path = Path(name)
    if name == DEFAULT_MODEL:
        entry = next(entry for entry in ZOO.values() if entry.weights == "embedded")
        folder = entry.local_folder()
        if folder != EMBEDDED_MODEL_DIR:  # a build without embedded weights: seeded random weights, said loudly
            folder = None
        return ModelSource(name, "default", None if folder is None else str(folder), zoo_entry=entry)
    if name in ZOO and not path.exists():
        entry = ZOO[name]
        location = entry.locate()
        if location is None:
            raise ZooModelUnavailableError(entry.unavailable_message())
        return ModelSource(name, "zoo", location, zoo_entry=entry)
    if path.exists():
        if not path.is_dir():
            raise ValueError(f"{path}: a model is a folder with config.json and model.safetensors, not a file")
        if (path / "config.json").is_file():
            parent = path.parent
            in_run = path.name in (BEST, FINAL) and is_run_folder(parent)
            return ModelSource(name, "folder", str(path), run_dir=parent if in_run else None)
        model = _run_model(path, checkpoint)
        if model is not None:
            return ModelSource(name, "run", str(model), run_dir=path)
        raise FileNotFoundError(f"{path}: neither a model folder (no config.json) nor a training run folder (no"
                                f" {checkpoint}/config.json); is this a folder made by save_pretrained?")
    if name.startswith((".", "/", "~")) or name.count("/") != 1:
        raise FileNotFoundError(f"{name}: no such folder, and not a Hub repo id (ORG/NAME); zoo names:"
                                f" {', '.join(ZOO)}, or 'default'")
    return ModelSource(name, "hub", name)
