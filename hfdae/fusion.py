"""The inference copy of a model: batch norm fused into the convolutions, channels_last, optionally compiled.

>>> fast = hfdae.prepare_for_inference(model)          # a fused, channels_last copy for restoring
>>> restored = hfdae.restore(fast, noisy)

:func:`hfdae.restore` makes this copy by itself (``fast=True``); call :func:`prepare_for_inference` once
yourself to add ``torch.compile`` or to reuse the copy. The fusion is PyTorch's own
(``torch.nn.utils.fusion.fuse_conv_bn_eval``). Inference precision (fp32 or bf16) is chosen in
:mod:`hfdae.inference`.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .blocks import ResidualBlock
from .modeling_hfdae import DenoisingAutoencoder

__all__ = ["fold_batch_norm", "prepare_for_inference", "is_prepared_for_inference"]

_PREPARED_ATTRIBUTE = "_hfdae_inference_copy"


def _fused(convolution: nn.Module, norm: nn.BatchNorm2d) -> nn.Module:
    """``convolution`` (a Conv2d, a ConvTranspose2d, or resize upsampling's ``Sequential(Upsample, Conv2d)``)
    with the eval-mode ``norm`` after it fused in."""
    if isinstance(convolution, nn.Sequential):
        return nn.Sequential(*convolution[:-1], _fused(convolution[-1], norm))
    if isinstance(convolution, (nn.Conv2d, nn.ConvTranspose2d)):
        return fuse_conv_bn_eval(convolution, norm, transpose=isinstance(convolution, nn.ConvTranspose2d))
    raise TypeError(f"cannot fold batch norm into {type(convolution).__name__}")


@torch.no_grad()
def fold_batch_norm(model: DenoisingAutoencoder) -> DenoisingAutoencoder:
    """A copy of ``model`` with every batch norm fused into the convolution before it.

    Uses the running statistics, so the copy computes what the eval-mode model computes (up to float
    rounding) with fewer operations. The copy is for inference only: it cannot be trained or saved as an
    hfdae checkpoint (its tensors differ); keep the original for that.
    """
    folded = copy.deepcopy(model).eval()
    for block in folded.modules():
        if not isinstance(block, ResidualBlock):
            continue
        for convolution_name, norm_name in (("conv1", "norm1"), ("conv2", "norm2")):
            norm = getattr(block, norm_name)
            if isinstance(norm, nn.BatchNorm2d):
                setattr(block, convolution_name, _fused(getattr(block, convolution_name), norm))
                setattr(block, norm_name, nn.Identity())
    for parameter in folded.parameters():
        parameter.requires_grad_(False)
    return folded


def prepare_for_inference(
    model: DenoisingAutoencoder, fold: bool = True, channels_last: bool = True, compile: bool = False
) -> DenoisingAutoencoder:
    """An inference-only copy of ``model``: batch norm fused, channels_last, optionally compiled.

    Args:
        model: the model (left unchanged).
        fold: fuse batch norm into the convolutions (:func:`fold_batch_norm`).
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
