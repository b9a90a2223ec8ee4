"""Fast inference (batch norm folding, channels_last, precision) and ONNX export."""

from __future__ import annotations

import pytest
import torch

import hfdae
from hfdae import acceleration
from hfdae.cli import main
from hfdae.export import check_onnx, export_onnx

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
    assert acceleration.is_prepared_for_inference(prepared)
    assert not acceleration.is_prepared_for_inference(model)
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


@pytest.mark.parametrize(("native", "expected"), [(False, "fp32"), (True, "bf16")])
def test_auto_precision_uses_bf16_only_where_native(monkeypatch, native, expected):
    monkeypatch.setattr("hfdae.recipe._cpu_has_native_bf16", lambda: native)
    assert acceleration.inference_precision("auto", torch.device("cpu")) == expected
    assert acceleration.inference_precision("fp32", torch.device("cpu")) == "fp32"
    with pytest.raises(ValueError, match="precision='fp16'"):
        acceleration.inference_precision("fp16", torch.device("cpu"))


def test_bf16_restore_stays_close_to_fp32():
    model = _with_trained_statistics(make_model("small", predict_residual=True))
    images = torch.rand(1, 3, 32, 32)
    difference = (hfdae.restore(model, images, precision="bf16") - hfdae.restore(model, images, precision="fp32")).abs()
    assert 0 < difference.max() < 0.05  # bf16 really ran (not identical) and stays close


@pytest.mark.parametrize(
    "overrides",
    [{"preset": "small"}, {"preset": "skip", "predict_residual": True}, {"preset": "small", "colour_space": "gray"},
     {"preset": "small", "colour_space": "lab"}, {"preset": "small", "extra_input_channels": 1},
     {"preset": "small", "upsample": "resize", "output_head": "scaled_tanh"},
     {"preset": "small", "widths": [8, 16], "blocks_per_level": [1, 1]},
     {"preset": "small", "space_to_depth_factor": 2, "noise_level_input": True, "predict_residual": True},
     {"preset": "small", "space_to_depth_factor": 2, "noise_level_input": True, "extra_input_channels": 1}],
    ids=["small", "skip-residual", "gray", "lab", "mask-channel", "resize-scaled-tanh", "two-levels",
         "stem2-noise-map", "stem2-mask-noise-map"],
)
def test_onnx_export_matches_pytorch(tmp_path, overrides):
    overrides = dict(overrides)
    model = _with_trained_statistics(make_model(overrides.pop("preset"), **overrides))
    path = export_onnx(model, tmp_path / "model.onnx")
    assert check_onnx(model, path) < 1e-4


def test_export_leaves_the_model_unchanged(tmp_path):
    model = make_model("small").to(torch.bfloat16).train()
    export_onnx(model, tmp_path / "model.onnx")
    assert next(model.parameters()).dtype == torch.bfloat16 and model.training
    assert any(isinstance(module, torch.nn.BatchNorm2d) for module in model.modules())


def test_export_command(tmp_path, capsys):
    model = make_model("small")
    model.config.images_seen = 1  # a "trained" model: no untrained warning
    model.save_pretrained(tmp_path / "model")
    assert main(["export", str(tmp_path / "model"), "--onnx", str(tmp_path / "out" / "model.onnx"), "--check"]) == 0
    output = capsys.readouterr().out
    assert (tmp_path / "out" / "model.onnx").is_file()
    difference = float(output.split("max abs difference")[1])
    assert difference < 1e-4
