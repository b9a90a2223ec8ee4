"""The strength control's "auto" (hfdae.estimate_noise_level): scikit-image's estimate, and the optional
texture-floor correction."""

from __future__ import annotations

import pytest
import torch

import hfdae
from hfdae.inference import NOISE_ESTIMATE_SCALE, NOISE_ESTIMATE_TEXTURE_FLOOR
from hfdae.processing import array_to_tensor
from hfdae.samples import sample_image


@pytest.fixture(scope="module")
def noisy() -> torch.Tensor:
    clean = array_to_tensor(sample_image("chelsea")).unsqueeze(0)
    return torch.cat([clean + sigma / 255 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(1))
                      for sigma in (0, 5, 25)])


def test_the_default_is_scikit_image_estimate_sigma(noisy):
    from skimage.restoration import estimate_sigma

    expected = [estimate_sigma(image.numpy(), channel_axis=0, average_sigmas=True) for image in noisy]
    assert hfdae.estimate_noise_level(noisy).tolist() == pytest.approx(expected, rel=1e-5)


def test_the_calibration_subtracts_the_texture_floor_in_quadrature(noisy):
    raw = hfdae.estimate_noise_level(noisy).double()
    corrected = hfdae.estimate_noise_level(noisy, calibrated=True).double()
    expected = (NOISE_ESTIMATE_SCALE * raw.square() - NOISE_ESTIMATE_TEXTURE_FLOOR**2).clamp(min=0).sqrt()
    torch.testing.assert_close(corrected, expected, rtol=1e-5, atol=1e-7)
    assert float(corrected[0]) == 0.0 and (corrected[1:] < raw[1:]).all()
    # the floor matters for light noise, hardly for strong noise
    assert float(raw[1] - corrected[1]) > 4 * float(raw[2] - corrected[2])
