"""Evaluation: the chapter's five-output protocol and the standard AWGN protocol, with peers side by side.

Protocols (every method sees exactly the same degraded inputs):

- ``seed``, the chapter's (section 18.4.4): for every test image, five outputs, from the clean image and
  from one instance of each of the four degradations (fixed seeds per image and condition), and the
  PSNR (and SSIM) of each and of their five-output average; mean and standard deviation over images.
- ``awgn``, the published tables' (``../shared/data/README.md``): ``noisy = clean + N(0, (sigma/255)^2)``
  drawn with ``numpy.random.RandomState(0)`` per image in H x W x C order, the noisy input not clipped;
  every output clipped to [0, 1] and rounded to 8 bits; PSNR over all channels, no border crop.

Methods are hfdae models, the noisy input itself (the floor), BM3D, and the published DnCNN and FFDNet
weights (:mod:`hfdae.peers`). Methods that need the noise level (BM3D, FFDNet) get the true sigma and
run only on conditions that have one.
"""

from __future__ import annotations

import json
import platform
import statistics
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .degradations import CHAPTER_DEGRADATIONS, DegradedBatch, build_degradation
from .metrics import psnr, ssim
from .processing import quantize_8bit

__all__ = [
    "PROTOCOLS",
    "TASK_PROTOCOLS",
    "DEBLUR_SIGMAS",
    "CHAPTER_CONDITIONS",
    "AVERAGE",
    "EvaluationCase",
    "Method",
    "build_method",
    "degrade_for_evaluation",
    "degraded_cases",
    "protocol_conditions",
    "EvaluationReport",
    "evaluate",
]

PROTOCOLS = ("seed", "awgn", "deblur", "inpaint")
DEBLUR_SIGMAS = (1.0, 2.0, 3.0)
INPAINT_CONDITION = "inpaint"
# The protocol that measures each model task (see DenoisingAutoencoderConfig.task).
TASK_PROTOCOLS = {"restore": "seed", "denoise": "awgn", "deblur": "deblur", "inpaint": "inpaint"}
CHAPTER_CONDITIONS = ("identity",) + tuple(CHAPTER_DEGRADATIONS)
AVERAGE = "average"  # the chapter's five-output average


def degrade_for_evaluation(clean: torch.Tensor, condition: str, image_name: str, seed: int = 0) -> DegradedBatch:
    """One fixed instance of ``condition`` applied to ``clean`` [1, C, H, W].

    The seed depends on ``(seed, image_name, condition)`` only (not on Python's salted ``hash``), so
    every model, run and machine gets the same degraded input for the same image.
    """
    generator = torch.Generator().manual_seed(seed + zlib.crc32(f"{image_name}/{condition}".encode()))
    degraded = build_degradation(condition)(clean.cpu(), generator=generator)
    degraded.images = degraded.images.to(clean.device)
    return degraded


@dataclass
class EvaluationCase:
    """One degraded input: its condition name, the image [1, C, H, W], the noise sigma (0-255) if known
    and, for inpainting, the mask of the holes."""

    condition: str
    degraded: torch.Tensor
    sigma: float | None = None
    mask: torch.Tensor | None = None  # [1, 1, H, W], 1 in the holes (inpainting)


def _awgn_condition(sigma: float) -> str:
    return f"sigma{sigma:g}"


def degraded_cases(clean: torch.Tensor, name: str, protocol: str, sigmas=(15, 25, 50), seed: int = 0) -> list[EvaluationCase]:
    """The degraded inputs of one clean image [1, C, H, W] under ``protocol``."""
    if protocol == "seed":
        cases = []
        for condition in CHAPTER_CONDITIONS:
            degraded = degrade_for_evaluation(clean, condition, name, seed)
            sigma = degraded.params.get("sigma") if condition == "gaussian" else None
            # models with a mask channel see the mask of the damaged pixels here as in training
            mask = degraded.mask.float().to(clean.device) if degraded.mask is not None else None
            cases.append(EvaluationCase(condition, degraded.images, None if sigma is None else float(sigma[0]) * 255,
                                        mask))
        return cases
    if protocol == "awgn":
        cases = []
        for sigma in sigmas:
            # numpy seed 0 per image, drawn in H x W x C order as the published (KAIR) evaluation does
            noise = np.random.RandomState(0).normal(0, sigma / 255, tuple(clean[0].permute(1, 2, 0).shape))
            noise = torch.from_numpy(noise).permute(2, 0, 1).unsqueeze(0)
            noisy = (clean.double().cpu() + noise).float().to(clean.device)  # not clipped
            cases.append(EvaluationCase(_awgn_condition(sigma), noisy, float(sigma)))
        return cases
    if protocol == "deblur":
        return [EvaluationCase(_deblur_condition(sigma), build_degradation({"name": "blur", "sigma": sigma})(clean).images)
                for sigma in DEBLUR_SIGMAS]
    if protocol == "inpaint":
        generator = torch.Generator().manual_seed(seed + zlib.crc32(f"{name}/{INPAINT_CONDITION}".encode()))
        holes = build_degradation("inpaint_mask")(clean.cpu(), generator=generator)
        return [EvaluationCase(INPAINT_CONDITION, holes.images.to(clean.device), mask=holes.mask.float().to(clean.device))]
    raise ValueError(f"protocol={protocol!r} is not valid; choose one of {list(PROTOCOLS)}")


def _deblur_condition(sigma: float) -> str:
    return f"blur{sigma:g}"


def protocol_conditions(protocol: str, sigmas=(15, 25, 50)) -> list[str]:
    """The condition names of a protocol, in table order."""
    if protocol == "seed":
        return list(CHAPTER_CONDITIONS)
    if protocol == "awgn":
        return [_awgn_condition(sigma) for sigma in sigmas]
    if protocol == "deblur":
        return [_deblur_condition(sigma) for sigma in DEBLUR_SIGMAS]
    if protocol == "inpaint":
        return [INPAINT_CONDITION]
    raise ValueError(f"protocol={protocol!r} is not valid; choose one of {list(PROTOCOLS)}")


@dataclass
class Method:
    """A denoiser under evaluation: ``restore(degraded [1, C, H, W], sigma or None) -> restored``.

    Args:
        name: the row name in tables.
        restore: the restoration function.
        needs_sigma: runs only on conditions with a known noise sigma.
        channels: the image channels it works on (1 or 3), or None for any.
        skip_conditions: conditions it does not run on.
        uses_mask: ``restore`` takes a third argument, the inpainting mask (or None).
    """

    name: str
    restore: Callable[[torch.Tensor, float | None], torch.Tensor]
    needs_sigma: bool = False
    channels: int | None = None
    skip_conditions: tuple[str, ...] = ()
    device: str = "cpu"
    uses_mask: bool = False

    @classmethod
    def from_model(cls, model, name: str | None = None, **restore_kwargs) -> "Method":
        """An hfdae model (``restore_kwargs`` go to :func:`hfdae.inference.restore`: tiling, self-ensemble).

        Evaluations run in fp32 unless ``precision`` says otherwise, so that numbers do not depend on
        whether the machine has native bf16; the inference copy (folded batch norm) is made once here.
        """
        from .acceleration import prepare_for_inference
        from .inference import restore

        label = name or str(model.config.name_or_path or model.config.preset or "hfdae")
        restore_kwargs.setdefault("precision", "fp32")
        if restore_kwargs.get("fast", True):
            model = prepare_for_inference(model)
        if model.config.extra_input_channels:  # an inpainting model: the mask is its extra input (None: zeros)
            return cls(label, lambda degraded, sigma, mask: restore(model, degraded, extra_inputs=mask, **restore_kwargs),
                       channels=model.config.image_channels, device=str(next(model.parameters()).device),
                       uses_mask=True)
        return cls(label, lambda degraded, sigma: restore(model, degraded, **restore_kwargs),
                   channels=model.config.image_channels, device=str(next(model.parameters()).device))

    @classmethod
    def noisy_input(cls) -> "Method":
        """The degraded input itself: the floor every method must beat."""
        # the clean condition would score infinite PSNR: it says nothing about the floor
        return cls("input (no restoration)", lambda degraded, sigma: degraded, skip_conditions=("identity",))

    @classmethod
    def bm3d(cls) -> "Method":
        """BM3D (gray) / CBM3D (colour), given the true sigma."""
        from .peers import bm3d_denoise

        return cls("BM3D", lambda degraded, sigma: bm3d_denoise(degraded, sigma), needs_sigma=True)

    @classmethod
    def dncnn(cls, path: str | Path) -> "Method":
        """DnCNN from published weights (blind models run on every condition)."""
        from .peers import load_dncnn

        network = load_dncnn(path)
        name = f"DnCNN ({Path(path).stem})"
        return cls(name, lambda degraded, sigma: _run_network(network, degraded), channels=network.model[0].in_channels)

    @classmethod
    def ffdnet(cls, path: str | Path) -> "Method":
        """FFDNet from published weights, given the true sigma."""
        from .peers import load_ffdnet

        network = load_ffdnet(path)
        channels = network.model[-1].out_channels // 4
        return cls(f"FFDNet ({Path(path).stem})", lambda degraded, sigma: _run_network(network, degraded, sigma),
                   needs_sigma=True, channels=channels)


@torch.inference_mode()
def _run_network(network: torch.nn.Module, degraded: torch.Tensor, *args) -> torch.Tensor:
    return network(degraded.float(), *args)


def build_method(spec: str) -> Method:
    """A baseline from a command-line spec: ``bm3d``, ``input``, ``dncnn=PATH`` or ``ffdnet=PATH``."""
    kind, _, path = spec.partition("=")
    if kind == "bm3d" and not path:
        return Method.bm3d()
    if kind == "input" and not path:
        return Method.noisy_input()
    if kind in ("dncnn", "ffdnet") and path:
        return getattr(Method, kind)(path)
    raise ValueError(f"baseline {spec!r} is not valid; use bm3d, input, dncnn=PATH or ffdnet=PATH")


@dataclass
class EvaluationReport:
    """Per-image values of every method and condition, with summaries, JSON and Markdown.

    ``values[method][condition][metric][image]`` with metric ``psnr``, ``ssim`` or ``seconds``; the seed
    protocol adds the condition ``"average"`` (the five-output average per image).
    """

    protocol: str
    data: str
    images: list[str]
    unreadable: list[str] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)
    values: dict[str, dict[str, dict[str, dict[str, float]]]] = field(default_factory=dict)
    machine: str = ""
    split: str | None = None  # the hash split of `data` the images came from (None: all of it)
    # for figures: the degraded inputs and every method's outputs on one image (see `keep_image`)
    kept_image: str | None = None
    kept_clean: torch.Tensor | None = None
    kept_inputs: dict[str, torch.Tensor] = field(default_factory=dict)
    kept_outputs: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)

    def summary(self, method: str, condition: str, metric: str = "psnr") -> dict[str, float] | None:
        """``{"mean", "std"}`` over images (population std), or None where the method did not run."""
        per_image = self.values.get(method, {}).get(condition, {}).get(metric)
        if not per_image:
            return None
        values = list(per_image.values())
        return {"mean": statistics.fmean(values), "std": statistics.pstdev(values) if len(values) > 1 else 0.0}

    def to_dict(self) -> dict:
        methods = {}
        for method, conditions in self.values.items():
            methods[method] = {}
            for condition, metrics in conditions.items():
                entry = {}
                for metric, per_image in metrics.items():
                    entry[metric] = {**(self.summary(method, condition, metric) or {}), "per_image": per_image}
                methods[method][condition] = entry
        return {"protocol": self.protocol, "data": self.data, "split": self.split, "images": self.images,
                "unreadable": self.unreadable, "conditions": self.conditions, "machine": self.machine,
                "methods": methods}

    def save(self, folder: str | Path) -> Path:
        """Write ``results.json`` and ``results.md`` into ``folder``; returns the JSON path."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "results.json").write_text(json.dumps(self.to_dict(), indent=1))
        (folder / "results.md").write_text(self.markdown() + "\n")
        return folder / "results.json"

    def markdown(self) -> str:
        """A table: one row per method; per condition PSNR mean +- std (dB) and SSIM; seconds per image."""
        columns = self.conditions + ([AVERAGE] if self.protocol == "seed" else [])
        header = "| method | " + " | ".join(columns) + " | s / image |"
        lines = [
            f"Protocol `{self.protocol}` on {len(self.images)} images of `{self.data}`"
            + (f" (split `{self.split}`)" if self.split else "") + "; PSNR dB mean +- std"
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
        if self.unreadable:
            lines.append(f"\nUnreadable (skipped): {', '.join(self.unreadable)}")
        return "\n".join(lines)


def _machine(methods: list[Method]) -> str:
    """Where the methods ran: the CPU (and GPU, if a model was on one), threads, torch."""
    cpu = platform.processor() or platform.machine()
    gpus = sorted({torch.cuda.get_device_name(torch.device(m.device)) for m in methods if m.device.startswith("cuda")})
    return f"{', '.join(gpus) + ' and ' if gpus else ''}CPU {cpu} ({torch.get_num_threads()} threads), torch {torch.__version__}"


def evaluate(
    methods: list[Method],
    images: list[tuple[str, torch.Tensor]],
    protocol: str = "seed",
    sigmas=(15, 25, 50),
    seed: int = 0,
    with_ssim: bool = True,
    data: str = "",
    unreadable: list[str] | None = None,
    split: str | None = None,
    progress: bool = True,
    keep_image: str | None = None,
) -> EvaluationReport:
    """Evaluate ``methods`` on named clean images [C, H, W] in [0, 1] under ``protocol``.

    Args:
        methods: the methods, for example ``[Method.from_model(model), Method.noisy_input(), Method.bm3d()]``.
        images: ``[(name, clean image)]``, for example from :func:`hfdae.data.load_images`.
        protocol: ``"seed"`` (the chapter's five outputs), ``"awgn"`` (Gaussian noise at ``sigmas``),
            ``"deblur"`` (Gaussian blur of sigma 1, 2 and 3) or ``"inpaint"`` (boxes and strokes of
            holes set to 0; models with a mask channel get the mask).
        sigmas: noise levels (0-255) of the ``awgn`` protocol.
        seed: base seed of the ``seed`` protocol's degradations.
        with_ssim: compute SSIM beside PSNR.
        data: a label of the data for the report.
        unreadable: names of images that could not be read, for the report.
        split: the hash split of ``data`` the images came from, for the report (None: all of it).
        progress: show a tqdm progress bar.
        keep_image: keep this image's degraded inputs and restorations in the report (for figures).
    """
    from tqdm.auto import tqdm

    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol={protocol!r} is not valid; choose one of {list(PROTOCOLS)}")
    names = [name for name, _ in images]
    if len(set(names)) != len(names):
        raise ValueError("image names must be unique")
    if len({method.name for method in methods}) != len(methods):
        raise ValueError(f"method names must be unique, got {[method.name for method in methods]}")
    conditions = protocol_conditions(protocol, sigmas)
    report = EvaluationReport(protocol, data, names, list(unreadable or []), conditions,
                              {method.name: {} for method in methods}, _machine(methods), split=split)
    for name, clean in tqdm(images, desc=f"evaluate ({protocol})", unit="image", disable=not progress):
        clean = clean.unsqueeze(0).float()
        keep = name == keep_image
        if keep:
            report.kept_image, report.kept_clean = name, clean[0]
        for case in degraded_cases(clean, name, protocol, sigmas, seed):
            if keep:
                report.kept_inputs[case.condition] = quantize_8bit(case.degraded)[0]
            for method in methods:
                if (method.needs_sigma and case.sigma is None) or case.condition in method.skip_conditions:
                    continue
                degraded = case.degraded
                if method.channels is not None and method.channels != degraded.shape[1]:
                    raise ValueError(f"{method.name} works on {method.channels}-channel images but the data has"
                                     f" {degraded.shape[1]} channels")
                start = time.perf_counter()
                arguments = (degraded, case.sigma, case.mask) if method.uses_mask else (degraded, case.sigma)
                restored = quantize_8bit(method.restore(*arguments))
                seconds = time.perf_counter() - start
                if keep:
                    report.kept_outputs.setdefault(method.name, {})[case.condition] = restored[0]
                entry = report.values[method.name].setdefault(case.condition, {"psnr": {}, "ssim": {}, "seconds": {}})
                # identical images have infinite PSNR; cap so that means stay finite
                entry["psnr"][name] = min(100.0, float(psnr(restored, clean)[0]))
                entry["seconds"][name] = seconds
                if with_ssim:
                    entry["ssim"][name] = float(ssim(restored, clean)[0])
    if protocol == "seed":
        for method, per_condition in report.values.items():
            if all(condition in per_condition for condition in CHAPTER_CONDITIONS):
                average = {"psnr": {}, "ssim": {}}
                for metric in average:
                    if not per_condition[CHAPTER_CONDITIONS[0]][metric]:
                        continue
                    for name in names:
                        average[metric][name] = statistics.fmean(per_condition[c][metric][name] for c in CHAPTER_CONDITIONS)
                per_condition[AVERAGE] = {metric: values for metric, values in average.items() if values}
    for per_condition in report.values.values():
        for entry in per_condition.values():
            if not entry.get("ssim"):
                entry.pop("ssim", None)
    return report
