"""ONNX export: the exported graph computes what the PyTorch model computes, at any size; a clear message without onnx."""

from __future__ import annotations

import pytest
import torch

import hfdae
from hfdae.cli import main
from hfdae.export import check_onnx, export_onnx

from conftest import make_model


def _with_trained_statistics(model: hfdae.DenoisingAutoencoder) -> hfdae.DenoisingAutoencoder:
    """Batch norms with non-trivial running statistics and affine parameters (as after training)."""
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            for tensor, low, high in ((module.running_mean, -0.3, 0.3), (module.running_var, 0.5, 2.0),
                                      (module.weight.data, 0.5, 1.5), (module.bias.data, -0.2, 0.2)):
                tensor.copy_(low + (high - low) * torch.rand(tensor.shape, generator=generator))
    return model.eval()


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
