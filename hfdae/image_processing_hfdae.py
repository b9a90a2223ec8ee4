"""The image processor of hfdae models: images of any kind in, model inputs out, and restorations back.

>>> from transformers import AutoImageProcessor, AutoModel
>>> processor = AutoImageProcessor.from_pretrained("hfdae/hfdae-colour")     # after `import hfdae`
>>> model = AutoModel.from_pretrained("hfdae/hfdae-colour")
>>> inputs = processor(photo)                                               # PIL, numpy or torch
>>> restored = processor.post_process_image_restoration(model(**inputs), [photo])[0]

:meth:`~DenoisingAutoencoderImageProcessor.preprocess` takes PIL images of any mode, H x W (x C) numpy
arrays and [C, H, W] torch tensors (uint8, uint16 or float in [0, 1]), rescales them to [0, 1] by their
bit depth, converts them to the model's channels (BT.601 luma for gray models), sets an alpha channel
aside, and pads them to the model's ``size_multiple``. Extra inputs go beside the pixels under the names
``DenoisingAutoencoder.forward`` takes: an inpainting mask (``extra_inputs``) and a noise level
(``noise_level``). :meth:`~DenoisingAutoencoderImageProcessor.post_process_image_restoration` undoes all of
it: the restoration comes back with the input's size, kind (PIL, numpy, torch), mode, channels, alpha and
bit depth.

This file imports only ``torch``, ``numpy``, ``PIL`` and ``transformers``, so that it can be uploaded
beside the weights for ``trust_remote_code`` loading.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from transformers import BaseImageProcessor, BatchFeature

__all__ = ["DenoisingAutoencoderImageProcessor", "ImageInput", "MaskInput"]

ImageInput = Union[Image.Image, np.ndarray, torch.Tensor]
MaskInput = Union[Image.Image, np.ndarray, torch.Tensor]

# ITU-R BT.601 luma, the weights PIL's convert("L") and hfdae.processing use.
_LUMA_WEIGHTS = (0.299, 0.587, 0.114)
# PIL modes restored through RGB and converted back to their own mode afterwards.
_MODES_VIA_RGB = ("CMYK", "YCbCr", "LAB", "HSV", "RGBX")
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")


@dataclass
class _ImageInfo:
    """What post-processing needs to give a restoration back in the form its input had."""

    kind: str  # "pil", "numpy" or "torch"
    height: int
    width: int
    channels: int  # colour channels: 1 or 3 (alpha not counted)
    mode: str | None = None  # PIL: the mode to give back
    dtype: Any = None  # numpy / torch: the dtype to give back
    shape: tuple[int, ...] | None = None  # numpy / torch: the shape to give back
    device: torch.device | None = None
    alpha: np.ndarray | torch.Tensor | None = None  # the untouched alpha channel, in the input's own dtype


class DenoisingAutoencoderImageProcessor(BaseImageProcessor):
    r"""Image processor of :class:`~hfdae.DenoisingAutoencoder` models.

    Saved as ``preprocessor_config.json`` beside the model; ``AutoImageProcessor`` finds it after ``import
    hfdae`` (or, without hfdae, through ``trust_remote_code=True`` where the repo ships this file). Build one
    for a model with :meth:`from_model_config`.

    Args:
        image_channels (`int`, defaults to 3):
            Channels the model restores: 3 (RGB and LAB models) or 1 (gray models). Inputs are converted
            (gray to RGB by repetition, RGB to gray by BT.601 luma) and converted back afterwards.
        size_multiple (`int`, defaults to 1):
            Pad height and width up to a multiple of this (the model's ``config.size_multiple``), at the
            bottom and right, by reflection as the model itself pads (replication for sides shorter than
            the pad). Post-processing crops the padding off.
        extra_input_channels (`int`, defaults to 0):
            The model's extra input channels: 1 for inpainting models, which take the mask of the holes.
        noise_level_input (`bool`, defaults to `False`):
            The model takes a noise level (``noise_level`` in ``preprocess``).
        do_pad (`bool`, defaults to `True`):
            Pad to ``size_multiple``. The model pads by itself, so this only matters for callers that need
            the padded size (batching of equal-size images, exported graphs).
        mask_fill (`float`, defaults to 0.0):
            The value holes are set to in the pixels when a mask is given (inpainting models were trained on
            holes set to 0).
    """

    model_input_names = ["pixel_values", "extra_inputs", "noise_level"]

    def __init__(
        self,
        image_channels: int = 3,
        size_multiple: int = 1,
        extra_input_channels: int = 0,
        noise_level_input: bool = False,
        do_pad: bool = True,
        mask_fill: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if image_channels not in (1, 3):
            raise ValueError(f"image_channels must be 1 or 3, got {image_channels!r}")
        if not isinstance(size_multiple, int) or size_multiple < 1:
            raise ValueError(f"size_multiple must be a positive integer, got {size_multiple!r}")
        if not isinstance(extra_input_channels, int) or extra_input_channels < 0:
            raise ValueError(f"extra_input_channels must be a non-negative integer, got {extra_input_channels!r}")
        if not 0.0 <= float(mask_fill) <= 1.0:
            raise ValueError(f"mask_fill must be in [0, 1], got {mask_fill!r}")
        self.image_channels = image_channels
        self.size_multiple = size_multiple
        self.extra_input_channels = extra_input_channels
        self.noise_level_input = bool(noise_level_input)
        self.do_pad = bool(do_pad)
        self.mask_fill = float(mask_fill)

    @classmethod
    def from_model_config(cls, config: Any, **kwargs: Any) -> "DenoisingAutoencoderImageProcessor":
        """The processor for a model with this :class:`~hfdae.DenoisingAutoencoderConfig`.

        Args:
            config: the model's configuration (or the model itself).
            **kwargs: other processor arguments (``do_pad``, ``mask_fill``).
        """
        config = getattr(config, "config", config)
        return cls(
            image_channels=config.image_channels,
            size_multiple=config.size_multiple,
            extra_input_channels=config.extra_input_channels,
            noise_level_input=config.noise_level_input,
            **kwargs,
        )

    def check_model_config(self, config: Any) -> None:
        """Raise ``ValueError`` naming the field where this processor does not fit the model's configuration."""
        config = getattr(config, "config", config)
        expected = {
            "image_channels": config.image_channels,
            "size_multiple": config.size_multiple,
            "extra_input_channels": config.extra_input_channels,
            "noise_level_input": config.noise_level_input,
        }
        for field, value in expected.items():
            if getattr(self, field) != value:
                raise ValueError(
                    f"the image processor has {field}={getattr(self, field)!r} but the model's configuration gives"
                    f" {value!r}; rebuild preprocessor_config.json with"
                    " DenoisingAutoencoderImageProcessor.from_model_config(model.config)"
                )

    # -- preprocessing ---------------------------------------------------------------------------------------

    def preprocess(
        self,
        images: ImageInput | Sequence[ImageInput],
        masks: MaskInput | Sequence[MaskInput] | None = None,
        noise_level: float | Sequence[float] | torch.Tensor | None = None,
        do_pad: bool | None = None,
        return_tensors: str | None = "pt",
        **kwargs: Any,
    ) -> BatchFeature:
        """Turn images (and their masks and noise levels) into the model's inputs.

        Args:
            images: one image or a list: PIL images of any mode; numpy arrays H x W or H x W x C (C = 1 to
                4, the 2nd or 4th channel being alpha), uint8, uint16 or float in [0, 1]; torch tensors
                [C, H, W] or [B, C, H, W], uint8 or float in [0, 1].
            masks: for inpainting, one mask per image, same height and width (PIL, numpy or torch; white,
                True or >= 0.5 after rescaling marks a hole). The holes' pixels are set to ``mask_fill``;
                models with an extra input channel get the mask as ``extra_inputs``, the others fill
                the holes blind.
            noise_level: for models with a noise-level input: sigma in the [0, 1] scale (25/255 for sigma
                25), one float for all images or one per image. A negative value means "unknown" (blind).
            do_pad: pad to ``size_multiple`` (default: ``self.do_pad``).
            return_tensors: ``"pt"`` stacks the images into one tensor (they must then be of one size);
                None gives lists of [1, C, H, W] tensors, one per image.

        Returns:
            A ``BatchFeature`` with ``pixel_values`` [B, C, H', W'] in [0, 1]; ``extra_inputs`` [B, E, H', W']
            for models with extra input channels (zeros where no mask is given); ``noise_level`` [B] when
            given. ``model(**inputs)`` takes it as it is.
        """
        if kwargs:
            raise TypeError(f"preprocess() got unexpected argument(s) {sorted(kwargs)}")
        if return_tensors not in ("pt", None):
            raise ValueError(f"return_tensors={return_tensors!r}: this processor gives 'pt' (stacked) or None (lists)")
        do_pad = self.do_pad if do_pad is None else do_pad
        image_list = _as_list(images)
        if not image_list:
            raise ValueError("no images given")
        mask_list = None if masks is None else _as_list(masks)
        if mask_list is not None and len(mask_list) != len(image_list):
            raise ValueError(f"{len(mask_list)} masks for {len(image_list)} images: give one mask per image")
        levels = self._noise_levels(noise_level, len(image_list))

        pixel_values, extra_inputs = [], []
        for index, image in enumerate(image_list):
            pixels = self.to_model_channels(_read(image, f"images[{index}]")[0])
            mask = None
            if mask_list is not None and mask_list[index] is not None:
                mask = _mask_to_tensor(mask_list[index], pixels.shape[-2:], f"masks[{index}]")
                pixels = pixels.masked_fill(mask.bool(), self.mask_fill)
            pixels = pixels.unsqueeze(0)
            if self.extra_input_channels:
                extra = mask if mask is not None else torch.zeros_like(pixels[0, :1])
                extra_inputs.append(extra.expand(self.extra_input_channels, -1, -1).unsqueeze(0))
            pixel_values.append(pixels)
        if do_pad:
            pixel_values = [_pad_to_multiple(pixels, self.size_multiple) for pixels in pixel_values]
            extra_inputs = [_pad_to_multiple(extra, self.size_multiple) for extra in extra_inputs]

        data: dict[str, Any] = {"pixel_values": pixel_values}
        if self.extra_input_channels:
            data["extra_inputs"] = extra_inputs
        if levels is not None:
            data["noise_level"] = levels
        if return_tensors == "pt":
            sizes = sorted({tuple(pixels.shape[-2:]) for pixels in pixel_values})
            if len(sizes) > 1:
                raise ValueError(
                    f"images of different sizes {sizes} cannot be stacked into one tensor; process them one at a"
                    " time, or pass return_tensors=None for lists"
                )
            data = {key: value if key == "noise_level" else torch.cat(value) for key, value in data.items()}
        return BatchFeature(data)

    def _noise_levels(self, noise_level, count: int) -> torch.Tensor | None:
        if noise_level is None:
            return None
        if not self.noise_level_input:
            raise ValueError(
                f"noise_level={noise_level!r} given, but this model has no noise-level input (it restores blind);"
                " leave noise_level out"
            )
        if isinstance(noise_level, str):
            raise ValueError(
                f"noise_level={noise_level!r}: give sigma in the [0, 1] scale; estimating it ('auto') is"
                " hfdae.restore's and the image-restoration pipeline's job"
            )
        levels = torch.as_tensor(noise_level, dtype=torch.float32).flatten()
        if levels.numel() == 1:
            levels = levels.expand(count).clone()
        if levels.numel() != count:
            raise ValueError(f"{levels.numel()} noise levels for {count} images: give one, or one per image")
        if torch.any(levels > 1):
            raise ValueError(
                f"noise_level {levels.max().item():g} is above 1: give sigma in the [0, 1] scale (25/255 for sigma 25)"
            )
        return levels

    def to_model_channels(self, pixels: torch.Tensor) -> torch.Tensor:
        """A [C, H, W] or [B, C, H, W] float image with 1 or 3 channels -> the model's ``image_channels``."""
        return _convert_channels(pixels, self.image_channels)

    # -- post-processing -------------------------------------------------------------------------------------

    def post_process_image_restoration(
        self,
        outputs: Any,
        images: ImageInput | Sequence[ImageInput],
        masks: MaskInput | Sequence[MaskInput] | None = None,
    ) -> list[ImageInput]:
        """Give restorations back in the form of the images they came from.

        Args:
            outputs: the model's output (its ``reconstruction``), or a [B, C, H', W'] tensor / list of
                [1, C, H', W'] tensors in [0, 1] (padded or not).
            images: the images given to :meth:`preprocess`, in the same order.
            masks: the masks given to :meth:`preprocess`: outside the holes the result keeps the input's
                pixels exactly (for modes converted through RGB, such as CMYK, up to that conversion).

        Returns:
            One restored image per input, cropped to its size, clamped to [0, 1] and in its form: a PIL image
            in the input's mode (``P`` and ``PA`` come back as ``RGB`` / ``RGBA``, ``1`` as ``L``: they cannot
            hold a restoration; the 16-bit modes as ``I;16``), a numpy array or torch tensor of the input's
            shape and dtype (and device). Gray stays gray and the alpha channel is the input's, untouched.
        """
        restored = getattr(outputs, "reconstruction", outputs)
        if isinstance(restored, torch.Tensor):
            restored = list(restored.split(1)) if restored.ndim == 4 else [restored.unsqueeze(0)]
        image_list = _as_list(images)
        if len(restored) != len(image_list):
            raise ValueError(f"{len(restored)} restorations for {len(image_list)} images")
        mask_list = [None] * len(image_list) if masks is None else _as_list(masks)
        if len(mask_list) != len(image_list):
            raise ValueError(f"{len(mask_list)} masks for {len(image_list)} images: give one mask per image")
        results = []
        for index, (output, image, mask) in enumerate(zip(restored, image_list, mask_list)):
            original, info = _read(image, f"images[{index}]")
            if output.shape[-2] < info.height or output.shape[-1] < info.width:
                raise ValueError(f"restoration {index} is {tuple(output.shape[-2:])}, smaller than its image"
                                 f" ({info.height}, {info.width})")
            output = output.detach().float().cpu()[..., : info.height, : info.width].reshape(-1, info.height, info.width)
            output = _convert_channels(output, info.channels).clamp(0, 1)
            if mask is not None:  # the input's own values outside the holes: they quantise back to themselves
                holes = _mask_to_tensor(mask, (info.height, info.width), f"masks[{index}]").bool()
                output = torch.where(holes, output, original)
            results.append(_tensor_to_like(output, info))
        return results


# --- reading inputs -----------------------------------------------------------------------------------------------


def _as_list(items) -> list:
    if isinstance(items, (list, tuple)):
        return list(items)
    if isinstance(items, torch.Tensor) and items.ndim == 4:
        return list(items.unbind(0))
    return [items]


def _pil_pixels(image: Image.Image, name: str) -> tuple[np.ndarray, np.ndarray | None, str]:
    """A PIL image -> (H x W x C array of its own bit depth, alpha or None, the mode to give back)."""
    mode = image.mode
    give_back = mode
    if mode == "P":
        give_back = "RGBA" if "transparency" in image.info else "RGB"
        image = image.convert(give_back)
    elif mode == "PA":
        image, give_back = image.convert("RGBA"), "RGBA"
    elif mode == "1":
        image, give_back = image.convert("L"), "L"
    elif mode in ("La", "RGBa"):  # premultiplied alpha: undo it before splitting
        image = image.convert(mode.upper())
        give_back = mode.upper()
    elif mode in _MODES_VIA_RGB:
        image = image.convert("RGB")
    alpha = None
    if image.mode in ("RGBA", "LA"):
        alpha = np.asarray(image.getchannel("A"))
        image = image.convert("RGB" if image.mode == "RGBA" else "L")
    if image.mode in _SIXTEEN_BIT_MODES:
        pixels, give_back = np.asarray(image).astype(np.uint16), "I;16"
    elif image.mode == "I":
        values = np.asarray(image)
        if values.min() < 0 or values.max() > 65535:
            raise ValueError(f"{name}: a mode I image with values outside 0..65535 (min {values.min()}, max"
                             f" {values.max()}) is not a 16-bit image")
        pixels = values.astype(np.uint16)
    elif image.mode == "F":
        pixels = np.asarray(image, dtype=np.float32)
    elif image.mode in ("L", "RGB"):
        pixels = np.asarray(image)
    else:
        raise ValueError(f"{name}: PIL mode {mode!r} is not supported; convert the image to RGB or L first")
    return (pixels[:, :, None] if pixels.ndim == 2 else pixels), alpha, give_back


def _split_array(array: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray | None]:
    """H x W or H x W x C (C = 1 to 4) -> (H x W x C' colour, H x W alpha or None)."""
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"{name}: an image array must be H x W or H x W x C with C in 1-4 (channels last), got"
                         f" shape {array.shape}")
    if array.shape[2] in (2, 4):
        return array[:, :, :-1], array[:, :, -1]
    return array, None


def _rescale_array(array: np.ndarray, name: str) -> np.ndarray:
    """uint8 / uint16 / float in [0, 1] -> float32 in [0, 1]."""
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255
    if array.dtype == np.uint16:
        return array.astype(np.float32) / 65535
    if np.issubdtype(array.dtype, np.floating):
        values = array.astype(np.float32)
        if values.size and (not np.isfinite(values).all() or values.min() < 0 or values.max() > 1):
            raise ValueError(f"{name}: a float image must hold values in [0, 1], got min {np.nanmin(values):g},"
                             f" max {np.nanmax(values):g} (non-finite values included); rescale it first")
        return values
    raise ValueError(f"{name}: {array.dtype} images are not supported; give uint8, uint16 or float in [0, 1]")


def _tensor_channels_first(tensor: torch.Tensor, name: str) -> torch.Tensor:
    """A torch image [C, H, W] or [H, W] -> [C, H, W] with C in 1-4."""
    if tensor.ndim == 2:
        tensor = tensor.unsqueeze(0)
    if tensor.ndim != 3 or tensor.shape[0] not in (1, 2, 3, 4):
        raise ValueError(f"{name}: a tensor image must be [C, H, W] with C in 1-4 (channels first) or [H, W], got"
                         f" shape {tuple(tensor.shape)}")
    return tensor


def _rescale_tensor(tensor: torch.Tensor, name: str) -> torch.Tensor:
    if tensor.dtype == torch.uint8:
        return tensor.float() / 255
    if tensor.dtype == torch.uint16:
        return tensor.to(torch.int32).float() / 65535
    if torch.is_floating_point(tensor):
        values = tensor.float()
        if values.numel() and (not torch.isfinite(values).all() or values.min() < 0 or values.max() > 1):
            raise ValueError(f"{name}: a float image must hold values in [0, 1], got min {values.min().item():g},"
                             f" max {values.max().item():g}; rescale it first")
        return values
    raise ValueError(f"{name}: {tensor.dtype} tensors are not supported; give uint8 or float in [0, 1]")


def _read(image: ImageInput, name: str) -> tuple[torch.Tensor, _ImageInfo]:
    """Any supported image -> ([C, H, W] float32 in [0, 1] with C = 1 or 3, what is needed to give it back)."""
    if isinstance(image, Image.Image):
        pixels, alpha, mode = _pil_pixels(image, name)
        info = _ImageInfo("pil", pixels.shape[0], pixels.shape[1], pixels.shape[2], mode=mode, dtype=pixels.dtype,
                          alpha=alpha)
        return torch.from_numpy(np.ascontiguousarray(_rescale_array(pixels, name).transpose(2, 0, 1))), info
    if isinstance(image, np.ndarray):
        colour, alpha = _split_array(image, name)
        info = _ImageInfo("numpy", colour.shape[0], colour.shape[1], colour.shape[2], dtype=image.dtype,
                          shape=image.shape, alpha=alpha)
        return torch.from_numpy(np.ascontiguousarray(_rescale_array(colour, name).transpose(2, 0, 1))), info
    if isinstance(image, torch.Tensor):
        tensor = _tensor_channels_first(image, name).detach()
        colour, alpha = (tensor[:-1], tensor[-1]) if tensor.shape[0] in (2, 4) else (tensor, None)
        info = _ImageInfo("torch", tensor.shape[1], tensor.shape[2], colour.shape[0], dtype=image.dtype,
                          shape=tuple(image.shape), device=image.device, alpha=alpha)
        return _rescale_tensor(colour.cpu(), name), info
    raise TypeError(f"{name}: expected a PIL image, a numpy array or a torch tensor, got {type(image).__name__}")


def _mask_to_tensor(mask: MaskInput, size: Sequence[int], name: str) -> torch.Tensor:
    """A mask (PIL, numpy, torch; any channels: a hole in any channel counts) -> [1, H, W] float of 0 and 1."""
    if isinstance(mask, Image.Image):
        mask = np.asarray(mask.convert("L"))
    if isinstance(mask, np.ndarray):
        array = mask[:, :, None] if mask.ndim == 2 else mask
        if array.ndim != 3:
            raise ValueError(f"{name}: a mask array must be H x W or H x W x C, got shape {mask.shape}")
        holes = torch.from_numpy(array.astype(bool) if array.dtype == bool else _rescale_array(array, name) >= 0.5)
        holes = holes.permute(2, 0, 1)
    elif isinstance(mask, torch.Tensor):
        tensor = mask.unsqueeze(0) if mask.ndim == 2 else mask
        if tensor.ndim != 3:
            raise ValueError(f"{name}: a mask tensor must be [H, W] or [C, H, W], got shape {tuple(mask.shape)}")
        tensor = tensor.detach().cpu()
        holes = tensor if tensor.dtype == torch.bool else _rescale_tensor(tensor, name) >= 0.5
    else:
        raise TypeError(f"{name}: expected a PIL image, a numpy array or a torch tensor, got {type(mask).__name__}")
    if tuple(holes.shape[-2:]) != tuple(size):
        raise ValueError(f"{name} is {tuple(holes.shape[-2:])} (height, width) but its image is {tuple(size)}")
    return holes.any(dim=0, keepdim=True).float()


# --- padding and channels -------------------------------------------------------------------------------------------


def _pad_to_multiple(images: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad [B, C, H, W] at the bottom and right to a multiple, as the model pads its input."""
    height, width = images.shape[-2:]
    pad_height, pad_width = (-height) % multiple, (-width) % multiple
    if pad_height == 0 and pad_width == 0:
        return images
    # reflect keeps image statistics at the border; it needs the pad to be smaller than the side
    mode = "reflect" if pad_height < height and pad_width < width else "replicate"
    return F.pad(images, (0, pad_width, 0, pad_height), mode=mode)


def _convert_channels(pixels: torch.Tensor, channels: int) -> torch.Tensor:
    have = pixels.shape[-3]
    if have == channels:
        return pixels
    if have == 1 and channels == 3:
        return pixels.expand(*pixels.shape[:-3], 3, *pixels.shape[-2:])
    if have == 3 and channels == 1:
        # in float64, so that a gray image repeated to RGB comes back exactly
        weights = torch.tensor(_LUMA_WEIGHTS, dtype=torch.float64, device=pixels.device).view(3, 1, 1)
        return (pixels.double() * weights).sum(dim=-3, keepdim=True).to(pixels.dtype)
    raise ValueError(f"cannot convert a {have}-channel image to {channels} channels")


# --- giving results back ------------------------------------------------------------------------------------------


def _quantize(values: np.ndarray, dtype) -> np.ndarray:
    if dtype == np.uint8:
        return np.rint(values * 255).astype(np.uint8)
    if dtype == np.uint16:
        return np.rint(values * 65535).astype(np.uint16)
    return values.astype(dtype)


def _tensor_to_like(output: torch.Tensor, info: _ImageInfo) -> ImageInput:
    """[C, H, W] float in [0, 1] (C = the input's colour channels) -> the input's kind, dtype, mode and alpha."""
    if info.kind == "torch":
        if info.dtype == torch.uint8:
            result = torch.round(output * 255).to(torch.uint8)
        elif info.dtype == torch.uint16:
            result = torch.round(output * 65535).to(torch.int32).to(torch.uint16)
        else:
            result = output.to(info.dtype)
        if info.alpha is not None:
            result = torch.cat([result, info.alpha.cpu().unsqueeze(0)])
        return result.reshape(info.shape).to(info.device)
    values = output.numpy().transpose(1, 2, 0)
    array = _quantize(values, info.dtype)
    if info.kind == "numpy":
        if info.alpha is not None:
            array = np.concatenate([array, info.alpha[:, :, None]], axis=2)
        return array.reshape(info.shape)
    # PIL
    mode = info.mode
    if mode == "I;16":
        return Image.fromarray(array[:, :, 0])  # uint16 -> I;16
    if mode == "I":
        return Image.fromarray(array[:, :, 0].astype(np.int32))
    if mode == "F":
        return Image.fromarray(array[:, :, 0].astype(np.float32))
    image = Image.fromarray(array[:, :, 0] if info.channels == 1 else array)
    if info.alpha is not None:
        image.putalpha(Image.fromarray(info.alpha))
    if mode in ("La", "RGBa") or mode in _MODES_VIA_RGB:
        image = image.convert(mode)
    return image
