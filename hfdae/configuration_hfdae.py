"""Configuration and named presets of hfdae's denoising autoencoders.

The design follows "Making an Autoencoder that Works" (Forsyth, chapter 18): a convolutional
encoder/decoder built from residual blocks with batch normalisation (Figure 18.3), optional U-Net skip
connections that stack encoder features onto the decoder (Figure 18.1), inputs scaled to [-1, 1]
and a controlled output range (section 18.2). The three reference designs of Figure 18.4 are the
presets ``small``, ``noskip`` and ``skip``.

This file imports only ``transformers`` so that it can be uploaded beside the weights for
``trust_remote_code`` loading.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

from transformers import PretrainedConfig

__all__ = ["DenoisingAutoencoderConfig", "PRESETS", "list_presets"]

NORMS = ("batch", "group", "none")
ACTIVATIONS = ("relu", "leaky_relu", "silu", "gelu")
OUTPUT_HEADS = ("linear", "sigmoid", "tanh", "scaled_tanh")
COLOUR_SPACES = ("rgb", "gray", "lab")
UPSAMPLE_MODES = ("transposed", "resize")
SPACE_TO_DEPTH_FACTORS = (1, 2, 4)

# Figure 18.4's three designs. `small` is shallow with skips (the first three levels of `skip`, one
# block each); `noskip` and `skip` share one deep
# layout (five levels) and differ only in the skip connections, so their comparison isolates them.
# The full-resolution level is kept narrow (16) because it dominates the cost on a CPU: widths
# 16-32-64-96-128 train at 24 crops/s on 2 cores where 32-48-64-96-128 manage 10 (same depth).
PRESETS: dict[str, dict[str, Any]] = {
    "small": {
        "widths": [16, 32, 64],
        "blocks_per_level": [1, 1, 1],
        "skip_connections": True,
    },
    "noskip": {
        "widths": [16, 32, 64, 96, 128],
        "blocks_per_level": [1, 2, 2, 2, 2],
        "skip_connections": False,
    },
    "skip": {
        "widths": [16, 32, 64, 96, 128],
        "blocks_per_level": [1, 2, 2, 2, 2],
        "skip_connections": True,
    },
    # The zoo's first colour and gray flagships (zoo `colour-v1`/`colour`, `gray`, `inpaint`): a wider skip
    # U-Net, one block per level, resize upsampling (no flat-bright grid) and a residual output.
    "flagship": {
        "widths": [32, 64, 128, 256],
        "blocks_per_level": [1, 1, 1, 1],
        "skip_connections": True,
        "upsample": "resize",
        "predict_residual": True,
    },
    # The second colour flagship's design (zoo `colour-v2`), chosen on the sweep's validation table
    # (docs/flagship-v2/README.md, candidate s2-64x3): a 2x2 space-to-depth stem so the U-Net runs at half
    # resolution, wider levels, and a noise-level input (blind without it).
    "flagship-v2": {
        "widths": [64, 128, 256],
        "blocks_per_level": [1, 1, 1],
        "skip_connections": True,
        "upsample": "resize",
        "predict_residual": True,
        "space_to_depth_factor": 2,
        "noise_level_input": True,
    },
}


def list_presets() -> list[str]:
    """Names accepted by :meth:`DenoisingAutoencoderConfig.from_preset`."""
    return sorted(PRESETS)


class DenoisingAutoencoderConfig(PretrainedConfig):
    r"""Configuration of a :class:`~hfdae.DenoisingAutoencoder`.

    Every field has a default; the defaults are the ``skip`` reference design. Invalid values raise
    ``ValueError`` naming the field.

    Args:
        in_channels (`int`, *optional*):
            Channels of the images the model takes: 3 for ``rgb`` and ``lab``, 1 for ``gray`` (the
            default follows ``colour_space``).
        out_channels (`int`, *optional*):
            Channels of the images the model returns; equal to ``in_channels`` (the default).
        extra_input_channels (`int`, defaults to 0):
            Channels appended to the image at the network input (for example an inpainting mask).
        space_to_depth_factor (`int`, defaults to 1):
            1, 2 or 4. Above 1, a ``PixelUnshuffle`` stem folds each ``f x f`` block of the input into
            channels before the first level, and a ``PixelShuffle`` head unfolds the output, so the
            whole U-Net runs at ``1 / f`` of the input resolution (FFDNet's trick for speed).
        noise_level_input (`bool`, defaults to `False`):
            Take the noise level as an extra input: ``forward(..., noise_level=...)`` with sigma in the
            [0, 1] scale per image or as a [B, 1, H, W] map, fed as one more channel at the network's
            resolution. Without a level (or where the map is negative) the model runs blind, so one
            checkpoint serves both uses when it is trained with the level dropped for some crops.
        widths (`list[int]`, defaults to `[16, 32, 64, 96, 128]`):
            Feature width of each resolution level. Level ``i`` runs at ``1 / 2**i`` of the input
            resolution, so ``len(widths) - 1`` is the number of downsamplings.
        blocks_per_level (`list[int]`, defaults to `[1, 2, 2, 2, 2]`):
            Residual blocks per level, in the encoder and again (mirrored) in the decoder. Each at least 1.
        skip_connections (`bool`, defaults to `True`):
            Stack each encoder level's output onto the decoder's input at the same resolution (U-Net).
        residual_connections (`bool`, defaults to `True`):
            Give every block a shortcut path (a single convolution, or the identity where shapes
            match). With ``False`` the blocks are plain convolution stacks.
        norm (`str`, defaults to `"batch"`):
            Normalisation after each convolution: ``"batch"``, ``"group"`` or ``"none"``.
        group_norm_groups (`int`, defaults to 8):
            Groups for ``norm="group"`` (reduced to a divisor of the width where needed).
        activation (`str`, defaults to `"relu"`):
            ``"relu"``, ``"leaky_relu"``, ``"silu"`` or ``"gelu"``.
        upsample (`str`, defaults to `"transposed"`):
            How decoder blocks upsample: ``"transposed"`` convolution or ``"resize"`` (bilinear) + convolution.
        output_head (`str`, defaults to `"linear"`):
            Maps the network output ``z`` to the image range [0, 1] (section 18.2): ``"linear"``
            ``(z + 1) / 2`` (unbounded: pair it with ``out_of_range_weight``), ``"sigmoid"``,
            ``"tanh"`` ``(tanh(z) + 1) / 2``, or ``"scaled_tanh"`` ``a * (tanh(z) + b)``.
        scaled_tanh_a (`float`, defaults to 0.55):
            ``a`` of the scaled tanh head. With ``b < 1`` and ``a > 1 / (b + 1)`` the output can
            overshoot [0, 1] a little, so its gradient does not vanish at 0 and 1.
        scaled_tanh_b (`float`, defaults to 0.9):
            ``b`` of the scaled tanh head; the head's range is ``(a (b - 1), a (b + 1))``.
        predict_residual (`bool`, defaults to `False`):
            The network predicts the degradation and the output is ``input - net(input)`` (in the
            [-1, 1] scale). Needs ``output_head="linear"``.
        colour_space (`str`, defaults to `"rgb"`):
            ``"rgb"``, ``"gray"``, or ``"lab"``: RGB in and out, but the network restores only the
            lightness L while A and B are smoothed with a Gaussian (the chapter's advice, section 18.2).
        chroma_blur_sigma (`float`, defaults to 2.0):
            Sigma in pixels of the Gaussian that smooths A and B in ``lab`` mode.
        mse_weight (`float`, defaults to 100.0):
            Weight of mean squared error in the training loss (the chapter's 100).
        l1_weight (`float`, defaults to 30.0):
            Weight of mean absolute error in the training loss (the chapter's 30).
        out_of_range_weight (`float`, defaults to 0.0):
            Weight of the penalty ``x^2 [x < 0] + (x - 1)^2 [x > 1]`` on the output.
        preset (`str`, *optional*):
            Name of the preset this configuration came from, for model cards.
        images_seen (`int`, defaults to 0):
            Training images of this model's own (last) training run; 0 means untrained (random weights).
            A fine-tuned model's parents and their images are in ``lineage``.
        training_summary (`dict`, *optional*):
            What the trainer records about the run (data, degradations, recipe); informational.
        task (`str`, defaults to `"restore"`):
            What the model was trained for: ``"restore"`` (the chapter's four degradations),
            ``"denoise"``, ``"deblur"``, ``"inpaint"`` ... The tasks, and the protocol that measures each,
            are the registry of ``hfdae.protocols`` (not checked here, so that this file stays
            self-contained and a checkpoint of a newer task still loads).
        lineage (`list[dict]`, *optional*):
            The models this one was fine-tuned from, parent first: ``{"model", "task",
            "images_seen", "description"}`` each (see :mod:`hfdae.finetuning`).
    """

    model_type: ClassVar[str] = "hfdae"

    in_channels: int | None = None
    out_channels: int | None = None
    extra_input_channels: int = 0
    space_to_depth_factor: int = 1
    noise_level_input: bool = False
    widths: list[int] | tuple[int, ...] = (16, 32, 64, 96, 128)
    blocks_per_level: list[int] | tuple[int, ...] = (1, 2, 2, 2, 2)
    skip_connections: bool = True
    residual_connections: bool = True
    norm: str = "batch"
    group_norm_groups: int = 8
    activation: str = "relu"
    upsample: str = "transposed"
    output_head: str = "linear"
    scaled_tanh_a: float = 0.55
    scaled_tanh_b: float = 0.9
    predict_residual: bool = False
    colour_space: str = "rgb"
    chroma_blur_sigma: float = 2.0
    mse_weight: float = 100.0
    l1_weight: float = 30.0
    out_of_range_weight: float = 0.0
    preset: str | None = None
    images_seen: int = 0
    training_summary: dict | None = None
    task: str = "restore"
    lineage: list[dict] | None = None

    def __post_init__(self, **kwargs: Any) -> None:
        self.widths = [int(width) for width in _as_list(self.widths, "widths")]
        self.blocks_per_level = [int(count) for count in _as_list(self.blocks_per_level, "blocks_per_level")]
        if self.in_channels is None:
            self.in_channels = 1 if self.colour_space == "gray" else 3
        if self.out_channels is None:
            self.out_channels = self.in_channels
        if __name__.split(".")[0] == "hfdae":
            # config.json's custom_pipelines is for transformers without hfdae (trust_remote_code); the installed
            # package registers the same pipeline, and transformers would demand trust_remote_code for it
            kwargs.pop("custom_pipelines", None)
        super().__post_init__(**kwargs)
        self._check()

    @property
    def images_seen_with_parents(self) -> int:
        """Training images of this model's own run plus those every model in its ``lineage`` saw."""
        return self.images_seen + sum(int(parent.get("images_seen", 0)) for parent in self.lineage or [])

    @property
    def image_channels(self) -> int:
        """Channels of the images going in and out of the model (1 for gray, 3 otherwise)."""
        return 1 if self.colour_space == "gray" else 3

    @property
    def network_channels(self) -> int:
        """Image channels the convolutional network itself restores (1 for ``lab``: only L)."""
        return 1 if self.colour_space in ("gray", "lab") else 3

    @property
    def size_multiple(self) -> int:
        """Input sides are padded to a multiple of this (the stem's factor times 2 per downsampling)."""
        return self.space_to_depth_factor * 2 ** (len(self.widths) - 1)

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> "DenoisingAutoencoderConfig":
        """Build the configuration of a named preset (see :func:`list_presets`), with field overrides.

        Args:
            name: ``"small"``, ``"noskip"`` or ``"skip"``.
            **overrides: any configuration field, for example ``colour_space="gray"``.
        """
        if name not in PRESETS:
            raise ValueError(f"preset={name!r} is not a known preset; choose one of {list_presets()}")
        values = copy.deepcopy(PRESETS[name])
        values.update(overrides)
        values.setdefault("preset", name)
        return cls(**values)

    def _check(self) -> None:
        """Raise ``ValueError`` naming the first invalid field."""
        _require_choice("norm", self.norm, NORMS)
        _require_choice("activation", self.activation, ACTIVATIONS)
        _require_choice("output_head", self.output_head, OUTPUT_HEADS)
        _require_choice("colour_space", self.colour_space, COLOUR_SPACES)
        _require_choice("upsample", self.upsample, UPSAMPLE_MODES)
        if not isinstance(self.task, str) or not self.task:
            raise ValueError(f"task must be a non-empty string, got {self.task!r}")
        if self.space_to_depth_factor not in SPACE_TO_DEPTH_FACTORS:
            raise ValueError(
                f"space_to_depth_factor={self.space_to_depth_factor!r} is not valid; choose one of"
                f" {list(SPACE_TO_DEPTH_FACTORS)}"
            )
        for field in ("skip_connections", "residual_connections", "predict_residual", "noise_level_input"):
            if not isinstance(getattr(self, field), bool):
                raise ValueError(f"{field} must be True or False, got {getattr(self, field)!r}")
        if not self.widths or any(width < 1 for width in self.widths):
            raise ValueError(f"widths must be a non-empty list of positive integers, got {self.widths}")
        if len(self.blocks_per_level) != len(self.widths):
            raise ValueError(
                f"blocks_per_level has {len(self.blocks_per_level)} entries but widths has {len(self.widths)};"
                " give one block count per level"
            )
        if any(count < 1 for count in self.blocks_per_level):
            raise ValueError(f"blocks_per_level entries must be at least 1, got {self.blocks_per_level}")
        if self.in_channels != self.image_channels:
            raise ValueError(
                f"in_channels={self.in_channels} does not match colour_space={self.colour_space!r},"
                f" which takes {self.image_channels}-channel images"
            )
        if self.out_channels != self.in_channels:
            raise ValueError(f"out_channels={self.out_channels} must equal in_channels={self.in_channels}")
        if not isinstance(self.extra_input_channels, int) or self.extra_input_channels < 0:
            raise ValueError(f"extra_input_channels must be a non-negative integer, got {self.extra_input_channels!r}")
        if self.group_norm_groups < 1:
            raise ValueError(f"group_norm_groups must be at least 1, got {self.group_norm_groups}")
        if self.predict_residual and self.output_head != "linear":
            raise ValueError(
                f"predict_residual=True needs output_head='linear' (got output_head={self.output_head!r}):"
                " a squashing head cannot represent input - residual"
            )
        if self.output_head == "scaled_tanh":
            low = self.scaled_tanh_a * (self.scaled_tanh_b - 1)
            high = self.scaled_tanh_a * (self.scaled_tanh_b + 1)
            if not (low <= 0.0 and high >= 1.0):
                raise ValueError(
                    f"scaled_tanh_a={self.scaled_tanh_a}, scaled_tanh_b={self.scaled_tanh_b} give the output range"
                    f" ({low:.3f}, {high:.3f}), which does not cover [0, 1]; choose b < 1 and a > 1 / (b + 1)"
                )
        if self.chroma_blur_sigma <= 0:
            raise ValueError(f"chroma_blur_sigma must be positive, got {self.chroma_blur_sigma}")
        for field in ("mse_weight", "l1_weight", "out_of_range_weight"):
            if getattr(self, field) < 0:
                raise ValueError(f"{field} must be non-negative, got {getattr(self, field)}")
        if self.mse_weight == 0 and self.l1_weight == 0:
            raise ValueError("mse_weight and l1_weight are both 0: the loss would not compare output and target")
        if self.images_seen < 0:
            raise ValueError(f"images_seen must be non-negative, got {self.images_seen}")


def _as_list(value: Any, field: str) -> list:
    if isinstance(value, (list, tuple)):
        return list(value)
    raise ValueError(f"{field} must be a list of integers, got {value!r}")


def _require_choice(field: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{field}={value!r} is not valid; choose one of {list(choices)}")
