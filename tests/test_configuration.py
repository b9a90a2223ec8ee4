import pytest

from hfdae import DenoisingAutoencoderConfig, PRESETS, list_presets

from conftest import COLOUR_SPACES


def test_list_presets_names_the_three_reference_designs():
    assert set(list_presets()) >= {"small", "noskip", "skip"}


@pytest.mark.parametrize("preset", list_presets())
@pytest.mark.parametrize("colour_space", COLOUR_SPACES)
def test_preset_builds_with_consistent_channels(preset, colour_space):
    config = DenoisingAutoencoderConfig.from_preset(preset, colour_space=colour_space)
    assert config.preset == preset
    assert config.in_channels == config.out_channels == (1 if colour_space == "gray" else 3)
    assert config.network_channels == (3 if colour_space == "rgb" else 1)
    assert config.widths == PRESETS[preset]["widths"]


def test_noskip_and_skip_differ_only_in_skips():
    noskip = DenoisingAutoencoderConfig.from_preset("noskip").to_dict()
    skip = DenoisingAutoencoderConfig.from_preset("skip").to_dict()
    differing = {key for key in skip if skip[key] != noskip.get(key)}
    assert differing == {"skip_connections", "preset"}


def test_presets_are_not_mutated_by_overrides():
    DenoisingAutoencoderConfig.from_preset("skip", widths=[8, 8, 8, 8, 8])
    assert DenoisingAutoencoderConfig.from_preset("skip").widths == PRESETS["skip"]["widths"]


def test_defaults_follow_the_chapter():
    config = DenoisingAutoencoderConfig()
    assert (config.mse_weight, config.l1_weight, config.out_of_range_weight) == (100.0, 30.0, 0.0)
    assert config.norm == "batch" and config.residual_connections and config.skip_connections


def test_config_round_trip(tmp_path):
    config = DenoisingAutoencoderConfig.from_preset("small", output_head="scaled_tanh", out_of_range_weight=5.0)
    config.save_pretrained(tmp_path)
    loaded = DenoisingAutoencoderConfig.from_pretrained(tmp_path)
    assert loaded.to_dict() == config.to_dict()


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"norm": "layer"}, "norm"),
        ({"activation": "tanh"}, "activation"),
        ({"output_head": "clamp"}, "output_head"),
        ({"colour_space": "hsv"}, "colour_space"),
        ({"upsample": "nearest"}, "upsample"),
        ({"widths": []}, "widths"),
        ({"widths": [16, 0]}, "widths"),
        ({"widths": 16}, "widths"),
        ({"blocks_per_level": [1, 1]}, "blocks_per_level"),
        ({"blocks_per_level": [1, 0, 1, 1, 1]}, "blocks_per_level"),
        ({"in_channels": 1}, "in_channels"),
        ({"out_channels": 1}, "out_channels"),
        ({"extra_input_channels": -1}, "extra_input_channels"),
        ({"predict_residual": True, "output_head": "sigmoid"}, "predict_residual"),
        ({"output_head": "scaled_tanh", "scaled_tanh_a": 0.4}, "scaled_tanh_a"),
        ({"chroma_blur_sigma": 0.0}, "chroma_blur_sigma"),
        ({"mse_weight": -1.0}, "mse_weight"),
        ({"mse_weight": 0.0, "l1_weight": 0.0}, "mse_weight"),
        ({"skip_connections": "yes"}, "skip_connections"),
        ({"images_seen": -5}, "images_seen"),
    ],
)
def test_invalid_values_raise_value_error_naming_the_field(overrides, field):
    with pytest.raises(ValueError, match=field):
        DenoisingAutoencoderConfig(**overrides)


def test_unknown_preset_lists_the_valid_ones():
    with pytest.raises(ValueError, match="small"):
        DenoisingAutoencoderConfig.from_preset("huge")


def test_invalid_config_file_fails_on_load(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "hfdae", "norm": "weird"}')
    with pytest.raises(ValueError, match="norm"):
        DenoisingAutoencoderConfig.from_pretrained(tmp_path)
