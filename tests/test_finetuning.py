"""Fine-tuning for a new task: lineage, widening for the mask channel, freezing, and that it helps."""

from __future__ import annotations

import pytest
import torch

import hfdae
from hfdae import DenoisingAutoencoder
from hfdae.cards import render_model_card
from hfdae.cli import main
from hfdae.evaluation import Method, evaluate
from hfdae.finetuning import build_model, convert_to_gray, convert_upsampling, deepen_first_level, widen_input_channels
from hfdae.processing import array_to_tensor, save_image
from hfdae.protocols import get_protocol, task_degradation
from hfdae.samples import SAMPLE_NAMES, sample_image
from hfdae.training import Trainer, finetune
from hfdae.training_config import ModelRecipe, finetune_config

from conftest import PRESETS, make_model
from test_training import tiny_config

# the presets a conversion to resize upsampling applies to (the others already upsample by resize)
TRANSPOSED_PRESETS = [name for name in PRESETS if hfdae.PRESETS[name].get("upsample", "transposed") == "transposed"]

TINY_RUN = {"batch_size": 4, "data.crop_size": 32, "data.split": None, "data.shuffle_buffer": 1,
            "data.validation_images": 2, "data.validation_crop": 32, "channels_last": False, "seed": 3}


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Training crops (top-left of six bundled photos) and held-out crops (other photos, other places)."""
    train = tmp_path_factory.mktemp("train")
    held_out = []
    for index, name in enumerate(SAMPLE_NAMES[:10]):
        array = sample_image(name)
        if index < 6:
            save_image(array_to_tensor(array[40:104, 60:124]), train / f"{index:02d}_{name}.png")
        else:
            held_out.append((name, array_to_tensor(array[120:184, 130:194])))
    return train, held_out


@pytest.fixture(scope="module")
def parent(photos, tmp_path_factory):
    """A tiny model trained on the chapter's degradations (the task 'restore')."""
    folder, _ = photos
    run = tmp_path_factory.mktemp("parent") / "run"
    config = tiny_config(folder, run, max_images=192, **{"data.validation_images": 1})
    return Trainer(config).train().final_model


def _tiny_finetune(parent, photos, output, overrides_extra=None, **options):
    folder, _ = photos
    overrides = {**TINY_RUN, "data.validation_source": str(folder), "data.validation_split": None,
                 **(overrides_extra or {})}
    return finetune(parent, options.pop("task", "inpaint"), str(folder), str(output),
                    overrides=overrides, **options)


def _task_psnr(model, held_out, protocol):
    report = evaluate([Method.from_model(model, "model")], held_out, protocol, with_ssim=False, progress=False)
    conditions = report.conditions
    return sum(report.summary("model", condition)["mean"] for condition in conditions) / len(conditions)


def test_finetuning_for_inpainting_beats_the_parent_and_records_the_lineage(parent, photos, tmp_path):
    result = _tiny_finetune(parent, photos, tmp_path / "inpaint", learning_rate=3e-3, max_images=160)
    tuned = DenoisingAutoencoder.from_pretrained(result.final_model)
    original = DenoisingAutoencoder.from_pretrained(parent)
    assert tuned.config.task == "inpaint" and tuned.config.extra_input_channels == 1
    assert tuned.config.lineage[0] == {"model": str(parent), "task": "restore", "images_seen": 192, "source": "folder",
                                       "description": original.config.training_summary["description"]}
    assert tuned.config.images_seen == 160
    assert tuned.config.training_summary["init_from"] == str(parent)
    _, held_out = photos
    assert _task_psnr(tuned, held_out, "inpaint") > _task_psnr(original, held_out, "inpaint") + 0.5
    card = render_model_card(result.final_model)  # the card shows the lineage, without the parent's local path
    text = str(card)
    assert "| fine-tuned from | an earlier training run (task restore, 192 images seen" in text
    tables = text.split("<details>")[0]  # (the verbatim training_config.yaml below keeps the run's own paths)
    assert str(parent) not in tables and str(photos[0]) not in tables
    assert card.data.datasets is None  # a local folder is no Hub dataset
    # the validation metric is the inpainting protocol's, not the chapter's five-output average
    assert get_protocol('inpaint').headline_label in text and "five-output average" not in text
    assert "extra_inputs=mask" in text and "hfdae denoise" not in text  # its usage gives the mask
    assert "--protocol inpaint" in text and "--protocol seed" not in text
    card = text
    assert "160 training images (352 with those its parents saw) is fewer than the chapter's 2 M" in card
    headline = next(line for line in card.splitlines() if line.startswith("- **Trained on**"))
    assert headline.startswith("- **Trained on** 160 image crops") and headline.endswith("(352 with those its parents saw).")


@pytest.mark.parametrize("preset", PRESETS)
def test_widening_for_the_mask_channel_leaves_the_output_unchanged(preset):
    model = make_model(preset, predict_residual=True).eval()
    widened = widen_input_channels(model, 1).eval()
    assert widened.config.extra_input_channels == 1
    images = torch.rand(2, 3, 40, 40)
    with torch.no_grad():
        expected = model(pixel_values=images).reconstruction
        for mask in (torch.zeros(2, 1, 40, 40), (torch.rand(2, 1, 40, 40) > 0.5).float()):
            torch.testing.assert_close(widened(pixel_values=images, extra_inputs=mask).reconstruction, expected,
                                       atol=1e-6, rtol=0)


def test_freezing_the_encoder_keeps_its_weights_and_statistics_bit_identical(parent, photos, tmp_path):
    result = _tiny_finetune(parent, photos, tmp_path / "frozen", task="deblur", freeze="encoder", max_images=48)
    before = DenoisingAutoencoder.from_pretrained(parent).state_dict()
    after = DenoisingAutoencoder.from_pretrained(result.final_model).state_dict()
    encoder_keys = [key for key in before if key.startswith("encoder.")]
    assert encoder_keys and any("running_mean" in key for key in encoder_keys)
    for key in encoder_keys:
        assert torch.equal(before[key], after[key]), key
    assert any(not torch.equal(before[key], after[key]) for key in before if key.startswith("decoder."))


def test_task_degradations_and_their_options():
    assert task_degradation("deblur") == {"name": "blur", "sigma_max": 3.0}
    chained = task_degradation("deblur", sigma_max=2, noise_sigma_max=0.05)
    assert chained == {"chain": [{"name": "blur", "sigma_max": 2.0}, {"name": "gaussian", "sigma_max": 0.05}]}
    holes = hfdae.degradations.build_degradation(task_degradation("inpaint", max_box_fraction=0.6))
    assert holes.max_box_fraction == 0.6
    with pytest.raises(ValueError, match="unknown option.*'hole_size'.*max_box_fraction"):
        task_degradation("inpaint", hole_size=3)
    with pytest.raises(ValueError, match="task='colourise'"):
        finetune_config("default", "colourise", "photos", "runs/x")
    with pytest.raises(ValueError, match="mask_channel is for the inpaint task"):
        finetune_config("default", "deblur", "photos", "runs/x", mask_channel=True)


def test_finetune_command(parent, photos, tmp_path, capsys):
    folder, _ = photos
    overrides = [f"--{key}={'null' if value is None else value}" for key, value in TINY_RUN.items()]
    code = main(["finetune", "--from", str(parent), "--task", "deblur", "--data", str(folder),
                 "--output", str(tmp_path / "run"), "--max-images", "16", "--task-options", "{sigma_max: 2}",
                 f"--data.validation_source={folder}", "--data.validation_split=null", *overrides])
    assert code == 0
    assert f"best validation PSNR ({get_protocol('deblur').headline_label})" in capsys.readouterr().out
    tuned = DenoisingAutoencoder.from_pretrained(tmp_path / "run" / "final")
    assert tuned.config.task == "deblur" and tuned.config.lineage[0]["model"] == str(parent)
    assert tuned.config.training_summary["degradations"] == {"name": "blur", "sigma_max": 2.0}


def test_a_frozen_encoder_still_learns_the_mask_weights(parent, photos, tmp_path):
    result = _tiny_finetune(parent, photos, tmp_path / "frozen-mask", freeze="encoder", max_images=32)
    before = DenoisingAutoencoder.from_pretrained(parent).state_dict()
    after = DenoisingAutoencoder.from_pretrained(result.final_model).state_dict()
    first_block = "encoder.levels.0.0."
    mask_weights = after[first_block + "conv1.weight"][:, 3:]  # the channel after RGB
    assert mask_weights.abs().sum() > 0  # trained away from their zero start
    for key in before:
        if key.startswith("encoder.") and not key.startswith((first_block + "conv1.", first_block + "shortcut.")):
            assert torch.equal(before[key], after[key]), key


def test_a_resumed_finetune_needs_only_its_checkpoint(parent, photos, tmp_path):
    import shutil

    copied_parent = tmp_path / "parent"
    shutil.copytree(parent, copied_parent)
    _tiny_finetune(copied_parent, photos, tmp_path / "run", task="deblur", max_images=16,
                   overrides_extra={"checkpoint_every_images": 8})
    shutil.rmtree(copied_parent)  # the parent is gone: resuming must not need it
    folder, _ = photos
    overrides = {**TINY_RUN, "data.validation_source": str(folder), "data.validation_split": None}
    result = finetune(copied_parent, "deblur", str(folder), str(tmp_path / "run"), resume=True, max_images=32,
                      overrides=overrides)
    tuned = DenoisingAutoencoder.from_pretrained(result.final_model)
    assert result.images_seen == 32 and tuned.config.lineage[0]["model"] == str(copied_parent)


def _upsampling_free_state(model):
    """The weights outside the decoder's upsampling convolutions (the ones a conversion must keep)."""
    upsampling = {name for name, module in model.named_modules()
                  if isinstance(module, torch.nn.ConvTranspose2d)}
    return {key: value for key, value in model.state_dict().items()
            if not any(key.startswith(name + ".") for name in upsampling)}


@pytest.mark.parametrize("preset", TRANSPOSED_PRESETS)
def test_converting_to_resize_upsampling_keeps_the_other_weights_and_fits_the_old_response(preset):
    model = make_model(preset, predict_residual=True).eval()
    converted = convert_upsampling(model, "resize").eval()
    assert converted.config.upsample == "resize" and model.config.upsample == "transposed"
    assert not any(isinstance(module, torch.nn.ConvTranspose2d) for module in converted.modules())
    after = converted.state_dict()
    for key, value in _upsampling_free_state(model).items():
        assert torch.equal(after[key], value), key
    # each fitted resize + convolution reproduces the phase-independent part of the old transposed
    # convolution's response (about a quarter of it for these random kernels; the rest is the stride-2
    # grid it cannot and should not express); a freshly initialised one is uncorrelated with it
    old_modules = dict(model.named_modules())
    fresh_modules = dict(DenoisingAutoencoder(converted.config).named_modules())
    pairs = [(old_modules[name], module, fresh_modules[name])
             for name, module in converted.named_modules() if isinstance(old_modules.get(name), torch.nn.ConvTranspose2d)]
    assert pairs
    for transposed, fitted, unfitted in pairs:
        features = torch.randn(2, transposed.in_channels, 12, 12)
        with torch.no_grad():
            target = transposed(features)[..., 4:-4, 4:-4]
            def relative_error(module):
                return ((module(features)[..., 4:-4, 4:-4] - target).pow(2).mean() / target.var()).item()
            assert relative_error(fitted) < 0.9 < 1.0 < relative_error(unfitted)
            # the bias is fitted too: zero features give the old bias (or zero) in the interior
            zero = torch.zeros(1, transposed.in_channels, 12, 12)
            expected_bias = transposed(zero)[..., 4:-4, 4:-4]
            torch.testing.assert_close(fitted(zero)[..., 4:-4, 4:-4], expected_bias, atol=0.02, rtol=0)


def test_converting_upsampling_refuses_what_it_cannot_fit():
    with pytest.raises(ValueError, match="upsample='transposed': only a conversion to 'resize'"):
        convert_upsampling(make_model("small"), "transposed")
    with pytest.raises(ValueError, match="already upsamples with 'resize'"):
        convert_upsampling(make_model("small", upsample="resize"), "resize")


def test_training_from_a_parent_can_convert_its_upsampling_and_nothing_else(parent, photos, tmp_path):
    folder, _ = photos
    overrides = {**TINY_RUN, "max_images": 16, "model.init_from": str(parent)}
    # a learning rate too small to move the weights: the run must start from the parent's
    converted = Trainer(tiny_config(folder, tmp_path / "resize", **overrides, **{
        "model.overrides": {"upsample": "resize"}, "schedule.learning_rate": 1e-9})).train()
    model = DenoisingAutoencoder.from_pretrained(converted.final_model)
    assert model.config.upsample == "resize" and model.config.lineage[0]["model"] == str(parent)
    parent_weights = _upsampling_free_state(DenoisingAutoencoder.from_pretrained(parent))
    weights = model.state_dict()
    convolutions = [key for key in parent_weights if key.endswith("conv1.weight")]
    assert convolutions
    for key in convolutions:
        torch.testing.assert_close(weights[key], parent_weights[key], atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match=r"model.overrides \['widths'\] cannot change a model loaded"):
        Trainer(tiny_config(folder, tmp_path / "wider", **overrides, **{"model.overrides": {"widths": [8, 16]}}))


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("extra_input_channels", [0, 1])
def test_converting_to_gray_computes_the_parent_on_three_equal_channels(preset, extra_input_channels):
    model = make_model(preset, predict_residual=True, output_head="linear",
                       extra_input_channels=extra_input_channels).eval()
    gray = convert_to_gray(model).eval()
    assert (gray.config.colour_space, gray.config.in_channels, gray.config.out_channels) == ("gray", 1, 1)
    images = torch.rand(2, 1, 36, 44)
    extra = {"extra_inputs": (torch.rand(2, 1, 36, 44) > 0.5).float()} if extra_input_channels else {}
    levels = [None, 25 / 255] if model.config.noise_level_input else [None]
    with torch.no_grad():
        for level in levels:
            level_argument = {} if level is None else {"noise_level": level}
            parent = model(pixel_values=images.expand(-1, 3, -1, -1), **extra, **level_argument).reconstruction
            converted = gray(pixel_values=images, **extra, **level_argument).reconstruction
            torch.testing.assert_close(converted, parent.mean(dim=1, keepdim=True), atol=2e-5, rtol=0)


def test_converting_to_gray_refuses_a_model_that_is_not_rgb():
    with pytest.raises(ValueError, match="only an RGB model can be converted to gray, not colour_space='gray'"):
        convert_to_gray(make_model("small", colour_space="gray"))


def test_training_from_a_colour_parent_can_convert_it_to_gray(parent, photos, tmp_path):
    folder, _ = photos
    overrides = {**TINY_RUN, "max_images": 8, "model.init_from": str(parent),
                 "model.overrides": {"colour_space": "gray"}}
    run = Trainer(tiny_config(folder, tmp_path / "gray", **overrides)).train()
    model = DenoisingAutoencoder.from_pretrained(run.final_model)
    assert model.config.colour_space == "gray" and model.config.lineage[0]["model"] == str(parent)
    with pytest.raises(ValueError, match="a parent converts only to 'gray'"):
        Trainer(tiny_config(folder, tmp_path / "lab", **{**overrides, "model.overrides": {"colour_space": "lab"}}))


def test_converting_to_gray_fails_where_a_parent_weight_would_have_no_place():
    # after a 2x2 space-to-depth, gray gives 4 channels: a first level of width 4 needs no shortcut
    # convolution, where the RGB parent (12 channels) has one; dropping it would change what the copy computes
    model = make_model("small", space_to_depth_factor=2, widths=[4, 8, 16], predict_residual=True, output_head="linear")
    shortcut = r"encoder\.levels\.0\.0\.shortcut"
    with pytest.raises(RuntimeError, match=rf"cannot convert to gray: the parent's {shortcut}\.bias, {shortcut}\.weight would"):
        convert_to_gray(model)


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("norm", ["batch", "group", "none"])
def test_deepening_the_first_level_computes_what_the_parent_computes(preset, norm):
    model = make_model(preset, norm=norm)
    blocks = model.config.blocks_per_level[0] + 2
    deeper = deepen_first_level(model.eval(), blocks)
    assert deeper.config.blocks_per_level == [blocks, *model.config.blocks_per_level[1:]]
    assert len(deeper.encoder.levels[0]) == len(deeper.decoder.levels[-1]) == blocks
    parent_weights = model.state_dict()
    for name, tensor in deeper.state_dict().items():  # the parent's weights keep their names
        if name in parent_weights:
            torch.testing.assert_close(tensor, parent_weights[name], atol=0, rtol=0)
    assert len(deeper.state_dict()) > len(parent_weights)
    images = torch.rand(2, model.config.in_channels, 36, 44)
    levels = [None, 25 / 255] if model.config.noise_level_input else [None]
    for mode in ("eval", "train"):  # batch statistics too: the new branches add 0 either way
        model.train(mode == "train")
        deeper.train(mode == "train")
        with torch.no_grad():
            for level in levels:
                level_argument = {} if level is None else {"noise_level": level}
                expected = model(pixel_values=images, **level_argument).reconstruction
                torch.testing.assert_close(deeper(pixel_values=images, **level_argument).reconstruction, expected,
                                           atol=0, rtol=0)
    # only each new block's last scale starts at zero, and the gradient reaches it at once (a block zeroed
    # anywhere else would compute the identity too, but never learn)
    new_blocks = [*deeper.encoder.levels[0][blocks - 2:], *deeper.decoder.levels[-1][blocks - 2:]]
    last_scales = [block.norm2.weight if norm != "none" else block.conv2.weight for block in new_blocks]
    assert all(not scale.any() for scale in last_scales)
    assert all(block.conv1.weight.any() for block in new_blocks)
    deeper(pixel_values=images).reconstruction.square().mean().backward()
    assert all(scale.grad is not None and scale.grad.any() for scale in last_scales)


def test_deepening_refuses_what_it_cannot_do_exactly():
    model = make_model("small")
    with pytest.raises(ValueError, match="blocks=1: the model already has 1 block"):
        deepen_first_level(model, 1)
    with pytest.raises(ValueError, match="activation='silu'"):
        deepen_first_level(make_model("small", activation="silu"), 2)
    with pytest.raises(ValueError, match="residual_connections=False"):
        deepen_first_level(make_model("small", residual_connections=False), 2)


def test_training_from_a_parent_can_deepen_its_first_level(parent, photos, tmp_path):
    folder, _ = photos
    overrides = {**TINY_RUN, "max_images": 8, "model.init_from": str(parent),
                 "model.overrides": {"blocks_per_level": [3, 1, 1]}}
    run = Trainer(tiny_config(folder, tmp_path / "deeper", **overrides)).train()
    model = DenoisingAutoencoder.from_pretrained(run.final_model)
    assert model.config.blocks_per_level == [3, 1, 1] and model.config.lineage[0]["model"] == str(parent)
    # the new blocks start at zero and learn: their last normalisation moved off zero in two steps
    assert model.encoder.levels[0][2].norm2.weight.abs().max() > 0
    assert model.decoder.levels[-1][2].norm2.weight.abs().max() > 0
    with pytest.raises(ValueError, match=r"blocks_per_level=\[1, 2, 1\]: a parent with \[1, 1, 1\] can only gain"):
        Trainer(tiny_config(folder, tmp_path / "middle", **{**overrides, "model.overrides": {"blocks_per_level": [1, 2, 1]}}))


@pytest.mark.parametrize(("blocks_per_level", "freeze", "message"), [
    (3, "none", r"blocks_per_level=3: give a list of 3 integers, one per level \(the parent has \[1, 1, 1\]\)"),
    ([2, 1], "none", r"blocks_per_level=\[2, 1\]: give a list of 3 integers"),
    ([2.5, 1, 1], "none", r"blocks_per_level=\[2.5, 1, 1\]: give a list of 3 integers"),
    ([0, 1, 1], "none", r"blocks_per_level=\[0, 1, 1\]: a parent with \[1, 1, 1\] can only gain blocks in its first"),
    ([3, 1, 1], "encoder", r"blocks_per_level=\[3, 1, 1\] with freeze='encoder': the encoder's new blocks would stay"),
])
def test_a_run_that_deepens_its_parent_names_what_is_wrong_with_the_setting(parent, blocks_per_level, freeze, message):
    recipe = ModelRecipe(init_from=str(parent), overrides={"blocks_per_level": blocks_per_level}, freeze=freeze)
    with pytest.raises(ValueError, match=message):
        build_model(recipe)
