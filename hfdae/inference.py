"""Loading models by name, folder or Hub id, and restoring images, tensors and files with them.

>>> import hfdae
>>> model = hfdae.load_model()                       # the embedded default, no download
>>> restored = hfdae.restore(model, noisy_tensor)    # [B, C, H, W] in [0, 1] -> same
>>> hfdae.denoise_files(model, ["photo.jpg"], "out/")
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .fusion import prepare_for_inference
from .modeling_hfdae import DenoisingAutoencoder, noise_level_map
from .runs import DEFAULT_MODEL, resolve_model_source
from .zoo import EMBEDDED_MODEL_DIR
from .processing import (
    ImageLike,
    ImageReadError,
    ImageWriteError,
    list_image_files,
    read_image,
    save_image,
    to_tensor,
    unwritable_reason,
)

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_MODEL_DIR",
    "UntrainedModelWarning",
    "load_model",
    "is_trained",
    "restore",
    "estimate_noise_level",
    "PRECISIONS",
    "CPU_BF16_ENVIRONMENT_VARIABLE",
    "has_native_bf16",
    "inference_precision",
    "inference_autocast",
    "TILE_THRESHOLD_PIXELS",
    "denoise_image",
    "denoise_files",
    "DenoiseReport",
]

logger = logging.getLogger(__name__)

# The embedded default checkpoint ships inside the package (installed as package data).
DEFAULT_MODEL_DIR = EMBEDDED_MODEL_DIR


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
        name_or_path: a model source (:func:`hfdae.runs.resolve_model_source`): ``None`` or ``"default"`` for
            the embedded default; a zoo name (``"colour"``, ``"skip"`` ...; see :func:`hfdae.list_zoo`); a
            folder made by ``save_pretrained``; a training run folder (its ``best/`` model); or a Hugging Face
            Hub repo id (``"org/name"``).
        device: where to put the model.
        dtype: optional weight dtype (float32 by default).
        **from_pretrained_kwargs: passed to :meth:`DenoisingAutoencoder.from_pretrained`
            (``revision``, ``cache_dir``, ``local_files_only`` ...).

    Loading is strict: mismatched or corrupt checkpoints raise instead of giving random weights. A zoo model
    that is not on this machine (and not published) raises :class:`hfdae.zoo.ZooModelUnavailableError` at
    once, saying how to get it.
    """
    model = resolve_model_source(name_or_path).load(**from_pretrained_kwargs)
    if not is_trained(model):
        warnings.warn(
            f"the model {name_or_path or DEFAULT_MODEL!r} is UNTRAINED (random weights): its output is not a"
            " restoration. Train one with `hfdae train` or load a trained checkpoint.",
            UntrainedModelWarning,
            stacklevel=2,
        )
    model = model.to(device=device, dtype=dtype) if dtype is not None else model.to(device)
    return model.eval()


# --- precision --------------------------------------------------------------------------------------------

PRECISIONS = ("auto", "fp32", "bf16")
# "0" or "1" overrides what the CPU reports (tests run both ways; a user can too). Unset: /proc/cpuinfo decides.
CPU_BF16_ENVIRONMENT_VARIABLE = "HFDAE_CPU_BF16"
_CPU_INFO = Path("/proc/cpuinfo")


def _cpu_has_native_bf16() -> bool:
    forced = os.environ.get(CPU_BF16_ENVIRONMENT_VARIABLE, "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    if forced:
        raise ValueError(f"{CPU_BF16_ENVIRONMENT_VARIABLE}={forced!r}: use 0 (no native bf16), 1 (native bf16) or unset it")
    try:
        flags = _CPU_INFO.read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def has_native_bf16(device: torch.device | str = "cpu") -> bool:
    """Whether ``device`` computes bf16 natively: a CUDA GPU that supports it, or a CPU with AVX512-BF16 or AMX
    instructions (elsewhere emulated bf16 convolutions run about 3x slower than fp32)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return _cpu_has_native_bf16()


def inference_precision(precision: str, device: torch.device) -> str:
    """``"fp32"`` or ``"bf16"``: ``"auto"`` picks bf16 where it is native (:func:`has_native_bf16`), fp32 elsewhere."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r} is invalid; expected 'auto', 'fp32' or 'bf16'")
    if precision != "auto":
        return precision
    return "bf16" if has_native_bf16(device) else "fp32"


def inference_autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The autocast context for a resolved precision (a no-op for fp32)."""
    if precision == "bf16":
        return torch.autocast(device.type, torch.bfloat16)
    return contextlib.nullcontext()


def _model_device_dtype(model: torch.nn.Module) -> tuple[torch.device, torch.dtype]:
    parameter = next(model.parameters())
    return parameter.device, parameter.dtype


# Above this many pixels an image is restored in overlapping tiles, so memory stays bounded.
TILE_THRESHOLD_PIXELS = 2048 * 2048
DEFAULT_TILE_SIZE = 512
DEFAULT_TILE_OVERLAP = 64


@torch.inference_mode()
def restore(
    model: DenoisingAutoencoder,
    images: torch.Tensor,
    batch_size: int = 8,
    tile_size: int | None | str = "auto",
    tile_overlap: int = DEFAULT_TILE_OVERLAP,
    self_ensemble: bool = False,
    fast: bool = True,
    precision: str = "auto",
    extra_inputs: torch.Tensor | None = None,
    noise_level: float | str | torch.Tensor | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """Restore a batch of degraded images with ``model`` (in eval mode).

    Args:
        model: a :class:`DenoisingAutoencoder`.
        images: [B, C, H, W] or [C, H, W] float in [0, 1]; gray images given to a colour model (and
            colour to a gray model) are converted.
        batch_size: images per forward pass (without tiling).
        tile_size: restore in overlapping ``tile_size`` x ``tile_size`` tiles blended with linear
            ramps (bounded memory for large images); ``"auto"`` tiles images above
            ``TILE_THRESHOLD_PIXELS`` with ``DEFAULT_TILE_SIZE``; None never tiles.
        tile_overlap: pixels shared by neighbouring tiles.
        self_ensemble: average the restorations of the 8 flips and rotations of the input (x8 cost).
        fast: restore with an inference copy of the model (batch norm folded into the convolutions,
            channels_last; :func:`hfdae.prepare_for_inference`); same output up to float rounding.
        precision: ``"fp32"``, ``"bf16"`` (autocast) or ``"auto"``: bf16 only where it is native
            (CUDA, CPUs with AVX512-BF16 or AMX); see :func:`inference_precision`.
        extra_inputs: [B, E, H, W] or [E, H, W] for models with ``extra_input_channels = E`` (an
            inpainting mask, 1 in the holes); tiled and transformed together with the images. Such
            models get zeros (nothing masked) when it is None.
        noise_level: the strength control of models with ``noise_level_input``: ``None`` restores blind
            (the model judges the noise itself); a float is sigma in the [0, 1] scale (25/255 for
            sigma 25); ``"auto"`` estimates sigma per image (:func:`estimate_noise_level`); a [B]
            tensor gives one sigma per image and a [B, 1, H, W] map one per pixel. A larger sigma
            smooths more. Refused (``ValueError``) by models without the input, except ``None``.
        progress: called as ``progress(done, total)`` after each forward pass: per tile when tiling
            (``total`` tiles over the batch), else per batch of ``batch_size`` images.

    Returns:
        Restored images, same shape as ``images``, clamped to [0, 1], float32 on the input's device.
    """
    single = images.ndim == 3
    batch = images.unsqueeze(0) if single else images
    device, dtype = _model_device_dtype(model)
    given_channels = batch.shape[1]
    network_input = to_tensor(batch, model.config.image_channels)
    image_channels = network_input.shape[1]
    expected_extra = model.config.extra_input_channels
    if extra_inputs is not None and not expected_extra:
        raise ValueError(f"this model takes no extra inputs; got extra_inputs {tuple(extra_inputs.shape)}")
    if expected_extra:  # carried as extra channels, so batching, tiling and flips treat them alike
        if extra_inputs is None:  # nothing masked
            extra = torch.zeros_like(network_input[:, :1]).expand(-1, expected_extra, -1, -1)
        else:
            extra = extra_inputs.unsqueeze(0) if extra_inputs.ndim == 3 else extra_inputs
        if extra.shape[0] != network_input.shape[0] or extra.shape[1] != expected_extra \
                or extra.shape[-2:] != network_input.shape[-2:]:
            raise ValueError(f"extra_inputs {tuple(extra.shape)} do not match images {tuple(batch.shape)} and the"
                             f" model's extra_input_channels={expected_extra}")
        network_input = torch.cat([network_input, extra.to(network_input)], dim=1)
    if noise_level is not None and not model.config.noise_level_input:
        raise ValueError(
            f"noise_level={noise_level!r} given, but this model has no noise-level input (it restores blind);"
            " use a model with noise_level_input=True such as the zoo's 'colour', or leave noise_level out"
        )
    if model.config.noise_level_input:  # carried as the last channel: tiled and flipped with the images
        if isinstance(noise_level, str):
            if noise_level != "auto":
                raise ValueError(f"noise_level={noise_level!r}: give a float sigma in [0, 1], a tensor, None or 'auto'")
            noise_level = estimate_noise_level(network_input[:, :image_channels])
        level = noise_level_map(noise_level.unsqueeze(1) if torch.is_tensor(noise_level) and noise_level.ndim == 3
                                else noise_level, network_input)
        network_input = torch.cat([network_input, level], dim=1)
    height, width = network_input.shape[-2:]
    if tile_size == "auto":
        tile_size = DEFAULT_TILE_SIZE if height * width > TILE_THRESHOLD_PIXELS else None
    if tile_size is not None and tile_overlap >= tile_size:
        raise ValueError(f"tile_overlap={tile_overlap} must be smaller than tile_size={tile_size}")

    network = prepare_for_inference(model) if fast else model
    memory_format = torch.channels_last if fast else torch.contiguous_format
    autocast = inference_autocast(inference_precision(precision, device), device)

    def forward(chunk: torch.Tensor) -> torch.Tensor:
        chunk = chunk.to(device=device, dtype=dtype).contiguous(memory_format=memory_format)
        with autocast:
            if self_ensemble:
                return _self_ensemble(network, chunk, image_channels)
            return _run(network, chunk, image_channels)

    was_training = model.training
    model.eval()
    outputs = []
    try:
        if tile_size is None:
            starts = range(0, network_input.shape[0], batch_size)
            for done, start in enumerate(starts, 1):
                outputs.append(forward(network_input[start : start + batch_size]).clamp(0, 1).to(images.device))
                if progress is not None:
                    progress(done, len(starts))
        else:
            counter = _ProgressCounter(progress, network_input.shape[0] * _tile_count(height, width, tile_size, tile_overlap))
            for image in network_input.split(1):
                outputs.append(_restore_tiled(forward, image, tile_size, tile_overlap, image_channels, counter.step)
                               .clamp(0, 1).to(images.device))
    finally:
        model.train(was_training)
    restored = to_tensor(torch.cat(outputs), given_channels)
    return restored[0] if single else restored


def _run(model: DenoisingAutoencoder, chunk: torch.Tensor, image_channels: int) -> torch.Tensor:
    """The model on [B, image_channels + extra (+ 1), H, W]: images first, then any extra input channels,
    then the noise-level map of models with that input."""
    config = model.config
    extra_end = image_channels + config.extra_input_channels
    extra = chunk[:, image_channels:extra_end] if config.extra_input_channels else None
    level = chunk[:, extra_end : extra_end + 1] if config.noise_level_input else None
    return model(pixel_values=chunk[:, :image_channels], extra_inputs=extra, noise_level=level).reconstruction.float()


# The wavelet estimator reads image texture as noise (a floor of about 4.8 on clean photos), so it
# overestimates light noise: 6.8 at sigma 5, 25.6 at 25, unbiased at 50. The correction
# sqrt(scale * estimate^2 - floor^2) was fitted by least squares on 120 images of CBSD432's train split
# at sigma 0-50 (never a test set): python benchmarks/noise_estimate.py --calibrate --data ../shared/data/train/CBSD432
NOISE_ESTIMATE_TEXTURE_FLOOR = 4.77 / 255
NOISE_ESTIMATE_SCALE = 0.992


def estimate_noise_level(images: torch.Tensor, calibrated: bool = False) -> torch.Tensor:
    """Estimate the Gaussian noise sigma of each image ([B, C, H, W] in [0, 1]) -> [B] in the [0, 1] scale.

    scikit-image's wavelet-based ``restoration.estimate_sigma`` (Donoho's robust median estimator on the
    finest diagonal wavelet band), averaged over the channels.

    Args:
        images: noisy images [B, C, H, W] in [0, 1] (not clipped is best: clipping hides noise).
        calibrated: subtract the texture floor of BSDS-like photos (:data:`NOISE_ESTIMATE_TEXTURE_FLOOR`):
            closer to the true sigma on textured 481x321 photos (CBSD432: 4.7 at sigma 5 instead of 6.8),
            too low on smooth or downscaled images (3.0 instead of 5.7 on scikit-image's chelsea).
    """
    from skimage.restoration import estimate_sigma

    batch = images.detach().float().cpu().numpy()
    sigmas = torch.tensor([
        float(estimate_sigma(image, channel_axis=0, average_sigmas=True)) if image.shape[0] > 1
        else float(estimate_sigma(image[0]))
        for image in batch
    ], dtype=torch.float64)
    if calibrated:
        sigmas = (NOISE_ESTIMATE_SCALE * sigmas.square() - NOISE_ESTIMATE_TEXTURE_FLOOR**2).clamp(min=0).sqrt()
    return sigmas.float().to(images.device)


def _self_ensemble(model: DenoisingAutoencoder, images: torch.Tensor, image_channels: int) -> torch.Tensor:
    """Mean restoration over the 8 dihedral transforms (flips x 90-degree rotations), each undone."""
    total = None
    for flip in (False, True):
        flipped = images.flip(-1) if flip else images
        for turns in range(4):
            restored = _run(model, torch.rot90(flipped, turns, dims=(-2, -1)), image_channels)
            restored = torch.rot90(restored, -turns, dims=(-2, -1))
            restored = restored.flip(-1) if flip else restored
            total = restored if total is None else total + restored
    return total / 8


def _tile_starts(length: int, tile: int, stride: int) -> list[int]:
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile + 1, stride))
    if starts[-1] + tile < length:
        starts.append(length - tile)
    return starts


def _blend_ramp(length: int, overlap: int, fade_start: bool, fade_end: bool, device: torch.device) -> torch.Tensor:
    """Blending weights along one side of a tile: 1 inside; on sides shared with a neighbour, 0 for the
    outer quarter of the overlap (where zero padding makes the tile's output wrong) then a linear ramp
    to 1. Sides on the image border keep weight 1: no other tile covers them."""
    position = torch.arange(length, device=device, dtype=torch.float32)
    margin = overlap // 4
    ramp_length = max(1, overlap - 2 * margin)
    weights = torch.ones(length, device=device)
    if fade_start:
        weights = torch.minimum(weights, ((position - margin + 0.5) / ramp_length).clamp(0, 1))
    if fade_end:
        weights = torch.minimum(weights, ((length - 1 - position - margin + 0.5) / ramp_length).clamp(0, 1))
    return weights


class _ProgressCounter:
    """Counts forward passes and reports ``(done, total)`` to a callback (a no-op without one)."""

    def __init__(self, callback: Callable[[int, int], None] | None, total: int) -> None:
        self.callback, self.total, self.done = callback, total, 0

    def step(self) -> None:
        self.done += 1
        if self.callback is not None:
            self.callback(self.done, self.total)


def _tile_count(height: int, width: int, tile: int, overlap: int) -> int:
    """How many tiles :func:`_restore_tiled` runs on a ``height`` x ``width`` image."""
    if height <= tile and width <= tile:
        return 1
    stride = tile - overlap
    return len(_tile_starts(height, tile, stride)) * len(_tile_starts(width, tile, stride))


def _restore_tiled(forward, image: torch.Tensor, tile: int, overlap: int, output_channels: int,
                   on_tile: Callable[[], None] | None = None) -> torch.Tensor:
    """Restore one [1, C, H, W] image tile by tile, blending overlaps with linear ramps (see _blend_ramp);
    ``on_tile`` is called after each tile."""
    on_tile = on_tile or (lambda: None)
    height, width = image.shape[-2:]
    if height <= tile and width <= tile:
        restored = forward(image)
        on_tile()
        return restored
    stride = tile - overlap
    output = torch.zeros((1, output_channels, height, width), dtype=torch.float32, device=image.device)
    weight = torch.zeros((1, 1, height, width), dtype=torch.float32, device=image.device)
    rows, columns = _tile_starts(height, tile, stride), _tile_starts(width, tile, stride)
    for top in rows:
        for left in columns:
            patch = image[..., top : top + tile, left : left + tile]
            patch_height, patch_width = patch.shape[-2:]
            vertical = _blend_ramp(patch_height, overlap, top > 0, top + patch_height < height, image.device)
            horizontal = _blend_ramp(patch_width, overlap, left > 0, left + patch_width < width, image.device)
            window = vertical[:, None] * horizontal[None, :]
            output[..., top : top + patch_height, left : left + patch_width] += forward(patch).to(image.device) * window
            weight[..., top : top + patch_height, left : left + patch_width] += window
            on_tile()
    return output / weight


def denoise_image(model: DenoisingAutoencoder, image: ImageLike) -> torch.Tensor:
    """Restore one image (path, PIL image, array or tensor); returns a [C, H, W] tensor in [0, 1]."""
    return restore(model, to_tensor(image))[0]


@dataclass
class DenoiseReport:
    """What :func:`denoise_files` did.

    Args:
        written: the files written.
        failed: input -> why it could not be read (it was skipped; the rest went on).
        not_written: input -> why its restoration could not be written (the rest went on).
        noise_levels: with ``noise_level="auto"``: input -> the estimated sigma (0-255).
        lossy_inputs: the inputs stored with loss (JPEG, lossy WebP) restored by a model not trained on
            compressed noise (its task is not ``photo``): see :meth:`advice`.
    """

    written: list[Path] = field(default_factory=list)
    failed: dict[Path, str] = field(default_factory=dict)
    not_written: dict[Path, str] = field(default_factory=dict)
    noise_levels: dict[Path, float] = field(default_factory=dict)
    lossy_inputs: list[Path] = field(default_factory=list)

    def advice(self) -> list[str]:
        """What to do better, e.g. the photo model for JPEG photos; empty when there is nothing to say."""
        if not self.lossy_inputs:
            return []
        return [f"{len(self.lossy_inputs)} input(s) are JPEG (or lossy WebP) photos, such as {self.lossy_inputs[0]}:"
                " this model was not trained on noise that went through JPEG compression, which turns it into"
                " blotches it leaves in place; `--model photo` (the zoo's photo model) is trained for such files"]

    @property
    def exit_status(self) -> int:
        """0 when every restoration was written (unreadable inputs skipped), else 1: a write failed, or
        nothing could be read at all."""
        return 1 if self.not_written or (self.failed and not self.written) else 0

    def problems(self) -> list[str]:
        """One line per input that could not be read or whose restoration could not be written, then a
        count of each; empty when nothing went wrong."""
        lines = [f"could not read {reason}" if reason.startswith(str(path)) else f"could not read {path}: {reason}"
                 for path, reason in self.failed.items()]
        lines += [f"could not write the restoration of {path}: {reason}" for path, reason in self.not_written.items()]
        if self.failed:
            lines.append(f"{len(self.failed)} input(s) skipped: not readable images")
        if self.not_written:
            lines.append(f"{len(self.not_written)} restoration(s) NOT written (see above); the others were")
        return lines


def denoise_files(
    model: DenoisingAutoencoder,
    inputs: list[str | os.PathLike] | str | os.PathLike,
    output: str | os.PathLike,
    suffix: str | None = None,
    progress: bool = True,
    noise_level: float | str | None = None,
) -> DenoiseReport:
    """Restore image files and folders, writing results under ``output`` with the same relative names.

    Each output keeps its input's size, channel count, alpha, bit depth (16-bit PNG and TIFF stay
    16-bit), EXIF (orientation) and ICC profile, and lossless-ness; see :func:`hfdae.processing.save_image`.
    Nothing is lost:

    - an output that would replace any of the inputs (the same file, a link to it, or the same
      name) is refused before any work, naming the file (``ValueError``); so is an ``output`` that is
      an existing file when a folder is needed;
    - an unreadable input is reported by name (``report.failed``) and the rest are still processed;
    - an output that cannot be written (a folder in its place, no permission, a full disk) is
      reported by name (``report.not_written``) and the rest are still processed; the file that was
      there (if any) stays as it was, since outputs are written to a temporary file and renamed.

    Args:
        model: the model.
        inputs: files and/or folders (searched recursively for images).
        output: output folder (or a file name when there is exactly one input file).
        suffix: force an output format, for example ``".png"``; default keeps each input's.
        progress: show a tqdm progress bar.
        noise_level: the strength control of models with a noise-level input (see :func:`restore`):
            ``None`` (blind), a sigma in the [0, 1] scale, or ``"auto"`` (estimated per image and
            recorded in the report's ``noise_levels``, in 0-255 units).

    Returns:
        A :class:`DenoiseReport`; its ``exit_status`` is non-zero if a restoration was not written.
    """
    from tqdm.auto import tqdm

    input_list = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    pairs = _output_paths(input_list, Path(output), suffix)
    report = DenoiseReport()
    for source, destination in tqdm(pairs, desc="denoise", unit="image", disable=not progress):
        problem = unwritable_reason(destination)
        if problem:  # known before restoring: no work is wasted on it
            _note_not_written(report, source, f"{destination}: cannot write here ({problem})")
            continue
        try:
            record = read_image(source)
        except ImageReadError as error:
            report.failed[source] = str(error)
            logger.warning("skipping %s", error)
            continue
        if not record.lossless and model.config.task != "photo":
            report.lossy_inputs.append(source)
        pixels = to_tensor(record.pixels)
        level = noise_level
        if noise_level == "auto" and model.config.noise_level_input:
            level = float(estimate_noise_level(to_tensor(pixels, model.config.image_channels))[0])
            report.noise_levels[source] = level * 255
        restored = restore(model, pixels, noise_level=level)
        try:
            report.written.append(save_image(restored, destination, like=record))
        except ImageWriteError as error:
            _note_not_written(report, source, str(error))
    return report


def _note_not_written(report: DenoiseReport, source: Path, reason: str) -> None:
    report.not_written[source] = reason
    logger.warning("not written: %s", reason)


def _file_identity(path: Path) -> tuple[int, int] | Path:
    """What makes two paths the same file: (device, inode) for one that exists (so links and hard links
    match their target), else the resolved path."""
    try:
        status = os.stat(path)
        return status.st_dev, status.st_ino
    except OSError:
        return Path(os.path.realpath(path))  # realpath, unlike Path.resolve, does not raise on a link loop


def _output_paths(inputs: list[str | os.PathLike], output: Path, suffix: str | None) -> list[tuple[Path, Path]]:
    """(input, output) pairs, refused (``ValueError``, before any work) when an output would replace an input
    or two outputs collide, and when ``output`` is an existing file where a folder is needed."""
    single_file = len(inputs) == 1 and Path(inputs[0]).is_file()
    if single_file and output.suffix and not output.is_dir():
        pairs = [(Path(inputs[0]), output)]
    else:
        if output.exists() and not output.is_dir():
            raise ValueError(f"{output} is an existing file, but the output of "
                             f"{'a folder' if not single_file else 'an image without a file suffix'} is a folder:"
                             " choose a folder (or, for one image, a file name with an image suffix)")
        pairs = []
        for entry in map(Path, inputs):
            files = list_image_files(entry)
            base = entry if entry.is_dir() else entry.parent
            for file in files:
                destination = output / file.relative_to(base)
                pairs.append((file, destination.with_suffix(suffix) if suffix else destination))
    inputs_by_identity = {_file_identity(source): source for source, _ in pairs}
    for _, destination in pairs:
        replaced = inputs_by_identity.get(_file_identity(destination))
        if replaced is not None:
            raise ValueError(f"{destination} would be written over the input {replaced}: choose an output "
                             f"{'file' if len(pairs) == 1 and single_file else 'folder'} other than the input's;"
                             " nothing was restored")
    destinations = [Path(os.path.realpath(destination)) for _, destination in pairs]
    if len(set(destinations)) != len(destinations):
        duplicate = next(d for d in destinations if destinations.count(d) > 1)
        raise ValueError(f"two inputs would both be written to {duplicate}; restore them into separate folders")
    return pairs
