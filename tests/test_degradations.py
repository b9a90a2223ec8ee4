"""Tests for hfdae.degradations: shapes and dtypes over the registry, each degradation's statistics,
reproducibility, the combinators and the spec builder."""

from __future__ import annotations

import math

import pytest
import torch

from hfdae.degradations import (
    CHAPTER_DEGRADATIONS,
    DEGRADATIONS,
    Chain,
    DegradedBatch,
    Degradation,
    GaussianBlur,
    GaussianNoise,
    Identity,
    InpaintMask,
    JPEGCompression,
    Knockout,
    PoissonGaussianNoise,
    RandomChoice,
    SaltPepper,
    build_degradation,
    list_degradations,
)

COMBINED_SPECS = ["chapter", {"chain": ["blur", "gaussian"]}, {"chain": ["knockout", "salt_pepper"]},
                  {"chain": ["gaussian", "jpeg"]}, {"chain": ["poisson_gaussian", {"name": "jpeg", "subsampling": "4:4:4"}]}]
ALL_SPECS = list_degradations() + COMBINED_SPECS
DTYPES = [torch.float32, torch.bfloat16]


def _seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _images(batch: int = 4, channels: int = 3, height: int = 37, width: int = 53, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, channels, height, width, generator=_seeded(seed))


def _spec_id(spec: object) -> str:
    return spec if isinstance(spec, str) else str(spec)


# --------------------------------------------------------------------------------------------------
# Every degradation: contract
# --------------------------------------------------------------------------------------------------


def test_registry_holds_the_eight_leaf_degradations():
    assert list_degradations() == sorted(
        ["identity", "gaussian", "salt_pepper", "blur", "knockout", "inpaint_mask", "poisson_gaussian", "jpeg"]
    )
    assert set(CHAPTER_DEGRADATIONS) <= set(DEGRADATIONS)
    for name, cls in DEGRADATIONS.items():
        assert cls.name == name and issubclass(cls, Degradation)


@pytest.mark.parametrize("spec", ALL_SPECS, ids=_spec_id)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("channels", [1, 3])
def test_shape_dtype_device_params_and_mask(spec, dtype, channels):
    degradation = build_degradation(spec)
    images = _images(channels=channels).to(dtype)
    result = degradation(images, generator=_seeded())

    assert isinstance(result, DegradedBatch)
    assert result.images.shape == images.shape
    assert result.images.dtype == dtype
    assert result.images.device == images.device
    assert torch.isfinite(result.images.float()).all()
    assert tuple(result.params) == degradation.param_names
    for values in result.params.values():
        assert values.shape == (images.shape[0],)
        assert values.dtype in (torch.float32, torch.int64)
        assert values.device == images.device
    if degradation.makes_mask:
        assert result.mask.shape == (4, 1, 37, 53) and result.mask.dtype == torch.bool
    else:
        assert result.mask is None


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_identity_returns_the_clean_images(dtype):
    images = _images().to(dtype)
    result = Identity()(images)
    assert torch.equal(result.images, images)
    assert result.images.data_ptr() != images.data_ptr()
    assert result.params == {} and result.mask is None


def test_rejects_images_that_are_not_float_bchw():
    with pytest.raises(ValueError, match="B, C, H, W"):
        GaussianNoise()(torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="float"):
        GaussianNoise()(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))


# --------------------------------------------------------------------------------------------------
# Reproducibility
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ALL_SPECS, ids=_spec_id)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_same_seed_same_output_different_seed_different_output(spec, dtype):
    degradation = build_degradation(spec)
    images = _images().to(dtype)
    first = degradation(images, generator=_seeded(1))
    again = degradation(images, generator=_seeded(1))
    other = degradation(images, generator=_seeded(2))

    assert torch.equal(first.images, again.images)
    assert first.params.keys() == again.params.keys()
    for key in first.params:
        assert torch.allclose(first.params[key], again.params[key], rtol=0, atol=0, equal_nan=True)
    if spec == "identity":
        assert torch.equal(first.images, other.images)
    else:
        assert not torch.equal(first.images, other.images)


@pytest.mark.parametrize("spec", ALL_SPECS, ids=_spec_id)
def test_float32_and_bfloat16_draw_the_same_params_and_masks(spec):
    degradation = build_degradation(spec)
    images = _images()
    single = degradation(images, generator=_seeded(3))
    half_precision = degradation(images.to(torch.bfloat16), generator=_seeded(3))
    for key in single.params:
        assert torch.allclose(single.params[key], half_precision.params[key], rtol=0, atol=0, equal_nan=True)
    if single.mask is not None:
        assert torch.equal(single.mask, half_precision.mask)


def test_no_generator_uses_the_global_rng():
    torch.manual_seed(5)
    first = GaussianNoise()(_images())
    torch.manual_seed(5)
    again = GaussianNoise()(_images())
    assert torch.equal(first.images, again.images)


# --------------------------------------------------------------------------------------------------
# Gaussian noise
# --------------------------------------------------------------------------------------------------


def test_gaussian_fixed_sigma_is_realised_within_5_percent():
    sigma = 25 / 255
    clean = torch.full((8, 3, 128, 128), 0.5)
    result = GaussianNoise(sigma=sigma)(clean, generator=_seeded())
    assert abs((result.images - clean).std().item() - sigma) < 0.05 * sigma
    assert torch.allclose(result.params["sigma"], torch.full((8,), sigma))


def test_gaussian_per_image_sigmas_stay_in_range_and_match_the_noise():
    degradation = GaussianNoise(sigma_min=0.05, sigma_max=0.2)
    clean = torch.full((16, 3, 64, 64), 0.5)
    result = degradation(clean, generator=_seeded())
    sigma = result.params["sigma"]
    assert ((sigma >= 0.05) & (sigma <= 0.2)).all()
    assert sigma.std() > 0.01  # really drawn per image
    empirical = (result.images - clean).std(dim=(1, 2, 3))
    assert torch.allclose(empirical, sigma, rtol=0.05)


def test_gaussian_noise_is_clipped_only_on_request():
    clean = torch.full((2, 3, 32, 32), 0.95)
    unclipped = GaussianNoise(sigma=0.2)(clean, generator=_seeded()).images
    clipped = GaussianNoise(sigma=0.2, clip=True)(clean, generator=_seeded()).images
    assert unclipped.max() > 1.0
    assert clipped.min() >= 0.0 and clipped.max() <= 1.0


# --------------------------------------------------------------------------------------------------
# Salt and pepper
# --------------------------------------------------------------------------------------------------


def test_salt_pepper_hits_the_fraction_with_0_or_1_in_all_channels():
    clean = 0.25 + 0.5 * _images(batch=8, height=64, width=64)  # strictly inside (0, 1): hits are recognisable
    result = SaltPepper(fraction=0.05)(clean, generator=_seeded())
    mask = result.mask

    assert (result.params["fraction"] - 0.05).abs().max() < 0.01
    assert torch.allclose(result.params["fraction"], mask.float().mean(dim=(1, 2, 3)))
    changed = (result.images != clean).any(dim=1, keepdim=True)
    assert torch.equal(changed, mask)
    hit_values = result.images.permute(1, 0, 2, 3)[:, mask[:, 0]]  # [C, hits]
    assert ((hit_values == 0) | (hit_values == 1)).all()
    assert (hit_values == hit_values[:1]).all()  # all channels together
    salt_share = (hit_values[0] == 1).float().mean()
    assert 0.4 < salt_share < 0.6


# --------------------------------------------------------------------------------------------------
# Blur
# --------------------------------------------------------------------------------------------------


def test_blur_kernel_sums_to_one_and_default_size_covers_three_sigma():
    blur = GaussianBlur(sigma_min=0.5, sigma_max=3.0)
    assert blur.effective_kernel_size == 19
    assert GaussianBlur(sigma=1.2).effective_kernel_size == 9
    impulse = torch.zeros(4, 1, 41, 41)
    impulse[:, :, 20, 20] = 1.0
    kernels = blur(impulse, generator=_seeded()).images
    assert torch.allclose(kernels.sum(dim=(1, 2, 3)), torch.ones(4), atol=1e-5)


def test_blur_with_tiny_sigma_is_near_identity():
    images = _images()
    blurred = GaussianBlur(sigma=1e-3)(images).images
    assert (blurred - images).abs().max() < 1e-4


@pytest.mark.parametrize("size", [(37, 53), (5, 6)], ids=["reflect", "replicate-fallback"])
def test_blur_keeps_a_constant_image_constant(size):
    constant = torch.full((3, 3, *size), 0.3)
    blurred = GaussianBlur()(constant, generator=_seeded()).images
    assert torch.allclose(blurred, constant, atol=1e-6)


def test_blur_respects_the_per_image_sigma():
    texture = torch.rand(1, 1, 48, 48, generator=_seeded()).expand(8, 3, 48, 48)
    result = GaussianBlur(sigma_min=0.3, sigma_max=3.0)(texture, generator=_seeded(1))
    blurred = result.images
    horizontal, vertical = blurred.diff(dim=-1), blurred.diff(dim=-2)
    gradient_energy = horizontal.square().mean(dim=(1, 2, 3)) + vertical.square().mean(dim=(1, 2, 3))
    order = result.params["sigma"].argsort()
    assert (gradient_energy[order].diff() < 0).all()


# --------------------------------------------------------------------------------------------------
# Knockout
# --------------------------------------------------------------------------------------------------


def test_knockout_single_block_is_at_most_9x9_and_fully_zero():
    clean = 0.1 + 0.9 * _images(batch=32, height=32, width=32)  # no zeros of its own
    result = Knockout(max_blocks=1)(clean, generator=_seeded())
    assert (result.params["blocks"] == 1).all()
    zeros = (result.images == 0).all(dim=1, keepdim=True)
    assert torch.equal(zeros, result.mask)
    assert torch.equal(result.images == 0, result.mask.expand_as(clean))  # all channels or none
    for mask in result.mask[:, 0]:
        rows = mask.any(dim=1).nonzero().squeeze(1)
        columns = mask.any(dim=0).nonzero().squeeze(1)
        assert 1 <= len(rows) <= 9 and 1 <= len(columns) <= 9
        box = mask[rows.min() : rows.max() + 1, columns.min() : columns.max() + 1]
        assert box.all() and box.sum() == mask.sum()


def test_knockout_block_count_scales_with_image_area():
    knockout = Knockout(min_blocks=2, max_blocks=30)
    small = knockout(torch.ones(64, 1, 32, 32), generator=_seeded()).params["blocks"]
    large = knockout(torch.ones(64, 1, 256, 256), generator=_seeded()).params["blocks"]
    assert small.min() >= 2
    assert large.float().mean() > 10 * small.float().mean()


# --------------------------------------------------------------------------------------------------
# Inpainting masks
# --------------------------------------------------------------------------------------------------


def test_inpaint_holes_exist_are_larger_than_knockout_and_take_the_fill_value():
    clean = _images(batch=16, height=64, width=64)
    result = InpaintMask(fill=0.5)(clean, generator=_seeded())
    mask = result.mask.expand_as(clean)

    assert (result.params["hole_fraction"] > 0).all()
    assert torch.allclose(result.params["hole_fraction"], result.mask.float().mean(dim=(1, 2, 3)))
    assert (result.images[mask] == 0.5).all()
    assert torch.equal(result.images[~mask], clean[~mask])
    knockout_fraction = Knockout()(clean, generator=_seeded()).mask.float().mean()
    assert result.params["hole_fraction"].mean() > 2 * knockout_fraction


def test_inpaint_boxes_only_and_strokes_only():
    clean = torch.ones(8, 1, 48, 48)
    boxes = InpaintMask(max_strokes=0, min_box_fraction=0.25, max_box_fraction=0.25)(clean, generator=_seeded())
    assert (boxes.params["hole_fraction"] >= 144 / 48**2 - 1e-6).all()  # at least one 12x12 box
    strokes = InpaintMask(max_boxes=0)(clean, generator=_seeded())
    assert (strokes.params["hole_fraction"] > 0).all()


# --------------------------------------------------------------------------------------------------
# Combinators
# --------------------------------------------------------------------------------------------------


def test_random_choice_with_one_positive_weight_uses_only_that_member():
    choice = RandomChoice(list(CHAPTER_DEGRADATIONS), weights=[1, 0, 0, 0])
    result = choice(_images(batch=16), generator=_seeded())
    assert (result.params["choice"] == 0).all()
    assert not result.params["gaussian.sigma"].isnan().any()
    for key in ("salt_pepper.fraction", "blur.sigma", "knockout.blocks"):
        assert result.params[key].isnan().all()
    assert not result.mask.any()


def test_random_choice_never_draws_a_zero_weight_last_member():
    choice = RandomChoice(["gaussian", "blur"], weights=[1, 0])
    drawn = choice(torch.rand(512, 1, 2, 2), generator=_seeded()).params["choice"]
    assert (drawn == 0).all()


def test_random_choice_proportions_follow_the_weights():
    weights = [1.0, 2.0, 3.0, 4.0]
    choice = RandomChoice(["identity", "gaussian", "salt_pepper", "knockout"], weights=weights)
    drawn = choice(torch.rand(4000, 1, 4, 4), generator=_seeded()).params["choice"]
    proportions = torch.bincount(drawn, minlength=4).float() / len(drawn)
    assert torch.allclose(proportions, torch.tensor(weights) / sum(weights), atol=0.03)


def test_random_choice_routes_params_and_masks_per_image():
    result = build_degradation("chapter")(_images(batch=32), generator=_seeded())
    choice = result.params["choice"]
    for index, name in enumerate(CHAPTER_DEGRADATIONS):
        key = next(key for key in result.params if key.startswith(f"{name}."))
        assert torch.equal(~result.params[key].isnan(), choice == index)
    mask_makers = (choice == 1) | (choice == 3)
    assert not result.mask[~mask_makers].any()
    assert result.mask[mask_makers].flatten(1).any(dim=1).all()


def test_random_choice_mask_is_none_without_mask_makers():
    result = RandomChoice(["gaussian", "blur"])(_images(), generator=_seeded())
    assert result.mask is None


def test_chain_applies_in_order():
    blur, salt_pepper = GaussianBlur(sigma=2.0), SaltPepper(fraction=0.1)
    images = 0.25 + 0.5 * _images()
    chained = Chain([blur, salt_pepper])(images, generator=_seeded())

    generator = _seeded()
    by_hand = salt_pepper(blur(images, generator).images, generator)
    assert torch.equal(chained.images, by_hand.images)
    assert torch.equal(chained.mask, by_hand.mask)
    assert set(chained.params) == {"0.blur.sigma", "1.salt_pepper.fraction"}

    # Salt and pepper last leaves exact 0/1 pixels; blurred afterwards they are smeared out.
    hits = chained.mask.expand_as(images)
    assert ((chained.images[hits] == 0) | (chained.images[hits] == 1)).all()
    reversed_order = Chain([salt_pepper, blur])(images, generator=_seeded())
    assert not ((reversed_order.images[hits] == 0) | (reversed_order.images[hits] == 1)).all()


def test_chain_ors_masks():
    chain = Chain([Knockout(), SaltPepper()])
    result = chain(torch.full((4, 3, 32, 32), 0.5), generator=_seeded())
    assert torch.equal(result.mask, (result.images != 0.5).any(dim=1, keepdim=True))


# --------------------------------------------------------------------------------------------------
# build_degradation and specs
# --------------------------------------------------------------------------------------------------


def test_build_degradation_accepts_every_spec_form():
    noise = GaussianNoise(sigma=0.1)
    assert build_degradation(noise) is noise
    assert build_degradation("gaussian") == GaussianNoise()
    assert build_degradation({"name": "gaussian", "sigma_max": 0.2}) == GaussianNoise(sigma_max=0.2)

    choice = build_degradation({"choice": ["gaussian", {"name": "blur", "sigma": 1.0}], "weights": [3, 1]})
    assert isinstance(choice, RandomChoice)
    assert choice.degradations == [GaussianNoise(), GaussianBlur(sigma=1.0)]
    assert choice.probabilities == [0.75, 0.25]

    chain = build_degradation({"chain": ["blur", "gaussian"]})
    assert isinstance(chain, Chain) and chain.degradations == [GaussianBlur(), GaussianNoise()]

    listed = build_degradation(["knockout", "salt_pepper"])
    assert isinstance(listed, RandomChoice) and listed.probabilities == [0.5, 0.5]

    chapter = build_degradation("chapter")
    assert [member.name for member in chapter.degradations] == list(CHAPTER_DEGRADATIONS)
    assert chapter.probabilities == [0.25] * 4


@pytest.mark.parametrize(
    "spec",
    ALL_SPECS
    + [
        {"name": "gaussian", "sigma": 25 / 255, "clip": True},
        {"name": "inpaint_mask", "stroke_vertices": [2, 4], "fill": 1.0},
        {"choice": ["gaussian", {"chain": ["blur", "knockout"]}], "weights": [1, 2]},
    ],
    ids=_spec_id,
)
def test_to_spec_round_trip(spec):
    degradation = build_degradation(spec)
    spec_dict = degradation.to_spec()
    rebuilt = build_degradation(spec_dict)
    assert rebuilt == degradation
    assert rebuilt.to_spec() == spec_dict
    assert repr(rebuilt) == repr(degradation)
    assert spec_dict["name"] == degradation.name
    assert "(" in repr(degradation) and type(degradation).__name__ in repr(degradation)


def test_unknown_name_lists_the_valid_names():
    with pytest.raises(ValueError, match=r"unknown degradation 'gausian'.*gaussian.*salt_pepper"):
        build_degradation("gausian")
    with pytest.raises(ValueError, match=r"unknown degradation 'noise'"):
        build_degradation({"name": "noise"})


def test_unknown_parameter_names_parameter_degradation_and_valid_parameters():
    with pytest.raises(ValueError, match=r"'sigmax'.*'gaussian'.*sigma_min, sigma_max, sigma, clip"):
        build_degradation({"name": "gaussian", "sigmax": 0.2})
    with pytest.raises(ValueError, match=r"'probabilities'.*'choice'"):
        build_degradation({"choice": ["gaussian"], "probabilities": [1]})


@pytest.mark.parametrize(
    ("build", "pattern"),
    [
        (lambda: GaussianNoise(sigma=-0.1), r"sigma=-0\.1"),
        (lambda: build_degradation({"name": "gaussian", "sigma_max": -1}), r"sigma_max=-1"),
        (lambda: GaussianNoise(sigma_min=0.3, sigma_max=0.1), r"sigma_min=0\.3, sigma_max=0\.1"),
        (lambda: GaussianBlur(sigma_min=4.0, sigma_max=3.0), r"sigma_min=4\.0"),
        (lambda: GaussianBlur(kernel_size=4), r"kernel_size=4"),
        (lambda: SaltPepper(fraction=1.5), r"fraction=1\.5"),
        (lambda: SaltPepper(salt_ratio=-0.5), r"salt_ratio=-0\.5"),
        (lambda: Knockout(min_size=5, max_size=3), r"min_size=5, max_size=3"),
        (lambda: Knockout(min_size=0), r"min_size=0"),
        (lambda: Knockout(max_size=2.5), r"max_size=2\.5"),
        (lambda: InpaintMask(min_stroke_width=0.5), r"min_stroke_width=0\.5"),
        (lambda: InpaintMask(stroke_vertices=(1, 3)), r"stroke_vertices\[0\]=1"),
        (lambda: InpaintMask(max_box_fraction=2.0), r"max_box_fraction=2\.0"),
        (lambda: RandomChoice(["gaussian", "blur"], weights=[1, -1]), r"weights=-1"),
        (lambda: RandomChoice(["gaussian", "blur"], weights=[0, 0]), r"weights=\[0\.0, 0\.0\]"),
        (lambda: RandomChoice(["gaussian", "blur"], weights=[1]), r"weights=\[1\]"),
        (lambda: Chain([]), r"degradations=\[\]"),
        (lambda: GaussianNoise(sigma=math.nan), r"sigma=nan"),
    ],
)
def test_out_of_range_values_name_parameter_and_value(build, pattern):
    with pytest.raises(ValueError, match=pattern):
        build()


@pytest.mark.parametrize(
    "spec, expect_known",
    [("gaussian", [True] * 6), ("blur", [False] * 6), ({"chain": ["blur", "gaussian"]}, [True] * 6),
     ({"choice": ["gaussian", "knockout"]}, None)],
    ids=["gaussian", "blur", "chain", "choice"],
)
def test_gaussian_sigma_reports_the_noise_each_image_received(spec, expect_known):
    from hfdae.degradations import gaussian_sigma

    degradation = build_degradation(spec)
    images = torch.rand(6, 3, 16, 16)
    batch = degradation(images, generator=torch.Generator().manual_seed(1))
    sigma = gaussian_sigma(degradation, batch)
    known = (~torch.isnan(sigma)).tolist()
    if expect_known is None:  # a choice: known exactly where the Gaussian member was drawn
        gaussian_index = [member.name for member in degradation.degradations].index("gaussian")
        expect_known = (batch.params["choice"] == gaussian_index).tolist()
    assert known == expect_known
    residual = (batch.images - images) if spec == "gaussian" else None
    if residual is not None:  # the reported sigma is the noise's real strength
        measured = residual.flatten(1).std(dim=1)
        torch.testing.assert_close(measured, sigma, atol=0.02, rtol=0.15)


# --------------------------------------------------------------------------------------------------
# Real-photo degradations: signal-dependent noise and JPEG
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("intensity", [0.2, 0.8])
def test_poisson_gaussian_variance_is_shot_times_intensity_plus_read_squared(intensity):
    flat = torch.full((2, 3, 128, 128), intensity)
    result = PoissonGaussianNoise(shot=0.01, read=0.02)(flat, generator=_seeded())
    variance = (result.images - flat).var().item()
    assert variance == pytest.approx(0.01 * intensity + 0.02**2, rel=0.05)
    assert (result.images - flat).mean().abs().item() < 0.005


def test_poisson_gaussian_is_brighter_noisier_and_draws_per_image_parameters_in_range():
    ramp = torch.linspace(0, 1, 256).repeat(4, 3, 64, 1)
    result = PoissonGaussianNoise(shot_min=0.005, shot_max=0.02, read_min=0.0, read_max=0.01)(ramp, generator=_seeded())
    noise = result.images - ramp
    assert noise[..., :64].std() < noise[..., -64:].std() / 2  # dark regions are less noisy
    assert ((result.params["shot"] >= 0.005) & (result.params["shot"] <= 0.02)).all()
    assert ((result.params["read"] >= 0.0) & (result.params["read"] <= 0.01)).all()
    # the channels get independent draws
    assert not torch.equal(noise[:, 0], noise[:, 1])


def test_poisson_gaussian_without_shot_noise_is_gaussian_read_noise():
    flat = torch.full((1, 1, 128, 128), 0.5)
    result = PoissonGaussianNoise(shot=0.0, read=0.05)(flat, generator=_seeded())
    assert (result.images - flat).std().item() == pytest.approx(0.05, rel=0.05)


def _natural(channels: int = 3) -> torch.Tensor:
    from hfdae.processing import to_tensor
    from hfdae.samples import sample_image

    image = to_tensor(sample_image("astronaut"))[..., 100:228, 100:228]
    return image if channels == 3 else image.mean(dim=1, keepdim=True)


@pytest.mark.parametrize("subsampling", ["4:2:0", "4:4:4"])
@pytest.mark.parametrize("channels", [1, 3])
def test_jpeg_is_exactly_what_pillow_writes_and_reads(subsampling, channels):
    import io

    import numpy as np
    from PIL import Image

    images = _natural(channels)
    result = JPEGCompression(quality=75, subsampling=subsampling)(images, generator=_seeded())
    pixels = (images[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    buffer = io.BytesIO()
    Image.fromarray(pixels[..., 0] if channels == 1 else pixels).save(
        buffer, format="JPEG", quality=75, subsampling=0 if subsampling == "4:4:4" else 2
    )
    expected = np.asarray(Image.open(io.BytesIO(buffer.getvalue()))).reshape(pixels.shape)
    assert torch.equal((result.images[0] * 255).round().to(torch.uint8).permute(1, 2, 0), torch.from_numpy(expected))
    assert result.params["quality"].tolist() == [75]


def test_jpeg_quality_orders_the_error_and_4_2_0_loses_chroma_detail():
    images = _natural()
    error = {quality: (JPEGCompression(quality=quality)(images).images - images).square().mean().item()
             for quality in (20, 50, 90)}
    assert error[20] > error[50] > error[90] > 0
    full_chroma = (JPEGCompression(quality=90, subsampling="4:4:4")(images).images - images).square().mean().item()
    assert full_chroma < error[90]


def test_jpeg_draws_integer_qualities_in_range():
    result = JPEGCompression(quality_min=70, quality_max=72)(_images(batch=32), generator=_seeded())
    assert result.params["quality"].dtype == torch.int64
    assert set(result.params["quality"].tolist()) == {70, 71, 72}


def test_jpeg_refuses_bad_settings_naming_them():
    with pytest.raises(ValueError, match="subsampling"):
        JPEGCompression(subsampling="4:1:1")
    with pytest.raises(ValueError, match="quality_max"):
        JPEGCompression(quality_max=101)
    with pytest.raises(ValueError, match="channels"):
        JPEGCompression()(torch.rand(1, 2, 16, 16))
