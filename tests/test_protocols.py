"""The protocol registry: every entry complete and consistent, and the degraded inputs pinned.

The pinned values below were computed with the evaluation code before the registry existed (commit
1e519a2, ``hfdae.evaluation.degraded_cases``); the committed results of ``hfdae evaluate`` stay valid only
while every protocol degrades the same images the same way. The tolerance allows float rounding on other
CPUs, not another seed or case (which move these numbers by far more).
"""

from __future__ import annotations

import pytest
import torch

from hfdae.baselines import BASELINES, Method, build_baseline
from hfdae.degradations import build_degradation
from hfdae.evaluation import evaluate
from hfdae.protocols import (
    AVERAGE,
    PROTOCOLS,
    EvaluationCase,
    get_protocol,
    list_protocols,
    list_tasks,
    protocol_for_task,
    task_degradation,
)

from conftest import make_model


def synthetic_image(channels: int, height: int, width: int, seed: int) -> torch.Tensor:
    """A smooth colour ramp with a little texture, [1, C, H, W] in [0, 1]."""
    generator = torch.Generator().manual_seed(seed)
    rows = torch.linspace(0, 1, height).view(height, 1)
    columns = torch.linspace(0, 1, width).view(1, width)
    ramps = [0.3 + 0.5 * columns * rows, (0.2 + 0.6 * columns).expand(height, width),
             (0.8 - 0.5 * rows).expand(height, width)]
    return (torch.stack(ramps[:channels]) + 0.1 * torch.rand(channels, height, width, generator=generator)).clamp(0, 1)[None]


IMAGES = {"img3-0": (3, 48, 64, 0), "img3-1": (3, 37, 53, 1), "img1-0": (1, 48, 64, 0), "img1-1": (1, 37, 53, 1)}
# (image, protocol, condition): mean, std, noise sigma, masked pixels, pixels [-1, 5, 7], [0, 20, 31], [0, -3, -2]
PINNED = {
    ("img3-0", "seed", "gaussian"): (0.5438801, 0.2188013, 38.678420931100845, None, (0.731057, 0.402721, 1.010959)),
    ("img3-0", "seed", "salt_pepper"): (0.5385051, 0.1909116, None, 154, (0.839769, 0.445197, 0.826891)),
    ("img3-0", "seed", "blur"): (0.5417511, 0.1584565, None, None, (0.838508, 0.445723, 0.827107)),
    ("img3-0", "seed", "knockout"): (0.5307701, 0.1746935, None, 63, (0.839769, 0.445197, 0.826891)),
    ("img1-1", "awgn", "sigma25"): (0.4734662, 0.1520809, 25.0, None, (0.562997, 0.507575, 0.855534)),
    ("img3-1", "deblur", "blur2"): (0.5415266, 0.154494, None, None, (0.777488, 0.514857, 0.810539)),
    ("img3-0", "inpaint", "inpaint"): (0.3515815, 0.3014286, None, 1128, (0.0, 0.0, 0.826891)),
    ("img1-0", "inpaint", "inpaint"): (0.4138535, 0.1959687, None, 407, (0.36261, 0.445197, 0.826891)),
}


@pytest.mark.parametrize(("image", "protocol", "condition"), list(PINNED))
def test_degraded_inputs_are_the_ones_committed_results_were_measured_on(image, protocol, condition):
    clean = synthetic_image(*IMAGES[image])
    (case,) = [case for case in get_protocol(protocol).cases(clean, image) if case.condition == condition]
    mean, std, sigma, masked, pixels = PINNED[(image, protocol, condition)]
    degraded = case.degraded[0].double()
    assert float(degraded.mean()) == pytest.approx(mean, abs=2e-7)
    assert float(degraded.std()) == pytest.approx(std, abs=2e-7)
    assert case.sigma == (pytest.approx(sigma) if sigma is not None else None)
    assert (None if case.mask is None else int(case.mask.sum())) == masked
    found = (float(degraded[-1, 5, 7]), float(degraded[0, 20, 31]), float(degraded[0, -3, -2]))
    assert found == pytest.approx(pixels, abs=2e-6)


@pytest.mark.parametrize("name", list_protocols())
def test_every_protocol_entry_is_complete(name):
    protocol = PROTOCOLS[name]
    conditions = protocol.condition_names()
    assert conditions and len(set(conditions)) == len(conditions)
    assert protocol.headline in protocol.columns(conditions)
    assert protocol.headline_label and protocol.description and protocol.task_description
    assert (AVERAGE in protocol.columns(conditions)) == bool(protocol.average_label)
    assert protocol_for_task(protocol.task) is protocol
    for spec in protocol.default_baselines:
        assert spec.partition("=")[0].partition("@")[0] in BASELINES
    build_degradation(protocol.training_spec())  # the task's fine-tuning data can be made


@pytest.mark.parametrize("name", list_protocols())
def test_every_protocol_is_deterministic_and_tells_methods_how_the_input_was_made(name):
    clean = synthetic_image(3, 40, 48, 0)
    first = get_protocol(name).cases(clean, "image")
    second = get_protocol(name).cases(clean, "image")
    for one, other in zip(first, second, strict=True):
        assert isinstance(one, EvaluationCase) and one.image == "image"
        assert torch.equal(one.degraded, other.degraded) and one.degraded.shape == clean.shape
        assert one.degradation["name"] and one.params == other.params


def test_a_baseline_receives_the_case_with_its_parameters_and_mask():
    seen: list[EvaluationCase] = []

    def record(case: EvaluationCase) -> torch.Tensor:
        seen.append(case)
        return case.degraded

    clean = synthetic_image(3, 40, 48, 0)[0]
    evaluate([Method("recorder", record)], [("image", clean)], "deblur", progress=False, with_ssim=False)
    assert [case.params["sigma"] for case in seen] == [1.0, 2.0, 3.0]  # the true blur of each condition
    seen.clear()
    evaluate([Method("recorder", record)], [("image", clean)], "inpaint", progress=False, with_ssim=False)
    (case,) = seen
    assert case.mask is not None and torch.equal(case.degraded * case.mask, torch.zeros_like(case.degraded))


@pytest.mark.parametrize("name", list_protocols())
def test_every_protocol_evaluates_a_model_beside_its_default_baselines(name):
    model = make_model("small", extra_input_channels=1 if PROTOCOLS[name].mask_input else 0).eval()
    methods = [Method.from_model(model, "model"), *(build_baseline(spec) for spec in PROTOCOLS[name].default_baselines)]
    report = evaluate(methods, [("image", synthetic_image(3, 32, 32, 0)[0])], name, with_ssim=False, progress=False)
    assert report.summary("model", report.headline) is not None
    assert [report.row(method).kind for method in report.values] == [method.kind for method in methods]


def test_tasks_and_their_training_degradations():
    assert list_tasks() == [protocol.task for protocol in PROTOCOLS.values()]
    assert len(set(list_tasks())) == len(list_tasks())
    assert task_degradation("deblur") == {"name": "blur", "sigma_max": 3.0}
    with pytest.raises(ValueError, match="task='colourise' is not valid"):
        task_degradation("colourise")
    with pytest.raises(ValueError, match="protocol='nope' is not valid"):
        get_protocol("nope")
    with pytest.raises(ValueError, match="takes no option"):
        get_protocol("seed").conditions(sigmas=(25,))


def test_the_chapter_conditions_are_the_clean_input_and_the_chapter_degradations():
    from hfdae.degradations import CHAPTER_DEGRADATIONS
    from hfdae.protocols import CHAPTER_CONDITIONS, IDENTITY

    assert CHAPTER_CONDITIONS == (IDENTITY, *CHAPTER_DEGRADATIONS)


def test_the_protocols_page_lists_every_protocol_with_its_headline():
    from pathlib import Path

    page = (Path(__file__).resolve().parent.parent / "docs" / "protocols.md").read_text()
    for name, protocol in PROTOCOLS.items():
        row = next((line for line in page.splitlines() if line.startswith(f"| `{name}` | `{protocol.task}` |")), None)
        assert row is not None, f"docs/protocols.md has no row for {name}"
        assert f"`{protocol.headline}`: {protocol.headline_label}" in row
    for name in BASELINES:
        assert f"| `{name}" in page, f"docs/protocols.md does not list the baseline {name}"


def test_the_photo_protocol_compresses_noisy_images_as_phones_do():
    clean = synthetic_image(3, 48, 64, 0)
    cases = {case.condition: case for case in get_protocol("photo").cases(clean, "image")}
    assert list(cases) == ["gauss15-q75", "gauss15-q90", "gauss25-q75", "gauss25-q90", "poisson-q75", "poisson-q90"]
    for name, case in cases.items():
        noise, jpeg = case.degradation["degradations"]
        assert jpeg["name"] == "jpeg" and jpeg["subsampling"] == "4:2:0" and name.endswith(f"q{jpeg['quality']}")
        assert noise["clip"] is True
        levels = case.degraded * 255
        assert torch.allclose(levels, levels.round(), atol=1e-3)  # decoded 8-bit JPEG
    assert cases["gauss25-q90"].sigma == 25.0 and cases["poisson-q90"].sigma is None
    error = {name: float((case.degraded - clean).pow(2).mean()) for name, case in cases.items()}
    assert error["gauss25-q90"] > error["gauss15-q90"]


def _blurred_case(sigma: float) -> EvaluationCase:
    clean = synthetic_image(3, 48, 64, 0)
    (case,) = [case for case in get_protocol("deblur").cases(clean, "image") if case.condition == f"blur{sigma:g}"]
    return clean, case


@pytest.mark.parametrize("spec", ["richardson_lucy", "richardson_lucy@10", "wiener", "wiener@1e-3"])
def test_the_deconvolution_baselines_are_given_the_true_kernel_and_beat_the_blurred_input(spec):
    method = build_baseline(spec)
    clean, case = _blurred_case(2.0)
    restored = method.restore(case)
    assert method.applies_to(case) and restored.shape == clean.shape
    assert float((restored.clamp(0, 1) - clean).pow(2).mean()) < float((case.degraded - clean).pow(2).mean())
    noisy = get_protocol("awgn").cases(clean, "image")[0]
    assert not method.applies_to(noisy)  # no blur kernel to give it


def test_biharmonic_inpainting_fills_the_holes_of_the_inpaint_protocol_only():
    method = build_baseline("biharmonic")
    clean = synthetic_image(3, 48, 64, 0)
    (case,) = get_protocol("inpaint").cases(clean, "image")
    restored = method.restore(case)
    holes = case.mask.bool().expand_as(clean)
    assert float((restored - clean)[holes].abs().mean()) < 0.5 * float((case.degraded - clean)[holes].abs().mean())
    knockout = [case for case in get_protocol("seed").cases(clean, "image") if case.condition == "knockout"][0]
    assert not method.applies_to(knockout)


def test_sigma_taking_baselines_get_the_true_a_fixed_or_a_per_condition_sigma(tmp_path, monkeypatch):
    import hfdae.peers

    given: list[float] = []
    monkeypatch.setattr(hfdae.peers, "bm3d_denoise", lambda noisy, sigma: given.append(sigma) or noisy)
    clean = synthetic_image(3, 32, 32, 0)
    photo = {case.condition: case for case in get_protocol("photo").cases(clean, "image")}
    true_sigma = build_baseline("bm3d")
    assert true_sigma.applies_to(photo["gauss15-q75"]) and not true_sigma.applies_to(photo["poisson-q75"])
    true_sigma.restore(photo["gauss15-q75"])
    fixed = build_baseline("bm3d@20")
    assert fixed.applies_to(photo["poisson-q75"]) and "sigma 20" in fixed.name
    fixed.restore(photo["poisson-q75"])
    sigmas = tmp_path / "sigmas.json"
    sigmas.write_text('{"poisson-q75": 12, "gauss15-q75": 9.5}')
    chosen = build_baseline(f"bm3d@{sigmas}")
    assert chosen.applies_to(photo["poisson-q75"]) and not chosen.applies_to(photo["poisson-q90"])
    chosen.restore(photo["gauss15-q75"])
    assert given == [15.0, 20.0, 9.5]
    for bad, message in [("bm3d@loud", "neither a number"), (f"bm3d@{tmp_path / 'none.json'}", "sigma file")]:
        with pytest.raises(ValueError, match=message):
            build_baseline(bad)
    with pytest.raises(ValueError, match="is not valid"):
        build_baseline("wiener=somefile")


def test_the_photo_zoo_config_trains_on_the_photo_tasks_degradation():
    from pathlib import Path

    import yaml

    config = yaml.safe_load((Path(__file__).resolve().parent.parent / "configs" / "zoo-photo.yaml").read_text())
    assert config["model"]["task"] == "photo"
    assert build_degradation(config["data"]["degradations"]).to_spec() == build_degradation(
        task_degradation("photo")).to_spec()
