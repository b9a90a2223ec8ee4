"""Building blocks of hfdae's denoising autoencoders.

- :class:`ResidualBlock`: the encoder and decoder blocks of the chapter's Figure 18.3: conv - norm -
  activation - conv - norm, plus a shortcut through a single convolution (or the identity where the
  shapes already match), optionally halving (encoder) or doubling (decoder) the resolution.
- :class:`Encoder` and :class:`Decoder`: levels of residual blocks; the decoder stacks the encoder's
  features of the same resolution onto its input when skip connections are on (Figure 18.1).
- :class:`OutputHead`: the output-range control of section 18.2 (linear, sigmoid, tanh, scaled tanh).
- Colour conversions sRGB <-> CIE LAB and a fixed Gaussian smoothing, for the chapter's "LAB with
  smoothed A and B" colour handling.

This file imports only ``torch`` so it can travel with the modeling code for ``trust_remote_code``.
"""

from __future__ import annotations

import math
from typing import Literal, Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ResidualBlock",
    "Encoder",
    "Decoder",
    "OutputHead",
    "make_norm",
    "make_activation",
    "rgb_to_lab",
    "lab_to_rgb",
    "gaussian_smooth",
]

Resample = Literal["down", "up", "none"]


def make_norm(kind: str, channels: int, groups: int = 8) -> nn.Module:
    """A normalisation layer: ``"batch"``, ``"group"`` (groups reduced to divide ``channels``) or ``"none"``."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        groups = math.gcd(groups, channels)
        return nn.GroupNorm(groups, channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm={kind!r} is not valid; choose one of ['batch', 'group', 'none']")


def make_activation(name: str) -> nn.Module:
    """An activation module by name: ``"relu"``, ``"leaky_relu"``, ``"silu"`` or ``"gelu"``."""
    activations = {"relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(0.1), "silu": nn.SiLU, "gelu": nn.GELU}
    if name not in activations:
        raise ValueError(f"activation={name!r} is not valid; choose one of {sorted(activations)}")
    return activations[name]()


def _resampling_conv(
    in_channels: int, out_channels: int, resample: Resample, upsample: str, bias: bool, shortcut: bool
) -> nn.Module:
    """The convolution that changes width and resolution: 3x3 on the main path, small on the shortcut."""
    if resample == "down":
        if shortcut:  # a 2x2 stride-2 kernel sees every input pixel, unlike a strided 1x1
            return nn.Conv2d(in_channels, out_channels, 2, stride=2, bias=bias)
        return nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1, bias=bias)
    if resample == "up":
        if upsample == "transposed":
            if shortcut:
                return nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2, bias=bias)
            # kernel 4 = 2 x stride: every output pixel gets the same number of taps (no checkerboard)
            return nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1, bias=bias)
        kernel = 1 if shortcut else 3
        return nn.Sequential(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, bias=bias),
        )
    kernel = 1 if shortcut else 3
    return nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, bias=bias)


class ResidualBlock(nn.Module):
    """The chapter's residual block (Figure 18.3), for the encoder and the decoder.

    ``out = act(norm(conv(act(norm(resample_conv(x))))) + shortcut(x))``, where ``resample_conv``
    halves (``"down"``), doubles (``"up"``) or keeps (``"none"``) the resolution, and the shortcut is
    a single convolution doing the same change (the identity when nothing changes).

    Args:
        in_channels: input feature width.
        out_channels: output feature width.
        resample: ``"down"`` (stride 2), ``"up"`` (x2) or ``"none"``.
        norm: ``"batch"``, ``"group"`` or ``"none"``.
        activation: activation name, see :func:`make_activation`.
        residual: add the shortcut path; without it the block is a plain convolution stack.
        upsample: ``"transposed"`` or ``"resize"``, how ``"up"`` blocks upsample.
        group_norm_groups: groups for ``norm="group"``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        resample: Resample = "none",
        norm: str = "batch",
        activation: str = "relu",
        residual: bool = True,
        upsample: str = "transposed",
        group_norm_groups: int = 8,
    ) -> None:
        super().__init__()
        bias = norm == "none"  # a bias before a normalisation layer is cancelled by it
        self.conv1 = _resampling_conv(in_channels, out_channels, resample, upsample, bias, shortcut=False)
        self.norm1 = make_norm(norm, out_channels, group_norm_groups)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=bias)
        self.norm2 = make_norm(norm, out_channels, group_norm_groups)
        self.activation = make_activation(activation)
        if not residual:
            self.shortcut = None
        elif in_channels == out_channels and resample == "none":
            self.shortcut = nn.Identity()
        else:
            self.shortcut = _resampling_conv(in_channels, out_channels, resample, upsample, True, shortcut=True)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        out = self.activation(self.norm1(self.conv1(hidden)))
        out = self.norm2(self.conv2(out))
        if self.shortcut is not None:
            out = out + self.shortcut(hidden)
        return self.activation(out)


def _block_kwargs(config) -> dict:
    return {
        "norm": config.norm,
        "activation": config.activation,
        "residual": config.residual_connections,
        "upsample": config.upsample,
        "group_norm_groups": config.group_norm_groups,
    }


class Encoder(nn.Module):
    """Levels of residual blocks; the first block of every level after the first halves the resolution.

    ``forward`` returns the feature map at the end of every level, finest first; the last one is the code.
    """

    def __init__(self, in_channels: int, widths: Sequence[int], blocks_per_level: Sequence[int], config) -> None:
        super().__init__()
        kwargs = _block_kwargs(config)
        self.levels = nn.ModuleList()
        previous = in_channels
        for level, (width, count) in enumerate(zip(widths, blocks_per_level)):
            blocks = [ResidualBlock(previous, width, "down" if level > 0 else "none", **kwargs)]
            blocks += [ResidualBlock(width, width, "none", **kwargs) for _ in range(count - 1)]
            self.levels.append(nn.Sequential(*blocks))
            previous = width

    def forward(self, hidden: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for level in self.levels:
            hidden = level(hidden)
            features.append(hidden)
        return features


class Decoder(nn.Module):
    """The encoder mirrored: the last block of every level but the finest doubles the resolution.

    With skip connections, each level's input is the upsampled decoder features stacked (along the
    channels) with the encoder's output at the same resolution, so the decoder sees both long-range
    and short-range features (the chapter's Figure 18.1).
    """

    def __init__(self, widths: Sequence[int], blocks_per_level: Sequence[int], skip_connections: bool, config) -> None:
        super().__init__()
        kwargs = _block_kwargs(config)
        self.skip_connections = skip_connections
        deepest = len(widths) - 1
        self.levels = nn.ModuleList()
        for level in range(deepest, -1, -1):
            width, count = widths[level], blocks_per_level[level]
            has_skip = skip_connections and level < deepest
            in_width = 2 * width if has_skip else width
            out_width = widths[level - 1] if level > 0 else width
            blocks = []
            for index in range(count):
                last = index == count - 1
                blocks.append(
                    ResidualBlock(
                        in_width if index == 0 else width,
                        out_width if last else width,
                        "up" if last and level > 0 else "none",
                        **kwargs,
                    )
                )
            self.levels.append(nn.Sequential(*blocks))

    def forward(self, encoder_features: list[torch.Tensor]) -> torch.Tensor:
        hidden = encoder_features[-1]
        for offset, level in enumerate(self.levels):
            if offset > 0 and self.skip_connections:
                hidden = torch.cat([hidden, encoder_features[-1 - offset]], dim=1)
            hidden = level(hidden)
        return hidden


class OutputHead(nn.Module):
    """Maps the network output ``z`` to the image range [0, 1] (the chapter's section 18.2).

    ``"linear"``: ``(z + 1) / 2``, the inverse of the input scaling; unbounded, so pair it with an
    out-of-range penalty. ``"sigmoid"``: ``sigmoid(z)``. ``"tanh"``: ``(tanh(z) + 1) / 2``.
    ``"scaled_tanh"``: ``a (tanh(z) + b)``, a range slightly wider than [0, 1] so gradients do not
    vanish at the ends.
    """

    def __init__(self, kind: str, scaled_tanh_a: float = 0.55, scaled_tanh_b: float = 0.9) -> None:
        super().__init__()
        self.kind = kind
        self.scaled_tanh_a = scaled_tanh_a
        self.scaled_tanh_b = scaled_tanh_b

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.kind == "linear":
            return (z + 1) / 2
        if self.kind == "sigmoid":
            return torch.sigmoid(z)
        if self.kind == "tanh":
            return (torch.tanh(z) + 1) / 2
        if self.kind == "scaled_tanh":
            return self.scaled_tanh_a * (torch.tanh(z) + self.scaled_tanh_b)
        raise ValueError(f"output_head={self.kind!r} is not valid")

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}"


# sRGB (D65) <-> CIE LAB. Written out in torch (not kornia) so the modeling code stays self-contained.
_RGB_TO_XYZ = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
_XYZ_TO_RGB = tuple(tuple(row) for row in torch.linalg.inv(torch.tensor(_RGB_TO_XYZ, dtype=torch.float64)).tolist())
_D65_WHITE = (0.950456, 1.0, 1.088754)
_LAB_EPSILON = 0.008856


def _mix_channels(image: torch.Tensor, matrix) -> torch.Tensor:
    weights = torch.tensor(matrix, dtype=image.dtype, device=image.device)
    return torch.einsum("ij,bjhw->bihw", weights, image)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1], shape [B, 3, H, W] -> CIE LAB (L in [0, 100], A and B roughly in [-128, 127])."""
    rgb = rgb.clamp(0, 1)
    linear = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055).pow(2.4), rgb / 12.92)
    xyz = _mix_channels(linear, _RGB_TO_XYZ)
    white = torch.tensor(_D65_WHITE, dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
    ratio = xyz / white
    f = torch.where(ratio > _LAB_EPSILON, ratio.clamp_min(_LAB_EPSILON).pow(1 / 3), 7.787 * ratio + 4 / 29)
    lightness = 116 * f[:, 1:2] - 16
    a = 500 * (f[:, 0:1] - f[:, 1:2])
    b = 200 * (f[:, 1:2] - f[:, 2:3])
    return torch.cat([lightness, a, b], dim=1)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """CIE LAB [B, 3, H, W] -> sRGB (not clamped: values slightly outside [0, 1] are kept for the loss)."""
    fy = (lab[:, 0:1] + 16) / 116
    fx = fy + lab[:, 1:2] / 500
    fz = fy - lab[:, 2:3] / 200
    f = torch.cat([fx, fy, fz], dim=1)
    ratio = torch.where(f > 6 / 29, f.pow(3), (f - 4 / 29) / 7.787)
    white = torch.tensor(_D65_WHITE, dtype=lab.dtype, device=lab.device).view(1, 3, 1, 1)
    xyz = ratio * white
    linear = _mix_channels(xyz, _XYZ_TO_RGB)
    return torch.where(
        linear > 0.0031308, 1.055 * linear.clamp_min(0.0031308).pow(1 / 2.4) - 0.055, 12.92 * linear
    )


def gaussian_smooth(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blur every channel with a separable Gaussian of ``sigma`` pixels (reflect padding, replicate if tiny)."""
    radius = max(1, int(math.ceil(3 * sigma)))
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32, device=image.device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = (kernel / kernel.sum()).to(image.dtype)
    batch, channels, height, width = image.shape
    mode = "reflect" if min(height, width) > radius else "replicate"
    # every channel as its own one-channel image: one fixed kernel (also exportable to ONNX)
    planes = F.pad(image.reshape(batch * channels, 1, height, width), (radius, radius, radius, radius), mode=mode)
    smoothed = F.conv2d(F.conv2d(planes, kernel.view(1, 1, 1, -1)), kernel.view(1, 1, -1, 1))
    return smoothed.reshape(batch, channels, height, width)
