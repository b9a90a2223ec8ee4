"""Export a model to ONNX with dynamic batch, height and width.

>>> hfdae.export_onnx(hfdae.load_model(), "model.onnx")

The exported graph takes ``pixel_values`` [B, C, H, W] in [0, 1] (and ``extra_inputs`` for models
with extra input channels, and ``noise_level`` [B, 1, H, W] for models with a noise-level input: sigma
in [0, 1], or -1 where unknown for blind restoration) and returns ``reconstruction``, the same as the PyTorch model in eval
mode, with batch norm folded into the convolutions, for images whose sides are at least the model's
size multiple (``config.size_multiple``: padding reflects, as in PyTorch, and cannot exceed the side). Needs the ``onnx`` extra (onnx; onnxruntime to
run or check it).
"""

from __future__ import annotations

import copy
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from .fusion import fold_batch_norm
from .modeling_hfdae import DenoisingAutoencoder

__all__ = ["export_onnx", "check_onnx", "ONNX_OPSET"]

ONNX_OPSET = 18


class _ReconstructionOnly(nn.Module):
    """The model's forward reduced to tensors in, reconstruction out (what ONNX can express); the
    positional inputs are the model's keyword inputs named in ``input_names``."""

    def __init__(self, model: DenoisingAutoencoder, input_names: list[str]) -> None:
        super().__init__()
        self.model = model
        self.input_names = input_names

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.model(**dict(zip(self.input_names, inputs))).reconstruction


def export_onnx(model: DenoisingAutoencoder, path: str | os.PathLike, example_size: int = 64) -> Path:
    """Write ``model`` as an ONNX file with dynamic batch, height and width.

    Args:
        model: the model (not changed; batch norm is folded in a copy).
        path: the ``.onnx`` file to write (its folder is created).
        example_size: side of the example input used for tracing; any size works afterwards.

    Returns:
        The path written.

    Raises:
        ImportError: ``onnx`` is not installed (``pip install hfdae[onnx]``).
    """
    try:
        import onnx  # noqa: F401  (torch.onnx.export needs it)
    except ImportError as error:
        raise ImportError(f"ONNX export needs onnx: pip install 'hfdae[onnx]' ({error})") from error
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    config = model.config
    # One more than a multiple of the model's size multiple, so the padding (and cropping) is traced too.
    multiple = config.size_multiple
    height = width = multiple * max(1, -(-example_size // multiple)) + 1
    pixel_values = torch.rand(1, config.image_channels, height, width)
    dynamic_axes = {"pixel_values": {0: "batch", 2: "height", 3: "width"},
                    "reconstruction": {0: "batch", 2: "height", 3: "width"}}
    inputs: tuple[torch.Tensor, ...] = (pixel_values,)
    input_names = ["pixel_values"]
    if config.extra_input_channels:
        inputs += (torch.zeros(1, config.extra_input_channels, height, width),)
        input_names.append("extra_inputs")
        dynamic_axes["extra_inputs"] = {0: "batch", 2: "height", 3: "width"}
    if config.noise_level_input:
        inputs += (torch.full((1, 1, height, width), 0.1),)
        input_names.append("noise_level")
        dynamic_axes["noise_level"] = {0: "batch", 2: "height", 3: "width"}
    wrapper = _ReconstructionOnly(fold_batch_norm(model).float().cpu(), input_names).eval()  # a copy: model is unchanged
    # The TorchScript exporter records the shape arithmetic of the padding as graph operations;
    # torch.export cannot yet prove the size relations of a pad-to-multiple U-Net symbolically.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            wrapper,
            inputs,
            str(path),
            dynamo=False,
            input_names=input_names,
            output_names=["reconstruction"],
            dynamic_axes=dynamic_axes,
            opset_version=ONNX_OPSET,
        )
    return path


def check_onnx(model: DenoisingAutoencoder, path: str | os.PathLike, sizes=((1, 64, 64), (2, 75, 101), (1, 200, 136)),
               seed: int = 0) -> float:
    """Run an exported file with onnxruntime on random images of several sizes.

    Returns:
        The largest absolute difference from the PyTorch model's reconstruction (eval mode).
    """
    try:
        import onnxruntime
    except ImportError as error:
        raise ImportError(f"checking an ONNX export needs onnxruntime: pip install 'hfdae[onnx]' ({error})") from error
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(seed)
    model = copy.deepcopy(model).float().cpu().eval()
    largest = 0.0
    for batch, height, width in sizes:
        feeds = {"pixel_values": torch.rand(batch, model.config.image_channels, height, width, generator=generator)}
        if model.config.extra_input_channels:
            feeds["extra_inputs"] = (torch.rand(batch, model.config.extra_input_channels, height, width,
                                                generator=generator) > 0.5).float()
        if model.config.noise_level_input:  # known levels with a blind (negative) band across the middle
            level = 0.2 * torch.rand(batch, 1, height, width, generator=generator)
            level[..., height // 3 : 2 * height // 3, :] = -1.0
            feeds["noise_level"] = level
        with torch.inference_mode():
            expected = model(**feeds).reconstruction
        (exported,) = session.run(["reconstruction"], {name: value.numpy() for name, value in feeds.items()})
        largest = max(largest, float((torch.from_numpy(exported) - expected).abs().max()))
    return largest
