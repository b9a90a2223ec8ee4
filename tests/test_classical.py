"""Tests for hfdae.classical: the kernel matches the blur degradation, the deconvolutions undo a blur
given the true kernel (better than the blurred input), biharmonic inpainting fills holes smoothly."""

from __future__ import annotations

import pytest
import torch

from hfdae.classical import biharmonic_inpaint, gaussian_psf, richardson_lucy_deblur, wiener_deblur
from hfdae.degradations import GaussianBlur, InpaintMask
from hfdae.metrics import psnr
from hfdae.processing import to_tensor
from hfdae.samples import sample_image


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    return to_tensor(sample_image("astronaut"))[..., 120:216, 180:276]  # [1, 3, 96, 96]


@pytest.mark.parametrize("sigma", [1.0, 2.5])
def test_the_psf_is_the_kernel_the_blur_degradation_uses(sigma):
    impulse = torch.zeros(1, 1, 41, 41, dtype=torch.float64)
    impulse[..., 20, 20] = 1.0
    blurred = GaussianBlur(sigma=sigma)(impulse.float()).images[0, 0].double().numpy()
    psf = gaussian_psf(sigma)
    radius = psf.shape[0] // 2
    assert psf.sum() == pytest.approx(1.0)
    assert abs(blurred[20 - radius:21 + radius, 20 - radius:21 + radius] - psf).max() < 1e-6


@pytest.mark.parametrize("deblur", [richardson_lucy_deblur, wiener_deblur], ids=["richardson_lucy", "wiener"])
def test_deconvolution_given_the_true_kernel_beats_the_blurred_input(photo, deblur):
    blurred = GaussianBlur(sigma=1.5)(photo).images
    restored = deblur(blurred, 1.5)
    assert restored.shape == photo.shape and restored.min() >= 0 and restored.max() <= 1
    assert float(psnr(restored, photo)[0]) > float(psnr(blurred, photo)[0]) + 1.0


def test_biharmonic_inpainting_fills_holes_and_keeps_the_rest(photo):
    holes = InpaintMask(max_boxes=1, max_strokes=1)(photo, generator=torch.Generator().manual_seed(0))
    filled = biharmonic_inpaint(holes.images, holes.mask.float())
    outside = ~holes.mask.expand_as(photo)
    assert torch.allclose(filled[outside], photo[outside], atol=1e-6)
    assert float(psnr(filled, photo)[0]) > float(psnr(holes.images, photo)[0]) + 5.0
