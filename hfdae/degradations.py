"""Batched image degradations for training and evaluating denoising autoencoders.

The chapter's autoencoders (section 18.4.4, "Example Results") are trained on inputs damaged by
"additive Gaussian noise of randomly chosen magnitude; salt and pepper noise of fixed magnitude;
gaussian blurring with a blur kernel of random sigma < 3; and knockout, where randomly chosen blocks
of pixels of randomly chosen size up to 9x9 are set to zero". This module implements those four
(:class:`GaussianNoise`, :class:`SaltPepper`, :class:`GaussianBlur`, :class:`Knockout`), the clean
input (:class:`Identity`), larger holes for inpainting fine-tuning (:class:`InpaintMask`), the
degradations of real photos (:class:`PoissonGaussianNoise`, signal-dependent sensor noise, and
:class:`JPEGCompression`, Pillow's codec with chroma subsampling), and two combinators
(:class:`RandomChoice`, :class:`Chain`, e.g. noise then JPEG).

Conventions:
    - Images are float tensors ``[B, C, H, W]`` with values in ``[0, 1]``, on any device, in float32,
      float16 or bfloat16. Every degradation is batched, runs on the images' device and keeps their dtype.
    - Random draws use the ``generator`` passed to ``__call__`` (torch's global RNG when ``None``). They
      are made on the generator's device (the images' device without one) in float32, per-image
      parameters first, then pixel-level randomness, so the same seed gives the same result on a device,
      and float32 and bfloat16 inputs get the same parameters and masks.
    - Every degradation has a ``name`` in the registry :data:`DEGRADATIONS` and a ``to_spec()``;
      :func:`build_degradation` builds one from a name, a spec dict, a list (random choice) or ``"chapter"``.

Example:
    >>> degradation = build_degradation("chapter")
    >>> batch = degradation(torch.rand(4, 3, 64, 64), generator=torch.Generator().manual_seed(0))
    >>> batch.images.shape, batch.params["choice"].shape
    (torch.Size([4, 3, 64, 64]), torch.Size([4]))
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import kornia.filters
import torch
from torch import Tensor

__all__ = [
    "CHAPTER_DEGRADATIONS",
    "DEGRADATIONS",
    "Chain",
    "DegradedBatch",
    "Degradation",
    "GaussianBlur",
    "GaussianNoise",
    "Identity",
    "InpaintMask",
    "JPEGCompression",
    "JPEG_SUBSAMPLING",
    "Knockout",
    "PoissonGaussianNoise",
    "RandomChoice",
    "SaltPepper",
    "gaussian_sigma",
    "build_degradation",
    "list_degradations",
]

CHAPTER_DEGRADATIONS: tuple[str, ...] = ("gaussian", "salt_pepper", "blur", "knockout")

# A blur sigma of exactly 0 is not a Gaussian; 1e-3 puts all kernel weight on the centre tap.
_MIN_BLUR_SIGMA = 1e-3
# Each free-form stroke segment spans this fraction of the shorter image side (uniform range).
_STROKE_STEP_FRACTION = (0.05, 0.25)


@dataclass
class DegradedBatch:
    """The output of a degradation.

    Args:
        images: The degraded images ``[B, C, H, W]``, same dtype and device as the input.
        params: The per-image parameters that were drawn, each of shape ``[B]`` (float32 or int64) on the
            images' device, e.g. ``{"sigma": ...}`` for :class:`GaussianNoise`.
        mask: ``[B, 1, H, W]`` bool, True where pixels were destroyed (salt and pepper, knockout, inpainting
            holes); None for degradations that do not destroy pixels.
    """

    images: Tensor
    params: dict[str, Tensor]
    mask: Tensor | None = None


# --------------------------------------------------------------------------------------------------
# Validation and random-draw helpers
# --------------------------------------------------------------------------------------------------


def _as_float(
    owner: str, name: str, value: Any, minimum: float | None = None, maximum: float | None = None
) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{owner}: {name} must be a finite number, got {name}={value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{owner}: {name} must be >= {minimum}, got {name}={value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{owner}: {name} must be <= {maximum}, got {name}={value!r}")
    return float(value)


def _as_int(owner: str, name: str, value: Any, minimum: int | None = None) -> int:
    # YAML and JSON configs may hand over 9.0 for 9.
    is_integral_float = isinstance(value, float) and value.is_integer()
    if isinstance(value, bool) or not (isinstance(value, int) or is_integral_float):
        raise ValueError(f"{owner}: {name} must be an integer, got {name}={value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{owner}: {name} must be >= {minimum}, got {name}={value!r}")
    return int(value)


def _check_ordered(owner: str, low_name: str, low: float, high_name: str, high: float) -> None:
    if low > high:
        raise ValueError(
            f"{owner}: {low_name} must be <= {high_name}, got {low_name}={low!r}, {high_name}={high!r}"
        )


def _check_images(images: Any) -> None:
    if not isinstance(images, Tensor):
        raise TypeError(f"images must be a torch.Tensor, got {type(images).__name__}")
    if images.ndim != 4 or not images.is_floating_point():
        raise ValueError(
            f"images must be a float tensor [B, C, H, W], got shape {tuple(images.shape)} and dtype {images.dtype}"
        )


def _draw_device(images: Tensor, generator: torch.Generator | None) -> torch.device:
    return generator.device if generator is not None else images.device


def _uniform(
    shape: Sequence[int], generator: torch.Generator | None, device: torch.device
) -> Tensor:
    return torch.rand(tuple(shape), generator=generator, device=device, dtype=torch.float32)


def _uniform_integers(uniform: Tensor, low: Tensor | int, high: Tensor | int) -> Tensor:
    """Map uniform [0, 1) draws to integers uniform in [low, high] (inclusive)."""
    # float32 rounding can turn u * n into n for u just below 1, hence the clamp.
    integers = torch.floor(low + uniform * (high - low + 1)).clamp(max=high)
    return integers.long()


def _boxes_to_mask(
    top: Tensor, left: Tensor, height: Tensor, width: Tensor, active: Tensor, size: tuple[int, int]
) -> Tensor:
    """Rasterise ``[B, K]`` boxes into a ``[B, 1, H, W]`` bool mask.

    Rows and columns are tested separately ([B, K, H] and [B, K, W]) and combined by a batched matmul that
    counts the boxes covering each pixel, so memory stays O(B * K * (H + W)) rather than O(B * K * H * W).
    """
    image_height, image_width = size
    rows = torch.arange(image_height, device=top.device)
    columns = torch.arange(image_width, device=top.device)
    in_rows = (rows >= top[..., None]) & (rows < (top + height)[..., None]) & active[..., None]
    in_columns = (columns >= left[..., None]) & (columns < (left + width)[..., None])
    coverage = in_rows.float().transpose(1, 2) @ in_columns.float()
    return (coverage > 0.5).unsqueeze(1)


def _constructor_parameters(cls: type) -> list[str]:
    named_kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    parameters = inspect.signature(cls.__init__).parameters.values()
    return [parameter.name for parameter in parameters if parameter.kind in named_kinds and parameter.name != "self"]


def _plain(value: Any) -> Any:
    # Specs should survive JSON/YAML, which have lists but no tuples.
    return list(value) if isinstance(value, tuple) else value


# --------------------------------------------------------------------------------------------------
# Base class
# --------------------------------------------------------------------------------------------------


class Degradation:
    """Base class: a random, batched image degradation.

    Subclasses set ``name``, ``param_names`` (the keys of ``DegradedBatch.params``) and ``makes_mask``,
    store each constructor argument under its own name (which gives ``to_spec``, ``repr`` and equality
    for free) and implement ``_degrade``.
    """

    name: ClassVar[str]
    param_names: tuple[str, ...] = ()
    makes_mask: bool = False

    def __call__(self, images: Tensor, generator: torch.Generator | None = None) -> DegradedBatch:
        """Degrade a batch.

        Args:
            images: Float tensor ``[B, C, H, W]`` with values in ``[0, 1]``.
            generator: Source of all random draws; None uses torch's global RNG.

        Returns:
            A :class:`DegradedBatch` with the degraded images, the drawn per-image parameters and,
            for degradations that destroy pixels, the mask of destroyed pixels.
        """
        _check_images(images)
        return self._degrade(images, generator)

    def _degrade(self, images: Tensor, generator: torch.Generator | None) -> DegradedBatch:
        raise NotImplementedError

    def to_spec(self) -> dict[str, Any]:
        """Return ``{"name": ..., **constructor parameters}``; ``build_degradation`` rebuilds an equal one."""
        parameters = {name: _plain(getattr(self, name)) for name in _constructor_parameters(type(self))}
        return {"name": self.name, **parameters}

    def __repr__(self) -> str:
        spec = self.to_spec()
        del spec["name"]
        arguments = ", ".join(f"{key}={value!r}" for key, value in spec.items())
        return f"{type(self).__name__}({arguments})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Degradation):
            return NotImplemented
        return type(self) is type(other) and self.to_spec() == other.to_spec()

    def __hash__(self) -> int:
        return hash(repr(self))


# --------------------------------------------------------------------------------------------------
# Leaf degradations
# --------------------------------------------------------------------------------------------------


class Identity(Degradation):
    """The clean input (a copy, so callers may modify it in place). No parameters, no mask."""

    name = "identity"

    def _degrade(self, images: Tensor, generator: torch.Generator | None) -> DegradedBatch:
        return DegradedBatch(images=images.clone(), params={})


class GaussianNoise(Degradation):
    """Additive Gaussian noise of random (or fixed) standard deviation per image.

    Args:
        sigma_min: Smallest noise standard deviation, in image units ([0, 1] range).
        sigma_max: Largest noise standard deviation; per-image sigma ~ U(sigma_min, sigma_max).
        sigma: If given, every image gets exactly this sigma (fixed-sigma mode for benchmarks).
        clip: Clamp the noisy images to [0, 1]. Off by default, so the noise stays zero-mean Gaussian.

    Params: ``{"sigma": [B]}``.
    """

    name = "gaussian"
    param_names = ("sigma",)

    def __init__(
        self, sigma_min: float = 0.0, sigma_max: float = 50 / 255, sigma: float | None = None, clip: bool = False
    ) -> None:
        owner = type(self).__name__
        self.sigma_min = _as_float(owner, "sigma_min", sigma_min, minimum=0.0)
        self.sigma_max = _as_float(owner, "sigma_max", sigma_max, minimum=0.0)
        _check_ordered(owner, "sigma_min", self.sigma_min, "sigma_max", self.sigma_max)
        self.sigma = None if sigma is None else _as_float(owner, "sigma", sigma, minimum=0.0)
        self.clip = bool(clip)

    def _degrade(self, images: Tensor, generator: torch.Generator | None) -> DegradedBatch:
        draw_device = _draw_device(images, generator)
        batch_size = images.shape[0]
        if self.sigma is None:
            sigma = self.sigma_min + (self.sigma_max - self.sigma_min) * _uniform([batch_size], generator, draw_device)
        else:
            sigma = torch.full((batch_size,), self.sigma, device=draw_device)
        noise = torch.randn(images.shape, generator=generator, device=draw_device, dtype=torch.float32)
        sigma, noise = sigma.to(images.device), noise.to(images.device)
        # Add in float32 and round once, so bfloat16 images do not lose small noise to rounding twice.
        noisy = images.float() + sigma.view(-1, 1, 1, 1) * noise
        if self.clip:
            noisy = noisy.clamp(0.0, 1.0)
        return DegradedBatch(images=noisy.to(images.dtype), params={"sigma": sigma})


class SaltPepper(Degradation):
    """Salt-and-pepper noise of fixed magnitude.

    Exactly ``round(fraction * H * W)`` pixel locations per image are hit, all channels together; each hit
    pixel becomes 1 (salt) with probability ``salt_ratio``, else 0 (pepper).

    Args:
        fraction: Fraction of pixel locations hit, in [0, 1].
        salt_ratio: Probability that a hit pixel is salt (1) rather than pepper (0), in [0, 1].

    Params: ``{"fraction": [B]}``, the realised fraction. Mask: the hit pixels.
    """

    name = "salt_pepper"
    param_names = ("fraction",)
    makes_mask = True

    def __init__(self, fraction: float = 0.05, salt_ratio: float = 0.5) -> None:
        owner = type(self).__name__
        self.fraction = _as_float(owner, "fraction", fraction, minimum=0.0, maximum=1.0)
        self.salt_ratio = _as_float(owner, "salt_ratio", salt_ratio, minimum=0.0, maximum=1.0)

    def _degrade(self, images: Tensor, generator: torch.Generator | None) -> DegradedBatch:
        draw_device = _draw_device(images, generator)
        batch_size, _, height, width = images.shape
        hit_count = round(self.fraction * height * width)
        # The hit_count lowest of H*W random scores pick the locations: an exact count, unlike Bernoulli draws.
        scores = _uniform([batch_size, height * width], generator, draw_device)
        salt = _uniform([batch_size, 1, height, width], generator, draw_device) < self.salt_ratio
        hit_indices = scores.topk(hit_count, dim=1, largest=False).indices
        hit = torch.zeros_like(scores, dtype=torch.bool).scatter_(1, hit_indices, True)
        mask = hit.view(batch_size, 1, height, width).to(images.device)
        salt = salt.to(images.device)
        degraded = torch.where(mask, salt.to(images.dtype), images)
        fraction = mask.float().mean(dim=(1, 2, 3))
        return DegradedBatch(images=degraded, params={"fraction": fraction}, mask=mask)


class GaussianBlur(Degradation):
    """Gaussian blur of random (or fixed) sigma per image, via ``kornia.filters.gaussian_blur2d``.

    Args:
        sigma_min: Smallest blur sigma in pixels; values below 1e-3 are raised to 1e-3 (a near-identity blur).
        sigma_max: Largest blur sigma; per-image sigma ~ U(sigma_min, sigma_max). The chapter uses sigma < 3.
        sigma: If given, every image gets exactly this sigma.
        kernel_size: Odd kernel side; default ``2 * ceil(3 * largest sigma) + 1``.

    Borders are reflected, or replicated when the image is too small to reflect the kernel radius.
    Params: ``{"sigma": [B]}``.
    """

    name = "blur"
    param_names = ("sigma",)

    def __init__(
        self,
        sigma_min: float = 0.0,
        sigma_max: float = 3.0,
        sigma: float | None = None,
        kernel_size: int | None = None,
    ) -> None:
        owner = type(self).__name__
        self.sigma_min = _as_float(owner, "sigma_min", sigma_min, minimum=0.0)
        self.sigma_max = _as_float(owner, "sigma_max", sigma_max, minimum=0.0)
        _check_ordered(owner, "sigma_min", self.sigma_min, "sigma_max", self.sigma_max)
        self.sigma = None if sigma is None else _as_float(owner, "sigma", sigma, minimum=0.0)
        if kernel_size is not None:
            kernel_size = _as_int(owner, "kernel_size", kernel_size, minimum=1)
            if kernel_size % 2 == 0:
                raise ValueError(f"{owner}: kernel_size must be odd, got kernel_size={kernel_size!r}")
        self.kernel_size = kernel_size

    @property
    def effective_kernel_size(self) -> int:
        """The kernel side actually used: ``kernel_size``, or odd ``2 * ceil(3 * largest sigma) + 1``."""
        if self.kernel_size is not None:
            return self.kernel_size
        largest_sigma = self.sigma if self.sigma is not None else self.sigma_max
        return 2 * math.ceil(3 * largest_sigma) + 1

    def _degrade(self, images: Tensor, generator: torch.Generator | None) -> DegradedBatch:
        draw_device = _draw_device(images, generator)
        batch_size, _, height, width = images.shape
        if self.sigma is None:
            sigma = self.sigma_min + (self.sigma_max - self.sigma_min) * _uniform([batch_size], generator, draw_device)
        else:
            sigma = torch.full((batch_size,), self.sigma, device=draw_device)
        sigma = sigma.clamp(min=_MIN_BLUR_SIGMA)
        kernel_size = self.effective_kernel_size
        # torch's reflect padding needs the padding to be smaller than the image side.
        border_type = "reflect" if kernel_size // 2 < min(height, width) else "replicate"
        # kornia moves the sigmas to the images' device itself, and checks them there without a GPU sync
        # when they were drawn on the CPU.
        blurred = kornia.filters.gaussian_blur2d(
            images, (kernel_size, kernel_size), torch.stack([sigma, sigma], dim=1), border_type=border_type
        )
        return DegradedBatch(images=blurred, params={"sigma": sigma.to(images.device)})


class Knockout(Degradation):
    """Knockout: random blocks of pixels set to exactly zero in all channels.

    Each image draws a block count uniform in [min_blocks, max_blocks], scaled by ``H * W / reference_area``
    (a larger image gets proportionally more blocks, never fewer than min_blocks). Each block has height and
    width uniform in [min_size, max_size] and lies fully or partly inside the image.

    Args:
        min_blocks: Fewest blocks per image (before and after scaling).
        max_blocks: Most blocks per image at ``reference_area``.
        min_size: Smallest block side in pixels.
        max_size: Largest block side in pixels (the chapter uses 9).
        reference_area: Image area (pixels) at which the block counts apply unscaled.

    Params: ``{"blocks": [B]}`` (int64). Mask: the knocked-out pixels.
    """

    name = "knockout"
    param_names = ("blocks",)
    makes_mask = True

    def __init__(
        self,
        min_blocks: int = 1,
        max_blocks: int = 30,
        min_size: int = 1,
        max_size: int = 9,
        reference_area: int = 128 * 128,
    ) -> None:
        owner = type(self).__name__
        self.min_blocks = _as_int(owner, "min_blocks", min_blocks, minimum=0)
        self.max_blocks = _as_int(owner, "max_blocks", max_blocks, minimum=0)
        _check_ordered(owner, "min_blocks", self.min_blocks, "max_blocks", self.max_blocks)
        self.min_size = _as_int(owner, "min_size", min_size, minimum=1)
        self.max_size = _as_int(owner, "max_size", max_size, minimum=1)
        _check_ordered(owner, "min_size", self.min_size, "max_size", self.max_size)
        self.reference_area = _as_int(owner, "reference_area", reference_area, minimum=1)

    def _degrade(self, images: Tensor, generator: torch.Generator | None) -> DegradedBatch:
        draw_device = _draw_device(images, generator)
        batch_size, _, height, width = images.shape
        area_scale = height * width / self.reference_area
        # A fixed upper bound on blocks (no data-dependent max) keeps the draws' shapes, and so the
        # random stream, independent of the counts, and avoids a GPU sync.
        padded_count = max(self.min_blocks, round(self.max_blocks * area_scale))

        unscaled = _uniform_integers(_uniform([batch_size], generator, draw_device), self.min_blocks, self.max_blocks)
        blocks = torch.round(unscaled * area_scale).long().clamp(self.min_blocks, padded_count)
        box_draws = _uniform([4, batch_size, padded_count], generator, draw_device)
        block_height = _uniform_integers(box_draws[0], self.min_size, self.max_size)
        block_width = _uniform_integers(box_draws[1], self.min_size, self.max_size)
        # Tops from -(h - 1) to H - 1: every block overlaps the image by at least one row.
        top = _uniform_integers(box_draws[2], 1 - block_height, height - 1)
        left = _uniform_integers(box_draws[3], 1 - block_width, width - 1)
        active = torch.arange(padded_count, device=draw_device) < blocks[:, None]

        boxes = [tensor.to(images.device) for tensor in (top, left, block_height, block_width, active)]
        mask = _boxes_to_mask(*boxes, size=(height, width))
        degraded = images.masked_fill(mask, 0.0)
        return DegradedBatch(images=degraded, params={"blocks": blocks.to(images.device)}, mask=mask)


class InpaintMask(Degradation):
    """Large holes (boxes and free-form strokes) for fine-tuning an inpainting model.

    Each image gets a number of boxes uniform in [0, max_boxes] and of strokes uniform in [0, max_strokes]
    (at least one hole in total). Box sides are a fraction, uniform in [min_box_fraction, max_box_fraction],
    of the image side. A stroke is a random-walk polyline with a vertex count uniform in ``stroke_vertices``
    and a thickness uniform in [min_stroke_width, max_stroke_width] pixels, drawn by distance to its segments.

    Args:
        max_boxes: Most boxes per image.
        min_box_fraction: Smallest box side as a fraction of the image side, in (0, 1].
        max_box_fraction: Largest box side as a fraction of the image side, in (0, 1].
        max_strokes: Most strokes per image.
        min_stroke_width: Thinnest stroke, in pixels.
        max_stroke_width: Thickest stroke, in pixels.
        stroke_vertices: (fewest, most) vertices per stroke, at least 2.
        fill: Value the holes are set to, in [0, 1].

    Params: ``{"hole_fraction": [B]}``. Mask: the holes.
    """

    name = "inpaint_mask"
    param_names = ("hole_fraction",)
    makes_mask = True

    def __init__(
        self,
        max_boxes: int = 3,
        min_box_fraction: float = 0.1,
        max_box_fraction: float = 0.4,
        max_strokes: int = 4,
        min_stroke_width: float = 5,
        max_stroke_width: float = 15,
        stroke_vertices: tuple[int, int] = (3, 8),
        fill: float = 0.0,
    ) -> None:
        owner = type(self).__name__
        self.max_boxes = _as_int(owner, "max_boxes", max_boxes, minimum=0)
        self.max_strokes = _as_int(owner, "max_strokes", max_strokes, minimum=0)
        if self.max_boxes == 0 and self.max_strokes == 0:
            raise ValueError(f"{owner}: max_boxes and max_strokes cannot both be 0, got max_boxes=0, max_strokes=0")
        self.min_box_fraction = _as_float(owner, "min_box_fraction", min_box_fraction, maximum=1.0)
        self.max_box_fraction = _as_float(owner, "max_box_fraction", max_box_fraction, maximum=1.0)
        if self.min_box_fraction <= 0:
            raise ValueError(f"{owner}: min_box_fraction must be > 0, got min_box_fraction={min_box_fraction!r}")
        _check_ordered(owner, "min_box_fraction", self.min_box_fraction, "max_box_fraction", self.max_box_fraction)
        self.min_stroke_width = _as_float(owner, "min_stroke_width", min_stroke_width, minimum=1.0)
        self.max_stroke_width = _as_float(owner, "max_stroke_width", max_stroke_width, minimum=1.0)
        _check_ordered(owner, "min_stroke_width", self.min_stroke_width, "max_stroke_width", self.max_stroke_width)
        if not isinstance(stroke_vertices, Sequence) or len(stroke_vertices) != 2:
            raise ValueError(
                f"{owner}: stroke_vertices must be a pair (fewest, most), got stroke_vertices={stroke_vertices!r}"
            )
        fewest = _as_int(owner, "stroke_vertices[0]", stroke_vertices[0], minimum=2)
        most = _as_int(owner, "stroke_vertices[1]", stroke_vertices[1], minimum=2)
        _check_ordered(owner, "stroke_vertices[0]", fewest, "stroke_vertices[1]", most)
        self.stroke_vertices = (fewest, most)
        self.fill = _as_float(owner, "fill", fill, minimum=0.0, maximum=1.0)

    def _degrade(self, images: Tensor, generator: torch.Generator | None) -> DegradedBatch:
        draw_device = _draw_device(images, generator)
        batch_size, _, height, width = images.shape

        # Per-image counts first.
        counts = _uniform([2, batch_size], generator, draw_device)
        box_count = _uniform_integers(counts[0], 0, self.max_boxes)
        stroke_count = _uniform_integers(counts[1], 0, self.max_strokes)
        no_hole = (box_count + stroke_count) == 0
        if self.max_strokes > 0:
            stroke_count = torch.where(no_hole, 1, stroke_count)
        else:
            box_count = torch.where(no_hole, 1, box_count)

        box_mask = self._box_mask(box_count, generator, draw_device, height, width)
        stroke_mask = self._stroke_mask(stroke_count, generator, draw_device, height, width)
        mask = (box_mask | stroke_mask).to(images.device)
        degraded = images.masked_fill(mask, self.fill)
        hole_fraction = mask.float().mean(dim=(1, 2, 3))
        return DegradedBatch(images=degraded, params={"hole_fraction": hole_fraction}, mask=mask)

    def _box_mask(
        self, box_count: Tensor, generator: torch.Generator | None, device: torch.device, height: int, width: int
    ) -> Tensor:
        batch_size = box_count.shape[0]
        draws = _uniform([4, batch_size, self.max_boxes], generator, device)
        fraction_span = self.max_box_fraction - self.min_box_fraction
        box_height = torch.round((self.min_box_fraction + fraction_span * draws[0]) * height).long().clamp(1, height)
        box_width = torch.round((self.min_box_fraction + fraction_span * draws[1]) * width).long().clamp(1, width)
        top = _uniform_integers(draws[2], 0, height - box_height)
        left = _uniform_integers(draws[3], 0, width - box_width)
        active = torch.arange(self.max_boxes, device=device) < box_count[:, None]
        return _boxes_to_mask(top, left, box_height, box_width, active, size=(height, width))

    def _stroke_mask(
        self, stroke_count: Tensor, generator: torch.Generator | None, device: torch.device, height: int, width: int
    ) -> Tensor:
        batch_size, strokes = stroke_count.shape[0], self.max_strokes
        segments = self.stroke_vertices[1] - 1
        stroke_width = self.min_stroke_width + (self.max_stroke_width - self.min_stroke_width) * _uniform(
            [batch_size, strokes], generator, device
        )
        vertex_count = _uniform_integers(_uniform([batch_size, strokes], generator, device), *self.stroke_vertices)
        start = _uniform([batch_size, strokes, 1, 2], generator, device) * torch.tensor(
            [height - 1, width - 1], device=device, dtype=torch.float32
        )
        angle = 2 * math.pi * _uniform([batch_size, strokes, segments], generator, device)
        low, high = _STROKE_STEP_FRACTION
        step_length = (low + (high - low) * _uniform([batch_size, strokes, segments], generator, device)) * min(
            height, width
        )
        steps = torch.stack([step_length * torch.sin(angle), step_length * torch.cos(angle)], dim=-1)
        vertices = torch.cat([start, start + steps.cumsum(dim=2)], dim=2)  # [B, strokes, segments + 1, (y, x)]
        upper = torch.tensor([height - 1, width - 1], device=device, dtype=torch.float32)
        vertices = torch.minimum(vertices.clamp(min=0.0), upper)

        rows = torch.arange(height, device=device, dtype=torch.float32).view(1, height, 1)
        columns = torch.arange(width, device=device, dtype=torch.float32).view(1, 1, width)
        mask = torch.zeros(batch_size, height, width, dtype=torch.bool, device=device)
        # A loop over a handful of segments, each vectorised over the batch: materialising all segments at
        # once would take strokes * segments times the memory of one mask.
        for stroke in range(strokes):
            radius_squared = (stroke_width[:, stroke] / 2).square().view(-1, 1, 1)
            for segment in range(segments):
                active = (stroke < stroke_count) & (segment < vertex_count[:, stroke] - 1)
                start_point = vertices[:, stroke, segment]
                end_point = vertices[:, stroke, segment + 1]
                distance_squared = _squared_distance_to_segment(rows, columns, start_point, end_point)
                mask |= (distance_squared <= radius_squared) & active.view(-1, 1, 1)
        return mask.unsqueeze(1)


class PoissonGaussianNoise(Degradation):
    """Signal-dependent camera noise: Poisson shot noise plus Gaussian read noise, independent per channel.

    A sensor counts photons: a pixel of intensity ``x`` (in [0, 1]) collects ``x / shot`` of them on
    average, a Poisson count, and the read-out adds Gaussian noise of standard deviation ``read``, so
    ``y = shot * Poisson(x / shot) + read * N(0, 1)`` with variance ``shot * x + read^2``: dark regions
    are less noisy than bright ones, unlike additive Gaussian noise (the Poisson-Gaussian model of Foi et
    al., 2008). Each channel of each pixel gets its own draws, as behind a Bayer filter.

    Args:
        shot_min: Smallest shot-noise gain ``shot`` (variance per unit intensity; 0 means no shot noise).
        shot_max: Largest; per-image ``shot ~ U(shot_min, shot_max)``.
        read_min: Smallest read-noise standard deviation, in image units.
        read_max: Largest; per-image ``read ~ U(read_min, read_max)``.
        shot: If given, every image gets exactly this gain (fixed mode for benchmarks).
        read: If given, every image gets exactly this read noise.
        clip: Clamp the noisy images to [0, 1] (a sensor's range). Off by default.

    Params: ``{"shot": [B], "read": [B]}``.
    """

    name = "poisson_gaussian"
    param_names = ("shot", "read")

    def __init__(
        self,
        shot_min: float = 0.0,
        shot_max: float = 0.02,
        read_min: float = 0.0,
        read_max: float = 10 / 255,
        shot: float | None = None,
        read: float | None = None,
        clip: bool = False,
    ) -> None:
        owner = type(self).__name__
        self.shot_min = _as_float(owner, "shot_min", shot_min, minimum=0.0, maximum=1.0)
        self.shot_max = _as_float(owner, "shot_max", shot_max, minimum=0.0, maximum=1.0)
        _check_ordered(owner, "shot_min", self.shot_min, "shot_max", self.shot_max)
        self.read_min = _as_float(owner, "read_min", read_min, minimum=0.0)
        self.read_max = _as_float(owner, "read_max", read_max, minimum=0.0)
        _check_ordered(owner, "read_min", self.read_min, "read_max", self.read_max)
        self.shot = None if shot is None else _as_float(owner, "shot", shot, minimum=0.0, maximum=1.0)
        self.read = None if read is None else _as_float(owner, "read", read, minimum=0.0)
        self.clip = bool(clip)

    def _degrade(self, images: Tensor, generator: torch.Generator | None) -> DegradedBatch:
        draw_device = _draw_device(images, generator)
        batch_size = images.shape[0]
        shot = _draw_range(self.shot, self.shot_min, self.shot_max, batch_size, generator, draw_device)
        read = _draw_range(self.read, self.read_min, self.read_max, batch_size, generator, draw_device)
        clean = images.float().clamp(0.0, 1.0).to(draw_device)
        # a gain of 0 has no shot noise: count with a huge number of photons (the Poisson mean dominates)
        photons_per_unit = 1.0 / shot.clamp(min=1e-8).view(-1, 1, 1, 1)
        # torch.poisson consumes a data-dependent number of draws; a generator of its own, seeded by one
        # fixed-size draw, keeps the main stream (and every later member of a chain) independent of the pixels
        poisson_seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=draw_device))
        poisson_generator = torch.Generator(device=draw_device).manual_seed(poisson_seed)
        counts = torch.poisson(clean * photons_per_unit, generator=poisson_generator)
        read_noise = torch.randn(images.shape, generator=generator, device=draw_device, dtype=torch.float32)
        noisy = torch.where(shot.view(-1, 1, 1, 1) > 0, counts / photons_per_unit, clean)
        noisy = noisy + read.view(-1, 1, 1, 1) * read_noise
        if self.clip:
            noisy = noisy.clamp(0.0, 1.0)
        return DegradedBatch(
            images=noisy.to(images.device, images.dtype),
            params={"shot": shot.to(images.device), "read": read.to(images.device)},
        )


JPEG_SUBSAMPLING = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}


class JPEGCompression(Degradation):
    """JPEG compression at a random (or fixed) quality per image, encoded and decoded by Pillow's libjpeg.

    The real codec, not an approximation: a model trained on it sees the 8x8 block artefacts, the
    quantised high frequencies and, with ``"4:2:0"`` (Pillow's default and what phones write), the chroma
    stored at half resolution. Images are clamped to [0, 1] and rounded to 8 bits first, as a camera
    does before it encodes. Apply it after a noise (``{"chain": ["gaussian", "jpeg"]}``): noise that went
    through JPEG is no longer white, which is why models trained on PNGs fail on phone photos.

    Args:
        quality_min: Lowest JPEG quality (Pillow's scale, 1-100).
        quality_max: Highest; per-image quality is a uniform integer in [quality_min, quality_max].
        quality: If given, every image gets exactly this quality.
        subsampling: Chroma subsampling of colour images: ``"4:2:0"``, ``"4:2:2"`` or ``"4:4:4"``
            (ignored for 1-channel images).

    Params: ``{"quality": [B] int64}``.
    """

    name = "jpeg"
    param_names = ("quality",)

    def __init__(
        self, quality_min: int = 30, quality_max: int = 95, quality: int | None = None, subsampling: str = "4:2:0"
    ) -> None:
        owner = type(self).__name__
        self.quality_min = _as_int(owner, "quality_min", quality_min, minimum=1)
        self.quality_max = _as_int(owner, "quality_max", quality_max, minimum=1)
        _check_ordered(owner, "quality_min", self.quality_min, "quality_max", self.quality_max)
        for field, value in (("quality_max", self.quality_max),):
            if value > 100:
                raise ValueError(f"{owner}: {field} must be <= 100, got {field}={value!r}")
        self.quality = None if quality is None else _as_int(owner, "quality", quality, minimum=1)
        if self.quality is not None and self.quality > 100:
            raise ValueError(f"{owner}: quality must be <= 100, got quality={quality!r}")
        if subsampling not in JPEG_SUBSAMPLING:
            raise ValueError(f"{owner}: subsampling must be one of {list(JPEG_SUBSAMPLING)}, got subsampling={subsampling!r}")
        self.subsampling = subsampling

    def _degrade(self, images: Tensor, generator: torch.Generator | None) -> DegradedBatch:
        import io

        import numpy as np
        from PIL import Image

        draw_device = _draw_device(images, generator)
        batch_size, channels = images.shape[:2]
        if channels not in (1, 3):
            raise ValueError(f"JPEGCompression: images must have 1 or 3 channels, got {channels}")
        if self.quality is None:
            quality = _uniform_integers(_uniform([batch_size], generator, draw_device), self.quality_min, self.quality_max)
        else:
            quality = torch.full((batch_size,), self.quality, dtype=torch.int64, device=draw_device)
        pixels = (images.detach().float().clamp(0.0, 1.0) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        decoded = []
        for image, image_quality in zip(pixels, quality.tolist()):
            buffer = io.BytesIO()
            picture = Image.fromarray(image[..., 0] if channels == 1 else image, mode="L" if channels == 1 else "RGB")
            picture.save(buffer, format="JPEG", quality=int(image_quality), subsampling=JPEG_SUBSAMPLING[self.subsampling])
            buffer.seek(0)
            array = np.asarray(Image.open(buffer).convert("L" if channels == 1 else "RGB"))
            decoded.append(array.reshape(*array.shape[:2], channels))
        restored = torch.from_numpy(np.stack(decoded)).permute(0, 3, 1, 2).float() / 255
        return DegradedBatch(
            images=restored.to(images.device, images.dtype), params={"quality": quality.to(images.device)}
        )


def _draw_range(
    fixed: float | None, low: float, high: float, batch_size: int, generator: torch.Generator | None, device: torch.device
) -> Tensor:
    """Per-image values: ``fixed`` for every image, else uniform in [low, high]."""
    if fixed is not None:
        return torch.full((batch_size,), fixed, device=device)
    return low + (high - low) * _uniform([batch_size], generator, device)


def _squared_distance_to_segment(rows: Tensor, columns: Tensor, start: Tensor, end: Tensor) -> Tensor:
    """Squared distance from every pixel (rows [1, H, 1], columns [1, 1, W]) to per-image segments
    ``start`` -> ``end`` ([B, (y, x)]), as [B, H, W]."""
    start_y, start_x = start[:, 0].view(-1, 1, 1), start[:, 1].view(-1, 1, 1)
    direction_y, direction_x = (end - start)[:, 0].view(-1, 1, 1), (end - start)[:, 1].view(-1, 1, 1)
    length_squared = (direction_y.square() + direction_x.square()).clamp(min=1e-12)
    # Offsets kept as [B, H, 1] and [B, 1, W] until they must meet: most of the work stays O(H + W).
    offset_y, offset_x = rows - start_y, columns - start_x
    position = (offset_y * (direction_y / length_squared) + offset_x * (direction_x / length_squared)).clamp_(0.0, 1.0)
    error_y = offset_y - position * direction_y
    error_x = offset_x - position * direction_x
    return error_y.square_().add_(error_x.square_())


# --------------------------------------------------------------------------------------------------
# Combinators
# --------------------------------------------------------------------------------------------------


class RandomChoice(Degradation):
    """One degradation per image, drawn with the given weights.

    Args:
        degradations: The members, as degradations or specs for :func:`build_degradation`.
        weights: Non-negative relative weights, one per member (normalised); None means equal weights.

    Params: ``{"choice": [B] int64}`` (index into ``degradations``) plus each member's params as
    ``"<member name>.<param>"`` (float32, NaN for images that did not draw that member).
    Mask: the union of the members' masks (False for images whose member makes none), or None when no
    member makes masks.
    """

    name = "choice"

    def __init__(self, degradations: Sequence[Degradation | Any], weights: Sequence[float] | None = None) -> None:
        owner = type(self).__name__
        if isinstance(degradations, (str, dict)) or not isinstance(degradations, Sequence) or not degradations:
            raise ValueError(f"{owner}: degradations must be a non-empty list, got degradations={degradations!r}")
        self.degradations = [build_degradation(spec) for spec in degradations]
        if weights is not None:
            if not isinstance(weights, Sequence) or len(weights) != len(self.degradations):
                raise ValueError(
                    f"{owner}: weights must have one entry per degradation ({len(self.degradations)}), "
                    f"got weights={weights!r}"
                )
            weights = [_as_float(owner, "weights", weight, minimum=0.0) for weight in weights]
            if sum(weights) <= 0:
                raise ValueError(f"{owner}: weights must not all be zero, got weights={weights!r}")
        self.weights = None if weights is None else list(weights)
        self.param_names = ("choice",) + tuple(
            dict.fromkeys(f"{member.name}.{key}" for member in self.degradations for key in member.param_names)
        )
        self.makes_mask = any(member.makes_mask for member in self.degradations)

    @property
    def probabilities(self) -> list[float]:
        """The normalised weights."""
        weights = self.weights if self.weights is not None else [1.0] * len(self.degradations)
        return [weight / sum(weights) for weight in weights]

    def to_spec(self) -> dict[str, Any]:
        """Return ``{"name": "choice", "degradations": [member specs], "weights": ...}``."""
        members = [member.to_spec() for member in self.degradations]
        return {"name": self.name, "degradations": members, "weights": self.weights}

    def _draw_choice(self, batch_size: int, generator: torch.Generator | None, device: torch.device) -> Tensor:
        upper_edges = torch.tensor(self.probabilities, dtype=torch.float32).cumsum(0)
        # From the last member with positive weight on, the edge is +inf: rounding in the cumulative sum can
        # then neither leave a draw past the end nor hand it to a zero-weight member.
        last_drawable = max(index for index, probability in enumerate(self.probabilities) if probability > 0)
        upper_edges[last_drawable:] = math.inf
        uniform = _uniform([batch_size], generator, device)
        return torch.searchsorted(upper_edges.to(device), uniform, right=True)

    def _degrade(self, images: Tensor, generator: torch.Generator | None) -> DegradedBatch:
        batch_size, _, height, width = images.shape
        choice = self._draw_choice(batch_size, generator, _draw_device(images, generator)).to(images.device)
        degraded = torch.empty_like(images)
        params = {"choice": choice}
        for key in self.param_names[1:]:
            params[key] = torch.full((batch_size,), math.nan, dtype=torch.float32, device=images.device)
        mask = None
        if self.makes_mask:
            mask = torch.zeros(batch_size, 1, height, width, dtype=torch.bool, device=images.device)
        for index, member in enumerate(self.degradations):
            selected = (choice == index).nonzero().squeeze(1)
            if selected.numel() == 0:
                continue
            result = member(images[selected], generator)
            degraded[selected] = result.images
            for key, values in result.params.items():
                params[f"{member.name}.{key}"][selected] = values.float()
            if result.mask is not None:
                mask[selected] = result.mask
        return DegradedBatch(images=degraded, params=params, mask=mask)


class Chain(Degradation):
    """Several degradations applied in order (e.g. blur then noise).

    Args:
        degradations: The members, as degradations or specs for :func:`build_degradation`, first applied first.

    Params: each member's params as ``"<index>.<member name>.<param>"``. Mask: the members' masks OR-ed,
    or None when no member makes masks.
    """

    name = "chain"

    def __init__(self, degradations: Sequence[Degradation | Any]) -> None:
        owner = type(self).__name__
        if isinstance(degradations, (str, dict)) or not isinstance(degradations, Sequence) or not degradations:
            raise ValueError(f"{owner}: degradations must be a non-empty list, got degradations={degradations!r}")
        self.degradations = [build_degradation(spec) for spec in degradations]
        self.param_names = tuple(
            f"{index}.{member.name}.{key}"
            for index, member in enumerate(self.degradations)
            for key in member.param_names
        )
        self.makes_mask = any(member.makes_mask for member in self.degradations)

    def to_spec(self) -> dict[str, Any]:
        """Return ``{"name": "chain", "degradations": [member specs]}``."""
        return {"name": self.name, "degradations": [member.to_spec() for member in self.degradations]}

    def _degrade(self, images: Tensor, generator: torch.Generator | None) -> DegradedBatch:
        params: dict[str, Tensor] = {}
        mask: Tensor | None = None
        for index, member in enumerate(self.degradations):
            result = member(images, generator)
            images = result.images
            params.update({f"{index}.{member.name}.{key}": values for key, values in result.params.items()})
            if result.mask is not None:
                mask = result.mask if mask is None else mask | result.mask
        return DegradedBatch(images=images, params=params, mask=mask)


# --------------------------------------------------------------------------------------------------
# Registry and builder
# --------------------------------------------------------------------------------------------------

DEGRADATIONS: dict[str, type[Degradation]] = {
    cls.name: cls
    for cls in (Identity, GaussianNoise, SaltPepper, GaussianBlur, Knockout, InpaintMask, PoissonGaussianNoise, JPEGCompression)
}
_COMBINATORS: dict[str, type[Degradation]] = {cls.name: cls for cls in (RandomChoice, Chain)}


def list_degradations() -> list[str]:
    """Return the registered degradation names (the leaf degradations), sorted."""
    return sorted(DEGRADATIONS)


def _valid_names() -> str:
    return ", ".join([*list_degradations(), "chapter", *_COMBINATORS])


def _build_from_dict(spec: dict[str, Any]) -> Degradation:
    if "choice" in spec or "chain" in spec:
        combinator = "choice" if "choice" in spec else "chain"
        allowed = {"choice", "weights"} if combinator == "choice" else {"chain"}
        unknown = sorted(set(spec) - allowed)
        if unknown:
            raise ValueError(
                f"unknown parameter {unknown[0]!r} for degradation {combinator!r}; "
                f"valid parameters: {', '.join(sorted(allowed))}"
            )
        if combinator == "choice":
            return RandomChoice(spec["choice"], weights=spec.get("weights"))
        return Chain(spec["chain"])

    if "name" not in spec:
        raise ValueError(f"a degradation spec dict needs a 'name' (or a 'choice' or 'chain' list), got {spec!r}")
    name = spec["name"]
    cls = DEGRADATIONS.get(name) or _COMBINATORS.get(name)
    if cls is None:
        raise ValueError(f"unknown degradation {name!r}; valid names: {_valid_names()}")
    parameters = {key: value for key, value in spec.items() if key != "name"}
    valid_parameters = _constructor_parameters(cls)
    for key in parameters:
        if key not in valid_parameters:
            raise ValueError(
                f"unknown parameter {key!r} for degradation {name!r}; valid parameters: {', '.join(valid_parameters)}"
            )
    return cls(**parameters)


def build_degradation(spec: Degradation | str | dict[str, Any] | Sequence[Any]) -> Degradation:
    """Build a degradation from a spec.

    Args:
        spec: One of
            - a :class:`Degradation` (returned as is);
            - a registered name, e.g. ``"gaussian"`` (default parameters);
            - ``"chapter"``: an equal-weight choice over :data:`CHAPTER_DEGRADATIONS`;
            - a dict ``{"name": "gaussian", "sigma_max": 0.2}`` (what ``to_spec()`` returns);
            - a dict ``{"choice": [spec, ...], "weights": [...]}`` (weights optional) or ``{"chain": [spec, ...]}``;
            - a list of specs: an equal-weight :class:`RandomChoice`.

    Returns:
        The degradation.

    Raises:
        ValueError: For unknown names (listing the valid ones), unknown parameters (naming the parameter,
            the degradation and the valid parameters) or out-of-range values (naming the parameter and value).
    """
    if isinstance(spec, Degradation):
        return spec
    if isinstance(spec, str):
        if spec == "chapter":
            return RandomChoice(list(CHAPTER_DEGRADATIONS))
        if spec not in DEGRADATIONS:
            raise ValueError(f"unknown degradation {spec!r}; valid names: {_valid_names()}")
        return DEGRADATIONS[spec]()
    if isinstance(spec, dict):
        return _build_from_dict(spec)
    if isinstance(spec, Sequence):
        return RandomChoice(list(spec))
    raise TypeError(f"cannot build a degradation from {type(spec).__name__}: {spec!r}")


def gaussian_sigma(degradation: Degradation, batch: DegradedBatch) -> Tensor:
    """The sigma of the Gaussian noise that ``degradation`` gave each image of ``batch`` ([B] float32,
    in the [0, 1] scale): what a noise-level-conditioned model is told.

    NaN for images without Gaussian noise (another member of a :class:`RandomChoice`, or a degradation
    with no Gaussian step). In a :class:`Chain` with several Gaussian steps the sigmas combine as
    ``sqrt(sum sigma^2)``.
    """
    size = batch.images.shape[0]
    if isinstance(degradation, GaussianNoise):
        return batch.params["sigma"].float()
    # members report their params under "<member name>.<param>" (RandomChoice) or "<index>.<name>.<param>"
    suffix = f"{GaussianNoise.name}.sigma"
    variances = torch.zeros(size, dtype=torch.float32, device=batch.images.device)
    found = torch.zeros(size, dtype=torch.bool, device=batch.images.device)
    for key, values in batch.params.items():
        if key == suffix or key.endswith("." + suffix):
            known = ~torch.isnan(values.float())
            variances = variances + torch.where(known, values.float(), torch.zeros_like(variances)).square()
            found |= known
    return torch.where(found, variances.sqrt(), torch.full_like(variances, math.nan))
