"""The inference copy: batch norm fused into the convolutions (torch's fusion), channels_last, reused."""

from __future__ import annotations

import pytest
import torch

import hfdae
from hfdae import fusion

from conftest import COLOUR_SPACES, PRESETS, make_model


def _with_trained_statistics(model: hfdae.DenoisingAutoencoder) -> hfdae.DenoisingAutoencoder:
    """Batch norms with non-trivial running statistics and affine parameters (as after training)."""
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            for tensor, low, high in ((module.running_mean, -0.3, 0.3), (module.running_var, 0.5, 2.0),
                                      (module.weight.data, 0.5, 1.5), (module.bias.data, -0.2, 0.2)):
                tensor.copy_(low + (high - low) * torch.rand(tensor.shape, generator=generator))
    return model.eval()


@pytest.mark.parametrize("upsample", ["transposed", "resize"])
@pytest.mark.parametrize("preset", PRESETS)
def test_folding_batch_norm_keeps_the_output(preset, upsample):
    # float64, so that the comparison measures the folding, not float32 rounding through 20 layers
    model = _with_trained_statistics(make_model(preset, upsample=upsample, predict_residual=True)).double()
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    images = torch.rand(2, 3, 40, 52, dtype=torch.float64)
    with torch.inference_mode():
        expected = model(pixel_values=images).reconstruction
        folded = hfdae.fold_batch_norm(model)
        actual = folded(pixel_values=images).reconstruction
    assert not any(isinstance(module, torch.nn.BatchNorm2d) for module in folded.modules())
    torch.testing.assert_close(actual, expected, atol=1e-9, rtol=0)
    for name, tensor in model.state_dict().items():  # the original is untouched
        assert torch.equal(tensor, before[name]), name


@pytest.mark.parametrize("colour_space", COLOUR_SPACES)
def test_fast_restore_matches_plain_restore(colour_space):
    model = _with_trained_statistics(make_model("small", colour_space))
    images = torch.rand(2, 3, 48, 40)
    fast = hfdae.restore(model, images, fast=True, precision="fp32")
    plain = hfdae.restore(model, images, fast=False, precision="fp32")
    torch.testing.assert_close(fast, plain, atol=1e-4, rtol=0)


def test_prepared_model_is_inference_only_and_reused():
    model = make_model("small")
    prepared = hfdae.prepare_for_inference(model)
    assert fusion.is_prepared_for_inference(prepared)
    assert not fusion.is_prepared_for_inference(model)
    assert hfdae.prepare_for_inference(prepared) is prepared
    assert not any(parameter.requires_grad for parameter in prepared.parameters())
    assert all(parameter.requires_grad for parameter in model.parameters())


@pytest.mark.parametrize("overrides", [{"space_to_depth_factor": 2}, {"space_to_depth_factor": 4, "noise_level_input": True}])
def test_folding_batch_norm_keeps_the_output_of_stem_designs(overrides):
    model = _with_trained_statistics(make_model("small", predict_residual=True, **overrides)).double()
    images = torch.rand(2, 3, 40, 52, dtype=torch.float64)
    level = 0.1 if model.config.noise_level_input else None
    with torch.inference_mode():
        expected = model(pixel_values=images, noise_level=level).reconstruction
        actual = hfdae.fold_batch_norm(model)(pixel_values=images, noise_level=level).reconstruction
    torch.testing.assert_close(actual, expected, atol=1e-9, rtol=0)
