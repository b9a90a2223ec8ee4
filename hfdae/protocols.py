"""The protocol registry: every evaluation protocol and the model task it measures, in one table.

A :class:`Protocol` is one entry of :data:`PROTOCOLS` and holds everything hfdae knows about it:

- ``name`` (``hfdae evaluate --protocol NAME``) and ``task``, the model task it measures
  (``DenoisingAutoencoderConfig.task``; ``hfdae finetune --task TASK``);
- its conditions and how each degrades a clean image into an :class:`EvaluationCase` (fixed seeds, so
  every method, run and machine sees the same inputs);
- its headline: the column that selects the best checkpoint during training, leads the model card and
  names the number in the README, with the label every report uses for it;
- an optional ``average`` column (the per-image mean over the conditions, such as the chapter's
  five-output average);
- a description (model cards, ``docs/protocols.md``) and the default baselines of ``hfdae evaluate``
  (specs of :func:`hfdae.baselines.build_baseline`);
- the task's training degradation for fine-tuning, with its options and defaults, and whether the task's
  models take the mask of damaged pixels as an input channel.

Adding a protocol (or a task) is adding one entry to :data:`PROTOCOLS`; evaluation, training validation,
fine-tuning, model cards, the command line and the Space read it from here.

>>> from hfdae.protocols import get_protocol, protocol_for_task
>>> get_protocol("seed").condition_names()
['identity', 'gaussian', 'salt_pepper', 'blur', 'knockout']
>>> protocol_for_task("inpaint").name
'inpaint'
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from .degradations import DegradedBatch

__all__ = [
    "AVERAGE",
    "IDENTITY",
    "CHAPTER_CONDITIONS",
    "EvaluationCase",
    "Condition",
    "Protocol",
    "PROTOCOLS",
    "list_protocols",
    "list_tasks",
    "get_protocol",
    "protocol_for_task",
    "task_degradation",
    "degrade_for_evaluation",
]

AVERAGE = "average"  # the column of a protocol's per-image mean over its conditions
IDENTITY = "identity"  # the chapter's clean-input condition
# the clean input, then the chapter's four degradations in hfdae.degradations.CHAPTER_DEGRADATIONS order
# (written out so that this registry imports without torch, for `hfdae --help`; tests/test_protocols.py checks it)
CHAPTER_CONDITIONS: tuple[str, ...] = (IDENTITY, "gaussian", "salt_pepper", "blur", "knockout")


@dataclass
class EvaluationCase:
    """One degraded input of one image, with everything a method may be told about how it was made.

    Args:
        image: the image's name.
        condition: the condition's name (a column of the protocol's table).
        degraded: the degraded image [1, C, H, W] (values may leave [0, 1]: noisy inputs are not clipped).
        degradation: the spec of the degradation applied (``Degradation.to_spec()``), e.g.
            ``{"name": "blur", "sigma": 2.0, ...}``.
        params: the parameters drawn for this image, as ``DegradedBatch.params`` names them (``{"sigma": 2.0}``
            for a blur; ``"<index>.<name>.<param>"`` in a chain).
        sigma: the Gaussian noise sigma (0-255) where the condition has a known one, else None.
        mask: [1, 1, H, W] float, 1 where pixels were destroyed (inpainting holes, knockout blocks, salt and
            pepper), else None. Models with a mask input channel get it.
    """

    image: str
    condition: str
    degraded: torch.Tensor
    degradation: dict[str, Any] = field(default_factory=dict)
    params: dict[str, float] = field(default_factory=dict)
    sigma: float | None = None
    mask: torch.Tensor | None = None


def _case(image: str, condition: str, degradation, batch: DegradedBatch, device: torch.device,
          sigma: float | None = None, with_mask: bool = True) -> EvaluationCase:
    params = {key: float(values.reshape(-1)[0]) for key, values in batch.params.items()}
    mask = batch.mask.float().to(device) if with_mask and batch.mask is not None else None
    return EvaluationCase(image, condition, batch.images.to(device), degradation.to_spec(), params, sigma, mask)


def _condition_seed(seed: int, image: str, condition: str) -> int:
    # depends on (seed, image name, condition) only, not on Python's salted `hash`
    return seed + zlib.crc32(f"{image}/{condition}".encode())


def degrade_for_evaluation(clean: torch.Tensor, condition: str, image_name: str, seed: int = 0) -> DegradedBatch:
    """One fixed instance of the degradation ``condition`` (a registered name) applied to ``clean`` [1, C, H, W].

    The seed depends on ``(seed, image_name, condition)`` only, so every model, run and machine gets the same
    degraded input for the same image.
    """
    import torch

    from .degradations import build_degradation

    generator = torch.Generator().manual_seed(_condition_seed(seed, image_name, condition))
    degraded = build_degradation(condition)(clean.cpu(), generator=generator)
    degraded.images = degraded.images.to(clean.device)
    return degraded


@dataclass(frozen=True)
class Condition:
    """One column of a protocol: its name and how it degrades a clean image.

    Args:
        name: the column name.
        make: ``make(clean [1, C, H, W], image name, seed) -> EvaluationCase``.
    """

    name: str
    make: Callable[[torch.Tensor, str, int], EvaluationCase]


# --- the conditions of the registered protocols ------------------------------------------------------------


def _chapter_condition(name: str) -> Condition:
    """The chapter's protocol: one fixed-seed instance of a registered degradation (section 18.4.4)."""

    def make(clean: torch.Tensor, image: str, seed: int) -> EvaluationCase:
        from .degradations import build_degradation

        degradation = build_degradation(name)
        batch = degrade_for_evaluation(clean, name, image, seed)
        sigma = float(batch.params["sigma"][0]) * 255 if name == "gaussian" else None
        # models with a mask channel see the mask of the damaged pixels here, as in training
        return _case(image, name, degradation, batch, clean.device, sigma)

    return Condition(name, make)


def _chapter_conditions() -> list[Condition]:
    return [_chapter_condition(name) for name in CHAPTER_CONDITIONS]


def _awgn_condition(sigma: float) -> Condition:
    """The published tables' noise: ``clean + N(0, (sigma/255)^2)`` from ``numpy.random.RandomState(0)`` per
    image, drawn in H x W x C order (as KAIR's evaluation does), not clipped."""

    def make(clean: torch.Tensor, image: str, seed: int) -> EvaluationCase:
        import numpy as np
        import torch

        noise = np.random.RandomState(0).normal(0, sigma / 255, tuple(clean[0].permute(1, 2, 0).shape))
        noise = torch.from_numpy(noise).permute(2, 0, 1).unsqueeze(0)
        noisy = (clean.double().cpu() + noise).float().to(clean.device)
        spec = {"name": "gaussian", "sigma": sigma / 255, "clip": False, "noise": "numpy.random.RandomState(0)"}
        return EvaluationCase(image, f"sigma{sigma:g}", noisy, spec, {"sigma": sigma / 255}, float(sigma))

    return Condition(f"sigma{sigma:g}", make)


def _awgn_conditions(sigmas: Sequence[float] = (15, 25, 50)) -> list[Condition]:
    return [_awgn_condition(sigma) for sigma in sigmas]


def _blur_condition(sigma: float) -> Condition:
    def make(clean: torch.Tensor, image: str, seed: int) -> EvaluationCase:
        from .degradations import build_degradation

        degradation = build_degradation({"name": "blur", "sigma": sigma})
        return _case(image, f"blur{sigma:g}", degradation, degradation(clean), clean.device)

    return Condition(f"blur{sigma:g}", make)


def _deblur_conditions(sigmas: Sequence[float] = (1.0, 2.0, 3.0)) -> list[Condition]:
    return [_blur_condition(sigma) for sigma in sigmas]


def _inpaint_conditions() -> list[Condition]:
    def make(clean: torch.Tensor, image: str, seed: int) -> EvaluationCase:
        import torch

        from .degradations import build_degradation

        degradation = build_degradation("inpaint_mask")
        generator = torch.Generator().manual_seed(_condition_seed(seed, image, "inpaint"))
        return _case(image, "inpaint", degradation, degradation(clean.cpu(), generator=generator), clean.device)

    return [Condition("inpaint", make)]


# the photo protocol's sensor noises: (column prefix, degradation spec, Gaussian sigma 0-255 or None)
PHOTO_NOISES: tuple[tuple[str, dict[str, Any], float | None], ...] = (
    ("gauss15", {"name": "gaussian", "sigma": 15 / 255, "clip": True}, 15.0),
    ("gauss25", {"name": "gaussian", "sigma": 25 / 255, "clip": True}, 25.0),
    # signal-dependent: variance 0.01 x intensity (shot) + (5/255)^2 (read), per channel
    ("poisson", {"name": "poisson_gaussian", "shot": 0.01, "read": 5 / 255, "clip": True}, None),
)


def _photo_condition(noise: str, spec: dict[str, Any], sigma: float | None, quality: int) -> Condition:
    name = f"{noise}-q{quality}"

    def make(clean: torch.Tensor, image: str, seed: int) -> EvaluationCase:
        import torch

        from .degradations import build_degradation

        degradation = build_degradation({"chain": [spec, {"name": "jpeg", "quality": quality, "subsampling": "4:2:0"}]})
        generator = torch.Generator().manual_seed(_condition_seed(seed, image, name))
        batch = degradation(clean.cpu(), generator=generator)
        return _case(image, name, degradation, batch, clean.device, sigma, with_mask=False)

    return Condition(name, make)


def _photo_conditions(qualities: Sequence[int] = (75, 90)) -> list[Condition]:
    return [_photo_condition(noise, spec, sigma, int(quality))
            for noise, spec, sigma in PHOTO_NOISES for quality in qualities]


# --- the training degradations of the tasks -----------------------------------------------------------------


def _restore_degradation(options: dict[str, Any]) -> Any:
    return "chapter"


def _denoise_degradation(options: dict[str, Any]) -> Any:
    return {"name": "gaussian", "sigma_max": float(options["sigma_max"])}


def _deblur_degradation(options: dict[str, Any]) -> Any:
    blur = {"name": "blur", "sigma_max": float(options["sigma_max"])}
    if float(options["noise_sigma_max"]) > 0:
        return {"chain": [blur, {"name": "gaussian", "sigma_max": float(options["noise_sigma_max"])}]}
    return blur


def _photo_degradation(options: dict[str, Any]) -> Any:
    """Sensor noise (Gaussian or Poisson-Gaussian) then JPEG, mostly 4:2:0 as phones write, with some 4:4:4,
    PNG-like noisy crops and clean JPEGs so that those inputs are handled too."""
    jpeg = {"name": "jpeg", "quality_min": int(options["quality_min"]), "quality_max": int(options["quality_max"])}
    gaussian = {"name": "gaussian", "sigma_max": float(options["sigma_max"]), "clip": True}
    poisson = {"name": "poisson_gaussian", "shot_max": float(options["shot_max"]),
               "read_max": float(options["read_max"]), "clip": True}
    return {"choice": [{"chain": [gaussian, jpeg]}, {"chain": [poisson, jpeg]},
                       {"chain": [gaussian, {**jpeg, "subsampling": "4:4:4"}]}, gaussian, poisson, jpeg],
            "weights": [4, 4, 1, 1, 1, 1]}


def _inpaint_degradation(options: dict[str, Any]) -> Any:
    return {"name": "inpaint_mask", **options}


# --- the registry ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Protocol:
    """One evaluation protocol and the model task it measures (an entry of :data:`PROTOCOLS`).

    Args:
        name: the protocol's name (``hfdae evaluate --protocol NAME``).
        task: the model task it measures (``config.task``; ``hfdae finetune --task``); one protocol per task.
        description: what the protocol does, for model cards and ``docs/protocols.md``.
        build_conditions: ``build_conditions(**options) -> [Condition]``, in table order.
        headline: the column that measures a model on this protocol: a condition or :data:`AVERAGE`.
        headline_label: what the headline number is, e.g. ``"five-output average"``.
        average_label: where set, tables get an :data:`AVERAGE` column, the per-image mean over the
            conditions, described by this label.
        default_baselines: baseline specs ``hfdae evaluate`` adds unless told otherwise
            (see :func:`hfdae.baselines.build_baseline`).
        options: the keyword options of ``build_conditions`` with their defaults (e.g. ``{"sigmas": ...}``).
        task_description: what a model of the task is trained for.
        task_name: the task's name on the Hub (model cards' ``model-index``, e.g. ``"Image deblurring"``).
        hub_tags: the Hub tags of the task's models (beside :data:`hfdae.cards.CARD_TAGS`).
        training_degradation: ``training_degradation(options) -> spec`` of the task's fine-tuning data.
        training_options: the options of ``training_degradation`` with their defaults.
        mask_input: the task's models take the mask of destroyed pixels as an extra input channel.
    """

    name: str
    task: str
    description: str
    build_conditions: Callable[..., list[Condition]]
    headline: str
    headline_label: str
    average_label: str | None = None
    default_baselines: tuple[str, ...] = ("input",)
    options: dict[str, Any] = field(default_factory=dict)
    task_description: str = ""
    task_name: str = "Image restoration"
    hub_tags: tuple[str, ...] = ()
    training_degradation: Callable[[dict[str, Any]], Any] = _restore_degradation
    training_options: dict[str, Any] = field(default_factory=dict)
    mask_input: bool = False

    def conditions(self, **options: Any) -> list[Condition]:
        """The protocol's conditions, in table order (``options``: see :attr:`options`)."""
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            raise ValueError(f"protocol {self.name!r} takes no option(s) {unknown}; its options: {sorted(self.options)}")
        return self.build_conditions(**{**self.options, **options})

    def condition_names(self, **options: Any) -> list[str]:
        """The condition names, in table order."""
        return [condition.name for condition in self.conditions(**options)]

    def columns(self, conditions: Sequence[str]) -> list[str]:
        """The table's columns for these conditions: the conditions, then :data:`AVERAGE` where the protocol has one."""
        return list(conditions) + ([AVERAGE] if self.average_label else [])

    def cases(self, clean: torch.Tensor, image: str, seed: int = 0, **options: Any) -> list[EvaluationCase]:
        """The degraded inputs of one clean image [1, C, H, W], one per condition."""
        return [condition.make(clean, image, seed) for condition in self.conditions(**options)]

    def training_spec(self, **options: Any) -> Any:
        """The degradation spec (for :func:`hfdae.degradations.build_degradation`) of the task's training data.

        Raises:
            ValueError: an unknown option, naming it and the valid ones.
        """
        unknown = sorted(set(options) - set(self.training_options))
        if unknown:
            raise ValueError(f"unknown option(s) {unknown} for task {self.task!r}; valid: {sorted(self.training_options)}")
        return self.training_degradation({**self.training_options, **options})


PROTOCOLS: dict[str, Protocol] = {
    protocol.name: protocol
    for protocol in (
        Protocol(
            name="seed",
            task="restore",
            description=(
                "The chapter's protocol (Forsyth, section 18.4.4): every test image is restored from the clean image"
                " (`identity`) and from one fixed-seed instance of each of the chapter's four degradations (`gaussian`"
                " noise, sigma uniform in [0, 50/255], 5 % `salt_pepper`, Gaussian `blur` with sigma uniform in (0, 3),"
                " `knockout` blocks up to 9x9); `average` is the mean of the five outputs' PSNR per image. Outputs are"
                " clipped to [0, 1] and rounded to 8 bits."
            ),
            build_conditions=_chapter_conditions,
            headline=AVERAGE,
            headline_label="five-output average",
            average_label="five-output average",
            task_description="the chapter's four degradations (Gaussian noise, salt and pepper, blur, knockout)",
            hub_tags=("image-denoising", "denoising"),
        ),
        Protocol(
            name="awgn",
            task="denoise",
            description=(
                "The published tables' protocol: `noisy = clean + N(0, (sigma/255)^2)` drawn with"
                " `numpy.random.RandomState(0)` per image (H x W x C order), the noisy input not clipped; outputs"
                " clipped to [0, 1] and rounded to 8 bits; PSNR over all channels, no border crop."
            ),
            build_conditions=_awgn_conditions,
            headline="sigma25",
            headline_label="PSNR at Gaussian noise sigma 25",
            options={"sigmas": (15, 25, 50)},
            task_description="additive Gaussian noise",
            task_name="Image denoising",
            hub_tags=("image-denoising", "denoising"),
            training_degradation=_denoise_degradation,
            training_options={"sigma_max": 50 / 255},
        ),
        Protocol(
            name="deblur",
            task="deblur",
            description=(
                "Deblurring: every test image blurred by a Gaussian of sigma 1, 2 and 3 pixels (`blur1`, `blur2`,"
                " `blur3`), no noise; `average` is the mean of the three per image; outputs clipped to [0, 1] and"
                " rounded to 8 bits; PSNR of the whole image."
            ),
            build_conditions=_deblur_conditions,
            headline=AVERAGE,
            headline_label="mean deblurring PSNR over blur sigma 1, 2 and 3",
            average_label="mean over blur sigma 1, 2 and 3",
            default_baselines=("input", "richardson_lucy", "wiener"),
            task_description="Gaussian blur (optionally with noise after it)",
            task_name="Image deblurring",
            hub_tags=("image-deblurring", "deblurring"),
            training_degradation=_deblur_degradation,
            training_options={"sigma_max": 3.0, "noise_sigma_max": 0.0},
        ),
        Protocol(
            name="photo",
            task="photo",
            description=(
                "Noisy photos as cameras and phones save them: sensor noise, then JPEG with 4:2:0 chroma"
                " subsampling (Pillow's default) at quality 75 and 90. Noises: Gaussian sigma 15 and 25 (`gauss15`,"
                " `gauss25`) and signal-dependent Poisson-Gaussian (`poisson`: variance 0.01 x intensity plus read"
                " noise sigma 5/255, per channel), each clipped to [0, 1] before the JPEG (fixed seeds per image);"
                " `average` is the mean of the six per image; outputs clipped to [0, 1] and rounded to 8 bits."
            ),
            build_conditions=_photo_conditions,
            headline=AVERAGE,
            headline_label="mean PSNR over the six noise-then-JPEG conditions",
            average_label="mean over the six noise-then-JPEG conditions",
            options={"qualities": (75, 90)},
            task_description="sensor noise (Gaussian or Poisson-Gaussian) followed by JPEG compression",
            task_name="Photo denoising",
            hub_tags=("image-denoising", "denoising", "jpeg-artifact-removal"),
            training_degradation=_photo_degradation,
            training_options={"sigma_max": 40 / 255, "shot_max": 0.02, "read_max": 10 / 255, "quality_min": 50,
                              "quality_max": 95},
        ),
        Protocol(
            name="inpaint",
            task="inpaint",
            description=(
                "Inpainting: one fixed-seed set of large holes (boxes and strokes) per image, set to 0; models with a"
                " mask input channel are given the mask; outputs clipped to [0, 1] and rounded to 8 bits; PSNR of the"
                " whole image."
            ),
            build_conditions=_inpaint_conditions,
            headline="inpaint",
            headline_label="inpainting PSNR (boxes and strokes of holes)",
            default_baselines=("input", "biharmonic"),
            task_description="large holes (boxes and free-form strokes)",
            task_name="Image inpainting",
            hub_tags=("image-inpainting", "inpainting"),
            training_degradation=_inpaint_degradation,
            # InpaintMask: boxes of 10-40 % of the side and free-form strokes 5-15 px wide (see hfdae.degradations)
            training_options={"max_boxes": 3, "min_box_fraction": 0.1, "max_box_fraction": 0.4, "max_strokes": 4,
                              "min_stroke_width": 5.0, "max_stroke_width": 15.0},
            mask_input=True,
        ),
    )
}


def list_protocols() -> list[str]:
    """The registered protocol names, in registry order."""
    return list(PROTOCOLS)


def list_tasks() -> list[str]:
    """The model tasks (one per protocol), in registry order."""
    return [protocol.task for protocol in PROTOCOLS.values()]


def get_protocol(name: str) -> Protocol:
    """The protocol named ``name``; ``ValueError`` naming the valid ones otherwise."""
    if name not in PROTOCOLS:
        raise ValueError(f"protocol={name!r} is not valid; choose one of {list_protocols()}")
    return PROTOCOLS[name]


def protocol_for_task(task: str) -> Protocol:
    """The protocol that measures models of ``task``; ``ValueError`` naming the valid tasks otherwise."""
    for protocol in PROTOCOLS.values():
        if protocol.task == task:
            return protocol
    raise ValueError(f"task={task!r} is not valid; choose one of {list_tasks()}")


def task_degradation(task: str, **options: Any) -> Any:
    """The degradation spec of a task's training data (see :meth:`Protocol.training_spec`).

    Args:
        task: a task of :func:`list_tasks`.
        **options: the task's options (:attr:`Protocol.training_options`): ``inpaint``: ``max_boxes``,
            ``min_box_fraction``, ``max_box_fraction``, ``max_strokes``, ``min_stroke_width``,
            ``max_stroke_width``; ``deblur``: ``sigma_max`` (largest blur sigma, default 3) and
            ``noise_sigma_max`` (Gaussian noise up to this sigma in [0, 1] units after the blur; 0: none);
            ``denoise``: ``sigma_max`` (largest noise sigma in [0, 1] units, default 50/255).
    """
    return protocol_for_task(task).training_spec(**options)
