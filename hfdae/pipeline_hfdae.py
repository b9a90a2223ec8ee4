"""The ``image-restoration`` pipeline: transformers' ``pipeline()`` for hfdae models.

transformers 5 removed its ``image-to-image`` task, so hfdae registers its own task, ``image-restoration``,
in transformers' pipeline registry (on ``import hfdae``), and model repos pushed by hfdae name this file in
their ``config.json`` (``custom_pipelines``), so that the same call works without hfdae installed, through
``trust_remote_code=True``:

>>> from transformers import pipeline
>>> restorer = pipeline("image-restoration", model="hfdae/hfdae-colour")       # after `import hfdae`
>>> restored = restorer("noisy.png", strength="auto")["image"]
>>> inpainted = pipeline("image-restoration", model="hfdae/hfdae-inpaint")(photo, mask=holes)["image"]

The restoration itself is :func:`hfdae.restore` (tiling, self-ensemble, precision, the noise-level
estimate); the conversions are :class:`~hfdae.image_processing_hfdae.DenoisingAutoencoderImageProcessor`'s.
"""

from __future__ import annotations

import io
import os
from typing import Any

import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from transformers import Pipeline

from .image_processing_hfdae import DenoisingAutoencoderImageProcessor
from .inference import estimate_noise_level, restore

__all__ = ["TASK", "CUSTOM_PIPELINES", "ImageRestorationPipeline"]

TASK = "image-restoration"
# config.json's entry for trust_remote_code users (transformers' own format, as Pipeline.save_pretrained writes it)
CUSTOM_PIPELINES = {
    TASK: {"impl": "pipeline_hfdae.ImageRestorationPipeline", "pt": ["AutoModel"], "tf": [], "type": "image"}
}


_UNSET = object()  # tile_size=None means "never tile", so "not given" needs its own marker


class _Originals:
    """The caller's image and mask, carried past the pipeline's device moves untouched."""

    def __init__(self, image: Any, mask: Any) -> None:
        self.image, self.mask = image, mask


class ImageRestorationPipeline(Pipeline):
    """Restore images with an hfdae model: denoise, deblur, inpaint (with a mask), in tiles when large.

    Call it on one image or a list: a PIL image of any mode, a numpy array (H x W x C, uint8, uint16 or
    float in [0, 1]), a torch tensor ([C, H, W]), a file path or an http(s) URL, or a dict ``{"image": ...,
    "mask": ...}``. Each result is a dict: ``"image"``, the restoration in the input's form (PIL in the
    input's mode, or an array / tensor of its shape and dtype; alpha and bit depth kept; paths and URLs give
    PIL images, turned upright by their EXIF orientation), and ``"strength"``, the noise sigma (0-255) the
    model was given, ``None`` when it restored blind.

    Args (of the call):
        mask: the holes to fill (white / True / >= 0.5 marks a hole), same size as the image: the holes are
            set to 0, models with a mask input get the mask, and outside the holes the result is the input,
            exactly. Models without a mask input fill the holes blind.
        strength: for models with a noise-level input: the noise sigma in 0-255 units (25 for sigma
            25/255), ``"auto"`` to estimate it per image (:func:`hfdae.estimate_noise_level`), or None to
            let the model judge (blind). A larger sigma smooths more.
        tile_size: restore in overlapping tiles of this size (bounded memory): ``"auto"`` (the default)
            tiles images above 4 megapixels, None never tiles.
        tile_overlap: pixels shared by neighbouring tiles (default 64).
        self_ensemble: average over the 8 flips and rotations (8x the time, a little better).
        precision: ``"auto"`` (bf16 where the hardware has it natively), ``"fp32"`` or ``"bf16"``.
        timeout: seconds to wait for an image URL.
    """

    _load_processor = False
    _load_image_processor = None  # soft: a folder without preprocessor_config.json gets one from the model config
    _load_feature_extractor = False
    _load_tokenizer = False
    _load_video_processor = False  # else transformers looks for one in preprocessor_config.json (and its auto_map)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.image_processor is None:
            self.image_processor = DenoisingAutoencoderImageProcessor.from_model_config(self.model.config)
        elif hasattr(self.image_processor, "check_model_config"):
            self.image_processor.check_model_config(self.model.config)
        else:
            raise TypeError(f"the image-restoration pipeline needs hfdae's image processor, got"
                            f" {type(self.image_processor).__name__}")

    def __call__(self, inputs: Any, *args: Any, batch_size: int | None = None, **kwargs: Any) -> Any:
        if (batch_size or self._batch_size or 1) > 1:
            raise ValueError(
                f"batch_size={batch_size or self._batch_size}: the image-restoration pipeline restores one image per"
                " forward pass (images differ in size, and large ones go in tiles); for batches of one size use"
                " hfdae.restore, for a whole dataset hfdae.restore_dataset"
            )
        return super().__call__(inputs, *args, **kwargs)

    def _sanitize_parameters(
        self,
        mask: Any = None,
        strength: float | str | None = None,
        tile_size: int | str | None = _UNSET,
        tile_overlap: int | None = None,
        self_ensemble: bool | None = None,
        precision: str | None = None,
        timeout: float | None = None,
    ) -> tuple[dict, dict, dict]:
        # only what is given: a call's arguments update those the pipeline was made with
        preprocess = {name: value for name, value in (("mask", mask), ("timeout", timeout)) if value is not None}
        forward: dict[str, Any] = {} if tile_size is _UNSET else {"tile_size": tile_size}
        if strength is not None:
            forward["noise_level"] = _noise_level(strength)
        for name, value in (("tile_overlap", tile_overlap), ("self_ensemble", self_ensemble), ("precision", precision)):
            if value is not None:
                forward[name] = value
        return preprocess, forward, {}

    def preprocess(self, inputs: Any, mask: Any = None, timeout: float | None = None) -> dict[str, Any]:
        if isinstance(inputs, dict):
            unknown = set(inputs) - {"image", "mask"}
            if "image" not in inputs or unknown:
                raise ValueError(f"an input dict holds 'image' and optionally 'mask'; got keys {sorted(inputs)}")
            inputs, mask = inputs["image"], inputs.get("mask", mask)
        image = _load(inputs, timeout, "image")
        mask = None if mask is None else _load(mask, timeout, "mask")
        features = self.image_processor(image, masks=None if mask is None else [mask], do_pad=False,
                                        return_tensors="pt")
        return {"features": features, "originals": _Originals(image, mask)}

    def _forward(self, model_inputs: dict[str, Any], noise_level: float | str | None = None, **restore_options: Any):
        features = model_inputs["features"]
        pixel_values = features["pixel_values"]
        if noise_level == "auto" and self.model.config.noise_level_input:
            noise_level = estimate_noise_level(pixel_values)  # what restore's "auto" does, kept for the result
        restored = restore(self.model, pixel_values, extra_inputs=features.get("extra_inputs"),
                           noise_level=noise_level, **restore_options)
        sigma = None
        if torch.is_tensor(noise_level):
            sigma = float(noise_level.flatten()[0]) * 255
        elif isinstance(noise_level, float):
            sigma = noise_level * 255
        return {"reconstruction": restored, "strength": sigma, "originals": model_inputs["originals"]}

    def postprocess(self, model_outputs: dict[str, Any]) -> dict[str, Any]:
        originals = model_outputs["originals"]
        image = self.image_processor.post_process_image_restoration(
            model_outputs["reconstruction"], [originals.image],
            masks=None if originals.mask is None else [originals.mask])[0]
        return {"image": image, "strength": model_outputs["strength"]}


def _noise_level(strength: float | str) -> float | str:
    """The pipeline's ``strength`` (sigma in 0-255, or "auto") -> restore's ``noise_level`` ([0, 1] scale)."""
    if isinstance(strength, str):
        if strength != "auto":
            raise ValueError(f"strength={strength!r}: give a noise sigma in 0-255 units, 'auto' or None")
        return strength
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0 <= strength <= 255:
        raise ValueError(f"strength={strength!r}: give a noise sigma in 0-255 units (25 for sigma 25/255), 'auto' or"
                         " None")
    return float(strength) / 255


def _load(source: Any, timeout: float | None, what: str) -> Any:
    """A path or an http(s) URL -> the PIL image, upright by its EXIF orientation; anything else as it is."""
    if not isinstance(source, (str, os.PathLike)):
        return source
    text = os.fspath(source)
    opened: Any = text
    if text.startswith(("http://", "https://")):
        import httpx

        try:
            response = httpx.get(text, timeout=timeout, follow_redirects=True)
            response.raise_for_status()
        except httpx.HTTPError as error:
            raise OSError(f"{what} {text}: could not be downloaded ({error})") from error
        opened = io.BytesIO(response.content)
    try:
        image = Image.open(opened)
        image.load()  # decode now, so a truncated file fails here, named
    except FileNotFoundError as error:
        raise FileNotFoundError(f"{what} {text}: no such file") from error
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ValueError(f"{what} {text}: not a readable image ({error})") from error
    return ImageOps.exif_transpose(image)
