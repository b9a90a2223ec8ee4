"""Image <-> tensor conversion: the one place that knows about image modes, bit depths and value ranges.

Convention used everywhere in hfdae: a model tensor is float, shape [B, C, H, W] (or [C, H, W]),
values in [0, 1], C = 3 (RGB) or 1 (gray). Arrays are H x W x C, uint8 (8-bit), uint16 (16-bit) or
float in [0, 1]. Files and PIL images of any common mode (1, L, LA, I;16, I, P, RGB, RGBA, CMYK,
YCbCr, 16-bit colour ...) convert to arrays; the alpha channel is kept aside so it can be written back
unchanged. Reading and writing files (bit depth, EXIF, ICC, lossless) live in :mod:`hfdae.image_io`,
re-exported here.
Colour-space conversions (LAB) live with the model in :mod:`hfdae.blocks` and are re-exported here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union

import numpy as np
import torch
from PIL import Image

from .blocks import lab_to_rgb, rgb_to_lab
from .image_io import (
    IMAGE_SUFFIXES,
    ImageReadError,
    ImageRecord,
    ImageWriteError,
    list_image_files,
    read_image,
    unwritable_reason,
    write_image,
)

__all__ = [
    "IMAGE_SUFFIXES",
    "ImageReadError",
    "ImageWriteError",
    "ImageRecord",
    "ImageLike",
    "read_image",
    "image_to_array",
    "convert_channels",
    "array_to_tensor",
    "to_tensor",
    "quantize_8bit",
    "tensor_to_array",
    "tensor_to_image",
    "save_image",
    "unwritable_reason",
    "center_crop",
    "list_image_files",
    "rgb_to_lab",
    "lab_to_rgb",
]

# BT.601 luma, the weights PIL's convert("L") uses, so gray conversions agree everywhere.
_LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float64)

ImageLike = Union[str, os.PathLike, Image.Image, np.ndarray, torch.Tensor]


def convert_channels(array: np.ndarray, channels: int) -> np.ndarray:
    """Convert an H x W x C array to ``channels`` (1: BT.601 luma; 3: gray repeated), keeping the dtype."""
    if array.ndim == 2:
        array = array[:, :, None]
    have = array.shape[2]
    if have == channels:
        return array
    if have == 4:  # an RGBA array given directly: drop alpha
        return convert_channels(array[:, :, :3], channels)
    if have == 1 and channels == 3:
        return np.repeat(array, 3, axis=2)
    if have == 3 and channels == 1:
        luma = array.astype(np.float64) @ _LUMA_WEIGHTS
        if np.issubdtype(array.dtype, np.integer):
            luma = np.clip(np.rint(luma), 0, np.iinfo(array.dtype).max)
        return luma.astype(array.dtype)[:, :, None]
    raise ValueError(f"cannot convert a {have}-channel image to {channels} channels")


def image_to_array(image: ImageLike, channels: int | None = None) -> np.ndarray:
    """Any image (path, PIL, array) -> H x W x C array with its own dtype (uint8, uint16 or float)."""
    if isinstance(image, np.ndarray):
        array = image
    elif isinstance(image, torch.Tensor):
        raise TypeError("image_to_array takes files, PIL images or arrays; use tensor_to_array for tensors")
    else:
        array = read_image(image).pixels
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3:
        raise ValueError(f"an image array must be H x W or H x W x C, got shape {array.shape}")
    return array if channels is None else convert_channels(array, channels)


def array_to_tensor(array: np.ndarray) -> torch.Tensor:
    """H x W x C array (uint8, uint16 or float in [0, 1]) -> float32 tensor [C, H, W] in [0, 1]."""
    if array.ndim == 2:
        array = array[:, :, None]
    if array.dtype == np.uint8:
        scale = 255.0
    elif array.dtype == np.uint16:
        scale = 65535.0
    elif np.issubdtype(array.dtype, np.floating):
        scale = 1.0
    else:
        raise ValueError(f"unsupported image array dtype {array.dtype}; use uint8, uint16 or float in [0, 1]")
    # astype copies, so the tensor never aliases a read-only array that PIL handed out
    tensor = torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1).astype(np.float32)))
    return tensor / scale if scale != 1.0 else tensor


def to_tensor(image: ImageLike, channels: int | None = None) -> torch.Tensor:
    """Any image (path, PIL, array, or a [C, H, W] / [B, C, H, W] tensor) -> float tensor [B, C, H, W] in [0, 1].

    Args:
        image: the image. A tensor is taken to be in [0, 1] already.
        channels: convert to 1 or 3 channels; None keeps the image's own.
    """
    if isinstance(image, torch.Tensor):
        if not torch.is_floating_point(image):
            raise ValueError(f"a {image.dtype} tensor is not an image in [0, 1]; divide it by 255 (or 65535) first")
        tensor = image if image.ndim == 4 else image.unsqueeze(0)
        if channels is not None and tensor.shape[1] != channels:
            if tensor.shape[1] == 1 and channels == 3:
                tensor = tensor.expand(-1, 3, -1, -1)
            elif tensor.shape[1] == 3 and channels == 1:
                weights = torch.tensor(_LUMA_WEIGHTS, dtype=tensor.dtype, device=tensor.device)
                tensor = torch.einsum("c,bchw->bhw", weights, tensor).unsqueeze(1)
            else:
                raise ValueError(f"cannot convert a {tensor.shape[1]}-channel tensor to {channels} channels")
        return tensor.float()
    return array_to_tensor(image_to_array(image, channels)).unsqueeze(0)


def quantize_8bit(image: torch.Tensor) -> torch.Tensor:
    """Clip to [0, 1] and round to 8-bit levels, staying a float tensor: what saving as 8 bits keeps."""
    return torch.round(image.float().clamp(0, 1) * 255) / 255


def tensor_to_array(tensor: torch.Tensor, bit_depth: int = 8) -> np.ndarray:
    """Float tensor [C, H, W] or [1, C, H, W] in [0, 1] -> H x W x C array, clamped and rounded.

    Args:
        bit_depth: 8 (uint8), 16 (uint16) or 32 (float32, clamped to [0, 1]).
    """
    if tensor.ndim == 4:
        if tensor.shape[0] != 1:
            raise ValueError(f"tensor_to_array takes one image, got a batch of {tensor.shape[0]}")
        tensor = tensor[0]
    values = tensor.detach().float().clamp(0, 1).cpu().numpy().transpose(1, 2, 0)
    if bit_depth == 8:
        return np.rint(values * 255).astype(np.uint8)  # the same levels as quantize_8bit
    if bit_depth == 16:
        return np.rint(values * 65535).astype(np.uint16)
    if bit_depth == 32:
        return values.astype(np.float32)
    raise ValueError(f"bit_depth must be 8, 16 or 32, got {bit_depth}")


def tensor_to_image(tensor: torch.Tensor, bit_depth: int = 8, alpha: np.ndarray | None = None) -> Image.Image:
    """Float tensor in [0, 1] -> PIL image: ``L``, ``RGB``, ``LA``, ``RGBA``, or ``I;16`` for 16-bit gray.

    PIL has no 16-bit colour or 16-bit-with-alpha modes: those are written with 8 bits.
    """
    channels = tensor.shape[-3]
    if bit_depth == 16 and channels == 1 and alpha is None:
        return Image.fromarray(tensor_to_array(tensor, 16)[:, :, 0])
    array = tensor_to_array(tensor, 8)
    image = Image.fromarray(array[:, :, 0] if channels == 1 else array)
    if alpha is not None:
        alpha8 = alpha if alpha.dtype == np.uint8 else np.rint(alpha.astype(np.float64) / 257).astype(np.uint8)
        image.putalpha(Image.fromarray(alpha8))
    return image


def save_image(
    tensor: torch.Tensor, path: str | os.PathLike, like: ImageRecord | None = None, bit_depth: int | None = None
) -> Path:
    """Write a [C, H, W] or [1, C, H, W] tensor in [0, 1] to ``path`` (format from the suffix), atomically.

    With ``like`` (the :class:`ImageRecord` the input came from), the output keeps its channel count
    (a gray input stays gray), alpha channel, bit depth (16-bit gray and colour PNG/TIFF stay 16-bit;
    formats without 16 bits get 8), EXIF and orientation, ICC profile and lossless-ness; see
    :func:`hfdae.image_io.write_image`.

    Raises:
        ImageWriteError: naming the path when it cannot be written.
    """
    tensor = tensor[0] if tensor.ndim == 4 else tensor
    alpha = None
    if like is not None:
        tensor = to_tensor(tensor, like.channels)[0]
        alpha = like.alpha
        bit_depth = bit_depth or like.bit_depth
    bit_depth = 16 if bit_depth == 16 else 8  # float (32) images are written with 8 bits: no format here holds floats
    return write_image(tensor_to_array(tensor, bit_depth), path, alpha=alpha, like=like)


def center_crop(image: torch.Tensor, size: int | None) -> torch.Tensor:
    """The central ``size`` x ``size`` part of a [..., H, W] tensor (all of a side shorter than ``size``; None: whole)."""
    if size is None:
        return image
    height, width = image.shape[-2:]
    top, left = max(0, (height - size) // 2), max(0, (width - size) // 2)
    return image[..., top : top + size, left : left + size]
