"""Image quality metrics: the one place PSNR (and SSIM) are computed in hfdae.

Images are float tensors in [0, 1]; metrics are per image (a [B] tensor for a [B, C, H, W] batch),
over all channels, with no border crop.
"""

from __future__ import annotations

import torch

__all__ = ["psnr", "ssim"]


def psnr(restored: torch.Tensor, reference: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image: ``10 log10(data_range^2 / mean((restored - reference)^2))``.

    Args:
        restored: [B, C, H, W] or [C, H, W].
        reference: same shape.
        data_range: the value range (1 for images in [0, 1]).

    Returns:
        [B] (or a scalar for one [C, H, W] image); ``inf`` where the images are identical.
    """
    if restored.shape != reference.shape:
        raise ValueError(f"psnr needs equal shapes, got {tuple(restored.shape)} and {tuple(reference.shape)}")
    single = restored.ndim == 3
    if single:
        restored, reference = restored.unsqueeze(0), reference.unsqueeze(0)
    mse = (restored.double() - reference.double()).square().flatten(1).mean(dim=1)
    values = 10 * torch.log10(data_range**2 / mse)
    return values[0] if single else values


def ssim(restored: torch.Tensor, reference: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Structural similarity per image (Gaussian window 11, sigma 1.5), via kornia. Shapes as :func:`psnr`."""
    import kornia  # lazily: kornia's import is slow

    single = restored.ndim == 3
    if single:
        restored, reference = restored.unsqueeze(0), reference.unsqueeze(0)
    values = kornia.metrics.ssim(restored.float(), reference.float(), window_size=11, max_val=data_range)
    values = values.flatten(1).mean(dim=1)
    return values[0] if single else values
