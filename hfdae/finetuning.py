"""Fine-tuning a trained model for a new task (the chapter's section 18.4.5).

Take a trained autoencoder and keep descending, with a small learning rate, on the new task's data:
inpainting (large holes, optionally with the mask as an extra input channel), deblurring (Gaussian
blur, optionally with noise) or denoising. The result is an ordinary hfdae checkpoint whose config
records its ``task`` and its ``lineage`` (the parent model first).

>>> from hfdae.finetuning import finetune
>>> result = finetune("default", "inpaint", data="photos/", output_dir="runs/inpaint", max_images=20_000)

or ``hfdae finetune --from default --task inpaint --data photos/ --output runs/inpaint``.
"""

from __future__ import annotations

import copy
import os
from typing import Any

import torch
from torch import nn

from .modeling_hfdae import DenoisingAutoencoder

__all__ = [
    "FINETUNE_TASKS",
    "PARENT_OVERRIDES",
    "DEFAULT_FINETUNE_LEARNING_RATE",
    "task_degradation",
    "widen_input_channels",
    "convert_upsampling",
    "frozen_modules",
    "input_convolutions",
    "record_parent",
    "finetune_config",
    "finetune",
]

FINETUNE_TASKS = ("inpaint", "deblur", "denoise")
# the model.overrides a training run may apply to a parent loaded with model.init_from (converted, not rebuilt)
PARENT_OVERRIDES = ("upsample",)
DEFAULT_FINETUNE_LEARNING_RATE = 1e-4

# The options each task's degradation accepts, with their defaults.
_TASK_OPTIONS: dict[str, dict[str, Any]] = {
    # InpaintMask: boxes of 10-40 % of the side and free-form strokes 5-15 px wide (see hfdae.degradations)
    "inpaint": {"max_boxes": 3, "min_box_fraction": 0.1, "max_box_fraction": 0.4, "max_strokes": 4,
                "min_stroke_width": 5.0, "max_stroke_width": 15.0},
    "deblur": {"sigma_max": 3.0, "noise_sigma_max": 0.0},
    "denoise": {"sigma_max": 50 / 255},
}


def task_degradation(task: str, **options: Any) -> dict[str, Any]:
    """The degradation spec (for :func:`hfdae.degradations.build_degradation`) of a fine-tuning task.

    Args:
        task: ``"inpaint"``, ``"deblur"`` or ``"denoise"``.
        **options: ``inpaint``: ``max_boxes``, ``min_box_fraction``, ``max_box_fraction``,
            ``max_strokes``, ``min_stroke_width``, ``max_stroke_width`` (the hole size distribution);
            ``deblur``: ``sigma_max`` (largest blur sigma, default 3) and ``noise_sigma_max`` (add
            Gaussian noise up to this sigma in [0, 1] units after the blur; 0: none);
            ``denoise``: ``sigma_max`` (largest noise sigma in [0, 1] units, default 50/255).

    Raises:
        ValueError: an unknown task or option (naming it and the valid ones).
    """
    if task not in _TASK_OPTIONS:
        raise ValueError(f"task={task!r} is not valid; choose one of {list(FINETUNE_TASKS)}")
    unknown = sorted(set(options) - set(_TASK_OPTIONS[task]))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for task {task!r}; valid: {sorted(_TASK_OPTIONS[task])}")
    values = {**_TASK_OPTIONS[task], **options}
    if task == "inpaint":
        return {"name": "inpaint_mask", **values}
    if task == "denoise":
        return {"name": "gaussian", "sigma_max": float(values["sigma_max"])}
    blur = {"name": "blur", "sigma_max": float(values["sigma_max"])}
    if float(values["noise_sigma_max"]) > 0:
        return {"chain": [blur, {"name": "gaussian", "sigma_max": float(values["noise_sigma_max"])}]}
    return blur


@torch.no_grad()
def widen_input_channels(model: DenoisingAutoencoder, extra_channels: int) -> DenoisingAutoencoder:
    """A copy of ``model`` taking ``extra_channels`` more input channels, with zero weights for them.

    The convolutions that read the network input get zero-initialised input channels, so the new
    model's output equals the old one's whatever the new channels hold until training changes them.
    """
    if extra_channels < 1:
        raise ValueError(f"extra_channels must be at least 1, got {extra_channels}")
    config = copy.deepcopy(model.config)
    config.extra_input_channels = model.config.extra_input_channels + extra_channels
    widened = DenoisingAutoencoder(config)
    old_state = model.state_dict()
    new_state = widened.state_dict()
    for name, tensor in new_state.items():
        old = old_state[name]
        if old.shape == tensor.shape:
            tensor.copy_(old)
        elif old.ndim == 4 and old.shape[0] == tensor.shape[0] and old.shape[2:] == tensor.shape[2:]:
            tensor.zero_()
            tensor[:, : old.shape[1]] = old  # the image channels keep their weights; the new ones are 0
        else:
            raise RuntimeError(f"cannot widen {name}: {tuple(old.shape)} -> {tuple(tensor.shape)}")
    widened.load_state_dict(new_state)
    widened.train(model.training)
    return widened.to(next(model.parameters()).device)


@torch.no_grad()
def convert_upsampling(model: DenoisingAutoencoder, upsample: str = "resize", seed: int = 0) -> DenoisingAutoencoder:
    """A copy of ``model`` whose decoder upsamples with ``upsample`` instead of transposed convolutions.

    Every weight outside the upsampling convolutions is copied. Each new resize + convolution is fitted
    by least squares to the old transposed convolution's output on white-noise feature maps: what it can
    express (the part of the response common to the four output phases) is kept, what it cannot (the
    stride-2 grid that patterns flat bright images) is dropped. The copy is a starting point for further
    training (``model.overrides: {upsample: resize}`` beside ``model.init_from``), not a finished model:
    on white noise the bilinear resize damps high frequencies, so the fit raises the gain of flat inputs
    (by about 1.44 on the 1x1 shortcuts), and the batch-norm statistics after the new convolutions are
    the parent's. The zoo's colour flagship went from 28.9 dB (parent) to 25.4 dB right after the
    conversion (21.7 with the new convolutions left at their fresh initialisation), 8 held-out crops at
    sigma 25, before its second training stage.

    Args:
        model: the parent, with ``upsample: transposed`` (left unchanged).
        upsample: the new upsampling; only ``"resize"`` (bilinear, then the convolution).
        seed: seed of the random feature maps of the fit.

    Raises:
        ValueError: ``upsample`` is not ``"resize"``, or the model does not upsample by transposed convolution.
    """
    if upsample != "resize":
        raise ValueError(f"upsample={upsample!r}: only a conversion to 'resize' can be fitted")
    if model.config.upsample != "transposed":
        raise ValueError(f"the model already upsamples with {model.config.upsample!r}; nothing to convert")
    config = copy.deepcopy(model.config)
    config.upsample = upsample
    converted = DenoisingAutoencoder(config).to(next(model.parameters()).device)
    old_modules = dict(model.named_modules())
    generator = torch.Generator().manual_seed(seed)
    fitted: set[str] = set()
    for name, new in converted.named_modules():
        old = old_modules.get(name)
        if isinstance(old, nn.ConvTranspose2d) and isinstance(new, nn.Sequential):
            _fit_resize_convolution(old, new, generator)
            fitted.update(f"{name}.{key}" for key in new.state_dict())
    new_state = converted.state_dict()
    old_state = model.state_dict()
    for name, tensor in new_state.items():
        if name not in fitted:
            if name not in old_state or old_state[name].shape != tensor.shape:
                raise RuntimeError(f"cannot convert {name}: it has no counterpart of the same shape in the parent")
            tensor.copy_(old_state[name])
    converted.load_state_dict(new_state)
    converted.train(model.training)
    return converted


def _fit_resize_convolution(transposed: nn.ConvTranspose2d, resize: nn.Sequential, generator: torch.Generator,
                            side: int = 16, samples: int = 24) -> None:
    """Least-squares fit of ``resize`` (upsample, convolution)'s weights to ``transposed``'s output on
    white-noise feature maps (the new response is linear in the new weights)."""
    upsample, convolution = resize
    reference = copy.deepcopy(transposed).cpu().double()
    inputs = torch.randn(samples, transposed.in_channels, side, side, generator=generator, dtype=torch.float64)
    target = reference(inputs)
    kernel, padding = convolution.kernel_size[0], convolution.padding[0]
    patches = torch.nn.functional.unfold(upsample(inputs), kernel, padding=padding)  # (n, c*k*k, h*w)
    height, width = target.shape[2:]
    interior = torch.zeros(height, width, dtype=torch.bool)
    interior[kernel:height - kernel, kernel:width - kernel] = True  # the two forms pad the border differently
    design = patches.transpose(1, 2)[:, interior.flatten()].reshape(-1, patches.shape[1])
    outputs = target.flatten(2).transpose(1, 2)[:, interior.flatten()].reshape(-1, target.shape[1])
    if convolution.bias is not None:
        design = torch.cat([design, torch.ones(len(design), 1, dtype=design.dtype)], dim=1)
    solution = torch.linalg.lstsq(design, outputs).solution  # (c*k*k [+ 1], out)
    weight = solution[: patches.shape[1]].T.reshape(convolution.weight.shape)
    convolution.weight.copy_(weight.to(convolution.weight))
    if convolution.bias is not None:
        convolution.bias.copy_(solution[-1].to(convolution.bias))


def input_convolutions(model: DenoisingAutoencoder) -> list[nn.Module]:
    """The convolutions that read the network input (the first block's main path and shortcut):
    where :func:`widen_input_channels` adds the weights of new input channels."""
    first_block = model.encoder.levels[0][0]
    return [module for module in (first_block.conv1, first_block.shortcut) if module is not None]


def frozen_modules(model: DenoisingAutoencoder, freeze: str) -> list[nn.Module]:
    """The modules that ``freeze`` (``"none"`` or ``"encoder"``) keeps fixed during fine-tuning."""
    if freeze == "none":
        return []
    if freeze == "encoder":
        return [model.encoder]
    raise ValueError(f"freeze={freeze!r} is not valid; choose 'none' or 'encoder'")


def record_parent(model: DenoisingAutoencoder, source: str | os.PathLike) -> None:
    """Prepend the model's current identity to its ``lineage`` (call right after loading the parent)."""
    config = model.config
    summary = config.training_summary or {}
    parent = {"model": str(source), "task": config.task, "images_seen": int(config.images_seen),
              "description": summary.get("description", "")}
    config.lineage = [parent, *(config.lineage or [])]


def finetune_config(
    parent: str | os.PathLike,
    task: str,
    data: str,
    output_dir: str,
    learning_rate: float = DEFAULT_FINETUNE_LEARNING_RATE,
    freeze: str = "none",
    max_images: int = 20_000,
    mask_channel: bool | None = None,
    task_options: dict[str, Any] | None = None,
    overrides: dict[str, Any] | None = None,
):
    """The :class:`~hfdae.recipe.TrainingConfig` of a fine-tuning run.

    Args:
        parent: the model to start from: a folder, zoo name, ``"default"`` or Hub id.
        task: ``"inpaint"``, ``"deblur"`` or ``"denoise"``.
        data: training images (folder, parquet, Hub dataset id); the ``train`` hash split is used
            and validation runs on its ``validation`` split with the task's protocol.
        output_dir: the run folder.
        learning_rate: the constant learning rate (small: the model is already trained).
        freeze: ``"none"`` or ``"encoder"`` (with the mask channel, the first block's input convolutions
            stay trainable: they hold the mask's weights).
        max_images: training images to see.
        mask_channel: give the model the mask as an input channel (default: True for ``inpaint``).
        task_options: see :func:`task_degradation`.
        overrides: further training-config fields, dotted (``{"batch_size": 8, "data.crop_size": 96}``).
    """
    from .recipe import apply_overrides, training_config_from_dict

    if task not in FINETUNE_TASKS:
        raise ValueError(f"task={task!r} is not valid; choose one of {list(FINETUNE_TASKS)}")
    if learning_rate <= 0:
        raise ValueError(f"learning_rate must be positive, got {learning_rate}")
    mask_channel = task == "inpaint" if mask_channel is None else mask_channel
    if mask_channel and task != "inpaint":
        raise ValueError(f"mask_channel is for the inpaint task, not {task!r}")
    values = {
        "output_dir": output_dir,
        "description": f"fine-tuned from {parent} for {task}",
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


def finetune(parent, task: str, data: str, output_dir: str, resume: bool = False, overwrite: bool = False,
             **options: Any):
    """Fine-tune ``parent`` for ``task`` (see :func:`finetune_config` for the options); returns the
    :class:`~hfdae.training.TrainingResult` (``final`` and ``best`` model folders in ``output_dir``)."""
    from .training import train

    return train(finetune_config(parent, task, data, output_dir, **options), resume=resume, overwrite=overwrite)
