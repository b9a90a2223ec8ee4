"""Loading models by name, folder or Hub id, and restoring images, tensors and files with them.

>>> import hfdae
>>> model = hfdae.load_model()                       # the embedded default, no download
>>> restored = hfdae.restore(model, noisy_tensor)    # [B, C, H, W] in [0, 1] -> same
>>> hfdae.denoise_files(model, ["photo.jpg"], "out/")
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .configuration_hfdae import DenoisingAutoencoderConfig
from .modeling_hfdae import DenoisingAutoencoder
from .processing import ImageLike, ImageReadError, list_image_files, read_image, save_image, to_tensor

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_MODEL_DIR",
    "UntrainedModelWarning",
    "load_model",
    "is_trained",
    "restore",
    "denoise_image",
    "denoise_files",
    "DenoiseReport",
]

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "default"
# The embedded default checkpoint ships inside the package (installed as package data).
DEFAULT_MODEL_DIR = Path(__file__).parent / "default_model"
# Until a trained default is committed, the default is the `skip` preset with these random weights.
UNTRAINED_DEFAULT_PRESET = "skip"
UNTRAINED_DEFAULT_SEED = 0


class UntrainedModelWarning(UserWarning):
    """The model has random weights: its restorations are meaningless."""


def is_trained(model: DenoisingAutoencoder) -> bool:
    """Whether the model's config records any training (``images_seen > 0``)."""
    return model.config.images_seen > 0


def load_model(
    name_or_path: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    **from_pretrained_kwargs,
) -> DenoisingAutoencoder:
    """Load a model in eval mode.

    Args:
        name_or_path: ``None`` or ``"default"`` for the embedded default; a local folder made by
            ``save_pretrained``; or a Hugging Face Hub repo id (``"org/name"``).
        device: where to put the model.
        dtype: optional weight dtype (float32 by default).
        **from_pretrained_kwargs: passed to :meth:`DenoisingAutoencoder.from_pretrained`
            (``revision``, ``cache_dir``, ``local_files_only`` ...).

    Loading is strict: mismatched or corrupt checkpoints raise instead of giving random weights.
    """
    if name_or_path is None or str(name_or_path) == DEFAULT_MODEL:
        if (DEFAULT_MODEL_DIR / "model.safetensors").is_file():
            model = DenoisingAutoencoder.from_pretrained(DEFAULT_MODEL_DIR, **from_pretrained_kwargs)
        else:
            model = _untrained_default()
    else:
        source = Path(name_or_path)
        if source.exists() and not source.is_dir():
            raise ValueError(f"{source}: a model is a folder with config.json and model.safetensors, not a file")
        if source.is_dir() and not (source / "config.json").is_file():
            raise FileNotFoundError(f"{source}: no config.json here; is this a folder made by save_pretrained?")
        model = DenoisingAutoencoder.from_pretrained(str(name_or_path), **from_pretrained_kwargs)
    if not is_trained(model):
        warnings.warn(
            f"the model {name_or_path or DEFAULT_MODEL!r} is UNTRAINED (random weights): its output is not a"
            " restoration. Train one with `hfdae train` or load a trained checkpoint.",
            UntrainedModelWarning,
            stacklevel=2,
        )
    model = model.to(device=device, dtype=dtype) if dtype is not None else model.to(device)
    return model.eval()


def _untrained_default() -> DenoisingAutoencoder:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(UNTRAINED_DEFAULT_SEED)
        model = DenoisingAutoencoder(DenoisingAutoencoderConfig.from_preset(UNTRAINED_DEFAULT_PRESET))
    return model


def _model_device_dtype(model: torch.nn.Module) -> tuple[torch.device, torch.dtype]:
    parameter = next(model.parameters())
    return parameter.device, parameter.dtype


@torch.inference_mode()
def restore(model: DenoisingAutoencoder, images: torch.Tensor, batch_size: int = 8) -> torch.Tensor:
    """Restore a batch of degraded images with ``model`` (in eval mode).

    Args:
        model: a :class:`DenoisingAutoencoder`.
        images: [B, C, H, W] or [C, H, W] float in [0, 1]; gray images given to a colour model (and
            colour to a gray model) are converted.
        batch_size: images per forward pass.

    Returns:
        Restored images, same shape as ``images``, clamped to [0, 1], float32 on the input's device.
    """
    single = images.ndim == 3
    batch = images.unsqueeze(0) if single else images
    device, dtype = _model_device_dtype(model)
    wanted_channels = model.config.image_channels
    given_channels = batch.shape[1]
    network_input = to_tensor(batch, wanted_channels)
    was_training = model.training
    model.eval()
    outputs = []
    for start in range(0, network_input.shape[0], batch_size):
        chunk = network_input[start : start + batch_size].to(device=device, dtype=dtype)
        outputs.append(model(pixel_values=chunk).reconstruction.float().clamp(0, 1).to(images.device))
    model.train(was_training)
    restored = to_tensor(torch.cat(outputs), given_channels)
    return restored[0] if single else restored


def denoise_image(model: DenoisingAutoencoder, image: ImageLike) -> torch.Tensor:
    """Restore one image (path, PIL image, array or tensor); returns a [C, H, W] tensor in [0, 1]."""
    return restore(model, to_tensor(image))[0]


@dataclass
class DenoiseReport:
    """What :func:`denoise_files` did: the files written and the inputs it could not read."""

    written: list[Path] = field(default_factory=list)
    failed: dict[Path, str] = field(default_factory=dict)


def denoise_files(
    model: DenoisingAutoencoder,
    inputs: list[str | os.PathLike] | str | os.PathLike,
    output: str | os.PathLike,
    suffix: str | None = None,
    progress: bool = True,
) -> DenoiseReport:
    """Restore image files and folders, writing results under ``output`` with the same relative names.

    Each output keeps its input's size, channel count, alpha and bit depth. Unreadable inputs are
    reported by name (in the returned report and the log) and the rest are still processed.

    Args:
        model: the model.
        inputs: files and/or folders (searched recursively for images).
        output: output folder (or a file name when there is exactly one input file).
        suffix: force an output format, for example ``".png"``; default keeps each input's.
        progress: show a tqdm progress bar.
    """
    from tqdm.auto import tqdm

    input_list = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    pairs = _output_paths(input_list, Path(output), suffix)
    report = DenoiseReport()
    for source, destination in tqdm(pairs, desc="denoise", unit="image", disable=not progress):
        try:
            record = read_image(source)
        except ImageReadError as error:
            report.failed[source] = str(error)
            logger.warning("skipping %s", error)
            continue
        restored = restore(model, to_tensor(record.pixels))
        report.written.append(save_image(restored, destination, like=record))
    return report


def _output_paths(inputs: list[str | os.PathLike], output: Path, suffix: str | None) -> list[tuple[Path, Path]]:
    single_file = len(inputs) == 1 and Path(inputs[0]).is_file()
    if single_file and output.suffix and not output.is_dir():
        return [(Path(inputs[0]), output)]
    pairs = []
    for entry in map(Path, inputs):
        files = list_image_files(entry)
        base = entry if entry.is_dir() else entry.parent
        for file in files:
            relative = file.relative_to(base)
            destination = output / relative
            if suffix:
                destination = destination.with_suffix(suffix)
            pairs.append((file, destination))
    return pairs
