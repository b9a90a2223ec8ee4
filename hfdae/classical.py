"""Classical restorations the task models are measured against: deconvolution and inpainting.

Every function takes and returns float tensors ``[B, C, H, W]`` in [0, 1] (returned clamped) and wraps a
scikit-image routine, given what a classical method needs and a blind model is not told:

- :func:`richardson_lucy_deblur` and :func:`wiener_deblur`: non-blind deconvolution GIVEN THE TRUE KERNEL
  (the Gaussian of :class:`hfdae.degradations.GaussianBlur`, :func:`gaussian_psf`). The image is
  reflect-padded by three kernel radii first, as the blur was made with reflected borders; without it
  the deconvolutions ring at the borders and lose to the blurred input.
- :func:`biharmonic_inpaint`: biharmonic interpolation into the holes GIVEN THE MASK.

The denoisers (BM3D, DnCNN, FFDNet) are in :mod:`hfdae.peers`.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["gaussian_psf", "richardson_lucy_deblur", "wiener_deblur", "biharmonic_inpaint"]


def gaussian_psf(sigma: float, kernel_size: int | None = None) -> np.ndarray:
    """The 2-D Gaussian kernel :class:`hfdae.degradations.GaussianBlur` blurs with (kornia's, normalised).

    Args:
        sigma: blur sigma in pixels.
        kernel_size: odd kernel side; default ``2 * ceil(3 * sigma) + 1`` as the degradation's.
    """
    import kornia.filters

    size = kernel_size or 2 * math.ceil(3 * sigma) + 1
    line = kornia.filters.get_gaussian_kernel1d(size, float(sigma)).double().numpy().reshape(-1)
    return np.outer(line, line)


def _per_channel(images: torch.Tensor, pad: int, restore_plane) -> torch.Tensor:
    arrays = images.detach().double().cpu().numpy()
    restored = np.empty_like(arrays)
    for index in np.ndindex(arrays.shape[:2]):
        plane = np.pad(arrays[index], pad, mode="reflect") if pad else arrays[index]
        result = restore_plane(plane)
        restored[index] = result[pad:-pad, pad:-pad] if pad else result
    return torch.from_numpy(restored).float().clamp(0, 1).to(images.device)


def richardson_lucy_deblur(images: torch.Tensor, sigma: float, iterations: int = 30) -> torch.Tensor:
    """Richardson-Lucy deconvolution (``skimage.restoration.richardson_lucy``) with the true Gaussian kernel.

    Args:
        images: blurred images [B, C, H, W] in [0, 1].
        sigma: the blur sigma they were made with.
        iterations: RL iterations (more sharpens more and amplifies noise more).
    """
    from skimage.restoration import richardson_lucy

    psf = gaussian_psf(sigma)
    pad = 3 * (psf.shape[0] // 2)
    return _per_channel(images, pad, lambda plane: richardson_lucy(plane, psf, num_iter=iterations, clip=False))


def wiener_deblur(images: torch.Tensor, sigma: float, balance: float = 1e-3) -> torch.Tensor:
    """Wiener deconvolution (``skimage.restoration.wiener``) with the true Gaussian kernel.

    Args:
        images: blurred images [B, C, H, W] in [0, 1].
        sigma: the blur sigma they were made with.
        balance: the regularisation (noise-to-signal) weight; smaller sharpens more.
    """
    from skimage.restoration import wiener

    psf = gaussian_psf(sigma)
    pad = 3 * (psf.shape[0] // 2)
    return _per_channel(images, pad, lambda plane: wiener(plane, psf, balance=balance, clip=False))


def biharmonic_inpaint(images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Fill the holes by biharmonic interpolation (``skimage.restoration.inpaint_biharmonic``).

    Args:
        images: [B, C, H, W] in [0, 1]; what lies in the holes is ignored.
        mask: [B, 1, H, W], nonzero in the holes.
    """
    from skimage.restoration import inpaint_biharmonic

    arrays = images.detach().double().cpu().numpy()
    holes = mask.detach().cpu().numpy()[:, 0] > 0
    restored = np.stack([
        inpaint_biharmonic(np.moveaxis(image, 0, -1), hole, channel_axis=-1).transpose(2, 0, 1) if hole.any() else image
        for image, hole in zip(arrays, holes)
    ])
    return torch.from_numpy(restored).float().clamp(0, 1).to(images.device)
