"""Model size and compute: parameter counts and multiply-accumulates (MACs) per image."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from .configuration_hfdae import DenoisingAutoencoderConfig, list_presets
from .modeling_hfdae import DenoisingAutoencoder

__all__ = ["count_parameters", "count_macs", "preset_table"]


def count_parameters(model: torch.nn.Module) -> int:
    """Number of trainable and frozen parameters."""
    return sum(parameter.numel() for parameter in model.parameters())


@torch.no_grad()
def count_macs(model: torch.nn.Module, height: int = 256, width: int = 256, channels: int | None = None) -> int:
    """Multiply-accumulates of one forward pass on one image (PyTorch's FLOP counter / 2)."""
    if channels is None:
        channels = model.config.image_channels
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    extra = model.config.extra_input_channels
    extra_inputs = torch.zeros(1, extra, height, width, device=device) if extra else None
    with FlopCounterMode(display=False) as counter:
        model(pixel_values=torch.zeros(1, channels, height, width, device=device), extra_inputs=extra_inputs)
    model.train(was_training)
    return counter.get_total_flops() // 2


def preset_table(size: int = 256) -> str:
    """A Markdown table of every preset: levels, widths, skips, parameters and GMACs at ``size`` x ``size`` RGB."""
    lines = [
        f"| preset | levels | widths | blocks per level | skips | parameters | GMACs at {size}x{size} |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in list_presets():
        config = DenoisingAutoencoderConfig.from_preset(name)
        model = DenoisingAutoencoder(config)
        lines.append(
            f"| {name} | {len(config.widths)} | {config.widths} | {config.blocks_per_level} |"
            f" {'yes' if config.skip_connections else 'no'} | {count_parameters(model) / 1e6:.2f} M |"
            f" {count_macs(model, size, size) / 1e9:.2f} |"
        )
    return "\n".join(lines)
