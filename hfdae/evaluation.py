"""Evaluation: methods side by side on the same degraded inputs, per protocol, with ``results.json``.

The protocols (their conditions, seeds, headline and default baselines) are the registry of
:mod:`hfdae.protocols`; the methods (hfdae models and baselines) are :class:`hfdae.baselines.Method`. Every
method sees exactly the same degraded inputs; every output is clipped to [0, 1] and rounded to 8 bits, and
scored by PSNR (and SSIM) against the clean image over all channels, no border crop.

>>> from hfdae.baselines import Method, build_baseline
>>> report = evaluate([Method.from_model(model, "mine"), build_baseline("input")], images, "awgn")
>>> report.save("eval/")                     # results.json and results.md
>>> EvaluationReport.load("eval/results.json").summary("mine", "sigma25")

``results.json`` (format 2; :meth:`EvaluationReport.load` also reads the format before it, whose rows
carried no ``kind`` and ``source``)::

    {"format": 2, "protocol": "awgn", "data": "...", "split": null, "images": [...], "unreadable": [...],
     "conditions": ["sigma15", ...], "columns": [...], "headline": {"column": "sigma25", "label": "..."},
     "machine": "...", "converted_to": null | "gray" | "colour",
     "methods": {"ROW NAME": {"kind": "model" | "baseline" | "input", "source": "colour" | "bm3d" | ...,
                              "results": {"CONDITION": {"psnr": {"mean", "std", "per_image": {IMAGE: dB}},
                                                        "ssim": {...}, "seconds": {...}}}}}}
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .baselines import INPUT_ROW_NAME, METHOD_KINDS, Method, build_baseline
from .metrics import psnr, ssim
from .processing import quantize_8bit
from .protocols import AVERAGE, CHAPTER_CONDITIONS, EvaluationCase, degrade_for_evaluation, get_protocol

__all__ = [
    "RESULTS_FORMAT",
    "AVERAGE",
    "CHAPTER_CONDITIONS",
    "EvaluationCase",
    "Method",
    "build_method",
    "degrade_for_evaluation",
    "degraded_cases",
    "MethodRow",
    "EvaluationReport",
    "load_evaluation",
    "evaluate",
    "evaluate_models",
]

RESULTS_FORMAT = 2
# format 1 (before rows had kind and source): how its baseline rows were named
_LEGACY_BASELINES = {"BM3D": "bm3d", "DnCNN (": "dncnn", "FFDNet (": "ffdnet"}


def build_method(spec: str) -> Method:
    """A baseline from a spec such as ``bm3d`` or ``dncnn=PATH`` (see :func:`hfdae.baselines.build_baseline`)."""
    return build_baseline(spec)


def degraded_cases(clean: torch.Tensor, name: str, protocol: str, seed: int = 0, **options: Any) -> list[EvaluationCase]:
    """The degraded inputs of one clean image [1, C, H, W] under ``protocol`` (``options``, e.g. ``sigmas=``,
    are the protocol's; see :attr:`hfdae.protocols.Protocol.options`)."""
    return get_protocol(protocol).cases(clean, name, seed, **options)


@dataclass
class MethodRow:
    """What a row of a report is: its ``kind`` (model, baseline, input) and ``source`` (see :class:`Method`)."""

    kind: str
    source: str


@dataclass
class EvaluationReport:
    """Per-image values of every method and condition, with summaries, JSON and Markdown.

    ``values[method][condition][metric][image]`` with metric ``psnr``, ``ssim`` or ``seconds``; protocols with an
    average (the chapter's ``seed``) add the column ``"average"``, the per-image mean over the conditions.
    ``rows[method]`` says what each row is (:class:`MethodRow`).
    """

    protocol: str
    data: str
    images: list[str]
    unreadable: list[str] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)
    values: dict[str, dict[str, dict[str, dict[str, float]]]] = field(default_factory=dict)
    machine: str = ""
    split: str | None = None  # the hash split of `data` the images came from (None: all of it)
    # the kind the images were converted to where the data held another channel count ("gray": colour
    # images read as gray, e.g. with --convert-channels); None where they were used as stored
    converted_to: str | None = None
    rows: dict[str, MethodRow] = field(default_factory=dict)
    # for figures: the degraded inputs and every method's outputs on one image (see `keep_image`)
    kept_image: str | None = None
    kept_clean: torch.Tensor | None = None
    kept_inputs: dict[str, torch.Tensor] = field(default_factory=dict)
    kept_outputs: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        """The table's columns: the conditions, then ``average`` where the protocol has one."""
        return get_protocol(self.protocol).columns(self.conditions)

    @property
    def headline(self) -> str:
        """The column that measures a model on this protocol (see :attr:`hfdae.protocols.Protocol.headline`)."""
        return get_protocol(self.protocol).headline

    @property
    def headline_label(self) -> str:
        """What the headline column is, e.g. ``"five-output average"``."""
        return get_protocol(self.protocol).headline_label

    def row(self, method: str) -> MethodRow:
        """The kind and source of a row; rows of unknown kind count as models."""
        return self.rows.get(method) or MethodRow("model", method)

    def methods_of_kind(self, kind: str) -> list[str]:
        """The rows of one kind (``model``, ``baseline`` or ``input``), in table order."""
        return [method for method in self.values if self.row(method).kind == kind]

    def summary(self, method: str, condition: str, metric: str = "psnr") -> dict[str, float] | None:
        """``{"mean", "std"}`` over images (population std), or None where the method did not run."""
        per_image = self.values.get(method, {}).get(condition, {}).get(metric)
        if not per_image:
            return None
        values = list(per_image.values())
        return {"mean": statistics.fmean(values), "std": statistics.pstdev(values) if len(values) > 1 else 0.0}

    def to_dict(self) -> dict:
        """The ``results.json`` content (see the module docstring)."""
        methods = {}
        for method, conditions in self.values.items():
            results = {}
            for condition, metrics in conditions.items():
                results[condition] = {metric: {**(self.summary(method, condition, metric) or {}), "per_image": per_image}
                                      for metric, per_image in metrics.items()}
            row = self.row(method)
            methods[method] = {"kind": row.kind, "source": row.source, "results": results}
        return {"format": RESULTS_FORMAT, "protocol": self.protocol, "data": self.data, "split": self.split,
                "images": self.images, "unreadable": self.unreadable, "conditions": self.conditions,
                "columns": self.columns, "headline": {"column": self.headline, "label": self.headline_label},
                "machine": self.machine, "converted_to": self.converted_to, "methods": methods}

    @classmethod
    def from_dict(cls, content: dict, where: str = "results") -> "EvaluationReport":
        """Rebuild a report from ``results.json`` content of format 2 or of the format before it."""
        missing = [key for key in ("protocol", "data", "images", "conditions", "methods") if key not in content]
        if missing:
            raise ValueError(f"{where}: not an `hfdae evaluate` results.json (missing {', '.join(missing)})")
        version = content.get("format", 1)
        if version not in (1, RESULTS_FORMAT):
            raise ValueError(f"{where}: results format {version!r} is newer than this hfdae reads ({RESULTS_FORMAT})")
        get_protocol(content["protocol"])  # an unknown protocol is named here, not deep in a card
        report = cls(content["protocol"], content["data"], list(content["images"]), list(content.get("unreadable") or []),
                     list(content["conditions"]), machine=content.get("machine") or "", split=content.get("split"),
                     converted_to=content.get("converted_to"))
        for method, entry in content["methods"].items():
            if version == 1:
                results, row = entry, _legacy_row(method)
            else:
                results, row = entry["results"], MethodRow(entry["kind"], entry["source"])
                if row.kind not in METHOD_KINDS:
                    raise ValueError(f"{where}: row {method!r} has kind {row.kind!r}; expected one of {list(METHOD_KINDS)}")
            report.rows[method] = row
            report.values[method] = {condition: {metric: dict(values.get("per_image") or {})
                                                 for metric, values in metrics.items()}
                                     for condition, metrics in results.items()}
        return report

    @classmethod
    def load(cls, path: str | Path) -> "EvaluationReport":
        """Read a ``results.json`` (or the folder holding one) written by :meth:`save`, in either format."""
        path = Path(path)
        if path.is_dir():
            path = path / "results.json"
        try:
            content = json.loads(path.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: no such evaluation file (hfdae evaluate --output writes results.json)") from None
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not a JSON evaluation file ({error})") from error
        return cls.from_dict(content, str(path))

    def save(self, folder: str | Path) -> Path:
        """Write ``results.json`` and ``results.md`` into ``folder``; returns the JSON path."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "results.json").write_text(json.dumps(self.to_dict(), indent=1))
        (folder / "results.md").write_text(self.markdown() + "\n")
        return folder / "results.json"

    def markdown(self) -> str:
        """A table: one row per method; per column PSNR mean +- std (dB) and SSIM; seconds per image."""
        columns = self.columns
        header = "| method | " + " | ".join(columns) + " | s / image |"
        lines = [
            f"Protocol `{self.protocol}` on {len(self.images)} images of `{self.data}`"
            + (f" (split `{self.split}`)" if self.split else "")
            + (f", read as {self.converted_to} (converted)" if self.converted_to else "") + "; PSNR dB mean +- std"
            f" (SSIM below); {self.machine}",
            "",
            header,
            "|---|" + "---|" * (len(columns) + 1),
        ]
        for method in self.values:
            cells = []
            for condition in columns:
                value = self.summary(method, condition, "psnr")
                structure = self.summary(method, condition, "ssim")
                if value is None:
                    cells.append("n/a")
                else:
                    text = f"{value['mean']:.2f} +- {value['std']:.2f}"
                    cells.append(text + (f"<br>{structure['mean']:.4f}" if structure else ""))
            seconds = [s["mean"] for c in self.conditions if (s := self.summary(method, c, "seconds"))]
            cells.append(f"{statistics.fmean(seconds):.3f}" if seconds else "-")
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        lines.append(f"\nHeadline: `{self.headline}` ({self.headline_label}).")
        if self.unreadable:
            lines.append(f"\nUnreadable (skipped): {', '.join(self.unreadable)}")
        return "\n".join(lines)


def _legacy_row(method: str) -> MethodRow:
    """What a row of a format-1 file was, from the names `hfdae evaluate` gave its baselines then."""
    if method == INPUT_ROW_NAME:
        return MethodRow("input", "input")
    for prefix, name in _LEGACY_BASELINES.items():
        if method.startswith(prefix):
            return MethodRow("baseline", name)
    return MethodRow("model", method)


def load_evaluation(path: str | Path) -> EvaluationReport:
    """Read a ``results.json`` of ``hfdae evaluate`` (either format); see :meth:`EvaluationReport.load`."""
    return EvaluationReport.load(path)


def _machine(methods: list[Method]) -> str:
    """Where the methods ran: the CPU (and GPU, if a model was on one), threads, torch."""
    cpu = platform.processor() or platform.machine()
    gpus = sorted({torch.cuda.get_device_name(torch.device(m.device)) for m in methods if m.device.startswith("cuda")})
    return f"{', '.join(gpus) + ' and ' if gpus else ''}CPU {cpu} ({torch.get_num_threads()} threads), torch {torch.__version__}"


def evaluate(
    methods: list[Method],
    images: list[tuple[str, torch.Tensor]],
    protocol: str = "seed",
    sigmas=None,
    seed: int = 0,
    with_ssim: bool = True,
    data: str = "",
    unreadable: list[str] | None = None,
    split: str | None = None,
    progress: bool = True,
    keep_image: str | None = None,
    options: dict[str, Any] | None = None,
) -> EvaluationReport:
    """Evaluate ``methods`` on named clean images [C, H, W] in [0, 1] under ``protocol``.

    Args:
        methods: the methods, for example ``[Method.from_model(model), build_baseline("input")]``.
        images: ``[(name, clean image)]``, for example from :func:`hfdae.data.load_images`.
        protocol: a protocol of :data:`hfdae.protocols.PROTOCOLS` (``seed``, ``awgn``, ``deblur``, ``inpaint`` ...).
        sigmas: the noise levels (0-255) of protocols with a ``sigmas`` option (``awgn``; None: its default 15, 25,
            50); protocols without one ignore it.
        seed: base seed of the protocol's fixed-seed degradations.
        with_ssim: compute SSIM beside PSNR.
        data: a label of the data for the report.
        unreadable: names of images that could not be read, for the report.
        split: the hash split of ``data`` the images came from, for the report (None: all of it).
        progress: show a tqdm progress bar.
        keep_image: keep this image's degraded inputs and restorations in the report (for figures).
        options: further options of the protocol (see :attr:`hfdae.protocols.Protocol.options`).
    """
    from tqdm.auto import tqdm

    definition = get_protocol(protocol)
    options = dict(options or {})
    if sigmas is not None and "sigmas" in definition.options:
        options["sigmas"] = tuple(sigmas)
    names = [name for name, _ in images]
    if len(set(names)) != len(names):
        raise ValueError("image names must be unique")
    if len({method.name for method in methods}) != len(methods):
        raise ValueError(f"method names must be unique, got {[method.name for method in methods]}")
    conditions = definition.condition_names(**options)
    report = EvaluationReport(protocol, data, names, list(unreadable or []), conditions,
                              {method.name: {} for method in methods}, _machine(methods), split=split,
                              rows={method.name: MethodRow(method.kind, method.source) for method in methods})
    for name, clean in tqdm(images, desc=f"evaluate ({protocol})", unit="image", disable=not progress):
        clean = clean.unsqueeze(0).float()
        keep = name == keep_image
        if keep:
            report.kept_image, report.kept_clean = name, clean[0]
        for case in definition.cases(clean, name, seed, **options):
            if keep:
                report.kept_inputs[case.condition] = quantize_8bit(case.degraded)[0]
            for method in methods:
                if not method.applies_to(case):
                    continue
                if method.channels is not None and method.channels != case.degraded.shape[1]:
                    raise ValueError(f"{method.name} works on {method.channels}-channel images but the data has"
                                     f" {case.degraded.shape[1]} channels")
                start = time.perf_counter()
                restored = quantize_8bit(method.restore(case))
                seconds = time.perf_counter() - start
                if keep:
                    report.kept_outputs.setdefault(method.name, {})[case.condition] = restored[0]
                entry = report.values[method.name].setdefault(case.condition, {"psnr": {}, "ssim": {}, "seconds": {}})
                # identical images have infinite PSNR; cap so that means stay finite
                entry["psnr"][name] = min(100.0, float(psnr(restored, clean)[0]))
                entry["seconds"][name] = seconds
                if with_ssim:
                    entry["ssim"][name] = float(ssim(restored, clean)[0])
    if definition.average_label:
        for per_condition in report.values.values():
            if all(condition in per_condition for condition in conditions):
                average = {}
                for metric in ("psnr", "ssim"):
                    if per_condition[conditions[0]][metric]:
                        average[metric] = {name: statistics.fmean(per_condition[c][metric][name] for c in conditions)
                                           for name in names}
                per_condition[AVERAGE] = average
    for per_condition in report.values.values():
        for entry in per_condition.values():
            if not entry.get("ssim"):
                entry.pop("ssim", None)
    return report


def evaluate_models(
    models: Sequence[str],
    data: str,
    protocol: str = "seed",
    baselines: Sequence[str] = (),
    *,
    default_baselines: bool = True,
    split: str | None = None,
    limit: int | None = None,
    seed: int = 0,
    sigmas=None,
    with_ssim: bool = True,
    self_ensemble: bool = False,
    tile_size: int | str | None = "auto",
    given_sigma: bool = False,
    convert_channels: bool = False,
    output: str | Path | None = None,
    panel_image: str | None = None,
    progress: bool = True,
) -> EvaluationReport:
    """What ``hfdae evaluate`` does: models by source beside baselines on a folder of clean images, one report.

    Args:
        models: model sources (``"default"``, zoo names, model or run folders, Hub ids); ``default`` is the row
            ``"default (embedded)"``, every other row is named by its source.
        data: the clean test images: a folder, parquet file(s) or a Hub dataset id.
        protocol: a protocol of :data:`hfdae.protocols.PROTOCOLS`.
        baselines: baseline specs (:func:`hfdae.baselines.build_baseline`) to add.
        default_baselines: add the protocol's default baselines (``input`` and the like) too.
        split: only this hash split of ``data`` (e.g. ``"validation"``: images training never used).
        limit: only the first ``limit`` images.
        seed, sigmas, with_ssim, progress: see :func:`evaluate`.
        self_ensemble, tile_size: passed to :func:`hfdae.inference.restore` for the models.
        given_sigma: add a row ``"SOURCE (given sigma)"`` for every model with a noise-level input, given the
            true noise sigma of the conditions that have one (as FFDNet is); the plain row stays blind.
        convert_channels: read the data in the models' channel count even under ``awgn`` (for example a
            held-out colour split read as gray for gray models); other protocols always convert.
        output: a folder for ``results.json``, ``results.md``, the PSNR heatmap and (protocols with the
            chapter's identity condition) the detail panel.
        panel_image: the image of the detail panel (default: the first).

    Raises:
        ValueError: models of different channel counts, or (``awgn``) data of another channel count than the
            models': converting would change the published protocol's numbers silently.
    """
    from .data import load_images
    from .inference import load_model

    definition = get_protocol(protocol)
    loaded = [load_model(source) for source in models]
    channels = {model.config.image_channels for model in loaded}
    if len(channels) > 1:
        raise ValueError("the models take different channel counts (gray and colour): evaluate them separately")
    labels = ["default (embedded)" if source == "default" else str(source) for source in models]
    methods = [Method.from_model(model, label, source=str(source), self_ensemble=self_ensemble, tile_size=tile_size)
               for model, source, label in zip(loaded, models, labels)]
    if given_sigma:
        methods += [Method.from_model(model, f"{label} (given sigma)", source=str(source), given_sigma=True,
                                      self_ensemble=self_ensemble, tile_size=tile_size)
                    for model, source, label in zip(loaded, models, labels) if model.config.noise_level_input]
    specs = list(dict.fromkeys([*(definition.default_baselines if default_baselines else ()), *baselines]))
    methods += [build_baseline(spec) for spec in specs]
    model_channels = channels.pop() if channels else None
    images, unreadable = load_images(data, None, split=split, limit=limit)
    if not images:
        raise ValueError(f"{data}: no readable images" + (f" in split {split!r}" if split else ""))
    whose = "the models take" if model_channels is not None else f"the first image ({images[0][0]}) has"
    if model_channels is None:
        model_channels = images[0][1].shape[0]
    mismatched = [(name, image.shape[0]) for name, image in images if image.shape[0] != model_channels]
    if mismatched and protocol == "awgn" and not convert_channels:
        raise ValueError(f"{mismatched[0][0]} has {mismatched[0][1]} channel(s) but {whose}"
                         f" {model_channels}: the awgn protocol needs data of the models' own kind"
                         " (colour models on CBSD68, gray models on BSD68 / Set12; --convert-channels to"
                         " read it converted anyway)")
    if mismatched:  # read again, converted as training reads data (8-bit luma for gray), so both see one image
        images, unreadable = load_images(data, model_channels, split=split, limit=limit)
    panel_image = panel_image or images[0][0]
    if panel_image not in {name for name, _ in images}:
        raise ValueError(f"panel image {panel_image!r} is not among the evaluated images")
    report = evaluate(methods, images, protocol, sigmas=sigmas, seed=seed, with_ssim=with_ssim, data=str(data),
                      split=split, unreadable=unreadable, progress=progress,
                      keep_image=panel_image if output else None)
    if mismatched:
        report.converted_to = "gray" if model_channels == 1 else "colour"
    if output is not None:
        from .plots import detail_panel, psnr_heatmap

        report.save(output)
        psnr_heatmap(report, Path(output) / "psnr_heatmap.png")
        if "identity" in report.conditions:
            detail_panel(report, Path(output) / "detail_panel.png")
    return report
