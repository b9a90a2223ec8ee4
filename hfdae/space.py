"""The Gradio demo, deployable as a Hugging Face Space: denoise, inpaint and compare models in a browser.

>>> from hfdae.space import DenoisingSpace, export_space
>>> space = DenoisingSpace({"default (embedded)": "default", "deblur": "deblur"})
>>> result = space.denoise("photo.png", "gaussian", amount=25, seed=0)   # the app's functions, plain
>>> space.build_demo().launch(server_name="127.0.0.1", **space.launch_options())
>>> export_space("my-space", {"default (embedded)": "default", "inpaint": "inpaint"})   # a folder to push

``hfdae space`` does the same from the command line, ``hfdae space --export DIR`` writes a Space folder.
This is the only hfdae module that imports gradio (the ``space`` extra: ``pip install "hfdae[space]"``).

What the app promises its visitors and its host:
    - it offers only the models it was configured with (labels -> ``hfdae.load_model`` specs); a visitor
      picks a label and cannot type a path or a repo id. What each model is offered for follows from its
      config (``task``, ``extra_input_channels``, ``noise_level_input``, ``colour_space``, the degradations
      of its training), never from its name: blur brings up a model with ``task="deblur"``, a JPEG photo one
      trained on JPEG, the Inpaint tab one with a mask input; where none is configured a note says so;
    - outputs are lossless PNG files, written in the app's own output folder (the only folder it adds to
      what gradio serves), and pruned after an hour;
    - uploads above ``max_pixels`` (or above the byte limit) are refused at once, in the browser before
      anything is sent where it can tell, else on upload from the file's header, with one rule that names
      both sizes; images above ``tile_pixels`` are restored in 512x512 tiles, with progress per tile;
    - requests queue, ``concurrency_limit`` at a time (CPU-bound work gains nothing from more).
"""

from __future__ import annotations

import html
import importlib.metadata
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr
import numpy as np
import torch
from PIL import Image

from .configuration_hfdae import DenoisingAutoencoderConfig
from .degradations import (
    CHAPTER_DEGRADATIONS,
    Chain,
    Degradation,
    GaussianBlur,
    GaussianNoise,
    InpaintMask,
    JPEGCompression,
    Knockout,
    PoissonGaussianNoise,
    SaltPepper,
)
from .inference import DEFAULT_MODEL, DEFAULT_MODEL_DIR, estimate_noise_level, load_model, restore
from .metrics import psnr, ssim
from .modeling_hfdae import DenoisingAutoencoder
from .processing import ImageReadError, array_to_tensor, quantize_8bit, read_image, save_image, to_tensor
from .samples import DEMO_SAMPLES, sample_image, write_sample_folder
from .zoo import ZOO

__all__ = [
    "ALREADY_DEGRADED",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MODELS",
    "DEFAULT_TILE_PIXELS",
    "DEGRADATION_CONTROLS",
    "MAX_PIXELS_VARIABLE",
    "MODELS_VARIABLE",
    "TILE_SIZE",
    "DegradationControl",
    "DenoisingSpace",
    "ModelAbilities",
    "Restoration",
    "build_demo",
    "export_space",
    "launch",
    "models_from_environment",
    "parse_model_specs",
    "size_rule",
    "space_app_source",
    "space_readme",
    "space_requirements",
    "synthetic_degradation",
]

DEFAULT_MODEL_LABEL = "default (embedded)"
DEFAULT_MODELS: dict[str, str] = {DEFAULT_MODEL_LABEL: DEFAULT_MODEL}
DEFAULT_MAX_PIXELS = 4_000_000
# The Space reads its models from here: "LABEL=SPEC, LABEL=SPEC" (see parse_model_specs).
MODELS_VARIABLE = "HFDAE_SPACE_MODELS"
MAX_PIXELS_VARIABLE = "HFDAE_SPACE_MAX_PIXELS"
ALREADY_DEGRADED = "none"
PHONE_PHOTO = "phone_photo"
INPAINT_JOB = "inpaint"
# Images above this many pixels are restored in tiles of TILE_SIZE (hfdae.restore's own threshold is for
# bigger machines: a shared CPU Space should hold one tile's activations, not a 4 MP image's).
DEFAULT_TILE_PIXELS = 1024 * 1024
TILE_SIZE = 512
RESULT_MAX_AGE_SECONDS = 3600
# The byte limit gradio enforces: 8 bytes per pixel covers an uncompressed 16-bit RGBA file at the pixel
# limit, so no image within the pixel limit is refused for its bytes.
BYTES_PER_PIXEL_LIMIT = 8
# A restoration that gains less than this (dB) left its input as it was, and the summary says so.
UNCHANGED_DB = 0.1
# The phone-photo degradation saves at this JPEG quality with 4:2:0 chroma, as phones do.
PHONE_JPEG_QUALITY = 90
IMAGE_FORMATS_TEXT = "PNG, JPEG, WebP, BMP, TIFF or GIF"


# --------------------------------------------------------------------------------------------------
# The models: specs, and what each can do (read from its config)
# --------------------------------------------------------------------------------------------------


def parse_model_specs(entries: Sequence[str] | str | None) -> dict[str, str]:
    """Model entries -> ``{label: spec}``, the form :class:`DenoisingSpace` takes.

    Args:
        entries: ``"LABEL=SPEC"`` strings, or one string of them separated by commas. SPEC is anything
            :func:`hfdae.load_model` takes ("default", a zoo name, a folder, a Hub repo id); a bare SPEC is
            its own label ("default" is labelled ``"default (embedded)"``). None or empty: the default model.
    """
    if isinstance(entries, str):
        entries = entries.split(",")
    models: dict[str, str] = {}
    for entry in (entry.strip() for entry in entries or ()):
        if not entry:
            continue
        label, separator, spec = entry.partition("=")
        label, spec = (label.strip(), spec.strip()) if separator else ("", label.strip())
        if not spec:
            raise ValueError(f"model entry {entry!r} has no spec; write LABEL=SPEC, e.g. 'denoiser=default'")
        label = label or (DEFAULT_MODEL_LABEL if spec == DEFAULT_MODEL else spec)
        if label in models:
            raise ValueError(f"two models are labelled {label!r}; give each its own LABEL=SPEC")
        models[label] = spec
    return models or dict(DEFAULT_MODELS)


def models_from_environment() -> dict[str, str]:
    """The Space's models: ``$HFDAE_SPACE_MODELS`` (``"LABEL=SPEC, ..."``), else the embedded default."""
    return parse_model_specs(os.environ.get(MODELS_VARIABLE))


# What a model with no recorded training degradations was trained on, by task.
_TASK_DEGRADATIONS = {
    "restore": frozenset(CHAPTER_DEGRADATIONS),
    "denoise": frozenset({"gaussian"}),
    "deblur": frozenset({"blur"}),
    "inpaint": frozenset({"inpaint_mask"}),
    "photo": frozenset({"gaussian", "poisson_gaussian", "jpeg"}),
}


def _degradation_names(spec) -> set[str]:
    """The leaf degradation names in a training spec (a name, ``"chapter"``, a dict, a chain or a choice)."""
    if isinstance(spec, str):
        return set(CHAPTER_DEGRADATIONS) if spec == "chapter" else {spec}
    if isinstance(spec, Mapping):
        names = set()
        if isinstance(spec.get("name"), str) and spec["name"] not in ("chain", "choice"):
            names.add(spec["name"])
        for value in spec.values():
            if isinstance(value, (list, tuple, Mapping)):
                names |= _degradation_names(value)
        return names
    if isinstance(spec, (list, tuple)):
        return set().union(*map(_degradation_names, spec)) if spec else set()
    return set()


@dataclass(frozen=True)
class ModelAbilities:
    """What a model can be offered for, read from its config.

    Args:
        task: the config's ``task`` (``"restore"``, ``"denoise"``, ``"deblur"``, ``"inpaint"``, ...).
        mask_input: it takes the hole mask as an extra input channel (``extra_input_channels == 1``).
        noise_level_input: it takes the noise level (the strength control; ``noise_level_input``).
        gray: it works in gray (``colour_space == "gray"``): colour photos come back gray.
        trained_on: the degradations of its training (from ``training_summary``, else from its task).
    """

    task: str
    mask_input: bool
    noise_level_input: bool
    gray: bool
    trained_on: frozenset[str]

    @classmethod
    def from_config(cls, config: DenoisingAutoencoderConfig) -> ModelAbilities:
        """Read the abilities of a model from its config."""
        task = getattr(config, "task", "restore") or "restore"
        recorded = (config.training_summary or {}).get("degradations")
        trained_on = _degradation_names(recorded) if recorded else set(_TASK_DEGRADATIONS.get(task, ()))
        return cls(task=task, mask_input=config.extra_input_channels == 1,
                   noise_level_input=bool(getattr(config, "noise_level_input", False)),
                   gray=config.colour_space == "gray", trained_on=frozenset(trained_on))

    @property
    def deblurs(self) -> bool:
        """Trained as a deblurring model. Blur among other degradations is not enough: the chapter's
        four-degradation models leave a blur almost as it was."""
        return self.task == "deblur"

    @property
    def handles_jpeg(self) -> bool:
        """Trained on JPEG-compressed noise (phone photos)."""
        return self.task == "photo" or "jpeg" in self.trained_on

    def suits(self, job: str, jpeg: bool = False) -> bool:
        """Whether to offer the model for ``job`` (a degradation of the Denoise tab, or ``"inpaint"``).

        Args:
            job: ``"gaussian"``, ``"salt_pepper"``, ``"blur"``, ``"knockout"``, ``"phone_photo"``,
                ``"none"`` (the upload as it is) or ``"inpaint"``.
            jpeg: the upload is a JPEG file (with ``"none"``: a photo as a phone saves it).
        """
        if job == INPAINT_JOB:
            return self.mask_input
        if self.mask_input:  # given the knocked-out blocks as its mask; nothing to fill elsewhere
            return job == "knockout"
        if job == "blur":
            return self.deblurs
        if job == PHONE_PHOTO or (job == ALREADY_DEGRADED and jpeg):
            return self.handles_jpeg
        if job == "gaussian":
            return not self.deblurs and bool({"gaussian", "poisson_gaussian"} & self.trained_on)
        if job in ("salt_pepper", "knockout"):
            return job in self.trained_on
        return not self.deblurs  # an upload as it is: any restorer


@dataclass(frozen=True)
class DegradationControl:
    """The amount slider of one degradation of the Denoise and Compare tabs, in the degradation's own units.

    Args:
        label: what the slider sets, with its unit.
        minimum, maximum, step: the slider's range.
        default: the level the models were trained around.
        info: a line under the slider.
    """

    label: str
    minimum: float
    maximum: float
    step: float
    default: float
    info: str


DEGRADATION_CONTROLS: dict[str, DegradationControl] = {
    "gaussian": DegradationControl("Noise sigma (0-255 scale)", 0, 100, 1, 25,
                                   "standard deviation of the noise in 8-bit levels; the models saw up to 50"),
    "salt_pepper": DegradationControl("Pixels hit (%)", 0, 30, 0.5, 5, "share of pixels set to black or white"),
    "blur": DegradationControl("Blur sigma (pixels)", 0, 4, 0.1, 1.5, "width of the Gaussian blur"),
    "knockout": DegradationControl("Blocks per 128x128 pixels", 0, 80, 1, 30, "zeroed blocks up to 9x9 pixels"),
    PHONE_PHOTO: DegradationControl("Sensor noise sigma at mid-grey (0-255 scale)", 0, 50, 1, 15,
                                    f"shot and read noise, then JPEG quality {PHONE_JPEG_QUALITY} with 4:2:0"
                                    " chroma, as a phone saves a photo"),
}
_DEGRADATION_LABELS = {
    "gaussian": "Gaussian noise",
    "salt_pepper": "Salt and pepper",
    "blur": "Blur",
    "knockout": "Knockout (zeroed blocks)",
    PHONE_PHOTO: "Phone photo (sensor noise + JPEG)",
    ALREADY_DEGRADED: "None: my photo is already noisy or damaged",
}
_TASK_WORDS = {
    "restore": "a general restorer",
    "denoise": "a denoiser",
    "deblur": "a deblurring model",
    "inpaint": "an inpainting model",
    "photo": "a model for noisy JPEG photos",
}
_DEGRADATION_WORDS = {
    "gaussian": "Gaussian noise", "salt_pepper": "salt and pepper", "blur": "blur", "knockout": "knockout",
    "inpaint_mask": "painted holes", "poisson_gaussian": "sensor noise", "jpeg": "JPEG compression",
}


def synthetic_degradation(name: str, amount: float | None = None) -> Degradation:
    """The degradation the Denoise tab adds, at ``amount`` in its own units (see :data:`DEGRADATION_CONTROLS`).

    Args:
        name: ``"gaussian"`` (amount: sigma on the 0-255 scale), ``"salt_pepper"`` (percent of pixels),
            ``"blur"`` (sigma in pixels), ``"knockout"`` (blocks per 128x128 pixels) or ``"phone_photo"``
            (Poisson-Gaussian sensor noise of this sigma at mid-grey, then JPEG 4:2:0).
        amount: None for the control's default.
    """
    if name not in DEGRADATION_CONTROLS:
        raise gr.Error(f"unknown degradation {name!r}; choose one of {', '.join(DEGRADATION_CONTROLS)}")
    control = DEGRADATION_CONTROLS[name]
    amount = control.default if amount is None else float(amount)
    if not control.minimum <= amount <= control.maximum:
        raise gr.Error(f"{control.label} must be between {control.minimum:g} and {control.maximum:g}, got {amount:g}")
    if name == "gaussian":
        return GaussianNoise(sigma=amount / 255)
    if name == "salt_pepper":
        return SaltPepper(fraction=amount / 100)
    if name == "blur":
        return GaussianBlur(sigma=amount)
    if name == "knockout":
        return Knockout(min_blocks=round(amount), max_blocks=round(amount))
    # variance shot * x + read^2 is sigma^2 at mid-grey x = 0.5 with read = sigma / 2
    sigma = amount / 255
    return Chain([PoissonGaussianNoise(shot=1.5 * sigma**2, read=sigma / 2, clip=True),
                  JPEGCompression(quality=PHONE_JPEG_QUALITY, subsampling="4:2:0")])


def _describe_degradation(name: str, amount: float) -> str:
    return {
        "gaussian": f"Gaussian noise, sigma {amount:g}/255",
        "salt_pepper": f"salt and pepper on {amount:g}% of the pixels",
        "blur": f"Gaussian blur, sigma {amount:g} px",
        "knockout": f"knockout, {round(amount)} blocks per 128x128 pixels",
        PHONE_PHOTO: f"sensor noise (sigma {amount:g}/255 at mid-grey), then JPEG quality {PHONE_JPEG_QUALITY} 4:2:0",
    }[name]


# --------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------


@dataclass
class Restoration:
    """One restoration made by the app, with what it shows about it.

    Args:
        model: the label of the model that restored.
        degraded: PNG of the model's input (the synthesised degradation, the upload, or the holes).
        restored: PNG of the restoration (the file offered for download).
        seconds: restoration time, model loading excluded.
        condition: what degraded the input, in words.
        psnr_degraded, psnr_restored, ssim_degraded, ssim_restored: against the clean reference, when
            there is one (a synthesised degradation; for inpainting, PSNR inside the painted area against
            the pixels under the paint); None otherwise.
        scope: what the PSNR covers, when not the whole image.
        noise_level: the sigma (0-255 scale) the model was given, for models with a noise-level input.
        noise_level_source: how it was chosen (``"estimated from the image"`` or ``"set by you"``).
        remarks: honest notes on the result (a model that left its input as it was, a gray model ...).
    """

    model: str
    degraded: Path
    restored: Path
    seconds: float
    condition: str
    psnr_degraded: float | None = None
    psnr_restored: float | None = None
    ssim_degraded: float | None = None
    ssim_restored: float | None = None
    scope: str = ""
    noise_level: float | None = None
    noise_level_source: str = ""
    remarks: list[str] = field(default_factory=list)

    @property
    def gain(self) -> float | None:
        """PSNR gained over the input, in dB (None without a reference)."""
        return None if self.psnr_restored is None else self.psnr_restored - self.psnr_degraded

    def summary(self) -> str:
        """A Markdown summary: model, input, time, the metrics table (when there is a reference), remarks."""
        lines = [f"**{self.model}**, {self.seconds:.2f} s; input: {self.condition}."]
        if self.noise_level is not None:
            lines.append(f"Noise level given to the model: sigma {self.noise_level:.1f}/255"
                         f" ({self.noise_level_source}).")
        lines.append("")
        if self.psnr_restored is None:
            lines.append("No clean reference (the upload is the damaged image), so no PSNR or SSIM.")
        else:
            if self.scope:
                lines += [f"PSNR {self.scope}.", ""]
            lines += ["| | PSNR (dB) | SSIM |", "|---|---|---|"]
            for name, value, similarity in (("input", self.psnr_degraded, self.ssim_degraded),
                                            ("restored", self.psnr_restored, self.ssim_restored)):
                lines.append(f"| {name} | {value:.2f} | {'-' if similarity is None else f'{similarity:.4f}'} |")
        if self.remarks:
            lines += [""] + [f"- {remark}" for remark in self.remarks]
        return "\n".join(lines)


@dataclass
class _Prepared:
    name: str
    degraded: torch.Tensor  # [1, C, H, W] on 8-bit levels: exactly what the PNG holds
    clean: torch.Tensor | None
    mask: torch.Tensor | None  # [1, 1, H, W] float, 1 where pixels were destroyed
    condition: str
    job: str = ALREADY_DEGRADED
    jpeg: bool = False


ProgressCallback = Callable[[int, int], None]


# --------------------------------------------------------------------------------------------------
# Upload checks: one rule, worded for a web visitor
# --------------------------------------------------------------------------------------------------


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:.3g} MP"


def size_rule(max_pixels: int) -> str:
    """The upload rule in words: the pixel limit, in pixels, megapixels and a square example."""
    side = math.isqrt(max_pixels)
    return f"this demo's limit of {max_pixels:,} pixels ({_megapixels(max_pixels)}, for example {side}x{side})"


def _too_large_message(width: int, height: int, max_pixels: int) -> str:
    return (f"The image is {width}x{height} = {width * height:,} pixels, above {size_rule(max_pixels)}."
            " Downscale or crop it, then upload it again.")


def _not_an_image_message(name: str) -> str:
    return (f"{name} is not an image this demo can read (it may be another kind of file renamed)."
            f" Upload a {IMAGE_FORMATS_TEXT} file.")


def _alert(text: str) -> str:
    """A visitor-facing message as HTML for a Markdown component (escaped: it may hold a file's name)."""
    return f'<div class="hfdae-alert" role="alert">{html.escape(text)}</div>' if text else ""


@dataclass(frozen=True)
class _UploadHeader:
    width: int
    height: int
    format: str | None

    @property
    def jpeg(self) -> bool:
        return self.format == "JPEG"


def _file_name(payload) -> str:
    if isinstance(payload, Mapping):
        return payload.get("orig_name") or Path(payload.get("path") or "upload").name
    name = getattr(payload, "orig_name", None)
    return name or Path(getattr(payload, "path", None) or "upload").name


def _read_header(path: str | os.PathLike, name: str | None = None) -> _UploadHeader:
    """Size and format from the file's header (nothing decoded); ``gr.Error`` naming the file if it is
    not an image."""
    try:
        with Image.open(path) as opened:
            return _UploadHeader(*opened.size, opened.format)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise gr.Error(_not_an_image_message(name or Path(path).name)) from error


def _naming_unreadable_files(component: gr.components.Component, name: Callable[[object], str]):
    """Make ``component`` name the file when gradio cannot read an upload (gradio's own failure is shown to the
    visitor as a bare "Error"). The instance's ``preprocess`` is wrapped rather than the class subclassed:
    gradio writes a ``.pyi`` file next to the module of every component subclass."""
    original = component.preprocess

    def preprocess(payload):
        try:
            return original(payload)
        except gr.Error:
            raise
        except Exception as error:  # gradio opens the file with PIL: anything it raises means "not an image"
            raise gr.Error(_not_an_image_message(name(payload))) from error

    component.preprocess = preprocess
    return component


def _image_upload(**options) -> gr.Image:
    """``gr.Image`` that names an upload it cannot read."""
    return _naming_unreadable_files(gr.Image(**options), _file_name)


def _paint_editor(**options) -> gr.ImageEditor:
    """``gr.ImageEditor`` that says when it cannot read the image (its payload holds no file name)."""
    return _naming_unreadable_files(gr.ImageEditor(**options), lambda payload: "The image")


# --------------------------------------------------------------------------------------------------
# The app
# --------------------------------------------------------------------------------------------------


class DenoisingSpace:
    """The app: its configured models (loaded once, cached), its upload limit and its output folder.

    The methods :meth:`denoise`, :meth:`inpaint` and :meth:`compare` are what the tabs run; they take
    plain Python values, so they can be called (and tested) without a browser. They raise ``gr.Error``,
    which gradio shows to the visitor, for anything the visitor can fix.

    Args:
        models: ``{label: spec}``, spec as for :func:`hfdae.load_model`; the labels are all a visitor
            sees and can choose. Default: the embedded model.
        max_pixels: largest upload, in pixels (width x height).
        output_dir: folder for the examples and the results (default: a new temporary folder).
        tile_pixels: images above this many pixels are restored in overlapping 512x512 tiles.
    """

    def __init__(
        self,
        models: Mapping[str, str] | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        output_dir: str | os.PathLike | None = None,
        tile_pixels: int = DEFAULT_TILE_PIXELS,
    ) -> None:
        self.models = dict(models) if models else dict(DEFAULT_MODELS)
        if max_pixels < 1:
            raise ValueError(f"max_pixels must be positive, got {max_pixels}")
        self.max_pixels = int(max_pixels)
        self.tile_pixels = int(tile_pixels)
        self.output_dir = Path(output_dir) if output_dir else Path(tempfile.mkdtemp(prefix="hfdae-space-"))
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self._loaded: dict[str, DenoisingAutoencoder] = {}
        self._load_lock = threading.Lock()

    @property
    def labels(self) -> list[str]:
        """The model labels, in the configured order."""
        return list(self.models)

    @property
    def max_bytes(self) -> int:
        """The largest upload in bytes (gradio's limit): room for any image format within ``max_pixels``."""
        return max(self.max_pixels * BYTES_PER_PIXEL_LIMIT, 1 << 20)

    def model(self, label: str | None = None) -> DenoisingAutoencoder:
        """The model labelled ``label`` (default: the first), loaded on first use and then cached."""
        label = self.labels[0] if label is None else label
        if label not in self.models:
            raise gr.Error(f"unknown model {label!r}; this demo offers {', '.join(map(repr, self.labels))}")
        with self._load_lock:
            if label not in self._loaded:
                self._loaded[label] = load_model(self.models[label])
            return self._loaded[label]

    def abilities(self, label: str) -> ModelAbilities:
        """What the model labelled ``label`` can be offered for (loads it)."""
        return ModelAbilities.from_config(self.model(label).config)

    def inpainting_labels(self) -> list[str]:
        """The labels of models that take the hole mask as an extra input channel (loads every model)."""
        return [label for label in self.labels if self.abilities(label).mask_input]

    def labels_for(self, job: str, jpeg: bool = False) -> list[str]:
        """The labels of the models suited to ``job`` (see :meth:`ModelAbilities.suits`), in order."""
        return [label for label in self.labels if self.abilities(label).suits(job, jpeg)]

    def suggested_label(self, job: str, jpeg: bool = False, current: str | None = None) -> str:
        """The model to offer for ``job``: ``current`` if it suits, else the first that does, else ``current``
        (else the first model that is not an inpainting model)."""
        if current in self.models and self.abilities(current).suits(job, jpeg):
            return current
        suited = self.labels_for(job, jpeg)
        if suited:
            return suited[0]
        if job == ALREADY_DEGRADED and jpeg:  # no JPEG model: any restorer
            return self.suggested_label(ALREADY_DEGRADED, False, current)
        if current in self.models:
            return current
        plain = [label for label in self.labels if not self.abilities(label).mask_input]
        return (plain or self.labels)[0]

    def model_note(self, label: str, job: str, jpeg: bool = False) -> str:
        """What a visitor should know about using model ``label`` for ``job``, in Markdown: what it is,
        and honestly what it cannot do here, with the model to choose instead when one is configured."""
        if label not in self.models:
            return ""
        abilities = self.abilities(label)
        lines = [f"**{label}**: {self.describe(label)}."]

        def instead(wanted: str, wanted_jpeg: bool = False) -> str:
            better = [other for other in self.labels_for(wanted, wanted_jpeg) if other != label]
            return f" Choose **{better[0]}** for this." if better else " No model here is trained for it."

        if job == INPAINT_JOB:
            if abilities.mask_input:
                lines.append("It is given the mask of the holes, as in its training (boxes and strokes).")
            else:
                lines.append("It is not told where the holes are: it fills only small holes, as it learned from"
                             " knockout (blocks up to 9x9 pixels). Paint thin strokes; larger holes stay dark."
                             + (instead(INPAINT_JOB) if self.labels_for(INPAINT_JOB) else ""))
        elif abilities.mask_input:
            lines.append("It is an inpainting model, meant for the Inpaint tab: here it gets only the knocked-out"
                         " blocks as holes.")
        elif job == "blur" and not abilities.deblurs:
            lines.append(("Blur was among its training damages, but" if "blur" in abilities.trained_on else "It was not"
                          " trained on blur and") + " it is not a deblurring model: expect most of the blur to stay."
                         + instead("blur"))
        elif (job == PHONE_PHOTO or (job == ALREADY_DEGRADED and jpeg)) and not abilities.handles_jpeg:
            lines.append("It was trained on noise in lossless images; noise that went through JPEG compression,"
                         " as in phone photos, often stays." + instead(PHONE_PHOTO))
        elif job in ("gaussian", "salt_pepper", "knockout") and not abilities.suits(job):
            lines.append(f"It was not trained on {_DEGRADATION_WORDS[job]}." + instead(job))
        if abilities.gray:
            lines.append("It works in grey: a colour photo comes back grey.")
        if abilities.noise_level_input and job != INPAINT_JOB:
            lines.append("It can be told the noise level: see *Noise level* below (auto estimates it).")
        return " ".join(lines)

    def describe(self, label: str) -> str:
        """One line on a model for visitors: what it is and what it was trained on."""
        abilities = self.abilities(label)
        kind = "a model for noisy JPEG photos" if abilities.handles_jpeg and abilities.task != "inpaint" \
            else _TASK_WORDS.get(abilities.task, f"a {abilities.task} model")
        order = list(_DEGRADATION_WORDS)
        names = sorted(abilities.trained_on,
                       key=lambda name: (order.index(name) if name in order else len(order), name))
        seen = [_DEGRADATION_WORDS.get(name, name.replace("_", " ")) for name in names]
        text = f"{kind}, trained on {_join_words(seen)}" if seen else kind
        return text + (", in grey" if abilities.gray else "")

    def check_size(self, width: int, height: int) -> None:
        """Refuse an image above ``max_pixels`` with a message that names its size and the limit."""
        if width * height > self.max_pixels:
            raise gr.Error(_too_large_message(width, height, self.max_pixels))

    def check_upload(self, path: str | os.PathLike, name: str | None = None) -> _UploadHeader:
        """Read an uploaded file's header: ``gr.Error`` naming the file if it is not an image or is too
        large, else its size and format."""
        header = _read_header(path, name)
        self.check_size(header.width, header.height)
        return header

    # ----------------------------------------------------------------------------------------------
    # The tabs
    # ----------------------------------------------------------------------------------------------

    def denoise(
        self,
        image: str | os.PathLike | Image.Image | np.ndarray | None,
        degradation: str = "gaussian",
        amount: float | None = None,
        seed: int = 0,
        model: str | None = None,
        noise_level: str | float | None = None,
        progress: ProgressCallback | None = None,
    ) -> Restoration:
        """Denoise tab: degrade ``image`` (or take it as already degraded) and restore it.

        Args:
            image: the upload (a file path, a PIL image or an H x W x C uint8 array).
            degradation: one of :data:`DEGRADATION_CONTROLS`, synthesised on the image, which is then the
                clean reference; or :data:`ALREADY_DEGRADED` to restore the upload as it is (no metrics).
            amount: the degradation's level in its own units (see :func:`synthetic_degradation`).
            seed: seed of the degradation's random draws.
            model: a configured label (default: the one :meth:`suggested_label` offers for the job).
            noise_level: for models with a noise-level input: ``"auto"`` (estimated from the input),
                a sigma on the 0-255 scale, or None (blind). Ignored by the other models.
            progress: called as ``progress(done, total)`` after each tile (or whole image).
        """
        prepared = self._prepare(image, degradation, amount, seed)
        label = model if model is not None else self.suggested_label(prepared.job, prepared.jpeg)
        return self._restore(prepared, label, self._new_result_folder(), noise_level=noise_level, progress=progress)

    def compare(
        self,
        image: str | os.PathLike | Image.Image | np.ndarray | None,
        degradation: str = "gaussian",
        amount: float | None = None,
        seed: int = 0,
        models: Sequence[str] | None = None,
        noise_level: str | float | None = None,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> list[Restoration]:
        """Compare tab: several models on the same input; one :class:`Restoration` each, in order.

        Arguments as :meth:`denoise`; ``models`` is a list of labels (None: all configured models), and
        ``progress`` is called as ``progress(label, done, total)``.
        """
        labels = self.labels if models is None else list(models)
        if not labels:
            raise gr.Error("Tick at least one model to compare.")
        for label in labels:
            self.model(label)  # unknown labels fail before any work
        prepared = self._prepare(image, degradation, amount, seed)
        folder = self._new_result_folder()
        results = []
        for index, label in enumerate(labels, 1):
            report = None if progress is None else (lambda done, total, label=label: progress(label, done, total))
            results.append(self._restore(prepared, label, folder, f"{index}-", noise_level=noise_level,
                                         progress=report))
        return results

    def inpaint(
        self,
        editor: Mapping | None,
        model: str | None = None,
        mask: str | os.PathLike | np.ndarray | None = None,
        progress: ProgressCallback | None = None,
    ) -> Restoration:
        """Inpaint tab: fill the painted parts of an image (and those of an uploaded mask).

        The model sees zeros inside the holes (as in its training), and a model with a mask input
        (``extra_input_channels == 1``) gets the mask (1 = hole); the others fill holes as they learned
        from knockout (blocks up to 9x9 px): thin strokes work best. The result keeps every pixel outside
        the holes.

        Args:
            editor: the image editor's value: ``{"background": H x W x C uint8 array, "layers": [H x W x 4
                arrays whose alpha marks the paint], ...}``.
            model: a configured label (default: the first model with a mask input, else the first).
            mask: an uploaded mask (a file or an array) of the image's size: light pixels are holes
                (transparent ones are not).
            progress: called as ``progress(done, total)`` after each tile.
        """
        if not editor or editor.get("background") is None:
            raise gr.Error("Upload an image, then paint over the parts to fill in.")
        background = np.asarray(editor["background"])
        height, width = background.shape[:2]
        self.check_size(width, height)
        if background.ndim == 2:
            background = background[:, :, None]
        pixels = background[:, :, :3] if background.shape[2] >= 3 else background[:, :, :1]  # alpha dropped
        painted = np.zeros((height, width), dtype=bool)
        for layer in editor.get("layers") or []:
            layer = np.asarray(layer)
            if layer.ndim == 3 and layer.shape[2] == 4 and layer.shape[:2] == (height, width):
                painted |= layer[:, :, 3] > 0
        if mask is not None:
            painted |= _read_mask(mask, width, height)
        if not painted.any():
            raise gr.Error("Paint over the parts of the image to fill in first (the brush tool), or upload a mask.")
        original = array_to_tensor(np.ascontiguousarray(pixels)).unsqueeze(0)
        holes_mask = torch.from_numpy(painted)[None, None]
        holes = original.masked_fill(holes_mask, 0.0)  # zeros in the holes, as the model was trained
        label = model if model is not None else self.suggested_label(INPAINT_JOB)
        prepared = _Prepared("image", holes, original, holes_mask.float(),
                             f"{painted.mean():.1%} of the pixels painted over", INPAINT_JOB)
        return self._restore(prepared, label, self._new_result_folder(), keep_unmasked=True, progress=progress)

    # ----------------------------------------------------------------------------------------------
    # The work
    # ----------------------------------------------------------------------------------------------

    def _read_upload(self, image) -> tuple[torch.Tensor, str, bool]:
        """The upload as a [1, C, H, W] tensor on 8-bit levels (alpha dropped), a name for its files, and
        whether it is a JPEG file."""
        if image is None:
            raise gr.Error("Upload an image or pick an example first.")
        if isinstance(image, np.ndarray):
            image = Image.fromarray(image)
        jpeg = False
        if isinstance(image, Image.Image):
            name, source = "image", image
            self.check_size(*image.size)
            jpeg = image.format == "JPEG"
        else:
            path = Path(image)
            name, source = _safe_stem(path), path
            jpeg = self.check_upload(path).jpeg  # the header only: the size, before decoding
        try:
            record = read_image(source, name=name)
        except ImageReadError as error:
            raise gr.Error(_not_an_image_message(getattr(source, "name", name))) from error
        return quantize_8bit(array_to_tensor(record.pixels)).unsqueeze(0), name, jpeg

    def _prepare(self, image, degradation: str, amount: float | None, seed: int) -> _Prepared:
        upload, name, jpeg = self._read_upload(image)
        if degradation == ALREADY_DEGRADED:
            return _Prepared(name, upload, None, None, "the upload as it is", ALREADY_DEGRADED, jpeg)
        synthetic = synthetic_degradation(degradation, amount)
        amount = DEGRADATION_CONTROLS[degradation].default if amount is None else float(amount)
        generator = torch.Generator().manual_seed(int(seed or 0))
        batch = synthetic(upload, generator=generator)
        mask = None if batch.mask is None else batch.mask.float()
        return _Prepared(name, quantize_8bit(batch.images), upload, mask,
                         f"{_describe_degradation(degradation, amount)}, seed {int(seed or 0)}", degradation,
                         degradation == PHONE_PHOTO)

    def _noise_level(self, model: DenoisingAutoencoder, images: torch.Tensor,
                     noise_level: str | float | None) -> tuple[float | None, str]:
        """The sigma (0-255 scale) to give a model with a noise-level input, and how it was chosen."""
        if noise_level is None or noise_level == "" or not model.config.noise_level_input:
            return None, ""
        if noise_level == "auto":
            estimate = estimate_noise_level(to_tensor(images, model.config.image_channels))
            return float(estimate[0]) * 255, "estimated from the image"
        try:
            sigma = float(noise_level)
        except (TypeError, ValueError):
            raise gr.Error(f"noise level {noise_level!r}: give 'auto' or a sigma between 0 and 255") from None
        if not 0 <= sigma <= 255:
            raise gr.Error(f"noise level {sigma:g}: give a sigma between 0 and 255 (8-bit levels)")
        return sigma, "set by you"

    def _restore(self, prepared: _Prepared, label: str | None, folder: Path, prefix: str = "",
                 keep_unmasked: bool = False, noise_level: str | float | None = None,
                 progress: ProgressCallback | None = None) -> Restoration:
        label = self.labels[0] if label is None else label
        model = self.model(label)
        abilities = ModelAbilities.from_config(model.config)
        start = time.perf_counter()
        sigma, source = self._noise_level(model, prepared.degraded, noise_level)
        height, width = prepared.degraded.shape[-2:]
        tile_size = TILE_SIZE if height * width > self.tile_pixels else None
        restored = _run_model(model, prepared.degraded, prepared.mask, tile_size,
                              None if sigma is None else sigma / 255, progress)
        seconds = time.perf_counter() - start
        if keep_unmasked:
            restored = torch.where(prepared.mask.bool(), restored, prepared.clean)
        restored = quantize_8bit(restored)
        degraded_path = folder / f"{prepared.name}-degraded.png"
        if not degraded_path.exists():
            save_image(prepared.degraded, degraded_path)
        restored_path = save_image(restored, folder / f"{prefix}{prepared.name}-restored-{_safe_name(label)}.png")
        result = Restoration(label, degraded_path, restored_path, seconds, prepared.condition,
                             noise_level=sigma, noise_level_source=source)
        if prepared.clean is not None:
            if keep_unmasked:  # inpainting: score the painted area only
                result.scope = "inside the painted area, against the pixels under the paint"
                inside = prepared.mask.bool().expand_as(prepared.clean)
                reference = prepared.clean[inside].view(1, 1, 1, -1)
                result.psnr_degraded = float(psnr(prepared.degraded[inside].view(1, 1, 1, -1), reference)[0])
                result.psnr_restored = float(psnr(restored[inside].view(1, 1, 1, -1), reference)[0])
            else:
                result.psnr_degraded = float(psnr(prepared.degraded, prepared.clean)[0])
                result.psnr_restored = float(psnr(restored, prepared.clean)[0])
                result.ssim_degraded = float(ssim(prepared.degraded, prepared.clean)[0])
                result.ssim_restored = float(ssim(restored, prepared.clean)[0])
        result.remarks = self._remarks(result, prepared, label, abilities, restored)
        return result

    def _remarks(self, result: Restoration, prepared: _Prepared, label: str, abilities: ModelAbilities,
                 restored: torch.Tensor) -> list[str]:
        remarks = []
        unchanged = torch.equal(restored, prepared.degraded) if not prepared.job == INPAINT_JOB else False
        if result.gain is not None and result.gain <= -UNCHANGED_DB:
            remarks.append(f"{label} made the image worse ({result.gain:+.2f} dB).")
        elif result.gain is not None and result.gain < UNCHANGED_DB and prepared.job != INPAINT_JOB:
            what = "the blur" if prepared.job == "blur" else "the input"
            remarks.append(f"{label} left {what} almost as it was ({result.gain:+.2f} dB).")
        elif unchanged:
            remarks.append(f"{label} returned the input unchanged.")
        if prepared.job == "blur" and not abilities.deblurs:
            deblurring = self.labels_for("blur")
            remarks.append("It is not a deblurring model" + (f"; try **{deblurring[0]}**." if deblurring else
                                                              "; this demo offers no deblurring model."))
        if (prepared.job == PHONE_PHOTO or prepared.jpeg) and not abilities.handles_jpeg and not abilities.mask_input:
            photo = self.labels_for(PHONE_PHOTO)
            remarks.append("It was not trained on JPEG-compressed noise" + (f"; try **{photo[0]}**." if photo else "."))
        if abilities.gray and prepared.degraded.shape[1] == 3:
            remarks.append("It works in grey, so the result is grey.")
        return remarks

    def _new_result_folder(self) -> Path:
        """A fresh folder for one request's files; folders older than an hour are deleted on the way."""
        results = self.output_dir / "results"
        results.mkdir(exist_ok=True)
        cutoff = time.time() - RESULT_MAX_AGE_SECONDS
        for old in results.iterdir():
            if old.is_dir() and old.stat().st_mtime < cutoff:
                shutil.rmtree(old, ignore_errors=True)
        folder = results / uuid.uuid4().hex
        folder.mkdir()
        return folder

    # ----------------------------------------------------------------------------------------------
    # The page
    # ----------------------------------------------------------------------------------------------

    def launch_options(self) -> dict:
        """Keyword arguments for ``demo.launch``: serve the output folder only, cap upload bytes, and the
        page's style and upload guard (Gradio 6 takes ``css`` and ``head`` in ``launch``)."""
        return {"allowed_paths": [str(self.output_dir.resolve())], "max_file_size": self.max_bytes,
                "css": _CSS, "head": self._upload_guard()}

    def _upload_guard(self) -> str:
        """A script that checks each file a visitor picks or drops on an upload, in the browser, before gradio
        sends it: a file above the byte or pixel limit (or, for the painting editor, one the browser cannot
        show) is refused at once with the same rule as the server's, so nothing is uploaded, painted or
        waited for. Whatever it cannot judge (a format the browser cannot decode) goes on to the server."""
        rule = size_rule(self.max_pixels)
        return "<script>" + (_UPLOAD_GUARD_JS
                             .replace("__GUARDED__", json.dumps(list(_GUARDED_UPLOADS)))
                             .replace("__EDITORS__", json.dumps(["inpaint-input"]))
                             .replace("__MAX_PIXELS__", str(self.max_pixels))
                             .replace("__MAX_BYTES__", str(self.max_bytes))
                             .replace("__RULE__", json.dumps(rule))
                             .replace("__FORMATS__", json.dumps(IMAGE_FORMATS_TEXT))) + "</script>"

    def write_examples(self) -> dict[str, Path]:
        """Write the example inputs into ``output_dir/examples``: the bundled photos, a noisy photo saved as
        a phone saves it (simulated sensor noise, JPEG 4:2:0), and a mask for the Inpaint tab."""
        folder = self.output_dir / "examples"
        paths = {path.stem: path for path in write_sample_folder(folder, DEMO_SAMPLES)}
        photo = array_to_tensor(sample_image("coffee")).unsqueeze(0)
        noisy = synthetic_degradation(PHONE_PHOTO, 20)(photo, generator=torch.Generator().manual_seed(0)).images
        paths["noisy-phone-photo"] = folder / "noisy-phone-photo.jpg"
        Image.fromarray(_to_uint8(noisy)).save(paths["noisy-phone-photo"], quality=PHONE_JPEG_QUALITY, subsampling=2)
        holes = InpaintMask(max_boxes=1, min_box_fraction=0.12, max_box_fraction=0.2, max_strokes=4,
                            min_stroke_width=10, max_stroke_width=16)
        chelsea = Image.open(paths["chelsea"])
        blank = torch.zeros(1, 1, chelsea.height, chelsea.width)
        hole = holes(blank, generator=torch.Generator().manual_seed(2)).mask  # seed 2: strokes and a box
        paths["chelsea-mask"] = folder / "chelsea-mask.png"
        Image.fromarray(hole[0, 0].numpy().astype(np.uint8) * 255).save(paths["chelsea-mask"])
        return paths

    def build_demo(self, concurrency_limit: int = 1, queue_size: int | None = 32) -> gr.Blocks:
        """The page: a how-to, then the Denoise, Inpaint and Compare tabs over this space's models.

        Args:
            concurrency_limit: requests restored at a time (the rest wait in the queue).
            queue_size: most requests waiting; None for no limit.
        """
        for label in self.labels:
            self.model(label)  # loads every model now: a bad spec fails at start-up
        examples = self.write_examples()
        with gr.Blocks(title="hfdae: restore photos", delete_cache=(3600, RESULT_MAX_AGE_SECONDS)) as demo:
            gr.Markdown(_how_to(self), elem_id="hfdae-header")
            with gr.Accordion("About the models", open=False, elem_id="hfdae-models"):
                gr.Markdown("\n".join(f"- **{label}**: {self.describe(label)}"
                                       + ("; it can be told the noise level (a strength control)"
                                          if self.abilities(label).noise_level_input else "") + "."
                                       for label in self.labels))
            with gr.Tab("Denoise", elem_id="tab-denoise"):
                _DenoiseTab(self, examples).build()
            with gr.Tab("Inpaint", elem_id="tab-inpaint"):
                _InpaintTab(self, examples).build()
            with gr.Tab("Compare", elem_id="tab-compare"):
                _CompareTab(self, examples).build()
        demo.queue(default_concurrency_limit=concurrency_limit, max_size=queue_size)
        return demo


def build_demo(
    models: Mapping[str, str] | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    output_dir: str | os.PathLike | None = None,
    concurrency_limit: int = 1,
) -> gr.Blocks:
    """The demo over ``models`` (``{label: spec}``; default: the embedded model), queue set up.

    Launch it with ``launch_options()`` of its :class:`DenoisingSpace` (``demo.space``), or use :func:`launch`.
    """
    space = DenoisingSpace(models, max_pixels=max_pixels, output_dir=output_dir)
    demo = space.build_demo(concurrency_limit=concurrency_limit)
    demo.space = space
    return demo


def launch(
    models: Mapping[str, str] | None = None,
    server_name: str = "127.0.0.1",
    server_port: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    output_dir: str | os.PathLike | None = None,
    concurrency_limit: int = 1,
    **launch_kwargs,
) -> gr.Blocks:
    """Build the demo and serve it (on 127.0.0.1 unless told otherwise); blocks unless
    ``prevent_thread_lock=True`` is passed. Extra keyword arguments go to ``gr.Blocks.launch``."""
    demo = build_demo(models, max_pixels=max_pixels, output_dir=output_dir, concurrency_limit=concurrency_limit)
    demo.launch(server_name=server_name, server_port=server_port, **demo.space.launch_options(), **launch_kwargs)
    return demo


# --------------------------------------------------------------------------------------------------
# The tabs' components and events
# --------------------------------------------------------------------------------------------------

_GUARDED_UPLOADS = ("denoise-input", "compare-input", "inpaint-input", "inpaint-mask")
_NOISE_MODES = [("Auto: estimate it from the image", "auto"), ("Set it", "set"), ("Blind: the model judges", "blind")]


def _noise_level_argument(mode: str | None, sigma: float | None) -> str | float | None:
    """The noise-level controls' values -> the ``noise_level`` argument of the app's functions."""
    if mode == "auto":
        return "auto"
    if mode == "set":
        return 0.0 if sigma is None else float(sigma)
    return None


def _payload_path(payload) -> str | None:
    if isinstance(payload, Mapping):
        return payload.get("path")
    return None if payload is None else str(payload)


def _payload_is_jpeg(payload) -> bool:
    """Whether an upload (a raw gradio file payload or a path) is a JPEG file; False if unreadable."""
    path = _payload_path(payload)
    if not path:
        return False
    try:
        with Image.open(path) as opened:
            return opened.format == "JPEG"
    except Exception:  # not an image: the upload check says so
        return False


class _ResultPanel:
    """The results of one tab: the before/after slider, the summary and the download button."""

    def __init__(self, prefix: str, before: str, download: str) -> None:
        # png: gradio's default output format, webp, is lossy and would change the pixels being scored
        self.slider = gr.ImageSlider(label=f"{before} / restored (drag)", type="filepath",
                                     format="png", interactive=False, max_height=720, elem_id=f"{prefix}-result",
                                     buttons=["download", "fullscreen"])
        self.summary = gr.Markdown(elem_id=f"{prefix}-summary")
        self.download = gr.DownloadButton(download, visible=False, elem_id=f"{prefix}-download")

    @property
    def outputs(self) -> list:
        return [self.slider, self.summary, self.download]

    @staticmethod
    def cleared() -> tuple:
        return None, "", gr.update(value=None, visible=False)

    @staticmethod
    def showing(result: Restoration) -> tuple:
        return ((str(result.degraded), str(result.restored)), result.summary(),
                gr.update(value=str(result.restored), visible=True))


class _Tab:
    """What the three tabs share: the space, the examples, the upload and its check."""

    prefix = ""

    def __init__(self, space: DenoisingSpace, examples: Mapping[str, Path]) -> None:
        self.space = space
        self.examples = examples

    def _upload(self, label: str, elem_id: str, height: int | None = 300) -> gr.Image:
        # filepath and no image_mode: gradio hands over the uploaded file untouched, so its size is checked
        # from the header before anything decodes it
        return _image_upload(label=label, type="filepath", image_mode=None, sources=["upload", "clipboard"],
                            format="png", height=height, elem_id=elem_id)

    def _check_upload(self, payload) -> str:
        """The notice for an upload: empty when it is a readable image within the limit."""
        path = _payload_path(payload)
        if not path:
            return ""
        try:
            self.space.check_upload(path, _file_name(payload))
        except gr.Error as error:
            return _alert(error.message)
        return ""

    def _degradation_controls(self) -> None:
        choices = [(text, value) for value, text in _DEGRADATION_LABELS.items()]
        self.degradation = gr.Radio(choices, value="gaussian", label="Damage to add",
                                    elem_id=f"{self.prefix}-degradation")
        control = DEGRADATION_CONTROLS["gaussian"]
        self.amount = gr.Slider(control.minimum, control.maximum, value=control.default, step=control.step,
                                label=control.label, info=control.info, elem_id=f"{self.prefix}-amount")

    def _noise_level_controls(self, visible: bool) -> None:
        with gr.Group(visible=visible, elem_id=f"{self.prefix}-noise-level") as self.noise_group:
            self.noise_mode = gr.Radio(_NOISE_MODES, value="auto", label="Noise level (for the models that take it)",
                                       elem_id=f"{self.prefix}-noise-mode")
            self.noise_sigma = gr.Slider(0, 100, value=25, step=0.5, label="Sigma told to the model (0-255 scale)",
                                         info="auto shows its estimate here after a run; a larger sigma smooths more",
                                         elem_id=f"{self.prefix}-noise-sigma")
        self.noise_sigma.input(lambda: "set", None, self.noise_mode, api_visibility="private", queue=False,
                               show_progress="hidden")

    def _seed_control(self) -> None:
        with gr.Accordion("Advanced", open=False):
            self.seed = gr.Number(0, precision=0, minimum=0, label="Seed of the damage's random draws",
                                  elem_id=f"{self.prefix}-seed")

    @staticmethod
    def _amount_update(degradation: str):
        control = DEGRADATION_CONTROLS.get(degradation)
        if control is None:
            return gr.update(visible=False)
        return gr.update(visible=True, minimum=control.minimum, maximum=control.maximum, step=control.step,
                         value=control.default, label=control.label, info=control.info)

    def _sigma_update(self, results: Sequence[Restoration], mode: str | None):
        levels = [result.noise_level for result in results if result.noise_level is not None]
        return gr.update(value=round(levels[0], 1)) if levels and mode == "auto" else gr.update()


class _DenoiseTab(_Tab):
    prefix = "denoise"

    def build(self) -> None:
        space = self.space
        first = space.suggested_label("gaussian")
        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=300):
                self.image = self._upload("Photo", "denoise-input")
                self.notice = gr.Markdown(elem_id="denoise-notice")
                self._degradation_controls()
                self.model = gr.Dropdown(space.labels, value=first, label="Model", elem_id="denoise-model")
                self.note = gr.Markdown(space.model_note(first, "gaussian"), elem_id="denoise-model-note")
                self._noise_level_controls(space.abilities(first).noise_level_input)
                self._seed_control()
                run = gr.Button("Restore", variant="primary", elem_id="denoise-run")
            with gr.Column(scale=3, min_width=300):
                self.results = _ResultPanel("denoise", "damaged", "Download the restored PNG")
        examples = self.examples
        gr.Examples([[str(examples["chelsea"]), "gaussian"], [str(examples["noisy-phone-photo"]), ALREADY_DEGRADED],
                     [str(examples["astronaut"]), "blur"], [str(examples["coffee"]), "salt_pepper"],
                     [str(examples["astronaut"]), "knockout"], [str(examples["coffee"]), PHONE_PHOTO]],
                    inputs=[self.image, self.degradation],
                    example_labels=["Cat + Gaussian noise", "Noisy phone photo (simulated; JPEG, as it is)",
                                    "Astronaut + blur", "Coffee + salt and pepper", "Astronaut + knockout",
                                    "Coffee + phone-photo noise"],
                    label="Examples: click one, then Restore", elem_id="denoise-examples")

        job_inputs = [self.image, self.degradation, self.model]
        self.image.upload(self.on_upload, self.image, [self.image, self.notice, *self.results.outputs],
                          preprocess=False, api_visibility="private", show_progress="hidden")
        self.image.clear(lambda: ("", *_ResultPanel.cleared()), None, [self.notice, *self.results.outputs],
                         api_visibility="private", queue=False, show_progress="hidden")
        self.image.change(self.on_job, job_inputs, [self.model, self.note, self.noise_group], preprocess=False,
                          api_visibility="private", show_progress="hidden")
        self.degradation.change(self.on_degradation, job_inputs,
                                [self.amount, self.model, self.note, self.noise_group], preprocess=False,
                                api_visibility="private", show_progress="hidden")
        self.model.change(self.on_job, job_inputs, [self.model, self.note, self.noise_group], preprocess=False,
                          api_visibility="private", show_progress="hidden")
        run.click(lambda: ("", *_ResultPanel.cleared()), None, [self.notice, *self.results.outputs], queue=False,
                  api_visibility="private", show_progress="hidden").then(
            self.denoise,
            [self.image, self.degradation, self.amount, self.seed, self.model, self.noise_mode, self.noise_sigma],
            [*self.results.outputs, self.noise_sigma], api_name="denoise")

    def on_upload(self, payload):
        notice = self._check_upload(payload)
        return (None if notice else gr.update()), notice, *_ResultPanel.cleared()

    def on_job(self, payload, degradation, current):
        jpeg = _payload_is_jpeg(payload)
        label = self.space.suggested_label(degradation, jpeg, current)
        return (gr.update(value=label), self.space.model_note(label, degradation, jpeg),
                gr.update(visible=self.space.abilities(label).noise_level_input))

    def on_degradation(self, payload, degradation, current):
        return self._amount_update(degradation), *self.on_job(payload, degradation, current)

    def denoise(self, image, degradation, amount, seed, model, noise_mode, noise_sigma, progress=gr.Progress()):
        def report(done: int, total: int) -> None:
            progress((done, total), desc=f"{model}: tile {done} of {total}" if total > 1 else f"{model}", unit="tiles")

        result = self.space.denoise(image, degradation, amount, seed, model,
                                    _noise_level_argument(noise_mode, noise_sigma), report)
        return *_ResultPanel.showing(result), self._sigma_update([result], noise_mode)


class _CompareTab(_Tab):
    prefix = "compare"

    def build(self) -> None:
        space = self.space
        any_noise_input = any(space.abilities(label).noise_level_input for label in space.labels)
        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=300):
                self.image = self._upload("Photo", "compare-input")
                self.notice = gr.Markdown(elem_id="compare-notice")
                self._degradation_controls()
                self.models = gr.CheckboxGroup(space.labels, value=self.ticked("gaussian", False),
                                               label="Models to compare", elem_id="compare-models",
                                               info="ticked: the models trained for the chosen damage")
                self._noise_level_controls(any_noise_input)
                self._seed_control()
                run = gr.Button("Compare", variant="primary", elem_id="compare-run")
            with gr.Column(scale=3, min_width=300):
                self.gallery = gr.Gallery(label="Input and restorations", format="png", columns=2, height="auto",
                                          object_fit="contain", preview=False, elem_id="compare-gallery")
                self.table = gr.Markdown(elem_id="compare-table")
        examples = self.examples
        gr.Examples([[str(examples["chelsea"]), "gaussian"], [str(examples["noisy-phone-photo"]), ALREADY_DEGRADED],
                     [str(examples["astronaut"]), "blur"], [str(examples["astronaut"]), "knockout"]],
                    inputs=[self.image, self.degradation],
                    example_labels=["Cat + Gaussian noise", "Noisy phone photo (simulated; JPEG, as it is)",
                                    "Astronaut + blur", "Astronaut + knockout"],
                    label="Examples: click one, then Compare", elem_id="compare-examples")
        outputs = [self.gallery, self.table]
        self.image.upload(self.on_upload, self.image, [self.image, self.notice, *outputs], preprocess=False,
                          api_visibility="private", show_progress="hidden")
        self.image.change(self.on_job, [self.image, self.degradation], self.models, preprocess=False,
                          api_visibility="private", show_progress="hidden")
        self.degradation.change(self.on_degradation, [self.image, self.degradation], [self.amount, self.models],
                                preprocess=False, api_visibility="private", show_progress="hidden")
        run.click(lambda: ("", None, ""), None, [self.notice, *outputs], queue=False, api_visibility="private",
                  show_progress="hidden").then(
            self.compare,
            [self.image, self.degradation, self.amount, self.seed, self.models, self.noise_mode, self.noise_sigma],
            [*outputs, self.noise_sigma], api_name="compare")

    def ticked(self, job: str, jpeg: bool) -> list[str]:
        """The models ticked for a job: those suited to it, else every model without a mask input."""
        suited = self.space.labels_for(job, jpeg)
        if not suited and job == ALREADY_DEGRADED:
            suited = self.space.labels_for(ALREADY_DEGRADED)
        return suited or [label for label in self.space.labels if not self.space.abilities(label).mask_input]

    def on_upload(self, payload):
        notice = self._check_upload(payload)
        return (None if notice else gr.update()), notice, None, ""

    def on_job(self, payload, degradation):
        return gr.update(value=self.ticked(degradation, _payload_is_jpeg(payload)))

    def on_degradation(self, payload, degradation):
        return self._amount_update(degradation), self.on_job(payload, degradation)

    def compare(self, image, degradation, amount, seed, models, noise_mode, noise_sigma, progress=gr.Progress()):
        labels = list(models or [])

        def report(label: str, done: int, total: int) -> None:
            index = labels.index(label)
            progress((index * total + done, len(labels) * total),
                     desc=f"{label} ({index + 1} of {len(labels)}): tile {done} of {total}", unit="tiles")

        results = self.space.compare(image, degradation, amount, seed, labels,
                                     _noise_level_argument(noise_mode, noise_sigma), report)
        first = results[0]
        reference = "" if first.psnr_degraded is None else f": {first.psnr_degraded:.2f} dB"
        gallery = [(str(first.degraded), f"input{reference}")]
        gallery += [(str(result.restored), _caption(result)) for result in results]
        return gallery, _comparison_table(results), self._sigma_update(results, noise_mode)


class _InpaintTab(_Tab):
    prefix = "inpaint"
    brush_colour = "#ff00ff"

    def build(self) -> None:
        space = self.space
        first = space.suggested_label(INPAINT_JOB)
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=300):
                self.editor = _paint_editor(
                    label="Paint over what should go", type="numpy", image_mode="RGBA", format="png",
                    sources=["upload", "clipboard"], transforms=(), layers=False, brush=self.brush(16),
                    eraser=gr.Eraser(), height=560, elem_id="inpaint-input",
                )
                self.notice = gr.Markdown(elem_id="inpaint-notice")
                with gr.Row():
                    brush_size = gr.Slider(2, 80, value=16, step=1, label="Brush size (pixels)", min_width=200,
                                           elem_id="inpaint-brush-size")
                    self.mask = self._upload("Or upload a mask: light pixels are filled", "inpaint-mask", height=200)
                self.model = gr.Dropdown(space.labels, value=first, label="Model", elem_id="inpaint-model")
                self.note = gr.Markdown(space.model_note(first, INPAINT_JOB), elem_id="inpaint-model-note")
                run = gr.Button("Fill in", variant="primary", elem_id="inpaint-run")
            with gr.Column(scale=2, min_width=300):
                self.results = _ResultPanel("inpaint", "holes", "Download the filled-in PNG")
        examples = self.examples
        gr.Examples([[str(examples["chelsea"]), str(examples["chelsea-mask"])], [str(examples["coffee"]), None]],
                    inputs=[self.editor, self.mask], example_labels=["Cat with a mask of strokes", "Coffee (paint it)"],
                    label="Examples: click one, then Fill in (or paint first)", elem_id="inpaint-examples")
        brush_size.change(lambda size: gr.update(brush=self.brush(int(size))), brush_size, self.editor,
                          api_visibility="private", queue=False, show_progress="hidden")
        self.mask.upload(self.on_mask_upload, self.mask, [self.mask, self.notice], preprocess=False,
                         api_visibility="private", show_progress="hidden")
        self.model.change(lambda label: self.space.model_note(label, INPAINT_JOB), self.model, self.note,
                          api_visibility="private", show_progress="hidden")
        run.click(lambda: ("", *_ResultPanel.cleared()), None, [self.notice, *self.results.outputs], queue=False,
                  api_visibility="private", show_progress="hidden").then(
            self.inpaint, [self.editor, self.model, self.mask], self.results.outputs, api_name="inpaint")

    def brush(self, size: int) -> gr.Brush:
        return gr.Brush(colors=[self.brush_colour], color_mode="fixed", default_size=size)

    def on_mask_upload(self, payload):
        notice = self._check_upload(payload)
        return (None if notice else gr.update()), notice

    def inpaint(self, editor, model, mask, progress=gr.Progress()):
        def report(done: int, total: int) -> None:
            progress((done, total), desc=f"{model}: tile {done} of {total}" if total > 1 else f"{model}", unit="tiles")

        return _ResultPanel.showing(self.space.inpaint(editor, model, mask, report))


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


def _run_model(model: DenoisingAutoencoder, images: torch.Tensor, mask: torch.Tensor | None,
               tile_size: int | None, noise_level: float | None, progress: ProgressCallback | None) -> torch.Tensor:
    """Restore [1, C, H, W] (in tiles of ``tile_size``, if given); a model with a mask input gets ``mask``
    (1 in the holes; zeros, no holes, when None), one with a noise-level input ``noise_level`` (None: blind)."""
    extra_channels = model.config.extra_input_channels
    if extra_channels not in (0, 1):
        raise gr.Error(f"this model takes {extra_channels} extra input channels; the demo only knows a 1-channel mask")
    if extra_channels == 1 and mask is None:
        mask = torch.zeros_like(images[:, :1])
    return restore(model, images, tile_size=tile_size, extra_inputs=mask if extra_channels else None,
                   noise_level=noise_level, progress=progress)


def _read_mask(mask: str | os.PathLike | np.ndarray, width: int, height: int) -> np.ndarray:
    """An uploaded mask -> H x W bool, True in the holes (light, not transparent pixels); ``gr.Error`` if its
    size differs from the image's."""
    if isinstance(mask, np.ndarray):
        picture = Image.fromarray(mask)
    else:
        header = _read_header(mask)
        if (header.width, header.height) != (width, height):
            raise gr.Error(f"The mask is {header.width}x{header.height} but the image is {width}x{height}:"
                           " upload a mask of the image's size.")
        picture = Image.open(mask)
    if picture.size != (width, height):
        raise gr.Error(f"The mask is {picture.width}x{picture.height} but the image is {width}x{height}:"
                       " upload a mask of the image's size.")
    luminance_alpha = np.asarray(picture.convert("LA"))
    return (luminance_alpha[:, :, 0] > 127) & (luminance_alpha[:, :, 1] > 0)


def _to_uint8(images: torch.Tensor) -> np.ndarray:
    """[1, C, H, W] in [0, 1] -> H x W x C uint8."""
    return (images[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def _join_words(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _safe_name(text: str) -> str:
    """Letters, digits, dots, dashes and underscores only, at most 40: safe in a file name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")[:40] or "image"


def _safe_stem(path: Path) -> str:
    return _safe_name(path.stem)


def _caption(result: Restoration) -> str:
    quality = "" if result.psnr_restored is None else f"{result.psnr_restored:.2f} dB, "
    return f"{result.model}: {quality}{result.seconds:.2f} s"


def _comparison_table(results: list[Restoration]) -> str:
    first = results[0]
    lines = [f"Input: {first.condition}.", ""]
    if first.psnr_restored is None:
        lines += ["| model | time (s) |", "|---|---|"]
        lines += [f"| {result.model} | {result.seconds:.2f} |" for result in results]
    else:
        lines += ["| model | PSNR (dB) | SSIM | time (s) |", "|---|---|---|---|",
                  f"| input (no restoration) | {first.psnr_degraded:.2f} | {first.ssim_degraded:.4f} | - |"]
        lines += [f"| {result.model} | {result.psnr_restored:.2f} | {result.ssim_restored:.4f} | {result.seconds:.2f} |"
                  for result in results]
    remarks = [f"- {result.model}: {remark}" for result in results for remark in result.remarks]
    levels = [f"- {result.model} was told sigma {result.noise_level:.1f}/255 ({result.noise_level_source})."
              for result in results if result.noise_level is not None]
    return "\n".join(lines + ([""] + levels + remarks if levels or remarks else []))


def _how_to(space: DenoisingSpace) -> str:
    return "\n".join([
        "# Restore photos with denoising autoencoders",
        "**Denoise**: upload a photo or click an example, choose the damage to add (or *None* when your photo"
        " is already noisy), press **Restore**, then drag the handle across the result to compare before and"
        " after. **Inpaint**: paint over what should go, press **Fill in**. **Compare**: several models on one"
        " photo.",
        "",
        f"Images up to {_megapixels(space.max_pixels)}; those above {space.tile_pixels / 1e6:.2g} MP are"
        " restored in tiles, with the progress shown. It runs on a shared CPU: allow a few seconds per"
        " megapixel. Results are lossless PNG.",
    ])


_CSS = """
#hfdae-header { overflow-wrap: break-word; word-break: normal; hyphens: manual; }
#hfdae-header h1 { font-size: 1.6rem; margin: 0 0 0.4rem 0; }
@media (max-width: 480px) { #hfdae-header h1 { font-size: 1.3rem; } }
#compare-gallery .grid-wrap { height: auto; max-height: none; min-height: 0; }
#compare-gallery .thumbnail-item { aspect-ratio: auto; }
#compare-gallery .thumbnail-item img { height: auto; }
.hfdae-alert, .hfdae-refusal { border: 1px solid #e5484d; background: #fff1f1; color: #8f1d1d;
  border-radius: 8px; padding: 8px 12px; margin: 4px 0; overflow-wrap: anywhere; }
.hfdae-refusal[hidden] { display: none; }
"""

# The upload guard (see DenoisingSpace._upload_guard). It listens in the capture phase on window, so it sees
# a file input's change (and a drop) before gradio does; a refused file never reaches gradio, an accepted one
# is handed on by replaying the event, marked so the guard lets it through.
_UPLOAD_GUARD_JS = r"""
(() => {
  const GUARDED = __GUARDED__, EDITORS = __EDITORS__;
  const MAX_PIXELS = __MAX_PIXELS__, MAX_BYTES = __MAX_BYTES__, RULE = __RULE__, FORMATS = __FORMATS__;
  const passed = new WeakSet();
  const megabytes = bytes => (bytes / 1e6).toFixed(1) + " MB";
  const count = number => number.toLocaleString("en-US");
  const hostOf = node => {
    for (const id of GUARDED) {
      const host = node && node.closest ? node.closest("#" + id) : null;
      if (host) return host;
    }
    return null;
  };
  const say = (host, text) => {
    let box = document.getElementById(host.id + "-refusal");
    if (!box) {
      box = document.createElement("div");
      box.id = host.id + "-refusal";
      box.className = "hfdae-refusal";
      box.setAttribute("role", "alert");
      host.parentElement.insertBefore(box, host);
    }
    box.textContent = text;
    box.hidden = !text;
  };
  const imageSize = file => new Promise(resolve => {
    const url = URL.createObjectURL(file), picture = new Image();
    picture.onload = () => {
      URL.revokeObjectURL(url);
      resolve({width: picture.naturalWidth, height: picture.naturalHeight});
    };
    picture.onerror = () => { URL.revokeObjectURL(url); resolve(null); };
    picture.src = url;
  });
  const problem = async (file, host) => {
    if (file.size > MAX_BYTES) {
      return `${file.name} is ${megabytes(file.size)}, more than this demo accepts (${megabytes(MAX_BYTES)}), so` +
        ` its image is above ${RULE}. Downscale or crop it, then upload it again.`;
    }
    const size = await imageSize(file);
    if (size === null) {
      return EDITORS.includes(host.id) ? `${file.name} is not an image your browser can show, so it cannot be` +
        ` painted on. Upload a PNG, JPEG, WebP or GIF file.` : null;  // the server judges the rest
    }
    const pixels = size.width * size.height;
    if (pixels > MAX_PIXELS) {
      return `The image is ${size.width}x${size.height} = ${count(pixels)} pixels, above ${RULE}.` +
        ` Downscale or crop it, then upload it again.`;
    }
    return null;
  };
  const guard = (event, fileList, replay, refuse) => {
    const host = hostOf(event.target);
    if (!host || passed.has(event) || !fileList || !fileList.length) return;
    event.stopImmediatePropagation();
    event.preventDefault();
    const files = Array.from(fileList);  // now: a drop's list empties once the event is over
    Promise.all(files.map(file => problem(file, host))).then(found => {
      const refusal = found.find(Boolean);
      say(host, refusal || "");
      if (refusal) refuse(); else replay(files);
    });
  };
  const send = (target, event) => { passed.add(event); target.dispatchEvent(event); };
  window.addEventListener("input", event => {
    const input = event.target;
    if (input instanceof HTMLInputElement && input.type === "file" && hostOf(input) && !passed.has(event)) {
      event.stopImmediatePropagation();  // the guard replays it with the change event
    }
  }, true);
  window.addEventListener("change", event => {
    const input = event.target;
    if (!(input instanceof HTMLInputElement) || input.type !== "file") return;
    guard(event, input.files, () => {
      send(input, new Event("input", {bubbles: true, composed: true}));
      send(input, new Event("change", {bubbles: true, composed: true}));
    }, () => { input.value = ""; });  // so that picking the same file again is checked again
  }, true);
  window.addEventListener("drop", event => {
    const files = event.dataTransfer ? event.dataTransfer.files : null;
    const target = event.target;
    guard(event, files, accepted => {
      const transfer = new DataTransfer();
      accepted.forEach(file => transfer.items.add(file));
      send(target, new DragEvent("drop", {bubbles: true, cancelable: true, composed: true, dataTransfer: transfer}));
    }, () => {});
  }, true);
})();
"""


# --------------------------------------------------------------------------------------------------
# Export: a Space folder that deploys without a public git repository
# --------------------------------------------------------------------------------------------------

SPACE_MODELS_FOLDER = "models"
SPACE_WHEELS_FOLDER = "wheels"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# What export_space writes; with overwrite=True these (and only these) are replaced.
_SPACE_OUTPUTS = ("app.py", "README.md", "requirements.txt", ".gitattributes", SPACE_WHEELS_FOLDER, SPACE_MODELS_FOLDER)
# The files of a model folder a Space needs (weights, config, processor, card, remote code); the rest
# (evaluation JSON, learning curves) stays behind.
_MODEL_FILE_PATTERNS = ("config.json", "model.safetensors", "preprocessor_config.json", "README.md", "*.py")
# gradio is the Space's SDK (sdk_version in README.md): the Space installs it itself.
_SDK_PACKAGES = {"gradio"}


def export_space(
    directory: str | os.PathLike,
    models: Mapping[str, str] | Sequence[str] | None = None,
    wheel: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a Hugging Face Space folder that deploys as it is: no public git repository, no download at start-up.

    The folder holds ``app.py``; a wheel of hfdae in ``wheels/`` (built from this checkout, or ``wheel``),
    which ``app.py`` installs on its first start (a Space installs ``requirements.txt`` before the rest of
    the repository is copied in, so the wheel cannot be named there); ``requirements.txt`` with torch's CPU
    build and hfdae's dependencies pinned to the versions installed here; ``README.md`` with the Space's
    front matter (``sdk: gradio``, ``sdk_version`` of the installed gradio, ``app_file``, ``python_version``);
    ``.gitattributes`` (the wheel and the weights go through LFS); and in ``models/`` a copy of each model
    folder it offers (the embedded default is inside the wheel). Push it with
    ``hf upload USER/NAME DIR . --repo-type space``.

    Args:
        directory: the folder to write (created; must be empty unless ``overwrite``).
        models: ``{label: spec}`` or ``"LABEL=SPEC"`` entries (see :func:`parse_model_specs`); SPEC is
            ``"default"``, a zoo name available here or a model folder. A Hub repo id is refused: download
            it first and pass its folder. Default: the embedded model.
        wheel: a built hfdae wheel to ship instead of building one (``pip wheel --no-deps``).
        overwrite: replace the files a previous export wrote in ``directory`` (and nothing else).

    Returns:
        The folder.
    """
    directory = Path(directory)
    labelled = dict(models) if isinstance(models, Mapping) else parse_model_specs(models)
    labelled = labelled or dict(DEFAULT_MODELS)
    sources = {label: _model_folder(spec) for label, spec in labelled.items()}  # all checked before writing
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"{directory} is a file; give export_space a folder")
    if directory.is_dir() and any(directory.iterdir()):
        if not overwrite:
            raise ValueError(f"{directory} is not empty; choose a new folder or pass overwrite=True"
                             " (--overwrite) to replace a previous export")
        for name in _SPACE_OUTPUTS:
            target = directory / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    directory.mkdir(parents=True, exist_ok=True)

    wheels = directory / SPACE_WHEELS_FOLDER
    wheels.mkdir()
    built = _copy_wheel(Path(wheel), wheels) if wheel else _build_wheel(wheels)
    app_models = {}
    for label, source in sources.items():
        if source is None:
            app_models[label] = DEFAULT_MODEL
            continue
        name = _unique_folder_name(directory / SPACE_MODELS_FOLDER, _safe_name(label))
        _copy_model_folder(source, directory / SPACE_MODELS_FOLDER / name)
        app_models[label] = f"{SPACE_MODELS_FOLDER}/{name}"
    (directory / "app.py").write_text(space_app_source(app_models))
    (directory / "requirements.txt").write_text(space_requirements(built))
    (directory / "README.md").write_text(space_readme(app_models))
    (directory / ".gitattributes").write_text("*.whl filter=lfs diff=lfs merge=lfs -text\n"
                                              "*.safetensors filter=lfs diff=lfs merge=lfs -text\n")
    return directory


def _model_folder(spec: str) -> Path | None:
    """Where the model ``spec`` lives on this machine (None: the embedded default, inside the wheel);
    ``ValueError`` naming the spec when it is not a local folder."""
    if spec == DEFAULT_MODEL:
        return None
    if spec in ZOO and not Path(spec).exists():
        folder = ZOO[spec].local_folder()  # the embedded folder, $HFDAE_ZOO_DIR/NAME or a checkout's zoo/NAME
        if folder == DEFAULT_MODEL_DIR:
            return None
        if folder is None:
            raise ValueError(f"zoo model {spec!r} is not in a local zoo folder here; set HFDAE_ZOO_DIR to a folder"
                             " that holds it, or pass its folder")
        return folder
    folder = Path(spec)
    if folder.is_dir():
        missing = [name for name in ("config.json", "model.safetensors") if not (folder / name).is_file()]
        if missing:
            raise ValueError(f"{folder}: no {' or '.join(missing)} here; a model is a folder made by save_pretrained")
        DenoisingAutoencoderConfig.from_pretrained(folder)  # a config this hfdae cannot read fails now
        return folder
    raise ValueError(f"{spec!r} is neither 'default', a zoo name nor a model folder. A Space made by export_space"
                     " downloads nothing at start-up: download a Hub model first (hf download REPO --local-dir DIR)"
                     " and pass its folder")


def _unique_folder_name(parent: Path, name: str) -> str:
    candidate, number = name, 2
    while (parent / candidate).exists():
        candidate, number = f"{name}-{number}", number + 1
    return candidate


def _copy_model_folder(source: Path, destination: Path) -> None:
    destination.mkdir(parents=True)
    for pattern in _MODEL_FILE_PATTERNS:
        for file in source.glob(pattern):
            if file.is_file():
                shutil.copy2(file, destination / file.name)


def _project_root() -> Path:
    """The source checkout hfdae is imported from; ``ValueError`` when it is an installed copy."""
    root = Path(__file__).resolve().parent.parent
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file() or 'name = "hfdae"' not in pyproject.read_text():
        raise ValueError("export_space builds hfdae's wheel from a source checkout, and this hfdae is an installed"
                         " copy; pass wheel=PATH (--wheel) of a built hfdae wheel")
    return root


def _build_wheel(destination: Path) -> Path:
    """Build hfdae's wheel (``pip wheel --no-deps``) from a clean copy of the checkout's package files, so no
    stale ``build/`` folder can leak old modules into it."""
    root = _project_root()
    with tempfile.TemporaryDirectory(prefix="hfdae-wheel-") as scratch:
        source = Path(scratch) / "source"
        source.mkdir()
        for name in ("pyproject.toml", "README.md", "LICENSE"):
            if (root / name).is_file():
                shutil.copy2(root / name, source / name)
        shutil.copytree(root / "hfdae", source / "hfdae", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        # the build backend installed here if there is one (no index needed), else pip's isolated build
        isolation = ["--no-build-isolation"] if _has_module("setuptools") else []
        command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(destination),
                   *isolation, str(source)]
        completed = subprocess.run(command, capture_output=True, text=True)
        if completed.returncode != 0:
            raise RuntimeError(f"building hfdae's wheel failed ({' '.join(command)}):\n{completed.stderr[-2000:]}")
    built = sorted(destination.glob("hfdae-*.whl"))
    if len(built) != 1:
        raise RuntimeError(f"expected one hfdae wheel in {destination}, found {[path.name for path in built]}")
    return built[0]


def _copy_wheel(wheel: Path, destination: Path) -> Path:
    if not wheel.is_file() or not wheel.name.startswith("hfdae-") or wheel.suffix != ".whl":
        raise ValueError(f"{wheel}: not an hfdae wheel (expected a file named hfdae-VERSION-...whl)")
    return Path(shutil.copy2(wheel, destination / wheel.name))


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def _wheel_requirements(wheel: Path) -> tuple[str, list[str]]:
    """The wheel's version and its unconditional requirements (``Requires-Dist`` without a marker)."""
    with zipfile.ZipFile(wheel) as archive:
        metadata_name = next(name for name in archive.namelist() if name.endswith(".dist-info/METADATA"))
        metadata = archive.read(metadata_name).decode()
    version = re.search(r"^Version: (.+)$", metadata, re.MULTILINE).group(1).strip()
    requirements = [line.split(":", 1)[1].strip() for line in metadata.splitlines()
                    if line.startswith("Requires-Dist:")]
    return version, [requirement for requirement in requirements if ";" not in requirement]


def _requirement_name(requirement: str) -> str:
    return re.match(r"[A-Za-z0-9._-]+", requirement).group(0)


def space_requirements(wheel: Path) -> str:
    """The text of ``requirements.txt`` for a Space shipping ``wheel``: torch's CPU build, then the wheel's
    requirements pinned to the versions installed here (the versions this hfdae was tested with)."""
    version, requirements = _wheel_requirements(wheel)
    pinned = []
    for requirement in requirements:
        name = _requirement_name(requirement)
        if name.lower() in _SDK_PACKAGES or name.lower() == "torch":
            continue
        try:
            pinned.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            pinned.append(requirement.replace(" ", ""))
    torch_version = torch.__version__.split("+")[0]
    return "\n".join([
        f"# The Space's Python packages, written by `hfdae space --export` (hfdae {version}).",
        "# gradio comes from sdk_version in README.md. hfdae itself is the wheel in wheels/, which app.py installs",
        "# on its first start: a Space installs this file before it copies in the rest of the repository, so a",
        "# wheel named here would not be found.",
        "#",
        "# torch: the CPU build. The Space runs on CPU hardware, and PyPI's Linux wheel is the CUDA build (GBs more).",
        f"--extra-index-url {TORCH_CPU_INDEX}",
        f"torch=={torch_version}",
        "# hfdae's requirements, pinned to the versions it was tested with:",
        *sorted(pinned, key=str.lower),
        "",
    ])


def space_readme(models: Mapping[str, str]) -> str:
    """The text of the Space's ``README.md``: the front matter a Space needs, then what it offers."""
    python_version = f"{sys.version_info.major}.{sys.version_info.minor}"
    offered = "\n".join(f"- **{label}**: " + ("the model embedded in hfdae" if spec == DEFAULT_MODEL else f"`{spec}/`")
                        for label, spec in models.items())
    return f"""---
title: hfdae denoising autoencoders
emoji: 🧽
colorFrom: indigo
colorTo: gray
sdk: gradio
sdk_version: {gr.__version__}
python_version: "{python_version}"
app_file: app.py
pinned: false
license: apache-2.0
short_description: Denoise, inpaint and compare photo restorers on a CPU
# The models are folders of this Space (below), not Hub repos: nothing is downloaded at start-up.
models: []
---

# hfdae: denoising autoencoders in the browser

Residual U-Nets with batch norm, trained to undo noise, salt and pepper, blur and holes, packaged as
`transformers` models by hfdae.

- **Denoise**: upload a photo or click an example; add noise, salt and pepper, blur, knockout or a phone
  photo's noise (in their own units: sigma on the 0-255 scale, percent of pixels, pixels...), or restore the
  upload as it is; drag the before/after slider; download the PNG. Models with a noise-level input get a
  strength control ("auto" shows the estimated sigma).
- **Inpaint**: paint over what should go (or upload a mask) and let a model fill it in.
- **Compare**: several models on the same input, with PSNR and time each.

The models it offers:

{offered}

All outputs are lossless PNG. Uploads are limited to 4 MP (refused at once, in the browser, when larger);
images above 1 MP are restored in 512x512 tiles with the progress shown. It runs on the free CPU hardware.

## Configuration (Space variables)

| variable | meaning | default |
|---|---|---|
| `HFDAE_SPACE_MODELS` | the models offered, `LABEL=SPEC, LABEL=SPEC`; SPEC is `default`, a folder of this Space or a Hub repo id | the list above |
| `HFDAE_SPACE_MAX_PIXELS` | largest upload in pixels | `4000000` |

Visitors choose among these labels only; they cannot load other models or paths.

## How this folder was made

`hfdae space --export DIR` wrote it: `app.py`, a wheel of hfdae in `wheels/` (installed by `app.py` into
`.hfdae/` on the first start), `requirements.txt` (torch's CPU build and hfdae's requirements, pinned), this
README and the model folders. Deploy it with

```bash
hf repos create USER/hfdae-demo --repo-type space --space-sdk gradio
hf upload USER/hfdae-demo DIR . --repo-type space
```

Run it locally with `python app.py` in this folder.
"""


_APP_TEMPLATE = '''"""hfdae's Space: denoise, inpaint and compare denoising autoencoders in the browser.

Written by `hfdae space --export`. It offers MODELS below (folders next to this file, or the model embedded
in hfdae: nothing is downloaded at start-up) unless the Space variable HFDAE_SPACE_MODELS names others
("LABEL=SPEC, LABEL=SPEC"); HFDAE_SPACE_MAX_PIXELS sets the largest upload (default 4000000).

hfdae itself is the wheel in wheels/, installed into .hfdae/ on the first start: a Space installs
requirements.txt before it copies in the rest of the repository, so the wheel cannot be named there.
Without a wheel (a source checkout), the installed hfdae is used.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODELS = __MODELS__


def use_bundled_hfdae() -> None:
    """Put the hfdae wheel of wheels/ first on sys.path, installed (once) with pip, offline, without its
    requirements (requirements.txt installed them)."""
    wheels = sorted((HERE / "wheels").glob("hfdae-*.whl"))
    if not wheels:
        try:
            import hfdae  # noqa: F401
        except ImportError:
            raise SystemExit("no hfdae wheel in wheels/ and no hfdae installed: write a deployable Space folder"
                             " with `hfdae space --export DIR` (or pip install 'hfdae[space]')") from None
        return
    base = HERE / ".hfdae" if os.access(HERE, os.W_OK) else Path(tempfile.gettempdir()) / "hfdae-space"
    target = base / wheels[-1].stem
    if not target.is_dir():
        partial = base / (wheels[-1].stem + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                        "--target", str(partial), str(wheels[-1])], check=True)
        partial.rename(target)
    sys.path.insert(0, str(target))


use_bundled_hfdae()

from hfdae.space import (  # noqa: E402
    DEFAULT_MAX_PIXELS,
    MAX_PIXELS_VARIABLE,
    MODELS_VARIABLE,
    DenoisingSpace,
    parse_model_specs,
)

if os.environ.get(MODELS_VARIABLE):
    models = parse_model_specs(os.environ[MODELS_VARIABLE])
else:
    models = {label: str(HERE / spec) if (HERE / spec).is_dir() else spec for label, spec in MODELS.items()}
max_pixels = int(os.environ.get(MAX_PIXELS_VARIABLE, DEFAULT_MAX_PIXELS))
space = DenoisingSpace(models, max_pixels=max_pixels)
demo = space.build_demo()

if __name__ == "__main__":
    demo.launch(**space.launch_options())
'''


def space_app_source(models: Mapping[str, str]) -> str:
    """The text of the Space's ``app.py`` offering ``models`` (``{label: spec}``, folders relative to it)."""
    entries = "".join(f"\n    {label!r}: {spec!r}," for label, spec in models.items())
    return _APP_TEMPLATE.replace("__MODELS__", "{" + entries + "\n}")
