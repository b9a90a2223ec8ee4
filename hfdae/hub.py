"""Sharing models on the Hugging Face Hub: Hub-ready folders, honest model cards, one-commit uploads.

>>> from hfdae.hub import build_model_folder, push_to_hub, render_model_card
>>> card = render_model_card("runs/zoo-colour/best", evaluations=["eval/seed/results.json"])
>>> build_model_folder("runs/zoo-colour", "upload/", evaluations=["eval/seed/results.json"], repo_id="me/dae")
>>> push_to_hub("runs/zoo-colour", "me/dae", evaluations=["eval/seed/results.json"])

A Hub folder (what :func:`build_model_folder` writes and :func:`upload_model_folder` commits) holds::

    config.json                 the configuration, with an ``auto_map`` for ``trust_remote_code``
    model.safetensors           the weights (hfdae never uploads a pickle)
    README.md                   the model card: metadata, and ``model-index`` from the evaluation files
    learning_curve.png          the run's learning curve, when there is one
    eval-<protocol>-<data>.json the ``hfdae evaluate`` results the card's tables and model-index come from
    configuration_hfdae.py  modeling_hfdae.py  blocks.py
                                the model's self-contained code, so that
                                ``AutoModel.from_pretrained(repo_id, trust_remote_code=True)`` works without hfdae
    preprocessor_config.json    the image processor's settings (hfdae.DenoisingAutoencoderImageProcessor)
    pipeline_hfdae.py  image_processing_hfdae.py  and the modules they import (hfdae.remote_code)
                                the ``image-restoration`` pipeline, named in config.json's ``custom_pipelines``,
                                so ``pipeline("image-restoration", model=repo_id, trust_remote_code=True)`` works
                                without hfdae

Everything is uploaded in ONE commit, after the folder has been checked locally (the weights load
strictly into the configuration, the card parses), so a failed push leaves no partial upload; a repo
created for a push that then fails is deleted again.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import statistics
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "HubError",
    "DEFAULT_TEMPLATE",
    "REMOTE_CODE_FILES",
    "AUTO_MAP",
    "CARD_TAGS",
    "resolve_model_source",
    "load_evaluation",
    "render_model_card",
    "build_model_folder",
    "check_model_folder",
    "upload_model_folder",
    "push_to_hub",
    "push_model",
]

logger = logging.getLogger(__name__)

# The card template lives at the top of the source checkout (model_cards/template.md).
DEFAULT_TEMPLATE = Path(__file__).resolve().parent.parent / "model_cards" / "template.md"
PACKAGE_DIR = Path(__file__).resolve().parent
# configuration_hfdae.py, blocks.py and modeling_hfdae.py import only torch, transformers, safetensors and
# each other (tests/test_modeling.py checks it), so they can travel with the weights.
REMOTE_CODE_FILES = ("configuration_hfdae.py", "modeling_hfdae.py", "blocks.py")
AUTO_MAP = {
    "AutoConfig": "configuration_hfdae.DenoisingAutoencoderConfig",
    "AutoModel": "modeling_hfdae.DenoisingAutoencoder",
}
CARD_TAGS = ("hfdae", "image-denoising", "image-restoration", "denoising", "autoencoder", "u-net", "safetensors")
LICENSE = "apache-2.0"
LEARNING_CURVE = "learning_curve.png"
# files a model folder may never carry: pickles run code when loaded
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
# names `hfdae evaluate` gives its baselines (hfdae.evaluation.Method); every other row is an hfdae model
BASELINE_NAMES = ("input (no restoration)", "BM3D")
BASELINE_PREFIXES = ("DnCNN (", "FFDNet (")

PROTOCOL_DESCRIPTIONS = {
    "seed": (
        "The chapter's protocol (Forsyth, section 18.4.4): every test image is restored from the clean image"
        " (`identity`) and from one fixed-seed instance of each of the chapter's four degradations (`gaussian`"
        " noise, sigma uniform in [0, 50/255], 5 % `salt_pepper`, Gaussian `blur` with sigma uniform in (0, 3),"
        " `knockout` blocks up to 9x9); `average` is the mean of the five outputs' PSNR per image. Outputs are"
        " clipped to [0, 1] and rounded to 8 bits."
    ),
    "awgn": (
        "The published tables' protocol: `noisy = clean + N(0, (sigma/255)^2)` drawn with"
        " `numpy.random.RandomState(0)` per image (H x W x C order), the noisy input not clipped; outputs clipped"
        " to [0, 1] and rounded to 8 bits; PSNR over all channels, no border crop."
    ),
    "deblur": (
        "Deblurring: every test image blurred by a Gaussian of sigma 1, 2 and 3 pixels (`blur1`, `blur2`,"
        " `blur3`), no noise; outputs clipped to [0, 1] and rounded to 8 bits; PSNR of the whole image."
    ),
    "inpaint": (
        "Inpainting: one fixed-seed set of large holes (boxes and strokes) per image, set to 0; models with a mask"
        " input channel are given the mask; outputs clipped to [0, 1] and rounded to 8 bits; PSNR of the whole"
        " image."
    ),
}
BASELINE_SOURCES = {
    "BM3D": "K. Dabov, A. Foi, V. Katkovnik, K. Egiazarian, \"Image Denoising by Sparse 3-D Transform-Domain"
            " Collaborative Filtering\" (BM3D), IEEE TIP 2007 (baseline; the `bm3d` package).",
    "DnCNN": "DnCNN's published weights (Zhang et al., 2017, above) (baseline).",
    "FFDNet": "K. Zhang, W. Zuo, L. Zhang, \"FFDNet: Toward a Fast and Flexible Solution for CNN-Based Image"
              " Denoising\", IEEE TIP 2018 ([arXiv:1710.04026](https://arxiv.org/abs/1710.04026)) (baseline;"
              " published weights, given the true sigma).",
}


class HubError(OSError):
    """A push or Hub request that failed for a reason outside the code: offline, no or a rejected token,
    no permission, an unknown repository or revision, an unreachable server. The message names the repo
    id and the cause."""


# --- reading a model, a run and evaluations ------------------------------------------------------------


def resolve_model_source(source: str | os.PathLike, checkpoint: str = "best") -> tuple[Path, Path | None]:
    """Find the model folder and the run folder of ``source``.

    Args:
        source: a model folder (``config.json`` + ``model.safetensors``, as ``save_pretrained`` writes) or a
            training run folder (holding ``best/`` and ``final/``).
        checkpoint: which model of a run folder: ``"best"`` (selected by validation) or ``"final"``.

    Returns:
        ``(model_dir, run_dir)``; ``run_dir`` is the run folder when ``source`` is one, or when the model folder
        is a run's ``best/`` or ``final/``, else None.
    """
    from .training import LOG

    source = Path(source)
    if checkpoint not in ("best", "final"):
        raise ValueError(f"checkpoint={checkpoint!r} is not valid; choose 'best' or 'final'")
    if not source.is_dir():
        raise FileNotFoundError(f"{source}: no such folder (give a model folder or a training run folder)")
    if (source / "config.json").is_file():
        parent = source.parent
        is_run = source.name in ("best", "final") and any(
            (parent / name).is_file() for name in (LOG, "training_config.yaml"))
        return source, parent if is_run else None
    if (source / checkpoint / "config.json").is_file():
        return source / checkpoint, source
    raise FileNotFoundError(
        f"{source}: neither a model folder (no config.json) nor a training run folder (no {checkpoint}/config.json)")


def load_evaluation(path: str | os.PathLike) -> dict[str, Any]:
    """Read a ``results.json`` written by ``hfdae evaluate`` (:meth:`hfdae.evaluation.EvaluationReport.save`)."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    try:
        evaluation = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such evaluation file (hfdae evaluate --output writes results.json)")
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not a JSON evaluation file ({error})") from error
    missing = [key for key in ("protocol", "data", "images", "conditions", "methods") if key not in evaluation]
    if missing:
        raise ValueError(f"{path}: not an `hfdae evaluate` results.json (missing {', '.join(missing)})")
    return evaluation


def _is_baseline(method: str) -> bool:
    return method in BASELINE_NAMES or method.startswith(BASELINE_PREFIXES)


def _model_method(evaluation: dict, path: Path, model_method: str | None) -> str:
    """The row of ``evaluation`` that is the model the card describes."""
    methods = list(evaluation["methods"])
    if model_method is not None:
        if model_method not in methods:
            raise ValueError(f"{path}: no method {model_method!r}; it has {methods}")
        return model_method
    candidates = [method for method in methods if not _is_baseline(method)]
    if len(candidates) != 1:
        raise ValueError(
            f"{path}: cannot tell which row is this model among {candidates or methods};"
            " name it with model_method= (--model-method on the command line)")
    return candidates[0]


def _dataset_name(data: str) -> str:
    """``../shared/data/test/CBSD68`` -> ``CBSD68``; Hub dataset ids are kept whole."""
    path = Path(str(data).rstrip("/"))
    if not str(data).startswith((".", "/", "~")) and len(path.parts) == 2 and not Path(data).exists():
        return str(data)  # looks like a Hub dataset id "org/name"
    return path.stem if path.suffix in (".parquet",) else path.name


def _columns(evaluation: dict) -> list[str]:
    columns = list(evaluation["conditions"])
    if evaluation["protocol"] == "seed":
        columns.append("average")
    return columns


def _summary(evaluation: dict, method: str, condition: str, metric: str) -> dict | None:
    entry = evaluation["methods"].get(method, {}).get(condition, {}).get(metric)
    if not entry or "mean" not in entry:
        return None
    return entry


def _read_records(run_dir: Path | None) -> list[dict]:
    from .training import read_log

    return read_log(run_dir, missing_ok=True) if run_dir is not None else []


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
    from .profiling import count_macs, count_parameters

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
        "colour_description": colour,
        "upsample_description": ("transposed convolutions" if config.upsample == "transposed"
                                 else "bilinear resizing and convolutions"),
    }


def _matches_preset(config) -> bool:
    from .configuration_hfdae import PRESETS

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
        text = f"`{parent.get('model')}` (task {parent.get('task')}, {parent.get('images_seen', 0):,} images seen"
        rows.append(("fine-tuned from", text + (f": {parent['description']})" if parent.get("description") else ")")))

    source = summary.get("data") or data.get("source")
    if source:
        split = summary.get("data_split") or data.get("split")
        details = [f"split `{split}`"] if split else []
        crop = summary.get("crop_size") or data.get("crop_size")
        if crop:
            details.append(f"random {crop}x{crop} crops")
        rows.append(("data", f"{_dataset_name(source)} (`{source}`)" + (f", {', '.join(details)}" if details else "")))
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
        rows.append(("best validation PSNR", f"{summary['best_validation_psnr']:.2f} dB (five-output average)"))
    seed = summary.get("seed", resolved.get("seed"))
    if seed is not None:
        rows.append(("seed", str(seed)))
    return rows


def _validation_table(records: list[dict]) -> tuple[list[str], list[dict]]:
    validation = [record for record in records if "validation_psnr" in record]
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


def _evaluation_section(evaluation: dict, method: str, file_link: str | None) -> dict[str, Any]:
    columns = _columns(evaluation)
    has_ssim = any(_summary(evaluation, name, c, "ssim") for name in evaluation["methods"] for c in columns)
    rows = []
    # this model first, then the baselines in the file's order
    for name in [method] + [other for other in evaluation["methods"] if other != method]:
        cells = []
        for condition in columns:
            psnr = _summary(evaluation, name, condition, "psnr")
            if psnr is None:
                cells.append("n/a")
                continue
            cell = f"{psnr['mean']:.2f} ± {psnr.get('std', 0.0):.2f}"
            ssim = _summary(evaluation, name, condition, "ssim")
            if ssim is not None:
                cell += f"<br>{ssim['mean']:.4f}"
            cells.append(f"**{cell}**" if name == method else cell)
        seconds = [entry["mean"] for condition in evaluation["conditions"]
                   if (entry := _summary(evaluation, name, condition, "seconds"))]
        label = f"**this model** (`{name}`)" if name == method else name
        rows.append({"method": label, "cells": cells,
                     "seconds": f"{statistics.fmean(seconds):.3f}" if seconds else "-"})
    protocol = evaluation["protocol"]
    return {
        "protocol": protocol,
        "protocol_description": PROTOCOL_DESCRIPTIONS.get(protocol, f"Protocol `{protocol}`."),
        "dataset": _dataset_name(evaluation["data"]),
        "data": evaluation["data"],
        "image_count": len(evaluation["images"]),
        "machine": evaluation.get("machine") or "machine not recorded",
        "file": file_link,
        "columns": columns,
        "rows": rows,
        "has_ssim": has_ssim,
    }


def _eval_results(evaluation: dict, method: str):
    """``model-index`` entries: one per (protocol, dataset, condition), PSNR (and SSIM) of the model only."""
    from huggingface_hub import EvalResult

    protocol = evaluation["protocol"]
    dataset = _dataset_name(evaluation["data"])
    results = []
    for condition in _columns(evaluation):
        psnr = _summary(evaluation, method, condition, "psnr")
        if psnr is None:
            continue
        common = dict(
            task_type="image-to-image",
            task_name="Image denoising",
            dataset_type=dataset,
            dataset_name=f"{dataset} ({protocol} protocol, {condition})",
            dataset_config=f"{protocol}-{condition}",
            dataset_split="test",
            dataset_args={"protocol": protocol, "condition": condition, "images": len(evaluation["images"])},
        )
        results.append(EvalResult(metric_type="psnr", metric_name="PSNR (dB)",
                                  metric_value=round(float(psnr["mean"]), 2), **common))
        ssim = _summary(evaluation, method, condition, "ssim")
        if ssim is not None:
            results.append(EvalResult(metric_type="ssim", metric_name="SSIM",
                                      metric_value=round(float(ssim["mean"]), 4), **common))
    return results


def _widest_results(results: list) -> list:
    """One ``model-index`` entry per (dataset, protocol-condition, metric): the evaluation over the most
    images wins (a run on a subset, such as CBM3D's first 10 images, stays in the card's tables only)."""
    chosen: dict[tuple, Any] = {}
    for result in results:
        key = (result.dataset_type, result.dataset_config, result.metric_type)
        if key not in chosen or result.dataset_args["images"] > chosen[key].dataset_args["images"]:
            chosen[key] = result
    return list(chosen.values())


def _headline(evaluation: dict, method: str) -> str | None:
    dataset = _dataset_name(evaluation["data"])
    if evaluation["protocol"] == "seed":
        psnr = _summary(evaluation, method, "average", "psnr")
        if psnr is None:
            return None
        return (f"**{psnr['mean']:.2f} dB** five-output average PSNR on {dataset} (the chapter's protocol;"
                f" {len(evaluation['images'])} images)")
    parts = [f"{condition}: {entry['mean']:.2f} dB"
             for condition in evaluation["conditions"] if (entry := _summary(evaluation, method, condition, "psnr"))]
    if not parts:
        return None
    kind = {"awgn": "with Gaussian noise", "deblur": "deblurring", "inpaint": "inpainting"}.get(
        evaluation["protocol"], f"`{evaluation['protocol']}` protocol")
    return f"PSNR on {dataset}, {kind} ({', '.join(parts)}; {len(evaluation['images'])} images)"


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
        model_dir: a model folder (``config.json`` + ``model.safetensors``), or a training run folder (its
            ``best/`` model).
        run_dir: the training run folder (``log.jsonl``, ``training_config.yaml``, ``learning_curve.png``);
            found automatically when ``model_dir`` is a run's ``best/`` or ``final/``.
        evaluations: ``results.json`` files of ``hfdae evaluate`` (``seed`` and/or ``awgn`` protocol) that
            evaluated this model, with or without baselines.
        repo_id: the Hub repo id the card is for (used in the loading examples and the title).
        model_name: the title and ``model-index`` name (default: the repo's name, else the folder's).
        model_method: the evaluation row that is this model, where the files hold several hfdae models.
        learning_curve: the learning-curve PNG (default: the run folder's ``learning_curve.png``).
        card_dir: the folder the card will be saved in: links to the learning curve and the evaluation
            files are written relative to it (default: the files' names, for a folder that holds them).
        license: the weights' licence (an SPDX-like Hub identifier).
        tags: extra Hub tags.
        template_path: the Jinja template (default ``model_cards/template.md``).
        notes: a Markdown file rendered as the card's "Notes and reproduction" section (the exact
            commands that trained and evaluated the model, known gaps).

    Returns:
        A ``huggingface_hub.ModelCard``; ``card.save(path)`` writes it, ``str(card)`` is its text.
    """
    from huggingface_hub import ModelCard, ModelCardData

    from .modeling_hfdae import DenoisingAutoencoder

    model_dir, found_run = resolve_model_source(model_dir)
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
    if run_dir is not None and (run_dir / "training_config.yaml").is_file():
        training_config_text = (run_dir / "training_config.yaml").read_text().strip()
        training_config = yaml.safe_load(training_config_text)
    degradations = summary.get("degradations")
    if degradations is None and training_config:
        degradations = (training_config.get("data") or {}).get("degradations")

    if learning_curve is None and run_dir is not None and (run_dir / LEARNING_CURVE).is_file():
        learning_curve = run_dir / LEARNING_CURVE
    curve_link = _relative_link(Path(learning_curve), card_dir) if learning_curve is not None else None

    sections, eval_results, headlines, datasets, baselines = [], [], [], [], []
    train_source = summary.get("data") or ((training_config or {}).get("data") or {}).get("source")
    if train_source:
        datasets.append(_dataset_name(train_source))
    for path in evaluations:
        path = Path(path)
        evaluation = load_evaluation(path)
        method = _model_method(evaluation, path, model_method)
        file_path = path / "results.json" if path.is_dir() else path
        sections.append(_evaluation_section(evaluation, method, _relative_link(file_path, card_dir)))
        eval_results += _eval_results(evaluation, method)
        if (line := _headline(evaluation, method)) is not None:
            headlines.append(line)
        if _dataset_name(evaluation["data"]) not in datasets:
            datasets.append(_dataset_name(evaluation["data"]))
        for name in evaluation["methods"]:
            for baseline, source in BASELINE_SOURCES.items():
                if name.startswith(baseline) and source not in baselines:
                    baselines.append(source)

    eval_results = _widest_results(eval_results)
    model_name = model_name or _default_model_name(model_dir, run_dir, repo_id)
    card_tags = list(CARD_TAGS) + [f"preset-{config.preset}"] * bool(config.preset) + list(tags)
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
    validation_columns, validation_rows = _validation_table(_read_records(run_dir))
    return ModelCard.from_template(
        card_data,
        template_path=str(template_path),
        model_name=model_name,
        load_name=repo_id or "PATH/TO/THIS/MODEL",
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
        validation_metric="five-output average" if "average" in validation_columns else "validation PSNR",
        training_config=training_config_text,
        evaluations=sections,
        baseline_sources=baselines,
        notes=Path(notes).read_text().strip() if notes is not None else None,
    )


# --- the Hub folder ---------------------------------------------------------------------------------------


def _evaluation_file_name(evaluation: dict, taken: set[str]) -> str:
    stem = f"eval-{evaluation['protocol']}-{_dataset_name(evaluation['data'])}".lower().replace("/", "-")
    name, counter = f"{stem}.json", 2
    while name in taken:
        name, counter = f"{stem}-{counter}.json", counter + 1
    return name


def build_model_folder(
    source: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    evaluations: Sequence[str | os.PathLike] = (),
    run_dir: str | os.PathLike | None = None,
    checkpoint: str = "best",
    repo_id: str | None = None,
    model_name: str | None = None,
    model_method: str | None = None,
    license: str = LICENSE,
    tags: Iterable[str] = (),
    overwrite: bool = False,
    notes: str | os.PathLike | None = None,
    include_code: bool = True,
) -> Path:
    """Assemble the folder that :func:`upload_model_folder` uploads (see the module docstring for its files).

    Args:
        source: a model folder, or a training run folder (its ``best/`` or ``final/`` model is used).
        out_dir: the folder to write; it must not exist, or be empty, unless ``overwrite``.
        evaluations: ``results.json`` files of ``hfdae evaluate`` for this model (copied as
            ``eval-<protocol>-<data>.json``; the card's tables and ``model-index`` come from them).
        run_dir: the training run folder, when ``source`` is a model folder outside it.
        checkpoint: ``"best"`` or ``"final"``, for a run folder.
        repo_id: the Hub repo id the folder is for (the card's loading examples use it).
        model_name, model_method, license, tags: see :func:`render_model_card`.
        overwrite: replace the contents of an existing ``out_dir``.
        notes: see :func:`render_model_card`.
        include_code: add the model's code and an ``auto_map`` for ``trust_remote_code`` loading (always
            done for uploads; a folder kept in a repository, like ``zoo/NAME``, can leave it out).

    Returns:
        ``out_dir``. The weights are checked to load strictly into the configuration first.
    """
    model_dir, found_run = resolve_model_source(source, checkpoint)
    run_dir = Path(run_dir) if run_dir is not None else found_run
    out_dir = Path(out_dir)
    weights = model_dir / "model.safetensors"
    if not weights.is_file():
        pickles = sorted(path.name for path in model_dir.iterdir() if path.suffix in PICKLE_SUFFIXES)
        hint = (f" (only {', '.join(pickles)}: hfdae never uploads pickles; load the model and save_pretrained it"
                " to get safetensors)") if pickles else ""
        raise FileNotFoundError(f"{model_dir}: no model.safetensors{hint}")
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())) and not overwrite:
        raise FileExistsError(f"{out_dir} already exists and is not empty; choose an empty folder or overwrite=True")
    # built in a staging folder and renamed at the end: a failure leaves no half-built folder
    staging = out_dir.with_name(f".{out_dir.name}.building")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        _fill_model_folder(staging, model_dir, run_dir, evaluations, include_code, repo_id=repo_id,
                           model_name=model_name or _default_model_name(model_dir, run_dir, repo_id),
                           model_method=model_method, license=license, tags=tags, notes=notes)
        check_model_folder(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if out_dir.is_dir():
        shutil.rmtree(out_dir)
    elif out_dir.exists():
        out_dir.unlink()
    staging.rename(out_dir)
    return out_dir


def _fill_model_folder(folder: Path, model_dir: Path, run_dir: Path | None, evaluations, include_code: bool,
                       **card_options) -> None:
    config = json.loads((model_dir / "config.json").read_text())
    config.pop("auto_map", None)
    if include_code:
        config["auto_map"] = dict(AUTO_MAP)
        for name in REMOTE_CODE_FILES:
            shutil.copyfile(PACKAGE_DIR / name, folder / name)
    (folder / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    from .remote_code import write_pipeline_files

    write_pipeline_files(folder, include_code=include_code)  # preprocessor_config.json (+ the pipeline's code)
    shutil.copyfile(model_dir / "model.safetensors", folder / "model.safetensors")
    learning_curve = None
    if run_dir is not None and (run_dir / LEARNING_CURVE).is_file():
        learning_curve = folder / LEARNING_CURVE
        shutil.copyfile(run_dir / LEARNING_CURVE, learning_curve)
    copies: list[Path] = []
    for path in evaluations:
        path = Path(path)
        path = path / "results.json" if path.is_dir() else path
        name = _evaluation_file_name(load_evaluation(path), {copy.name for copy in copies})
        shutil.copyfile(path, folder / name)
        copies.append(folder / name)
    card = render_model_card(folder, run_dir=run_dir, evaluations=copies, learning_curve=learning_curve,
                             card_dir=folder, **card_options)
    card.save(folder / "README.md")


def check_model_folder(folder: str | os.PathLike) -> list[Path]:
    """Check a Hub folder before any upload and return its files (sorted).

    Raises ``FileNotFoundError``/``ValueError`` naming the problem: a missing ``config.json``,
    ``model.safetensors`` or ``README.md``; a pickle or a subfolder; weights that do not load strictly into
    the configuration (:class:`hfdae.CheckpointError`); a card whose metadata does not parse; an
    ``auto_map`` that points at code the folder does not hold.
    """
    from huggingface_hub import ModelCard

    from .modeling_hfdae import DenoisingAutoencoder

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    for name in ("config.json", "model.safetensors", "README.md"):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder}: no {name} (build the folder with hfdae.hub.build_model_folder)")
    entries = sorted(folder.iterdir())
    unexpected = [path.name for path in entries if path.is_dir() or path.suffix in PICKLE_SUFFIXES]
    if unexpected:
        raise ValueError(f"{folder}: refusing to upload {', '.join(unexpected)} (no pickles or subfolders)")
    config = json.loads((folder / "config.json").read_text())
    for reference in (config.get("auto_map") or {}).values():
        module = reference.split(".")[0] + ".py"
        if not (folder / module).is_file():
            raise FileNotFoundError(f"{folder}: config.json's auto_map needs {module}, which is missing")
    DenoisingAutoencoder.from_pretrained(folder)  # CheckpointError on corrupt or mismatched weights
    try:
        ModelCard.load(folder / "README.md")
    except Exception as error:  # yaml and metadata errors come in several types
        raise ValueError(f"{folder / 'README.md'}: the model card does not parse ({error})") from error
    return [path for path in entries if path.is_file()]


# --- uploading ----------------------------------------------------------------------------------------------


def _transport_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for module in ("httpx2", "httpx", "requests"):
        try:
            imported = __import__(module)
        except ImportError:
            continue
        for name in ("TransportError", "RequestException"):
            if isinstance(getattr(imported, name, None), type):
                errors.append(getattr(imported, name))
    return tuple(errors)


def _describe_hub_error(error: BaseException, repo_id: str, revision: str | None, endpoint: str) -> str:
    from huggingface_hub.errors import (
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if isinstance(error, OfflineModeIsEnabled):
        return "HF_HUB_OFFLINE is set, so no request may reach the Hub; unset it to push"
    if isinstance(error, RevisionNotFoundError):
        return f"the revision {revision!r} does not exist in {repo_id} (create the branch first, or leave out revision)"
    if isinstance(error, HfHubHTTPError):
        status = error.response.status_code if error.response is not None else None
        server = (error.server_message or "").strip().splitlines()[0] if error.server_message else ""
        detail = f" (the Hub said: {server})" if server else ""
        if isinstance(error, RepositoryNotFoundError) or status == 404:
            # the Hub answers 401 or 404 alike for a missing repo and for a private one the token cannot see
            return (f"the repository {repo_id} does not exist, or this token cannot see it ({status}); check the repo"
                    f" id (a pull request needs an existing repo){detail}")
        if status == 401:
            return ("the Hub rejected the token (401 Unauthorized): set HF_TOKEN to a valid token with write access,"
                    f" or run `hf auth login`{detail}")
        if status == 403:
            return f"this token may not write to {repo_id} (403 Forbidden): use a token with write access{detail}"
        return f"the Hub answered {status}{detail}"
    if isinstance(error, _transport_errors()):
        return f"could not reach the Hub at {endpoint} ({type(error).__name__}: {error})"
    return f"{type(error).__name__}: {error}"


def _hub_error_types() -> tuple[type[BaseException], ...]:
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    return (HfHubHTTPError, OfflineModeIsEnabled) + _transport_errors()


def _hub_cause(error: BaseException) -> BaseException | None:
    """The Hub or network error behind ``error`` (huggingface_hub wraps some, e.g. failed LFS uploads)."""
    types, seen = _hub_error_types(), set()
    while error is not None and id(error) not in seen:
        if isinstance(error, types):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def _status(error: BaseException) -> int | None:
    response = getattr(error, "response", None)
    return getattr(response, "status_code", None)


def _create_repo_if_missing(api, repo_id: str, private: bool | None) -> bool:
    """Create the model repo; False when it already exists. Raises the Hub's error otherwise."""
    from huggingface_hub.errors import HfHubHTTPError

    try:
        api.create_repo(repo_id, private=private, exist_ok=False)
        return True
    except HfHubHTTPError as error:
        if _status(error) == 409:
            return False
        if _status(error) in (401, 402, 403):  # may not create in the namespace, but may write to the repo
            try:
                api.repo_info(repo_id)
                return False
            except HfHubHTTPError:
                raise error from None
        raise


def upload_model_folder(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    private: bool | None = None,
    revision: str | None = None,
    create_pr: bool = False,
    token: str | None = None,
    commit_message: str | None = None,
    commit_description: str | None = None,
    endpoint: str | None = None,
):
    """Upload a Hub folder (made by :func:`build_model_folder`) as ONE commit.

    The folder is checked first (:func:`check_model_folder`); then the repo is created if it does not exist
    (not for a pull request, which needs an existing repo), and every file goes into one commit. Should
    the commit fail, a repo or branch created for it is deleted again.

    Args:
        folder: the Hub folder.
        repo_id: ``"namespace/name"``.
        private: make a newly created repo private (an existing repo keeps its visibility).
        revision: the branch to commit to (created from ``main`` if missing), or the branch a pull request
            targets; default ``main``.
        create_pr: open a pull request with the commit instead of committing to the branch.
        token: a Hub token; default ``HF_TOKEN`` or the token saved by ``hf auth login``.
        commit_message, commit_description: of the commit (a default message names the model).
        endpoint: the Hub's URL; default ``HF_ENDPOINT`` or https://huggingface.co.

    Returns:
        huggingface_hub's ``CommitInfo`` (``commit_url``, ``oid``, ``pr_url``).

    Raises:
        HubError: offline, no token, a rejected token, no permission, an unknown repo or revision, an
            unreachable server; the message names the repo id and the cause.
    """
    from huggingface_hub import CommitOperationAdd, HfApi, constants, get_token
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    files = check_model_folder(folder)
    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise ValueError(f"repo id {repo_id!r} is not valid: {error}") from error
    if repo_id.count("/") != 1:
        raise ValueError(f"repo id {repo_id!r}: give it as NAMESPACE/NAME (your user name or an organisation)")
    endpoint = (endpoint or constants.ENDPOINT).rstrip("/")
    prefix = f"could not push to {repo_id} on {endpoint}"
    if constants.is_offline_mode():
        raise HubError(f"{prefix}: HF_HUB_OFFLINE is set, so no request may reach the Hub; unset it to push")
    token = token or get_token()
    if not token:
        raise HubError(f"{prefix}: no Hugging Face token; set HF_TOKEN or run `hf auth login`")

    api = HfApi(endpoint=endpoint, token=token)
    created_repo = created_branch = False
    try:
        if not create_pr:
            created_repo = _create_repo_if_missing(api, repo_id, private)
            if revision not in (None, constants.DEFAULT_REVISION):
                created_branch = _create_branch_if_missing(api, repo_id, revision)
        operations = [CommitOperationAdd(path_in_repo=path.name, path_or_fileobj=str(path)) for path in files]
        return api.create_commit(
            repo_id,
            operations,
            commit_message=commit_message or _default_commit_message(folder),
            commit_description=commit_description,
            revision=revision,
            create_pr=create_pr,
        )
    except Exception as error:
        note = _roll_back(api, repo_id, revision, created_repo, created_branch)
        cause = _hub_cause(error)
        if cause is None:  # not the Hub's doing: let it through, having cleaned up
            if note:
                logger.warning("push to %s failed%s", repo_id, note)
            raise
        raise HubError(f"{prefix}: {_describe_hub_error(cause, repo_id, revision, endpoint)}{note}") from error


def _create_branch_if_missing(api, repo_id: str, branch: str) -> bool:
    from huggingface_hub.errors import HfHubHTTPError

    try:
        api.create_branch(repo_id, branch=branch, exist_ok=False)
        return True
    except HfHubHTTPError as error:
        if _status(error) == 409:
            return False
        raise


def _roll_back(api, repo_id: str, revision: str | None, created_repo: bool, created_branch: bool) -> str:
    """Delete what this push created before it failed; returns a note for the error message."""
    if not (created_repo or created_branch):
        return ""
    try:
        if created_repo:
            api.delete_repo(repo_id, missing_ok=True)
            return f"; the repository {repo_id} created for this push was deleted again"
        api.delete_branch(repo_id, branch=revision)
        return f"; the branch {revision!r} created for this push was deleted again"
    except Exception as error:  # the original failure matters more; say what is left behind
        left = f"repository {repo_id}" if created_repo else f"branch {revision!r}"
        return f"; the empty {left} created for this push could not be deleted ({type(error).__name__}: {error})"


def _default_commit_message(folder: str | os.PathLike) -> str:
    config = json.loads((Path(folder) / "config.json").read_text())
    preset = config.get("preset") or "custom"
    return f"Upload hfdae model ({preset} design, {config.get('images_seen', 0):,} training images seen)"


def push_to_hub(
    source: str | os.PathLike,
    repo_id: str,
    *,
    private: bool | None = None,
    revision: str | None = None,
    create_pr: bool = False,
    token: str | None = None,
    commit_message: str | None = None,
    commit_description: str | None = None,
    endpoint: str | None = None,
    **folder_options,
):
    """Build the Hub folder of a model or run folder and upload it in one commit; returns the ``CommitInfo``.

    The named arguments are :func:`upload_model_folder`'s; ``folder_options`` go to
    :func:`build_model_folder` (``evaluations``, ``run_dir``, ``checkpoint``, ``model_method``, ``license``,
    ``tags``, ``notes``).
    """
    with tempfile.TemporaryDirectory(prefix="hfdae-push-") as staging:
        folder = build_model_folder(source, Path(staging) / "upload", repo_id=repo_id, **folder_options)
        return upload_model_folder(folder, repo_id, private=private, revision=revision, create_pr=create_pr,
                                   token=token, commit_message=commit_message,
                                   commit_description=commit_description, endpoint=endpoint)


def push_model(model, repo_id: str, **kwargs):
    """Upload an in-memory :class:`~hfdae.DenoisingAutoencoder` (what ``model.push_to_hub`` calls).

    The model is saved with ``save_pretrained`` (safetensors) and pushed with :func:`push_to_hub`; keyword
    arguments are those of :func:`push_to_hub` (``evaluations``, ``run_dir``, ``private``, ``revision``,
    ``create_pr``, ``token``, ``commit_message`` ...). transformers' ``max_shard_size`` is not supported
    (hfdae models fit one file) and ``tags`` are added to the card.
    """
    if kwargs.pop("max_shard_size", None) not in (None, "50GB"):
        raise ValueError("hfdae models are uploaded as one model.safetensors; max_shard_size is not supported")
    with tempfile.TemporaryDirectory(prefix="hfdae-model-") as staging:
        model.save_pretrained(staging)
        return push_to_hub(staging, repo_id, **kwargs)
