"""hfdae's denoising autoencoder as a ``transformers`` ``PreTrainedModel``.

A residual convolutional encoder/decoder with batch norm and optional U-Net skip connections, after
"Making an Autoencoder that Works" (Forsyth, chapter 18): inputs in [0, 1] are scaled to [-1, 1]
(section 18.2), any height and width work (the input is padded to a multiple of the downsampling
factor and the output cropped back), the output range is controlled by a head and an out-of-range
penalty, and the training loss is the chapter's ``100 mean(R^2) + 30 mean(|R|)`` (section 18.4).

This file imports only ``torch``, ``transformers`` (and its dependency ``safetensors``) and its sibling files so that it can be uploaded
beside the weights for ``trust_remote_code`` loading.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from .blocks import Decoder, Encoder, OutputHead, gaussian_smooth, lab_to_rgb, rgb_to_lab
from .configuration_hfdae import DenoisingAutoencoderConfig

__all__ = [
    "DenoisingAutoencoder",
    "DenoisingAutoencoderOutput",
    "CheckpointError",
    "reconstruction_loss",
    "out_of_range_penalty",
    "noise_level_map",
    "BLIND_NOISE_LEVEL",
]

# The value of a noise-level map where the level is unknown: the model then restores blind.
BLIND_NOISE_LEVEL = -1.0
# The output convolution of a residual model starts at this fraction of the linear-gain Kaiming scale.
RESIDUAL_OUTPUT_INIT_SCALE = 0.1


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded as this model: a corrupt weights file, or tensors that do
    not match the configuration (missing, unexpected or wrongly shaped keys)."""


@dataclass
class DenoisingAutoencoderOutput(ModelOutput):
    """Output of :meth:`DenoisingAutoencoder.forward`.

    Args:
        reconstruction: restored images [B, C, H, W] in the [0, 1] scale (not clamped: the linear and
            scaled-tanh heads may overshoot a little; clamp for display).
        loss: with ``labels``: ``mse_weight * mse + l1_weight * l1 + out_of_range_weight * out_of_range``.
        mse: mean squared error of the reconstruction (detached), with ``labels``.
        l1: mean absolute error (detached), with ``labels``.
        out_of_range: mean out-of-range penalty of the reconstruction (detached), with ``labels``.
    """

    reconstruction: torch.Tensor | None = None
    loss: torch.Tensor | None = None
    mse: torch.Tensor | None = None
    l1: torch.Tensor | None = None
    out_of_range: torch.Tensor | None = None


def out_of_range_penalty(values: torch.Tensor) -> torch.Tensor:
    """The chapter's ``L_ud(x) = x^2 [x < 0] + (x - 1)^2 [x > 1]``, elementwise."""
    return values.clamp(max=0).square() + (values - 1).clamp(min=0).square()


def reconstruction_loss(
    reconstruction: torch.Tensor,
    target: torch.Tensor,
    mse_weight: float = 100.0,
    l1_weight: float = 30.0,
    out_of_range_weight: float = 0.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The chapter's training loss, computed in float32.

    ``mse_weight * mean(R^2) + l1_weight * mean(|R|) + out_of_range_weight * mean(L_ud(reconstruction))``
    with ``R = reconstruction - target``; means over all pixels and channels.

    Returns:
        The loss and its detached parts ``{"mse", "l1", "out_of_range"}``.
    """
    reconstruction = reconstruction.float()
    residual = reconstruction - target.float()
    mse = residual.square().mean()
    l1 = residual.abs().mean()
    out_of_range = out_of_range_penalty(reconstruction).mean()
    loss = mse_weight * mse + l1_weight * l1 + out_of_range_weight * out_of_range
    return loss, {"mse": mse.detach(), "l1": l1.detach(), "out_of_range": out_of_range.detach()}


def noise_level_map(noise_level: float | torch.Tensor | None, images: torch.Tensor) -> torch.Tensor:
    """The noise level as a [B, 1, H, W] float map for ``images`` [B, C, H, W].

    Args:
        noise_level: ``None`` (unknown: every value ``BLIND_NOISE_LEVEL``), a float (sigma in the
            [0, 1] scale, for every image), a [B] tensor (one sigma per image) or a [B, 1, H, W] map.
            Negative or NaN entries mean "unknown".
        images: the batch the map is for (its shape, device and dtype).
    """
    batch, _, height, width = images.shape
    if noise_level is None:
        return images.new_full((batch, 1, height, width), BLIND_NOISE_LEVEL)
    level = torch.as_tensor(noise_level, dtype=images.dtype, device=images.device)
    if level.ndim == 0:
        level = level.expand(batch)
    if level.ndim == 1:
        if level.shape[0] != batch:
            raise ValueError(f"noise_level has {level.shape[0]} entries for a batch of {batch} images")
        level = level.view(batch, 1, 1, 1).expand(batch, 1, height, width)
    elif level.shape != (batch, 1, height, width):
        raise ValueError(
            f"noise_level must be a float, a [batch] tensor or a [batch, 1, height, width] map; got shape"
            f" {tuple(level.shape)} for images {tuple(images.shape)}"
        )
    return torch.where(torch.isnan(level) | (level < 0), torch.full_like(level, BLIND_NOISE_LEVEL), level)


def _pad_to_multiple(images: torch.Tensor, multiple: int) -> tuple[torch.Tensor, int, int]:
    height, width = images.shape[-2:]
    pad_height = (-height) % multiple
    pad_width = (-width) % multiple
    if pad_height == 0 and pad_width == 0:
        return images, height, width
    # reflect keeps image statistics at the border; it needs the pad to be smaller than the side
    mode = "reflect" if pad_height < height and pad_width < width else "replicate"
    return F.pad(images, (0, pad_width, 0, pad_height), mode=mode), height, width


def _describe_key(key) -> str:
    # mismatched keys come as (name, checkpoint shape, model shape)
    if isinstance(key, (tuple, list)) and len(key) == 3:
        return f"{key[0]} (checkpoint {tuple(key[1])} vs model {tuple(key[2])})"
    return str(key)


class DenoisingAutoencoder(PreTrainedModel):
    """A residual U-Net denoising autoencoder (the chapter's Figures 18.1, 18.3 and 18.4).

    Build one from a preset with ``DenoisingAutoencoder(DenoisingAutoencoderConfig.from_preset("skip"))``
    or load one with ``DenoisingAutoencoder.from_pretrained(path_or_repo_id)`` (after ``import hfdae``,
    ``transformers.AutoModel`` works too). Loading is strict: a checkpoint with missing, unexpected or
    wrongly shaped tensors raises :class:`CheckpointError` instead of leaving random weights.

    Args:
        config: the :class:`DenoisingAutoencoderConfig`.
    """

    config_class = DenoisingAutoencoderConfig
    base_model_prefix = "autoencoder"
    main_input_name = "pixel_values"
    supports_gradient_checkpointing = False
    _no_split_modules = []

    def __init__(self, config: DenoisingAutoencoderConfig) -> None:
        super().__init__(config)
        factor = config.space_to_depth_factor
        # the stem folds every factor x factor block (image and extra inputs) into channels; the noise level
        # joins as one channel at the network's resolution
        network_in = (config.network_channels + config.extra_input_channels) * factor**2 + int(config.noise_level_input)
        self.space_to_depth = nn.PixelUnshuffle(factor) if factor > 1 else nn.Identity()
        self.encoder = Encoder(network_in, config.widths, config.blocks_per_level, config)
        self.decoder = Decoder(config.widths, config.blocks_per_level, config.skip_connections, config)
        self.output_conv = nn.Conv2d(config.widths[0], config.network_channels * factor**2, 3, padding=1)
        self.depth_to_space = nn.PixelShuffle(factor) if factor > 1 else nn.Identity()
        self.output_head = OutputHead(config.output_head, config.scaled_tanh_a, config.scaled_tanh_b)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        # Kaiming (He) init suits ReLU conv stacks; transformers' default N(0, 0.02) starves deep ones.
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            # fan_in keeps activations at unit scale through the residual sums (fan_out doubles them per
            # level); the output convolution feeds no ReLU, hence its linear gain.
            if module is getattr(self, "output_conv", None) and self.config.predict_residual:
                # a residual model starts close to the identity (a tenth of the linear-gain Kaiming scale):
                # full-scale random residuals give a first loss of about 30, and Adam's first steps then
                # silence the last ReLUs for good, leaving a model that returns its input (seen with the
                # space-to-depth designs of the flagship-v2 sweep)
                fan_in = module.weight[0].numel()
                init.normal_(module.weight, mean=0.0, std=RESIDUAL_OUTPUT_INIT_SCALE / math.sqrt(fan_in))
            else:
                gain = "linear" if module is getattr(self, "output_conv", None) else "relu"
                init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity=gain)
            if module.bias is not None:
                init.zeros_(module.bias)
        else:
            # norms: weight 1, bias 0 and, for batch norm, fresh running statistics
            super()._init_weights(module)

    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        extra_inputs: torch.Tensor | None = None,
        noise_level: float | torch.Tensor | None = None,
        return_dict: bool | None = None,
        **kwargs: Any,
    ) -> DenoisingAutoencoderOutput | tuple:
        """Restore a batch of images.

        Args:
            pixel_values: degraded images [B, C, H, W] in [0, 1] (C = 3 for ``rgb``/``lab``, 1 for
                ``gray``), any H and W.
            labels: optional clean images, same shape; gives ``loss``.
            extra_inputs: [B, extra_input_channels, H, W] appended at the network input (for
                example an inpainting mask); required when the config has ``extra_input_channels``.
                An inpainting model (``task="inpaint"``) ignores the pixels where its first channel is
                above 0 (the holes): they are set to 0, as in training; it fills only those and returns
                every other pixel exactly as given.
            noise_level: for models with ``noise_level_input``: sigma in the [0, 1] scale as a float,
                a [B] tensor or a [B, 1, H, W] map (see :func:`noise_level_map`); ``None`` restores
                blind. Refused by models without the input.
            return_dict: return a tuple instead of a :class:`DenoisingAutoencoderOutput` when False.

        Returns:
            :class:`DenoisingAutoencoderOutput` with ``reconstruction`` in the [0, 1] scale and, with
            ``labels``, the loss and its parts.
        """
        unknown = set(kwargs) - {"output_attentions", "output_hidden_states"}  # accepted for API compatibility
        if unknown:
            raise TypeError(f"forward() got unexpected argument(s) {sorted(unknown)}; did you mean labels=...?")
        config = self.config
        if pixel_values.ndim != 4 or pixel_values.shape[1] != config.image_channels:
            raise ValueError(
                f"pixel_values must have shape [batch, {config.image_channels}, height, width] for"
                f" colour_space={config.colour_space!r}, got {tuple(pixel_values.shape)}"
            )
        if labels is not None and labels.shape != pixel_values.shape:
            raise ValueError(f"labels shape {tuple(labels.shape)} != pixel_values shape {tuple(pixel_values.shape)}")
        if (extra_inputs is None) != (config.extra_input_channels == 0):
            raise ValueError(
                f"this model takes extra_input_channels={config.extra_input_channels};"
                f" got extra_inputs={'None' if extra_inputs is None else tuple(extra_inputs.shape)}"
            )

        if noise_level is not None and not config.noise_level_input:
            raise ValueError("this model has no noise-level input (noise_level_input=False); call it without noise_level")

        holes = None
        if config.task == "inpaint" and extra_inputs is not None:
            # what lies under the mask is unknown: the model sees it as training showed it (0), never
            # the paint of an editor or the old pixels (which tint the fill with their colour)
            holes = extra_inputs[:, :1] > 0
            known_pixels = pixel_values
            pixel_values = pixel_values.masked_fill(holes, 0.0)

        if config.colour_space == "lab":
            lab = rgb_to_lab(pixel_values.float())
            network_input = lab[:, :1] / 100
        else:
            network_input = pixel_values

        level = noise_level_map(noise_level, pixel_values) if config.noise_level_input else None
        restored = self._restore(network_input, extra_inputs, level)

        if config.colour_space == "lab":
            chroma = gaussian_smooth(lab[:, 1:], config.chroma_blur_sigma)
            reconstruction = lab_to_rgb(torch.cat([restored.float() * 100, chroma], dim=1)).to(restored.dtype)
        else:
            reconstruction = restored
        if holes is not None:
            # inpainting fills the holes and keeps every known pixel exactly as it was given
            reconstruction = torch.where(holes, reconstruction, known_pixels.to(reconstruction.dtype))

        loss = mse = l1 = out_of_range = None
        if labels is not None:
            loss, parts = reconstruction_loss(
                reconstruction, labels, config.mse_weight, config.l1_weight, config.out_of_range_weight
            )
            mse, l1, out_of_range = parts["mse"], parts["l1"], parts["out_of_range"]

        return_dict = return_dict if return_dict is not None else config.return_dict
        if not return_dict:
            return tuple(value for value in (reconstruction, loss, mse, l1, out_of_range) if value is not None)
        return DenoisingAutoencoderOutput(
            reconstruction=reconstruction, loss=loss, mse=mse, l1=l1, out_of_range=out_of_range
        )

    def _restore(
        self, images: torch.Tensor, extra_inputs: torch.Tensor | None, level: torch.Tensor | None
    ) -> torch.Tensor:
        """Run the network on images in [0, 1] (and a [B, 1, H, W] noise-level map for models with that
        input); returns the head's output in [0, 1], same size."""
        scaled = images * 2 - 1  # the chapter's input scaling to [-1, 1]
        network_input = scaled if extra_inputs is None else torch.cat([scaled, extra_inputs.to(scaled.dtype)], dim=1)
        multiple = self.config.size_multiple
        padded, height, width = _pad_to_multiple(network_input, multiple)
        hidden = self.space_to_depth(padded)
        if level is not None:
            # a known sigma enters in the [-1, 1] scale of the input (2 sigma); unknown stays at -1
            level = _pad_to_multiple(level.to(scaled.dtype), multiple)[0]
            channel = torch.where(level >= 0, 2 * level, torch.full_like(level, BLIND_NOISE_LEVEL))
            factor = self.config.space_to_depth_factor
            hidden = torch.cat([hidden, F.avg_pool2d(channel, factor) if factor > 1 else channel], dim=1)
        features = self.decoder(self.encoder(hidden))
        z = self.depth_to_space(self.output_conv(features))[..., :height, :width]
        if self.config.predict_residual:
            z = scaled - z
        return self.output_head(z)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """Load a checkpoint folder or Hub repo id strictly.

        Same arguments as :meth:`transformers.PreTrainedModel.from_pretrained`. Raises
        :class:`CheckpointError` naming the keys when the checkpoint's tensors do not match
        the configuration, and ``OSError`` naming the file when it cannot be read.
        """
        want_loading_info = kwargs.pop("output_loading_info", False)
        allow_mismatched = kwargs.pop("ignore_mismatched_sizes", False)
        try:
            # transformers' own mismatch error does not name the tensors: load, then name them below
            model, loading_info = super().from_pretrained(
                pretrained_model_name_or_path,
                *model_args,
                output_loading_info=True,
                ignore_mismatched_sizes=True,
                **kwargs,
            )
        except (RuntimeError, SafetensorError) as error:
            raise CheckpointError(
                f"could not load the checkpoint {pretrained_model_name_or_path!s} into {cls.__name__}"
                f" (corrupt or unreadable weights file?): {error}"
            ) from error
        problems = []
        for kind in ("missing_keys", "unexpected_keys", "mismatched_keys"):
            if kind == "mismatched_keys" and allow_mismatched:
                continue
            keys = sorted(_describe_key(key) for key in loading_info.get(kind) or [])
            if keys:
                problems.append(f"{kind.replace('_', ' ')}: {', '.join(keys[:20])}" + (" ..." if len(keys) > 20 else ""))
        if loading_info.get("error_msgs"):
            problems.append("errors: " + "; ".join(str(message) for message in loading_info["error_msgs"]))
        if problems:
            raise CheckpointError(
                f"the checkpoint {pretrained_model_name_or_path!s} does not match its configuration"
                f" (refusing to load random weights): {' | '.join(problems)}"
            )
        return (model, loading_info) if want_loading_info else model
