"""Fine-tuning builds the model a training run starts from (the chapter's section 18.4.5).

A run either starts from a preset with fresh weights, or from a trained parent (``model.init_from``) that it
keeps descending from with a small learning rate on a new task: inpainting (with the mask as an extra input
channel, :func:`widen_input_channels`), deblurring or denoising. :func:`build_model` makes that model once,
for the trainer: it loads the parent and records it in the new model's ``lineage``, converts its upsampling
(:func:`convert_upsampling`), its colour space (:func:`convert_to_gray`) or its depth at full resolution
(:func:`deepen_first_level`) where asked, widens its input for the mask, sets its ``task`` and says which
modules stay frozen (:func:`frozen_modules`).

>>> from hfdae.training_config import finetune_config
>>> from hfdae.training import train
>>> result = train(finetune_config("default", "inpaint", data="photos/", output_dir="runs/inpaint"))

or ``hfdae finetune --from default --task inpaint --data photos/ --output runs/inpaint``.
"""

from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .configuration_hfdae import DenoisingAutoencoderConfig
from .modeling_hfdae import DenoisingAutoencoder
from .runs import resolve_model_source

if TYPE_CHECKING:
    from .training_config import ModelRecipe

__all__ = [
    "PARENT_OVERRIDES",
    "BuiltModel",
    "build_model",
    "widen_input_channels",
    "convert_upsampling",
    "convert_to_gray",
    "deepen_first_level",
    "frozen_modules",
    "input_convolutions",
    "record_parent",
]

# the model.overrides a training run may apply to a parent loaded with model.init_from (converted, not rebuilt)
PARENT_OVERRIDES = ("upsample", "colour_space", "blocks_per_level")


@torch.no_grad()
def widen_input_channels(model: DenoisingAutoencoder, extra_channels: int) -> DenoisingAutoencoder:
    """A copy of ``model`` taking ``extra_channels`` more input channels, with zero weights for them.

    The convolutions that read the network input get zero-initialised input channels, so the new
    model's output equals the old one's whatever the new channels hold until training changes them.
    """
    if extra_channels < 1:
        raise ValueError(f"extra_channels must be at least 1, got {extra_channels}")
    config = copy.deepcopy(model.config)
    config.extra_input_channels = model.config.extra_input_channels + extra_channels
    # the network input is [image and extra channels (each space-to-depth-unshuffled), noise-level map]: the
    # new channels go between the old ones and the map, which keeps its weights at its new place
    tail = 1 if config.noise_level_input else 0

    def widen(name: str, old: torch.Tensor, tensor: torch.Tensor) -> bool:
        if not (old.ndim == 4 and old.shape[0] == tensor.shape[0] and old.shape[2:] == tensor.shape[2:]):
            return False
        head = old.shape[1] - tail
        tensor.zero_()
        tensor[:, :head] = old[:, :head]  # the image (and old extra) channels keep their weights
        tensor[:, tensor.shape[1] - tail:] = old[:, head:]  # so does the noise-level map; the new ones are 0
        return True

    return _transplant(model, DenoisingAutoencoder(config), "widen", adapt=widen)


@torch.no_grad()
def convert_upsampling(model: DenoisingAutoencoder, upsample: str = "resize", seed: int = 0) -> DenoisingAutoencoder:
    """A copy of ``model`` whose decoder upsamples with ``upsample`` instead of transposed convolutions.

    Every weight outside the upsampling convolutions is copied. Each new resize + convolution is fitted
    by least squares to the old transposed convolution's output on white-noise feature maps: what it can
    express (the part of the response common to the four output phases) is kept, what it cannot (the
    stride-2 grid that patterns flat bright images) is dropped. The copy is a starting point for further
    training (``model.overrides: {upsample: resize}`` beside ``model.init_from``), not a finished model:
    on white noise the bilinear resize damps high frequencies, so the fit raises the gain of flat inputs
    (by about 1.44 on the 1x1 shortcuts), and the batch-norm statistics after the new convolutions are
    the parent's. The zoo's colour flagship went from 28.9 dB (parent) to 25.4 dB right after the
    conversion (21.7 with the new convolutions left at their fresh initialisation), 8 held-out crops at
    sigma 25, before its second training stage.

    Args:
        model: the parent, with ``upsample: transposed`` (left unchanged).
        upsample: the new upsampling; only ``"resize"`` (bilinear, then the convolution).
        seed: seed of the random feature maps of the fit.

    Raises:
        ValueError: ``upsample`` is not ``"resize"``, or the model does not upsample by transposed convolution.
    """
    if upsample != "resize":
        raise ValueError(f"upsample={upsample!r}: only a conversion to 'resize' can be fitted")
    if model.config.upsample != "transposed":
        raise ValueError(f"the model already upsamples with {model.config.upsample!r}; nothing to convert")
    config = copy.deepcopy(model.config)
    config.upsample = upsample
    converted = DenoisingAutoencoder(config).to(next(model.parameters()).device)
    old_modules = dict(model.named_modules())
    generator = torch.Generator().manual_seed(seed)
    fitted: set[str] = set()
    replaced: set[str] = set()
    for name, new in converted.named_modules():
        old = old_modules.get(name)
        if isinstance(old, nn.ConvTranspose2d) and isinstance(new, nn.Sequential):
            _fit_resize_convolution(old, new, generator)
            fitted.update(f"{name}.{key}" for key in new.state_dict())
            replaced.update(f"{name}.{key}" for key in old.state_dict())
    return _transplant(model, converted, "convert", keep=fitted, replaced=replaced)


@torch.no_grad()
def convert_to_gray(model: DenoisingAutoencoder) -> DenoisingAutoencoder:
    """A one-channel (``colour_space="gray"``) copy of an RGB ``model`` that computes what the parent computes
    on a gray image given as three equal channels.

    The convolutions that read the image sum their weights over its three channels (the channels are equal);
    the output convolution averages its three output channels (weights and bias), so the residual output is
    the mean of the parent's three. With a linear output head the copy is exact: its output is the mean of
    the parent's over R, G and B. A starting point for a gray model that has seen what the colour one saw
    (``model.overrides: {colour_space: gray}`` beside ``model.init_from``), to be trained on with gray noise.

    Raises:
        ValueError: the model is not an RGB model.
    """
    if model.config.colour_space != "rgb":
        raise ValueError(f"only an RGB model can be converted to gray, not colour_space={model.config.colour_space!r}")
    config = copy.deepcopy(model.config)
    config.colour_space = "gray"
    config.in_channels = config.out_channels = 1
    gray = DenoisingAutoencoder(config).to(next(model.parameters()).device)
    factor = config.space_to_depth_factor
    image_inputs = 3 * factor * factor  # the image's channels after space-to-depth, ahead of mask and noise level
    image_readers = input_convolutions(gray)
    reads_image = {name for name, module in gray.named_modules() if any(module is reader for reader in image_readers)}

    def to_gray(name: str, old: torch.Tensor, tensor: torch.Tensor) -> bool:
        module_name, kind = name.rsplit(".", 1)
        if module_name in reads_image and kind == "weight":
            # [out, RGB (unshuffled: channel-major), extra..., level] -> [out, gray, extra..., level]
            rgb = old[:, :image_inputs].unflatten(1, (3, factor * factor)).sum(dim=1)
            tensor.copy_(torch.cat([rgb, old[:, image_inputs:]], dim=1))
        elif module_name == "output_conv":
            # [RGB (channel-major) * factor^2, ...] -> [factor^2, ...]: the mean of the three outputs
            tensor.copy_(old.unflatten(0, (3, factor * factor)).mean(dim=0))
        else:
            return False
        return True

    return _transplant(model, gray, "convert to gray", adapt=to_gray)


@torch.no_grad()
def deepen_first_level(model: DenoisingAutoencoder, blocks: int) -> DenoisingAutoencoder:
    """A copy of ``model`` with ``blocks`` residual blocks in the first (finest) level of the encoder and of the
    decoder instead of the parent's, the new ones computing the identity until training changes them.

    The first level is where the network sees fine detail: the zoo's colour flagship has one block (two 3x3
    convolutions of 32 channels) there in the encoder and one in the decoder, against DnCNN's 17 convolutions of
    64. The new blocks go after the parent's (whose weights keep their names), with their last normalisation's
    scale and shift (or, without normalisation, their last convolution) at zero: the residual branch adds 0 and
    the ReLU after it passes the parent block's non-negative output unchanged, so the copy computes exactly what
    the parent computes (``model.overrides: {blocks_per_level: [3, 1, 1, 1]}`` beside ``model.init_from``).
    Only that last scale starts at zero, so the gradient reaches it at once and the rest of each new block
    learns as soon as it moves.

    Args:
        model: the parent (left unchanged); the copy is in its train/eval mode and on its device, in float32.
        blocks: the number of blocks the first level of the copy has, more than the parent's.

    Raises:
        ValueError: ``blocks`` is not more than the parent's, or the model has no residual connections (a block
            is then its branch alone, and a zeroed one outputs zeros) or another activation than ReLU (which
            would change the parent block's output on its way through the new block).
    """
    config = copy.deepcopy(model.config)
    current = config.blocks_per_level[0]
    if blocks <= current:
        raise ValueError(f"blocks={blocks}: the model already has {current} block(s) in its first level; give more")
    if not config.residual_connections or config.activation != "relu":
        raise ValueError("only a model with residual connections and ReLU activations can be deepened exactly"
                         f" (residual_connections={config.residual_connections}, activation={config.activation!r})")
    config.blocks_per_level = [blocks, *config.blocks_per_level[1:]]
    deeper = DenoisingAutoencoder(config).to(next(model.parameters()).device)
    new_blocks = [*deeper.encoder.levels[0][current:], *deeper.decoder.levels[-1][current:]]
    for block in new_blocks:
        last = block.norm2 if isinstance(block.norm2, (nn.BatchNorm2d, nn.GroupNorm)) else block.conv2
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)  # zero already in a fresh layer; set so that the identity never depends on it
    # the parent's blocks keep their names, so the tensors the parent lacks are exactly the new blocks'
    added = set(deeper.state_dict()) - set(model.state_dict())
    return _transplant(model, deeper, "deepen", keep=added)


def _transplant(parent: DenoisingAutoencoder, child: DenoisingAutoencoder, what: str,
                adapt: Callable[[str, torch.Tensor, torch.Tensor], bool] | None = None,
                keep: Iterable[str] = (), replaced: Iterable[str] = ()) -> DenoisingAutoencoder:
    """``child`` (a model of a changed configuration) with ``parent``'s weights, in the parent's train/eval mode
    and on its device: every tensor of the same name and shape is copied, the tensors named in ``keep`` stay as
    they are (already set), and ``adapt(name, old, new)`` fills the others in place from the parent's, returning
    False where it cannot (a ``RuntimeError`` naming the tensor, "cannot WHAT NAME"). A parent tensor with no
    place in the child is an error too (the copy would silently compute something else), except those named in
    ``replaced`` (already rebuilt into ``keep``)."""
    keep = set(keep)
    old_state, new_state = parent.state_dict(), child.state_dict()
    homeless = sorted(set(old_state) - set(new_state) - set(replaced))
    if homeless:
        raise RuntimeError(f"cannot {what}: the parent's {', '.join(homeless)} would have no place in the new"
                           " model (its layers differ there, e.g. a shortcut convolution that becomes an identity"
                           " when the channel counts meet)")
    for name, tensor in new_state.items():
        if name in keep:
            continue
        old = old_state.get(name)
        if old is not None and old.shape == tensor.shape:
            tensor.copy_(old)
        elif old is None or adapt is None or not adapt(name, old, tensor):
            before = "nothing" if old is None else tuple(old.shape)
            raise RuntimeError(f"cannot {what} {name}: {before} in the parent -> {tuple(tensor.shape)}")
    child.load_state_dict(new_state)
    child.train(parent.training)
    return child.to(next(parent.parameters()).device)


def _fit_resize_convolution(transposed: nn.ConvTranspose2d, resize: nn.Sequential, generator: torch.Generator,
                            side: int = 16, samples: int = 24) -> None:
    """Least-squares fit of ``resize`` (upsample, convolution)'s weights to ``transposed``'s output on
    white-noise feature maps (the new response is linear in the new weights)."""
    upsample, convolution = resize
    reference = copy.deepcopy(transposed).cpu().double()
    inputs = torch.randn(samples, transposed.in_channels, side, side, generator=generator, dtype=torch.float64)
    target = reference(inputs)
    kernel, padding = convolution.kernel_size[0], convolution.padding[0]
    patches = torch.nn.functional.unfold(upsample(inputs), kernel, padding=padding)  # (n, c*k*k, h*w)
    height, width = target.shape[2:]
    interior = torch.zeros(height, width, dtype=torch.bool)
    interior[kernel:height - kernel, kernel:width - kernel] = True  # the two forms pad the border differently
    design = patches.transpose(1, 2)[:, interior.flatten()].reshape(-1, patches.shape[1])
    outputs = target.flatten(2).transpose(1, 2)[:, interior.flatten()].reshape(-1, target.shape[1])
    if convolution.bias is not None:
        design = torch.cat([design, torch.ones(len(design), 1, dtype=design.dtype)], dim=1)
    solution = torch.linalg.lstsq(design, outputs).solution  # (c*k*k [+ 1], out)
    weight = solution[: patches.shape[1]].T.reshape(convolution.weight.shape)
    convolution.weight.copy_(weight.to(convolution.weight))
    if convolution.bias is not None:
        convolution.bias.copy_(solution[-1].to(convolution.bias))


def input_convolutions(model: DenoisingAutoencoder) -> list[nn.Module]:
    """The convolutions that read the network input (the first block's main path and shortcut):
    where :func:`widen_input_channels` adds the weights of new input channels."""
    first_block = model.encoder.levels[0][0]
    return [module for module in (first_block.conv1, first_block.shortcut) if module is not None]


def frozen_modules(model: DenoisingAutoencoder, freeze: str) -> list[nn.Module]:
    """The modules that ``freeze`` (``"none"`` or ``"encoder"``) keeps fixed during fine-tuning."""
    if freeze == "none":
        return []
    if freeze == "encoder":
        return [model.encoder]
    raise ValueError(f"freeze={freeze!r} is not valid; choose 'none' or 'encoder'")


def record_parent(model: DenoisingAutoencoder, source: str | os.PathLike, source_kind: str | None = None) -> None:
    """Prepend the model's current identity to its ``lineage`` (call right after loading the parent).

    Args:
        model: the loaded parent (changed in place).
        source: the model source it was loaded from.
        source_kind: what the source is (``"default"``, ``"zoo"``, ``"hub"``, ``"folder"``, ``"run"``; see
            :func:`hfdae.runs.resolve_model_source`); model cards name only parents a reader can load.
    """
    config = model.config
    summary = config.training_summary or {}
    parent = {"model": str(source), "task": config.task, "images_seen": int(config.images_seen),
              "description": summary.get("description", "")}
    if source_kind is not None:
        parent["source"] = source_kind
    config.lineage = [parent, *(config.lineage or [])]


@dataclass
class BuiltModel:
    """The model a training run starts from, and its modules that stay fixed (weights and batch-norm statistics)."""

    model: DenoisingAutoencoder
    frozen: list[nn.Module]


def _check_parent_overrides(overrides: dict) -> None:
    """With ``model.init_from``, ``model.overrides`` may only hold the architecture changes that keep the parent's
    weights meaningful (:data:`PARENT_OVERRIDES`)."""
    unsupported = sorted(set(overrides) - set(PARENT_OVERRIDES))
    if unsupported:
        raise ValueError(f"model.overrides {unsupported} cannot change a model loaded with model.init_from;"
                         f" only {list(PARENT_OVERRIDES)} can (converted by hfdae.finetuning.convert_upsampling and"
                         " convert_to_gray, deepened by deepen_first_level)")


def _first_level_blocks(blocks_per_level: Any, parent: list[int], freeze: str) -> int | None:
    """The first level's block count that ``model.overrides.blocks_per_level`` asks of a parent with ``parent``
    blocks per level, or None where it asks for no change: a list of as many integers, more in the first level
    only, and the encoder free to train its new blocks."""
    if blocks_per_level is None:
        return None
    setting = f"model.overrides blocks_per_level={blocks_per_level!r}"
    if (not isinstance(blocks_per_level, (list, tuple)) or len(blocks_per_level) != len(parent)
            or not all(isinstance(count, int) and not isinstance(count, bool) for count in blocks_per_level)):
        raise ValueError(f"{setting}: give a list of {len(parent)} integers, one per level (the parent has {parent})")
    if list(blocks_per_level) == parent:
        return None
    if list(blocks_per_level[1:]) != parent[1:] or blocks_per_level[0] <= parent[0]:
        raise ValueError(f"{setting}: a parent with {parent} can only gain blocks in its first level")
    if freeze == "encoder":
        raise ValueError(f"{setting} with freeze='encoder': the encoder's new blocks would stay the identity for"
                         " good; deepen with freeze='none'")
    return blocks_per_level[0]


def build_model(recipe: ModelRecipe, resumed_config: DenoisingAutoencoderConfig | None = None) -> BuiltModel:
    """The model of a training run's ``model`` section (:class:`hfdae.training_config.ModelRecipe`).

    - Without ``init_from``: the ``preset`` with ``overrides`` and fresh weights (one more input channel with
      ``mask_channel``).
    - With ``init_from``: the parent (any model source), recorded in the model's ``lineage``; its upsampling
      (``upsample: resize``), colour space (``colour_space: gray``) or first level's depth (``blocks_per_level``)
      converted where ``overrides`` asks (the only overrides a parent takes, :data:`PARENT_OVERRIDES`); its input
      widened for the mask with ``mask_channel``.
    - ``task`` is set where the recipe names one; ``freeze`` says which modules stay fixed (with the mask
      channel, the first convolutions stay trainable: they hold the mask's zero-initialised weights).

    Args:
        recipe: the run's model section.
        resumed_config: for a resumed fine-tune, the configuration saved in its checkpoint: the model is built
            from it (the checkpoint's weights replace the parent's, so the parent need not be reachable).
    """
    if recipe.init_from:
        _check_parent_overrides(recipe.overrides)
    if recipe.init_from and resumed_config is not None:
        model = DenoisingAutoencoder(resumed_config)
    elif recipe.init_from:
        source = resolve_model_source(recipe.init_from)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = source.load().eval()
        record_parent(model, recipe.init_from, source.kind)
        upsample = recipe.overrides.get("upsample")
        if upsample is not None and upsample != model.config.upsample:
            model = convert_upsampling(model, upsample)
        colour_space = recipe.overrides.get("colour_space")
        if colour_space is not None and colour_space != model.config.colour_space:
            if colour_space != "gray":
                raise ValueError(f"model.overrides colour_space={colour_space!r}: a parent converts only to 'gray'")
            model = convert_to_gray(model)
        blocks = _first_level_blocks(recipe.overrides.get("blocks_per_level"), list(model.config.blocks_per_level),
                                     recipe.freeze)
        if blocks is not None:
            model = deepen_first_level(model, blocks)
    else:
        overrides = dict(recipe.overrides)
        if recipe.mask_channel:
            overrides.setdefault("extra_input_channels", 1)
        model = DenoisingAutoencoder(DenoisingAutoencoderConfig.from_preset(recipe.preset, **overrides))
    if recipe.mask_channel and model.config.extra_input_channels == 0:
        model = widen_input_channels(model, 1)
    if recipe.task is not None:
        model.config.task = recipe.task
    frozen = frozen_modules(model, recipe.freeze)
    for module in frozen:
        module.requires_grad_(False)
    if recipe.mask_channel and frozen:
        for convolution in input_convolutions(model):
            convolution.requires_grad_(True)
    return BuiltModel(model, frozen)
