import json

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModel

from hfdae import (
    CheckpointError,
    DenoisingAutoencoder,
    DenoisingAutoencoderConfig,
    list_presets,
    out_of_range_penalty,
    reconstruction_loss,
)
from hfdae.blocks import ResidualBlock, lab_to_rgb, rgb_to_lab

from conftest import COLOUR_SPACES, make_model

PRESET_COLOUR = [(preset, colour) for preset in list_presets() for colour in COLOUR_SPACES]


@pytest.mark.parametrize("preset, colour_space", PRESET_COLOUR)
@pytest.mark.parametrize("height, width", [(37, 53), (128, 128), (5, 7)])
def test_any_size_gives_same_shape(preset, colour_space, height, width):
    model = make_model(preset, colour_space).eval()
    channels = model.config.image_channels
    with torch.no_grad():
        output = model(torch.rand(2, channels, height, width)).reconstruction
    assert output.shape == (2, channels, height, width)
    assert torch.isfinite(output).all()


@pytest.mark.parametrize("preset, colour_space", PRESET_COLOUR)
def test_gradients_reach_the_first_layer(preset, colour_space):
    model = make_model(preset, colour_space).train()
    images = torch.rand(2, model.config.image_channels, 37, 53)
    loss = model(pixel_values=images, labels=images).loss
    loss.backward()
    first = model.encoder.levels[0][0].conv1.weight.grad
    assert first is not None and first.abs().sum() > 0
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("preset, colour_space", PRESET_COLOUR)
def test_save_load_round_trip_is_exact(preset, colour_space, tmp_path):
    model = make_model(preset, colour_space).train()
    # a few training-mode passes so the batch-norm running statistics are not the defaults
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(4, model.config.image_channels, 32, 32))
    model.eval()
    model.save_pretrained(tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
    loaded = AutoModel.from_pretrained(tmp_path)
    assert isinstance(loaded, DenoisingAutoencoder) and not loaded.training
    assert list(model.state_dict()) == list(loaded.state_dict())
    for (name, tensor), (loaded_name, loaded_tensor) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert name == loaded_name and torch.equal(tensor, loaded_tensor), name
    images = torch.rand(2, model.config.image_channels, 37, 53)
    with torch.no_grad():
        assert torch.equal(model(images).reconstruction, loaded(images).reconstruction)


def test_batch_norm_train_and_eval_behaviour():
    model = make_model("small").train()
    first = torch.rand(1, 3, 32, 32)
    others_a, others_b = torch.rand(3, 3, 32, 32), torch.rand(3, 3, 32, 32)
    running_mean = model.encoder.levels[0][0].norm1.running_mean.clone()
    with torch.no_grad():
        train_a = model(torch.cat([first, others_a])).reconstruction[0]
        train_b = model(torch.cat([first, others_b])).reconstruction[0]
    # in training mode an image's output depends on the rest of its batch, and statistics move
    assert not torch.allclose(train_a, train_b)
    assert not torch.equal(running_mean, model.encoder.levels[0][0].norm1.running_mean)
    model.eval()
    running_mean = model.encoder.levels[0][0].norm1.running_mean.clone()
    with torch.no_grad():
        eval_a = model(torch.cat([first, others_a])).reconstruction[0]
        eval_b = model(torch.cat([first, others_b])).reconstruction[0]
    torch.testing.assert_close(eval_a, eval_b)
    assert torch.equal(running_mean, model.encoder.levels[0][0].norm1.running_mean)


def test_loss_is_the_chapters_mixed_loss():
    model = make_model("small", out_of_range_weight=7.0).train()
    noisy, clean = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    output = model(pixel_values=noisy, labels=clean)
    residual = output.reconstruction - clean
    penalty = torch.where(output.reconstruction < 0, output.reconstruction**2, 0) + torch.where(
        output.reconstruction > 1, (output.reconstruction - 1) ** 2, 0
    )
    expected = 100 * residual.pow(2).mean() + 30 * residual.abs().mean() + 7.0 * penalty.mean()
    torch.testing.assert_close(output.loss, expected)
    torch.testing.assert_close(output.mse, residual.pow(2).mean().detach())


def test_out_of_range_penalty_values():
    values = torch.tensor([-0.5, 0.0, 0.3, 1.0, 1.5])
    torch.testing.assert_close(out_of_range_penalty(values), torch.tensor([0.25, 0.0, 0.0, 0.0, 0.25]))


def test_loss_of_a_perfect_reconstruction_is_zero():
    clean = torch.rand(1, 3, 8, 8)
    loss, parts = reconstruction_loss(clean, clean)
    assert float(loss) == 0.0 and float(parts["l1"]) == 0.0


@pytest.mark.parametrize(
    "head, low, high",
    [("sigmoid", 0.0, 1.0), ("tanh", 0.0, 1.0), ("scaled_tanh", 0.55 * (0.9 - 1), 0.55 * (0.9 + 1))],
)
def test_output_heads_bound_the_range(head, low, high):
    model = make_model("small", output_head=head).eval()
    with torch.no_grad():
        model.output_conv.weight.mul_(1000)  # drive the head into saturation
        output = model(torch.rand(2, 3, 32, 32)).reconstruction
    assert output.min() >= low - 1e-6 and output.max() <= high + 1e-6
    assert output.min() < 0.05 + max(low, 0) or output.max() > high - 0.05


def test_predict_residual_with_a_silent_network_returns_the_input():
    model = make_model("small", predict_residual=True).eval()
    with torch.no_grad():
        model.output_conv.weight.zero_()
        model.output_conv.bias.zero_()
        images = torch.rand(2, 3, 37, 53)
        torch.testing.assert_close(model(images).reconstruction, images)


def test_lab_conversion_round_trip_and_reference():
    from skimage.color import rgb2lab

    rgb = torch.rand(2, 3, 16, 16, dtype=torch.float64)
    torch.testing.assert_close(lab_to_rgb(rgb_to_lab(rgb)), rgb, atol=1e-6, rtol=0)
    reference = torch.from_numpy(rgb2lab(rgb[0].permute(1, 2, 0).numpy())).permute(2, 0, 1)
    torch.testing.assert_close(rgb_to_lab(rgb)[0], reference, atol=0.05, rtol=0)


def test_lab_mode_restores_lightness_and_smooths_chroma():
    model = make_model("small", "lab").eval()
    assert model.encoder.levels[0][0].conv1.in_channels == 1  # the network sees only L
    with torch.no_grad():
        model.output_conv.weight.zero_()
        model.output_conv.bias.zero_()
        images = torch.rand(1, 3, 32, 32)
        # zero network output -> L = 50 everywhere; A and B are the input's, smoothed
        lab = rgb_to_lab(model(images).reconstruction.clamp(0, 1))
    torch.testing.assert_close(lab[:, 0], torch.full_like(lab[:, 0], 50.0), atol=0.5, rtol=0)
    assert lab[:, 1:].std() < rgb_to_lab(images)[:, 1:].std()


def test_extra_input_channels_are_required_when_configured():
    model = make_model("small", extra_input_channels=1).eval()
    images = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match="extra_input_channels"):
        model(images)
    assert model(images, extra_inputs=torch.zeros(1, 1, 16, 16)).reconstruction.shape == images.shape


def test_misspelled_forward_arguments_raise():
    with pytest.raises(TypeError, match="label"):
        make_model("small")(torch.rand(1, 3, 8, 8), label=torch.rand(1, 3, 8, 8))


def test_wrong_input_channels_are_named():
    model = make_model("small").eval()
    with pytest.raises(ValueError, match="pixel_values"):
        model(torch.rand(1, 1, 16, 16))


def test_kaiming_init_and_fresh_batch_norm(tmp_path):
    model = make_model("skip")
    conv = model.encoder.levels[2][1].conv2
    fan_in = conv.weight[0].numel()
    assert abs(conv.weight.std().item() - (2 / fan_in) ** 0.5) < 0.2 * (2 / fan_in) ** 0.5
    norm = model.encoder.levels[2][1].norm2
    assert torch.equal(norm.weight, torch.ones_like(norm.weight)) and torch.equal(norm.running_var, torch.ones_like(norm.running_var))


def test_residual_block_shortcuts():
    assert isinstance(ResidualBlock(8, 8).shortcut, torch.nn.Identity)
    down = ResidualBlock(8, 16, "down")
    assert down(torch.rand(1, 8, 16, 16)).shape == (1, 16, 8, 8)
    for mode in ("transposed", "resize"):
        up = ResidualBlock(16, 8, "up", upsample=mode)
        assert up(torch.rand(1, 16, 8, 8)).shape == (1, 8, 16, 16)
    assert ResidualBlock(8, 16, residual=False).shortcut is None


def _interior_range(images: torch.Tensor) -> float:
    """Largest max - min over the central third of any channel of a [B, C, H, W] batch."""
    height, width = images.shape[-2:]
    interior = images[..., height // 3 : -(height // 3), width // 3 : -(width // 3)]
    return (interior.amax(dim=(-1, -2)) - interior.amin(dim=(-1, -2))).max().item()


@pytest.mark.parametrize("mode, flat", [("resize", True), ("transposed", False)])
def test_only_resize_upsampling_keeps_a_flat_map_flat(mode, flat):
    # the flat-bright failure (docs/reproduction.md): a stride-2 transposed convolution gives each of the
    # four output phases its own kernel, so a flat input comes out as a period-2 grid; bilinear resize
    # followed by a convolution keeps a flat input flat away from the borders
    torch.manual_seed(0)
    block = ResidualBlock(16, 8, "up", upsample=mode).eval()
    with torch.no_grad():
        output = block(torch.full((1, 16, 24, 24), 0.7))
    assert (_interior_range(output) < 1e-5) == flat


@pytest.mark.parametrize("mode, flat", [("resize", True), ("transposed", False)])
def test_flat_image_stays_flat_only_with_resize_upsampling(mode, flat):
    model = make_model("small", upsample=mode).eval()
    with torch.no_grad():
        output = model(torch.full((1, 3, 128, 128), 0.95)).reconstruction
    assert (_interior_range(output) < 1e-5) == flat


@pytest.mark.parametrize("norm", ["batch", "group", "none"])
@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "silu", "gelu"])
def test_norm_and_activation_variants_run(norm, activation):
    model = make_model("small", norm=norm, activation=activation, residual_connections=norm != "none")
    assert model(torch.rand(2, 3, 24, 24)).reconstruction.shape == (2, 3, 24, 24)


# --- strict loading -------------------------------------------------------------------------------


@pytest.fixture
def saved_small(tmp_path):
    make_model("small").save_pretrained(tmp_path)
    return tmp_path


def test_missing_tensor_fails_naming_it(saved_small):
    tensors = load_file(saved_small / "model.safetensors")
    del tensors["output_conv.bias"]
    save_file(tensors, saved_small / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="output_conv.bias"):
        DenoisingAutoencoder.from_pretrained(saved_small)


def test_unexpected_tensor_fails_naming_it(saved_small):
    tensors = load_file(saved_small / "model.safetensors")
    tensors["stray.weight"] = torch.zeros(3)
    save_file(tensors, saved_small / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="stray.weight"):
        AutoModel.from_pretrained(saved_small)


def test_wrongly_shaped_tensor_fails_naming_it(saved_small):
    config = json.loads((saved_small / "config.json").read_text())
    config["widths"] = [width * 2 for width in config["widths"]]
    (saved_small / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"mismatched keys: \S+\.weight \(checkpoint \(\d+, \d+, \d, \d\) vs model"):
        DenoisingAutoencoder.from_pretrained(saved_small)


def test_corrupt_safetensors_fails_loudly(saved_small):
    weights = saved_small / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="corrupt"):
        DenoisingAutoencoder.from_pretrained(saved_small)


def test_auto_classes_are_registered():
    config = AutoConfig.for_model("hfdae")
    assert isinstance(config, DenoisingAutoencoderConfig)
    assert isinstance(AutoModel.from_config(config), DenoisingAutoencoder)


MODEL_FILES = ("configuration_hfdae.py", "blocks.py", "modeling_hfdae.py")


def _imported_modules(source: str) -> set[str]:
    """Every module a file imports, anywhere in it (function bodies too); relative ones as ``.name``."""
    import ast

    modules = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            prefix = "." * node.level
            if node.module is None:  # `from . import x` imports the sibling x
                modules |= {prefix + alias.name for alias in node.names}
            else:
                modules.add(prefix + node.module)
    return modules


def _outside_the_model_files(modules: set[str]) -> set[str]:
    import sys

    siblings = {"." + name.removesuffix(".py") for name in MODEL_FILES}
    allowed_roots = {"torch", "transformers", "safetensors"} | set(sys.stdlib_module_names)
    return {module for module in modules
            if module not in siblings and (module.startswith(".") or module.split(".")[0] not in allowed_roots)}


def test_modeling_files_are_self_contained():
    """configuration/blocks/modeling import only torch, transformers, safetensors, the standard library and each
    other (trust_remote_code uploads exactly these three files); relative and function-level imports included."""
    from pathlib import Path

    import hfdae

    package = Path(hfdae.__file__).parent
    for name in MODEL_FILES:
        outside = _outside_the_model_files(_imported_modules((package / name).read_text()))
        assert not outside, f"{name} imports {sorted(outside)}"


@pytest.mark.parametrize("statement", ["from . import hub", "from .hub import push_model", "import numpy",
                                       "from .. import x", "from .processing import to_tensor"])
def test_the_self_containment_check_sees_every_kind_of_import(statement):
    source = f"def push(self):\n    {statement}\n"
    assert _outside_the_model_files(_imported_modules(source))
    assert not _outside_the_model_files(_imported_modules("from .blocks import Encoder\nimport torch.nn as nn\n"))


# --- the space-to-depth stem and the noise-level input (issue 18) -------------------------------------
STEM_DESIGNS = [
    pytest.param({"space_to_depth_factor": 2}, id="stem2"),
    pytest.param({"space_to_depth_factor": 2, "noise_level_input": True}, id="stem2-noise"),
    pytest.param({"space_to_depth_factor": 4, "noise_level_input": True, "colour_space": "gray"}, id="stem4-noise-gray"),
    pytest.param({"noise_level_input": True, "colour_space": "lab"}, id="noise-lab"),
    pytest.param({"space_to_depth_factor": 2, "extra_input_channels": 1, "noise_level_input": True}, id="stem2-mask-noise"),
]


def _inputs_for(model, batch=2, height=37, width=53):
    config = model.config
    images = torch.rand(batch, config.image_channels, height, width)
    extra = torch.rand(batch, config.extra_input_channels, height, width) if config.extra_input_channels else None
    level = torch.rand(batch) * 0.2 if config.noise_level_input else None
    return {"pixel_values": images, "extra_inputs": extra, "noise_level": level}


@pytest.mark.parametrize("overrides", STEM_DESIGNS)
@pytest.mark.parametrize("height, width", [(37, 53), (5, 7), (64, 64)])
def test_stem_and_noise_level_designs_take_any_size(overrides, height, width):
    model = make_model("small", **overrides).eval()
    inputs = _inputs_for(model, 2, height, width)
    with torch.no_grad():
        output = model(**inputs).reconstruction
        blind = model(**{**inputs, "noise_level": None}).reconstruction
    assert output.shape == inputs["pixel_values"].shape and torch.isfinite(output).all()
    assert blind.shape == output.shape  # a model built with the level also runs without it


@pytest.mark.parametrize("overrides", STEM_DESIGNS)
def test_stem_and_noise_level_designs_save_and_load_exactly(overrides, tmp_path):
    model = make_model("small", **overrides).train()
    with torch.no_grad():
        for _ in range(3):
            model(**_inputs_for(model, 4, 32, 32))
    model.eval().save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path)
    assert loaded.config.space_to_depth_factor == model.config.space_to_depth_factor
    assert loaded.config.noise_level_input == model.config.noise_level_input
    inputs = _inputs_for(model)
    with torch.no_grad():
        assert torch.equal(model(**inputs).reconstruction, loaded(**inputs).reconstruction)
    # strict loading holds for these designs too: a tensor of the wrong shape is named
    state = load_file(tmp_path / "model.safetensors")
    state["output_conv.weight"] = torch.zeros(1, 1, 3, 3)
    save_file(state, tmp_path / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="output_conv.weight"):
        DenoisingAutoencoder.from_pretrained(tmp_path)


@pytest.mark.parametrize("factor", [1, 2, 4])
def test_stem_runs_the_network_at_reduced_resolution(factor):
    model = make_model("small", space_to_depth_factor=factor)
    assert model.config.size_multiple == factor * 4
    seen = []
    hook = model.encoder.levels[0].register_forward_hook(lambda module, args, output: seen.append(output.shape))
    with torch.no_grad():
        model(torch.rand(1, 3, 64, 64))
    hook.remove()
    assert seen[0][-2:] == (64 // factor, 64 // factor)
    assert model.encoder.levels[0][0].conv1.in_channels == 3 * factor**2


def test_noise_level_forms_agree_and_change_the_output():
    model = make_model("small", space_to_depth_factor=2, noise_level_input=True).eval()
    images = torch.rand(2, 3, 30, 42)
    with torch.no_grad():
        as_float = model(images, noise_level=0.1).reconstruction
        as_vector = model(images, noise_level=torch.tensor([0.1, 0.1])).reconstruction
        as_map = model(images, noise_level=torch.full((2, 1, 30, 42), 0.1)).reconstruction
        stronger = model(images, noise_level=0.2).reconstruction
        blind = model(images).reconstruction
        negative = model(images, noise_level=-5.0).reconstruction
        nan = model(images, noise_level=float("nan")).reconstruction
    torch.testing.assert_close(as_float, as_vector, rtol=0, atol=0)
    torch.testing.assert_close(as_float, as_map, rtol=0, atol=0)
    assert not torch.allclose(as_float, stronger) and not torch.allclose(as_float, blind)
    torch.testing.assert_close(blind, negative, rtol=0, atol=0)  # negative and NaN mean "unknown"
    torch.testing.assert_close(blind, nan, rtol=0, atol=0)


def test_noise_level_is_refused_by_blind_models_and_checked():
    from hfdae import noise_level_map

    with pytest.raises(ValueError, match="no noise-level input"):
        make_model("small")(torch.rand(1, 3, 16, 16), noise_level=0.1)
    with pytest.raises(ValueError, match="3 entries for a batch of 2"):
        noise_level_map(torch.rand(3), torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match=r"\[batch, 1, height, width\] map"):
        noise_level_map(torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8))


def test_invalid_space_to_depth_factor_is_named():
    with pytest.raises(ValueError, match="space_to_depth_factor=3"):
        DenoisingAutoencoderConfig.from_preset("small", space_to_depth_factor=3)


def _inpainting_model(colour_space: str) -> DenoisingAutoencoder:
    config = DenoisingAutoencoderConfig.from_preset("small", extra_input_channels=1, task="inpaint", colour_space=colour_space)
    return DenoisingAutoencoder(config).eval()


@pytest.mark.parametrize("colour_space", ["rgb", "lab"])
def test_an_inpainting_model_fills_only_the_holes_and_returns_every_known_pixel_as_given(colour_space):
    import hfdae

    model = _inpainting_model(colour_space)
    clean = torch.rand(1, 3, 24, 40, generator=torch.Generator().manual_seed(1))
    mask = torch.zeros(1, 1, 24, 40)
    mask[..., 4:12, 10:22] = 1.0
    known = ~mask.bool().expand_as(clean)
    with torch.no_grad():
        output = model(clean.masked_fill(mask.bool(), 0.0), extra_inputs=mask).reconstruction
    assert torch.equal(output[known], clean[known])
    assert not torch.equal(output[~known], torch.zeros_like(output[~known]))  # the holes are filled
    restored = hfdae.restore(model, clean, extra_inputs=mask, precision="fp32", tile_size=None)
    assert torch.equal(restored[known], clean[known])


@pytest.mark.parametrize("colour_space", ["rgb", "lab"])
def test_an_inpainting_model_sees_zeros_in_the_holes_whatever_they_held(colour_space):
    # The Space's editor paints the holes (magenta), a user may pass the original pixels: the model must
    # see what training showed it (zeros), or its fill takes the colour of what was under the mask.
    import hfdae

    model = _inpainting_model(colour_space)
    clean = torch.rand(2, 3, 24, 40, generator=torch.Generator().manual_seed(0))
    mask = torch.zeros(2, 1, 24, 40)
    mask[..., 5:8, 3:30] = 1.0
    paint = torch.tensor([1.0, 0.0, 1.0]).view(1, 3, 1, 1)
    holes = clean.masked_fill(mask.bool(), 0.0)
    with torch.no_grad():
        expected = model(holes, extra_inputs=mask).reconstruction
        for under_the_mask in (clean, torch.where(mask.bool(), paint, clean)):
            assert torch.equal(model(under_the_mask, extra_inputs=mask).reconstruction, expected)
            restored = hfdae.restore(model, under_the_mask, extra_inputs=mask, precision="fp32", tile_size=None)
            assert torch.equal(restored, hfdae.restore(model, holes, extra_inputs=mask, precision="fp32", tile_size=None))
    # a model with an extra input that is not a mask (task other than inpaint) is not masked
    other = DenoisingAutoencoder(DenoisingAutoencoderConfig.from_preset("small", extra_input_channels=1)).eval()
    with torch.no_grad():
        assert not torch.equal(other(clean, extra_inputs=mask).reconstruction, other(holes, extra_inputs=mask).reconstruction)
