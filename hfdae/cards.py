"""Model cards: the README.md of an hfdae model, every number read from a file.

>>> from hfdae.cards import render_model_card
>>> card = render_model_card("runs/zoo-colour/best", evaluations=["eval/seed/results.json"], repo_id="me/dae")
>>> card.save("README.md")

or ``hfdae card MODEL --output README.md``. ``MODEL`` is any model source (``default``, a zoo name, a model or
run folder). The architecture and recipe come from the model's ``config.json`` (its ``training_summary``,
``task`` and ``lineage``) and its run folder (``training_config.yaml``, ``log.jsonl``, the learning curve);
the tables and the ``model-index`` metadata from ``results.json`` files of ``hfdae evaluate``; what each
protocol measures and how its headline is labelled from the protocol registry (:mod:`hfdae.protocols`).
The template ships inside the package (``hfdae/templates/model_card.md``).
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from .baselines import BASELINES, baseline_name
from .configuration_hfdae import PRESETS
from .evaluation import EvaluationReport
from .protocols import get_protocol, list_tasks, protocol_for_task
from .runs import LEARNING_CURVE, TRAINING_CONFIG, read_jsonl, read_log, resolve_model_source, validation_records
from .zoo import ZOO

__all__ = ["DEFAULT_TEMPLATE", "CARD_TAGS", "LICENSE", "FOLDER_TRAINING_CONFIG", "FOLDER_VALIDATION_LOG",
           "render_model_card"]

DEFAULT_TEMPLATE = Path(__file__).resolve().parent / "templates" / "model_card.md"
CARD_TAGS = ("hfdae", "image-restoration", "autoencoder", "u-net", "safetensors")  # and the task's (Protocol.hub_tags)
LICENSE = "apache-2.0"
# what a Hub folder keeps of its training run (hfdae.hub writes them), so that a card rebuilt from the folder alone
# (a zoo name, a downloaded model) still has its training rows and validation table
FOLDER_TRAINING_CONFIG = "training_run.yaml"
FOLDER_VALIDATION_LOG = "validation_log.jsonl"


# --- reading evaluations and sources -------------------------------------------------------------------------


def _model_row(report: EvaluationReport, path: Path, model_method: str | None) -> str:
    """The row of ``report`` that is the model the card describes: the one of kind ``model``, or ``model_method``."""
    if model_method is not None:
        if model_method not in report.values:
            raise ValueError(f"{path}: no method {model_method!r}; it has {list(report.values)}")
        return model_method
    candidates = report.methods_of_kind("model")
    if len(candidates) != 1:
        raise ValueError(
            f"{path}: cannot tell which row is this model among {candidates or list(report.values)};"
            " name it with model_method= (--model-method on the command line)")
    return candidates[0]


def _hub_dataset_id(data: str) -> str | None:
    """``data`` when it is a Hub dataset id (``org/name``), None for local folders and files."""
    text = str(data)
    if text.startswith((".", "/", "~")) or text.count("/") != 1 or ":" in text or Path(text).exists():
        return None
    return text


def _dataset_name(data: str) -> str:
    """``../shared/data/test/CBSD68`` -> ``CBSD68``; Hub dataset ids are kept whole."""
    if _hub_dataset_id(data):
        return str(data)
    path = Path(str(data).rstrip("/"))
    return path.stem if path.suffix in (".parquet",) else path.name


def _data_details(report: EvaluationReport) -> list[str]:
    """What a card says about how an evaluation used its data: its split, a conversion (none for a test set
    used whole and as stored)."""
    return ([f"{report.split} split"] if report.split else []) + (
        [f"read as {report.converted_to}"] if report.converted_to else [])


def _evaluated_data(report: EvaluationReport) -> str:
    """The data of an evaluation as a card names it, e.g. ``CBSD432 (validation split, read as gray)``."""
    details = _data_details(report)
    return _dataset_name(report.data) + (f" ({', '.join(details)})" if details else "")


def _task_protocol(config):
    """The protocol of the model's task (the chapter's ``seed`` for tasks this hfdae does not know)."""
    return protocol_for_task(config.task) if config.task in list_tasks() else get_protocol("seed")


def _parent_text(parent: dict) -> str:
    """A lineage row: the parent's name where a reader can load it (a zoo name, ``default``, a Hub id); a parent
    that was a local folder is described, not named (its path means nothing outside the machine it ran on)."""
    model, source = str(parent.get("model", "")), parent.get("source")
    portable = source in ("default", "zoo", "hub") or (source is None and (model in ZOO or model == "default"))
    name = f"`{model}`" if portable else "an earlier training run"
    text = f"{name} (task {parent.get('task')}, {parent.get('images_seen', 0):,} images seen"
    return text + (f": {parent['description']})" if parent.get("description") else ")")


class TrainingFiles(NamedTuple):
    """What a model's card takes from its training: the configuration file, the log records, the learning curve
    (each None or empty where missing)."""

    config: Path | None
    records: list[dict]
    learning_curve: Path | None


def training_files(model_dir: Path, run_dir: Path | None) -> TrainingFiles:
    """The training files behind a model's card, each from its run folder (``training_config.yaml``,
    ``log.jsonl``, the learning curve) where it has one, else the copy the model folder keeps as a Hub folder
    (:data:`FOLDER_TRAINING_CONFIG`, :data:`FOLDER_VALIDATION_LOG`; see :mod:`hfdae.hub`)."""
    def first(*paths: Path) -> Path | None:
        return next((path for path in paths if path.is_file()), None)

    run = [run_dir] if run_dir is not None else []
    config = first(*(folder / TRAINING_CONFIG for folder in run), model_dir / FOLDER_TRAINING_CONFIG)
    records = read_log(run_dir, missing_ok=True) if run_dir is not None else []
    if not records and (model_dir / FOLDER_VALIDATION_LOG).is_file():
        records = read_jsonl(model_dir / FOLDER_VALIDATION_LOG)
    curve = first(*(folder / LEARNING_CURVE for folder in run), model_dir / LEARNING_CURVE)
    return TrainingFiles(config, records, curve)


# --- the model card --------------------------------------------------------------------------------------


def _cell(text: str) -> str:
    """Text for a Markdown table cell (a bare ``|`` would end the cell)."""
    return str(text).replace("|", "\\|")


def _format_count(value: int) -> str:
    return f"{value / 1e6:.2f} M" if value >= 1e5 else f"{value:,}"


def _format_duration(seconds: float) -> str:
    minutes = seconds / 60
    return f"{minutes:.1f} min" if minutes < 120 else f"{minutes / 60:.1f} h ({minutes:.0f} min)"


def _describe_degradation(spec: dict, weight: float | None = None) -> list[str]:
    """Human-readable lines for a degradation spec (``Degradation.to_spec()``)."""
    name = spec.get("name")
    share = f" (weight {weight:g})" if weight is not None else ""
    if name == "choice":
        weights = spec.get("weights") or [None] * len(spec.get("degradations", []))
        lines = []
        for item, item_weight in zip(spec.get("degradations", []), weights):
            lines += _describe_degradation(item, item_weight)
        return lines
    if name == "chain":
        parts = [line for item in spec.get("degradations", []) for line in _describe_degradation(item)]
        return ["in sequence: " + "; then ".join(parts) + share]
    if name == "gaussian":
        if spec.get("sigma") is not None:
            text = f"additive Gaussian noise, sigma {spec['sigma'] * 255:g}/255"
        else:
            text = (f"additive Gaussian noise, sigma uniform in [{spec.get('sigma_min', 0) * 255:g}/255,"
                    f" {spec.get('sigma_max', 0) * 255:g}/255]")
        return [f"`gaussian`: {text}" + (", clipped to [0, 1]" if spec.get("clip") else "") + share]
    if name == "salt_pepper":
        return [f"`salt_pepper`: {spec.get('fraction', 0) * 100:g} % of the pixels set to black or white" + share]
    if name == "blur":
        if spec.get("sigma") is not None:
            text = f"sigma {spec['sigma']:g} pixels"
        else:
            text = f"sigma uniform in ({spec.get('sigma_min', 0):g}, {spec.get('sigma_max', 0):g}) pixels"
        return [f"`blur`: Gaussian blur, {text}" + share]
    if name == "knockout":
        return [f"`knockout`: {spec.get('min_blocks')}-{spec.get('max_blocks')} blocks of"
                f" {spec.get('min_size')}x{spec.get('min_size')} to {spec.get('max_size')}x{spec.get('max_size')}"
                f" pixels set to zero (per {spec.get('reference_area')} pixels of image)" + share]
    if name == "identity":
        return ["`identity`: the clean crop itself" + share]
    return [f"`{name}`: " + ", ".join(f"{key}={value}" for key, value in spec.items() if key != "name") + share]


def _degradation_lines(degradations: Any) -> list[str]:
    if degradations in (None, "", []):
        return []
    try:
        from .degradations import build_degradation

        return _describe_degradation(build_degradation(degradations).to_spec())
    except (ValueError, TypeError, KeyError) as error:  # an older or unknown spec: show it as recorded
        return [f"`{json.dumps(degradations)}` (could not be interpreted: {error})"]


def _architecture(config, model) -> dict[str, Any]:
    from .complexity import count_macs, count_parameters

    colour = {"rgb": "RGB colour", "gray": "gray (one channel)",
              "lab": "RGB colour (restoring the lightness L in CIELAB, chroma smoothed)"}[config.colour_space]
    parameters = count_parameters(model)
    macs = count_macs(model, 256, 256)
    head = config.output_head + (f" (a={config.scaled_tanh_a}, b={config.scaled_tanh_b})"
                                 if config.output_head == "scaled_tanh" else "")
    rows = [
        ("preset", f"`{config.preset}`" + ("" if _matches_preset(config) else " (with overrides)")
         if config.preset else "none (custom configuration)"),
        ("levels and widths", f"{len(config.widths)} levels, widths {'-'.join(map(str, config.widths))}"),
        ("residual blocks per level",
         "-".join(map(str, config.blocks_per_level)) + " (encoder, mirrored in the decoder)"),
        ("U-Net skip connections", "yes" if config.skip_connections else "no"),
        ("residual shortcuts in blocks", "yes" if config.residual_connections else "no"),
        ("normalisation, activation", f"{config.norm} norm, {config.activation}"),
        ("output", f"{head} head" + ("; residual: output = input - network(input)" if config.predict_residual else "")),
        ("colour space", config.colour_space),
        ("extra input channels", str(config.extra_input_channels)) if config.extra_input_channels else None,
        ("space-to-depth stem", f"{config.space_to_depth_factor}x{config.space_to_depth_factor} (the U-Net runs at"
         f" 1/{config.space_to_depth_factor} resolution; depth-to-space head)")
        if config.space_to_depth_factor > 1 else None,
        ("noise-level input", "yes: `noise_level=` sigma in [0, 1], a [B, 1, H, W] map or `\"auto\"`; blind without it")
        if config.noise_level_input else None,
        ("parameters", f"{_format_count(parameters)} ({parameters:,})"),
        ("compute", f"{macs / 1e9:.2f} GMACs per 256x256 image"),
        ("loss", _loss_text(config)),
    ]
    return {
        "rows": [(label, _cell(value)) for label, value in (row for row in rows if row is not None)],
        "skip_connections": config.skip_connections,
        "levels": len(config.widths),
        "size_multiple": config.size_multiple,
        "image_channels": config.image_channels,
        "noise_level_input": bool(config.noise_level_input),
        "colour_description": colour,
        "upsample_description": ("transposed convolutions" if config.upsample == "transposed"
                                 else "bilinear resizing and convolutions"),
    }


def _matches_preset(config) -> bool:
    preset = PRESETS.get(config.preset, {})
    return all(list(getattr(config, key)) == list(value) if isinstance(value, (list, tuple))
               else getattr(config, key) == value for key, value in preset.items())


def _loss_text(config) -> str:
    terms = []
    if config.mse_weight:
        terms.append(f"{config.mse_weight:g} mean(R²)")
    if config.l1_weight:
        terms.append(f"{config.l1_weight:g} mean(|R|)")
    if config.out_of_range_weight:
        terms.append(f"{config.out_of_range_weight:g} mean(out-of-range penalty)")
    return " + ".join(terms) + ", R = output - clean"


def _training_rows(config, summary: dict, training_config: dict | None) -> list[tuple[str, str]]:
    """The recipe table: from the checkpoint's ``training_summary``, completed by ``training_config.yaml``."""
    resolved = training_config or {}
    data = resolved.get("data") or {}
    optimizer = resolved.get("optimizer") or {}
    schedule = resolved.get("schedule") or {}
    rows: list[tuple[str, str]] = []
    if getattr(config, "task", None):
        rows.append(("task", config.task))
    for parent in getattr(config, "lineage", None) or []:  # set by hfdae.finetuning, the parent first
        rows.append(("fine-tuned from", _parent_text(parent)))

    source = summary.get("data") or data.get("source")
    if source:
        split = summary.get("data_split") or data.get("split")
        details = [f"split `{split}`"] if split else []
        crop = summary.get("crop_size") or data.get("crop_size")
        if crop:
            details.append(f"random {crop}x{crop} crops")
        shown = f" (`{source}`)" if _hub_dataset_id(source) else ""  # a local path says nothing to a reader
        rows.append(("data", f"{_dataset_name(source)}{shown}" + (f", {', '.join(details)}" if details else "")))
    name = summary.get("optimizer") or optimizer.get("name")
    if name:
        text = name
        if name == "adam" and optimizer.get("betas"):
            text += f" (betas {tuple(optimizer['betas'])}, eps {optimizer.get('eps')})"
        elif name == "sgd" and optimizer.get("momentum") is not None:
            text += f" (momentum {optimizer['momentum']})"
        if optimizer.get("weight_decay"):
            text += f", weight decay {optimizer['weight_decay']}"
        if optimizer.get("max_grad_norm"):
            text += f", gradients clipped to norm {optimizer['max_grad_norm']}"
        rows.append(("optimizer", text))
    schedule_name = summary.get("schedule") or schedule.get("name")
    if schedule_name:
        if schedule_name == "step":
            rates = summary.get("schedule_rates") or schedule.get("rates")
            text = f"step: rates {rates}" + (f", {schedule['images_per_stage']:,} images per stage"
                                              if schedule.get("images_per_stage") else "")
        else:
            rate = summary.get("learning_rate") or schedule.get("learning_rate")
            text = f"{schedule_name} from {rate:g}" if rate is not None else schedule_name
            if schedule.get("final_learning_rate") is not None and schedule_name == "cosine":
                text += f" to {schedule['final_learning_rate']:g}"
        if schedule.get("warmup_images"):
            text += f", {schedule['warmup_images']:,} warm-up images"
        rows.append(("learning-rate schedule", text))
    batch = summary.get("batch_size") or resolved.get("batch_size")
    if batch:
        rows.append(("batch size", str(batch)))
    rows.append(("images seen", f"{config.images_seen:,}"))
    precision = summary.get("mixed_precision") or resolved.get("mixed_precision")
    if precision:
        text = "fp32" if precision == "no" else precision
        rows.append(("precision", text + (", channels_last" if resolved.get("channels_last") else "")))
    if summary.get("hardware"):
        processes = summary.get("processes") or 1
        rows.append(("hardware", summary["hardware"] + (f", {processes} processes" if processes > 1 else "")))
    if summary.get("wall_seconds") is not None:
        rows.append(("wall time", _format_duration(float(summary["wall_seconds"]))))
    if summary.get("best_validation_psnr") is not None:
        rows.append(("best validation PSNR", f"{summary['best_validation_psnr']:.2f} dB ({_task_protocol(config).headline_label})"))
    seed = summary.get("seed", resolved.get("seed"))
    if seed is not None:
        rows.append(("seed", str(seed)))
    return rows


def _validation_table(records: list[dict]) -> tuple[list[str], list[dict]]:
    validation = validation_records(records)
    if not validation:
        return [], []
    columns: list[str] = []
    for record in validation:
        for condition in record.get("validation_psnr_per_condition") or {}:
            if condition not in columns:
                columns.append(condition)
    if not columns:
        columns = ["PSNR"]
    rows = []
    for record in validation:
        per_condition = record.get("validation_psnr_per_condition") or {"PSNR": record["validation_psnr"]}
        rows.append({"images_seen": record["images_seen"],
                     "cells": [f"{per_condition[c]:.2f}" if c in per_condition else "-" for c in columns]})
    return columns, rows


def _evaluation_section(report: EvaluationReport, method: str, file_link: str | None) -> dict[str, Any]:
    columns = report.columns
    has_ssim = any(report.summary(name, c, "ssim") for name in report.values for c in columns)
    rows = []
    # this model first, then the others in the file's order
    for name in [method] + [other for other in report.values if other != method]:
        cells = []
        for condition in columns:
            psnr = report.summary(name, condition, "psnr")
            if psnr is None:
                cells.append("n/a")
                continue
            cell = f"{psnr['mean']:.2f} ± {psnr['std']:.2f}"
            ssim = report.summary(name, condition, "ssim")
            if ssim is not None:
                cell += f"<br>{ssim['mean']:.4f}"
            cells.append(f"**{cell}**" if name == method else cell)
        seconds = [entry["mean"] for condition in report.conditions
                   if (entry := report.summary(name, condition, "seconds"))]
        label = f"**this model** (`{name}`)" if name == method else name
        rows.append({"method": label, "cells": cells,
                     "seconds": f"{statistics.fmean(seconds):.3f}" if seconds else "-"})
    protocol = get_protocol(report.protocol)
    return {
        "protocol": report.protocol,
        "protocol_description": protocol.description,
        "headline": f"`{protocol.headline}`: {protocol.headline_label}",
        "dataset": _evaluated_data(report),
        "data": report.data,
        "image_count": len(report.images),
        "machine": report.machine or "machine not recorded",
        "file": file_link,
        "columns": columns,
        "rows": rows,
        "has_ssim": has_ssim,
    }


def _eval_results(report: EvaluationReport, method: str):
    """``model-index`` entries: one per (protocol, dataset, column), PSNR (and SSIM) of the model only."""
    from huggingface_hub import EvalResult

    protocol = report.protocol
    dataset = _dataset_name(report.data)
    results = []
    for condition in report.columns:
        psnr = report.summary(method, condition, "psnr")
        if psnr is None:
            continue
        common = dict(
            task_type="image-to-image",
            task_name=get_protocol(protocol).task_name,
            dataset_type=dataset,
            dataset_name=f"{dataset} ({', '.join([*_data_details(report), f'{protocol} protocol', condition])})",
            dataset_config=f"{protocol}-{condition}",
            dataset_split=report.split or "test",
            dataset_args={"protocol": protocol, "condition": condition, "images": len(report.images)},
        )
        results.append(EvalResult(metric_type="psnr", metric_name="PSNR (dB)",
                                  metric_value=round(float(psnr["mean"]), 2), **common))
        ssim = report.summary(method, condition, "ssim")
        if ssim is not None:
            results.append(EvalResult(metric_type="ssim", metric_name="SSIM",
                                      metric_value=round(float(ssim["mean"]), 4), **common))
    return results


def _headline(report: EvaluationReport, method: str) -> str | None:
    """The card's headline line of one evaluation: the protocol's headline number, then its other columns."""
    protocol = get_protocol(report.protocol)
    dataset = _evaluated_data(report)
    others = [f"{column} {entry['mean']:.2f}" for column in report.columns
              if column != protocol.headline and (entry := report.summary(method, column, "psnr"))]
    headline = report.summary(method, protocol.headline, "psnr")
    if headline is None:
        if not others:
            return None
        return f"PSNR on {dataset}, `{report.protocol}` protocol: {', '.join(others)} dB ({len(report.images)} images)"
    rest = f"; {', '.join(others)} dB" if others else ""
    return (f"**{headline['mean']:.2f} dB** {protocol.headline_label} on {dataset} (`{report.protocol}` protocol;"
            f" {len(report.images)} images{rest})")


def _widest_results(results: list) -> list:
    """One ``model-index`` entry per (dataset, protocol-condition, metric): the evaluation over the most
    images wins (a run on a subset, such as CBM3D's first 10 images, stays in the card's tables only)."""
    chosen: dict[tuple, Any] = {}
    for result in results:
        key = (result.dataset_type, result.dataset_config, result.metric_type)
        if key not in chosen or result.dataset_args["images"] > chosen[key].dataset_args["images"]:
            chosen[key] = result
    return list(chosen.values())


def _default_model_name(model_dir: Path, run_dir: Path | None, repo_id: str | None) -> str:
    """The repo's name, else the run's name for its best/ or final/, else the folder's name."""
    if repo_id:
        return repo_id.split("/")[-1]
    model_dir = model_dir.resolve()
    if run_dir is not None and model_dir.parent == Path(run_dir).resolve():
        return Path(run_dir).resolve().name
    return model_dir.name


def _relative_link(target: Path, card_dir: Path | None) -> str:
    if card_dir is None:
        return target.name
    try:
        return Path(os.path.relpath(target.resolve(), card_dir.resolve())).as_posix()
    except ValueError:  # another drive (Windows)
        return target.resolve().as_posix()


def model_folder(source: str | os.PathLike, checkpoint: str = "best") -> tuple[Path, Path | None]:
    """The local model folder and run folder of a model source (``default``, a zoo name, a model or run folder).

    Raises:
        FileNotFoundError: the source has no folder on this machine (a Hub id: download it first, e.g. with
            ``huggingface_hub.snapshot_download``; the default of a build without embedded weights).
    """
    resolved = resolve_model_source(source, checkpoint)
    if resolved.folder is None:
        raise FileNotFoundError(f"{source}: no model folder on this machine ({resolved.kind} source"
                                f" {resolved.location or 'without weights'}); give a model or run folder")
    return resolved.folder, resolved.run_dir


def render_model_card(
    model_dir: str | os.PathLike,
    *,
    run_dir: str | os.PathLike | None = None,
    evaluations: Sequence[str | os.PathLike] = (),
    repo_id: str | None = None,
    model_name: str | None = None,
    model_method: str | None = None,
    learning_curve: str | os.PathLike | None = None,
    card_dir: str | os.PathLike | None = None,
    license: str = LICENSE,
    tags: Iterable[str] = (),
    template_path: str | os.PathLike = DEFAULT_TEMPLATE,
    notes: str | os.PathLike | None = None,
):
    """Render the model card (``README.md``) of a model folder with huggingface_hub's ``ModelCard``.

    Every number comes from a file: the architecture and the recipe from ``config.json`` (its
    ``training_summary`` and ``images_seen``) and the run folder, the tables and the ``model-index`` metadata
    from the evaluation files. Nothing is typed by hand.

    Args:
        model_dir: a model source with a local folder: a model folder (``config.json`` + ``model.safetensors``),
            a training run folder (its ``best/`` model), ``"default"`` or a zoo name available here.
        run_dir: the training run folder (``log.jsonl``, ``training_config.yaml``, ``learning_curve.png``);
            found automatically when ``model_dir`` is a run's ``best/`` or ``final/``.
        evaluations: ``results.json`` files of ``hfdae evaluate`` (any protocol, either results format) that
            evaluated this model, with or without baselines.
        repo_id: the Hub repo id the card is for (used in the loading examples and the title).
        model_name: the title and ``model-index`` name (default: the repo's name, else the folder's).
        model_method: the evaluation row that is this model, where the files hold several hfdae models.
        learning_curve: the learning-curve PNG (default: the run folder's ``learning_curve.png``).
        card_dir: the folder the card will be saved in: links to the learning curve and the evaluation
            files are written relative to it (default: the files' names, for a folder that holds them).
        license: the weights' licence (an SPDX-like Hub identifier).
        tags: extra Hub tags.
        template_path: the Jinja template (default: the package's ``templates/model_card.md``).
        notes: a Markdown file rendered as the card's "Notes and reproduction" section (the exact
            commands that trained and evaluated the model, known gaps).

    Returns:
        A ``huggingface_hub.ModelCard``; ``card.save(path)`` writes it, ``str(card)`` is its text.
    """
    from huggingface_hub import ModelCard, ModelCardData

    from .modeling_hfdae import DenoisingAutoencoder

    model_dir, found_run = model_folder(model_dir)
    run_dir = Path(run_dir) if run_dir is not None else found_run
    card_dir = Path(card_dir) if card_dir is not None else None
    template_path = Path(template_path)
    if not template_path.is_file():
        raise FileNotFoundError(f"{template_path}: the model card template is missing (pass template_path=)")

    model = DenoisingAutoencoder.from_pretrained(model_dir)  # strict: a card is only written for loadable weights
    config = model.config
    summary = dict(config.training_summary or {})
    training_config = None
    training_config_text = None
    training = training_files(model_dir, run_dir)
    if training.config is not None:
        import yaml

        training_config_text = training.config.read_text().strip()
        training_config = yaml.safe_load(training_config_text)
    degradations = summary.get("degradations")
    if degradations is None and training_config:
        degradations = (training_config.get("data") or {}).get("degradations")

    learning_curve = learning_curve if learning_curve is not None else training.learning_curve
    curve_link = _relative_link(Path(learning_curve), card_dir) if learning_curve is not None else None

    sections, eval_results, headlines, datasets, baselines = [], [], [], [], []
    train_source = summary.get("data") or ((training_config or {}).get("data") or {}).get("source")
    # the card's `datasets` metadata names Hub datasets only: a local folder's name is no Hub id
    for data in [train_source] if train_source else []:
        if (dataset_id := _hub_dataset_id(data)) and dataset_id not in datasets:
            datasets.append(dataset_id)
    for path in evaluations:
        path = Path(path)
        report = EvaluationReport.load(path)
        method = _model_row(report, path, model_method)
        file_path = path / "results.json" if path.is_dir() else path
        sections.append(_evaluation_section(report, method, _relative_link(file_path, card_dir)))
        eval_results += _eval_results(report, method)
        if (line := _headline(report, method)) is not None:
            headlines.append(line)
        if (dataset_id := _hub_dataset_id(report.data)) and dataset_id not in datasets:
            datasets.append(dataset_id)
        for name in report.values:
            baseline = baseline_name(report.row(name).source) if report.row(name).kind == "baseline" else None
            reference = BASELINES[baseline].reference if baseline else None
            if reference and reference not in baselines:
                baselines.append(reference)

    eval_results = _widest_results(eval_results)
    model_name = model_name or _default_model_name(model_dir, run_dir, repo_id)
    protocol = _task_protocol(config)
    card_tags = [*CARD_TAGS, *protocol.hub_tags] + [f"preset-{config.preset}"] * bool(config.preset) + list(tags)
    card_data = ModelCardData(
        library_name="hfdae",
        license=license,
        pipeline_tag="image-to-image",
        tags=list(dict.fromkeys(card_tags)),
        datasets=datasets or None,
        metrics=list(dict.fromkeys(result.metric_type for result in eval_results)) or None,
        model_name=model_name,
        eval_results=eval_results or None,
    )
    validation_columns, validation_rows = _validation_table(training.records)
    return ModelCard.from_template(
        card_data,
        template_path=str(template_path),
        model_name=model_name,
        load_name=repo_id or "PATH/TO/THIS/MODEL",
        mask_input=bool(config.extra_input_channels),
        task=config.task,
        task_description=protocol.task_description,
        protocol=protocol.name,
        trained=config.images_seen > 0,
        images_seen=config.images_seen,
        # with the images its parents saw before it (a fine-tune or a later training stage)
        images_seen_with_parents=config.images_seen_with_parents,
        description=summary.get("description"),
        training_data=_dataset_name(train_source) if train_source else None,
        headline_results=headlines,
        architecture=_architecture(config, model),
        predict_residual=config.predict_residual,
        training_rows=[(label, _cell(value)) for label, value in _training_rows(config, summary, training_config)],
        degradations=_degradation_lines(degradations),
        learning_curve=curve_link,
        validation_columns=validation_columns,
        validation_rows=validation_rows,
        validation_metric=protocol.headline_label,
        training_config=training_config_text,
        evaluations=sections,
        baseline_sources=baselines,
        notes=Path(notes).read_text().strip() if notes is not None else None,
    )
