"""Fast inference: batch norm folded into convolutions, channels_last, bf16 autocast, torch.compile.

>>> fast = hfdae.prepare_for_inference(model)          # a folded, channels_last copy for restoring
>>> restored = hfdae.restore(fast, noisy)

:func:`hfdae.restore` applies the folding and channels_last by itself (``fast=True``); call
:func:`prepare_for_inference` once yourself to add ``torch.compile`` or to reuse the copy.
"""

from __future__ import annotations

import contextlib
import copy

import torch
from torch import nn

from .blocks import ResidualBlock
from .modeling_hfdae import DenoisingAutoencoder
from .recipe import resolve_mixed_precision

__all__ = [
    "fold_batch_norm",
    "prepare_for_inference",
    "is_prepared_for_inference",
    "inference_precision",
    "inference_autocast",
]

_PREPARED_ATTRIBUTE = "_hfdae_inference_copy"


def _fold_into(convolution: nn.Module, norm: nn.BatchNorm2d) -> None:
    """Fold an eval-mode BatchNorm into the convolution before it (in place)."""
    if isinstance(convolution, nn.Sequential):  # resize upsampling: Upsample then Conv2d
        convolution = convolution[-1]
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    shift = norm.bias - norm.running_mean * scale
    if isinstance(convolution, nn.ConvTranspose2d):  # weight [in, out / groups, k, k]
        convolution.weight.data.mul_(scale.view(1, -1, 1, 1))
    elif isinstance(convolution, nn.Conv2d):  # weight [out, in / groups, k, k]
        convolution.weight.data.mul_(scale.view(-1, 1, 1, 1))
    else:
        raise TypeError(f"cannot fold batch norm into {type(convolution).__name__}")
    bias = convolution.bias.data if convolution.bias is not None else torch.zeros_like(shift)
    convolution.bias = nn.Parameter(bias * scale + shift)


@torch.no_grad()
def fold_batch_norm(model: DenoisingAutoencoder) -> DenoisingAutoencoder:
    """A copy of ``model`` with every batch norm folded into the convolution before it.

    Uses the running statistics, so the copy computes what the eval-mode model computes (up to
    float rounding) with fewer operations. The copy is for inference only: it cannot be trained or
    saved as an hfdae checkpoint (its tensors differ); keep the original for that.
    """
    folded = copy.deepcopy(model).eval()
    for block in folded.modules():
        if not isinstance(block, ResidualBlock):
            continue
        for convolution_name, norm_name in (("conv1", "norm1"), ("conv2", "norm2")):
            norm = getattr(block, norm_name)
            if isinstance(norm, nn.BatchNorm2d):
                _fold_into(getattr(block, convolution_name), norm)
                setattr(block, norm_name, nn.Identity())
    for parameter in folded.parameters():
        parameter.requires_grad_(False)
    return folded


def prepare_for_inference(
    model: DenoisingAutoencoder, fold: bool = True, channels_last: bool = True, compile: bool = False
) -> DenoisingAutoencoder:
    """An inference-only copy of ``model``: batch norm folded, channels_last, optionally compiled.

    Args:
        model: the model (left unchanged).
        fold: fold batch norm into the convolutions (:func:`fold_batch_norm`).
        channels_last: store weights in the channels_last layout (faster convolutions on CPUs and GPUs).
        compile: wrap the forward in ``torch.compile`` (the first call compiles, about 20-40 s on a CPU,
            and again for each new input size).
    """
    if is_prepared_for_inference(model):
        return model
    prepared = fold_batch_norm(model) if fold else copy.deepcopy(model).eval()
    if channels_last:
        prepared = prepared.to(memory_format=torch.channels_last)
    if compile:
        prepared.forward = torch.compile(prepared.forward, dynamic=True)
    setattr(prepared, _PREPARED_ATTRIBUTE, True)
    return prepared


def is_prepared_for_inference(model: nn.Module) -> bool:
    """Whether ``model`` came from :func:`prepare_for_inference`."""
    return getattr(model, _PREPARED_ATTRIBUTE, False)


def inference_precision(precision: str, device: torch.device) -> str:
    """``"fp32"`` or ``"bf16"``: ``"auto"`` picks bf16 on CUDA GPUs with bf16 and CPUs with native bf16
    instructions (AVX512-BF16 or AMX), where it is faster; elsewhere emulated bf16 is slower than fp32."""
    if precision not in ("auto", "fp32", "bf16"):
        raise ValueError(f"precision={precision!r} is invalid; expected 'auto', 'fp32' or 'bf16'")
    if precision != "auto":
        return precision
    return "bf16" if resolve_mixed_precision("auto", use_cpu=device.type != "cuda") == "bf16" else "fp32"


def inference_autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The autocast context for a resolved precision (a no-op for fp32)."""
    if precision == "bf16":
        return torch.autocast(device.type, torch.bfloat16)
    return contextlib.nullcontext()
