import json

import numpy as np
import pytest
import torch
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from hfdae.cli import main
from pathlib import Path

from hfdae.evaluation import (
    AVERAGE,
    CHAPTER_CONDITIONS,
    EvaluationReport,
    Method,
    MethodRow,
    build_method,
    degraded_cases,
    evaluate,
    evaluate_models,
)
from hfdae.metrics import psnr, ssim
from hfdae.processing import array_to_tensor, save_image
from hfdae.samples import sample_image

from conftest import make_model

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def clean_images():
    return [(name, array_to_tensor(sample_image(name)[60:108, 80:136])) for name in ("coffee", "chelsea", "astronaut")]


def test_psnr_and_ssim_match_an_independent_implementation():
    generator = torch.Generator().manual_seed(0)
    reference = torch.rand(3, 3, 40, 50, generator=generator)
    restored = (reference + 0.05 * torch.randn(reference.shape, generator=generator)).clamp(0, 1)
    expected = peak_signal_noise_ratio(restored, reference, data_range=1.0, reduction="none", dim=(1, 2, 3))
    torch.testing.assert_close(psnr(restored, reference).float(), expected.float(), atol=1e-4, rtol=0)
    expected_ssim = structural_similarity_index_measure(restored, reference, data_range=1.0, reduction="none")
    torch.testing.assert_close(ssim(restored, reference), expected_ssim, atol=1e-4, rtol=0)
    # a known pair: uniform error 0.1 -> MSE 0.01 -> 20 dB
    assert float(psnr(torch.full((1, 1, 4, 4), 0.6), torch.full((1, 1, 4, 4), 0.5))[0]) == pytest.approx(20.0)


@pytest.mark.parametrize("protocol", ["seed", "awgn"])
def test_protocols_are_deterministic(protocol, clean_images):
    model = make_model("small").eval()
    methods = [Method.from_model(model, "small"), Method.noisy_input()]
    first = evaluate(methods, clean_images[:2], protocol, sigmas=(25,), progress=False).to_dict()
    second = evaluate(methods, clean_images[:2], protocol, sigmas=(25,), progress=False).to_dict()
    for method in first["methods"]:
        for condition, metrics in first["methods"][method]["results"].items():
            assert metrics["psnr"]["per_image"] == second["methods"][method]["results"][condition]["psnr"]["per_image"]


def test_seed_protocol_has_five_outputs_and_their_average(clean_images):
    model = make_model("small").eval()
    report = evaluate([Method.from_model(model, "m")], clean_images, "seed", with_ssim=True, progress=False)
    assert set(report.values["m"]) == set(CHAPTER_CONDITIONS) | {AVERAGE}
    for name, _ in clean_images:
        mean_of_five = np.mean([report.values["m"][c]["psnr"][name] for c in CHAPTER_CONDITIONS])
        assert report.values["m"][AVERAGE]["psnr"][name] == pytest.approx(mean_of_five)
    summary = report.summary("m", AVERAGE)
    values = list(report.values["m"][AVERAGE]["psnr"].values())
    assert summary["mean"] == pytest.approx(np.mean(values)) and summary["std"] == pytest.approx(np.std(values))


@pytest.mark.parametrize("index", [0, 1])
@pytest.mark.parametrize("sigma", [15, 50])
def test_awgn_protocol_follows_the_published_recipe(clean_images, index, sigma):
    name, clean = clean_images[index]
    (case,) = degraded_cases(clean.unsqueeze(0), name, "awgn", sigmas=(sigma,))
    # numpy seed 0 for EVERY image, drawn in H x W x C order
    expected_noise = np.random.RandomState(0).normal(0, sigma / 255, clean.permute(1, 2, 0).shape)
    torch.testing.assert_close(case.degraded[0].permute(1, 2, 0).double() - clean.permute(1, 2, 0).double(),
                               torch.from_numpy(expected_noise), atol=1e-6, rtol=0)
    assert case.degraded.min() < 0 or case.degraded.max() > 1  # the noisy input is not clipped


def test_awgn_floor_is_the_quantized_noisy_input(clean_images):
    name, clean = clean_images[0]
    (case,) = degraded_cases(clean.unsqueeze(0), name, "awgn", sigmas=(25,))
    report = evaluate([Method.noisy_input()], clean_images[:1], "awgn", sigmas=(25,), with_ssim=False, progress=False)
    quantized = torch.round(case.degraded.clamp(0, 1) * 255) / 255
    assert report.values["input (no restoration)"]["sigma25"]["psnr"][name] == pytest.approx(
        float(psnr(quantized, clean.unsqueeze(0))[0]))


@pytest.mark.parametrize("split", [None, "validation"])
def test_the_report_says_which_split_of_the_data_it_used(clean_images, split):
    report = evaluate([Method.noisy_input()], clean_images[:1], "awgn", sigmas=(25,), with_ssim=False,
                      progress=False, data="photos", split=split)
    assert report.to_dict()["split"] == split
    expected = "of `photos` (split `validation`); PSNR" if split else "of `photos`; PSNR"
    assert expected in report.markdown()


def test_bm3d_baseline_runs_on_a_tiny_image(clean_images):
    report = evaluate([build_method("bm3d")], [("tiny", clean_images[0][1][:, :24, :24])], "awgn", sigmas=(25,),
                      with_ssim=False, progress=False)
    noisy_floor = evaluate([build_method("input")], [("tiny", clean_images[0][1][:, :24, :24])], "awgn",
                           sigmas=(25,), with_ssim=False, progress=False)
    assert report.summary("BM3D", "sigma25")["mean"] > noisy_floor.summary("input (no restoration)", "sigma25")["mean"]


def test_sigma_methods_run_only_where_sigma_is_known(clean_images):
    report = evaluate([build_method("bm3d")], clean_images[:1], "seed", with_ssim=False, progress=False)
    assert set(report.values["BM3D"]) == {"gaussian"}
    assert "n/a" in report.markdown()


def test_bad_baseline_specs_are_named():
    with pytest.raises(ValueError, match="dncnn=PATH"):
        build_method("dncnn")
    with pytest.raises(FileNotFoundError, match="nothing.pth"):
        build_method("dncnn=/nothing.pth")


def test_awgn_refuses_data_of_another_channel_count(tmp_path, clean_images):
    save_image(clean_images[0][1][:1], tmp_path / "data" / "gray.png")  # a gray image
    make_model("small").save_pretrained(tmp_path / "model")  # a colour model
    code = main(["evaluate", str(tmp_path / "model"), "--data", str(tmp_path / "data"), "--protocol", "awgn"])
    assert code == 2


def test_awgn_reads_colour_data_as_gray_for_gray_models_only_when_asked(tmp_path, clean_images):
    from hfdae.processing import to_tensor

    name, colour = clean_images[1]
    save_image(colour, tmp_path / "colour" / f"{name}.png")
    save_image(to_tensor(colour.unsqueeze(0), 1)[0], tmp_path / "gray" / f"{name}.png")  # the same, converted
    make_model("small", colour_space="gray").save_pretrained(tmp_path / "model")
    options = dict(protocol="awgn", sigmas=(25,), with_ssim=False, default_baselines=False, progress=False)
    with pytest.raises(ValueError, match=rf"{name}.png has 3 channel\(s\) but the models take 1.*--convert-channels"):
        evaluate_models([str(tmp_path / "model")], str(tmp_path / "colour"), **options)
    converted = evaluate_models([str(tmp_path / "model")], str(tmp_path / "colour"), convert_channels=True, **options)
    stored = evaluate_models([str(tmp_path / "model")], str(tmp_path / "gray"), **options)
    row = str(tmp_path / "model")
    # read converted exactly as the data loader converts (8-bit luma), so the same image as stored gray
    assert converted.summary(row, "sigma25")["mean"] == pytest.approx(stored.summary(row, "sigma25")["mean"], abs=1e-9)
    # the results say the data was converted, and keep saying it when read back
    assert (converted.converted_to, stored.converted_to) == ("gray", None)
    converted.save(tmp_path / "eval")
    assert EvaluationReport.load(tmp_path / "eval").converted_to == "gray"
    assert "read as gray (converted)" in (tmp_path / "eval" / "results.md").read_text()


def test_evaluate_command_reports_unreadable_images_and_writes_results(tmp_path, capsys, clean_images):
    data = tmp_path / "data"
    for name, image in clean_images[:2]:
        save_image(image, data / f"{name}.png")
    (data / "zz_broken.png").write_bytes(b"not a png")
    make_model("small").save_pretrained(tmp_path / "model")
    output = tmp_path / "out"
    code = main(["evaluate", str(tmp_path / "model"), "--data", str(data), "--baseline", "input",
                 "--output", str(output), "--no-ssim"])
    captured = capsys.readouterr()
    assert code == 0 and "zz_broken.png" in captured.err
    results = json.loads((output / "results.json").read_text())
    assert results["unreadable"] == ["zz_broken.png"] and sorted(results["images"]) == ["chelsea.png", "coffee.png"]
    method = results["methods"][str(tmp_path / "model")]
    assert (method["kind"], method["source"]) == ("model", str(tmp_path / "model"))
    assert results["methods"]["input (no restoration)"]["kind"] == "input"  # given and a default: one row
    assert len(results["methods"]) == 2
    assert set(method["results"]["gaussian"]["psnr"]) == {"mean", "std", "per_image"}
    assert results["headline"] == {"column": "average", "label": "five-output average"}
    assert (output / "results.md").exists() and (output / "detail_panel.png").exists()
    assert (output / "psnr_heatmap.png").exists()


def test_results_rows_say_what_they_are_and_round_trip(tmp_path, clean_images):
    model = make_model("small").eval()
    methods = [Method.from_model(model, "mine", source="zoo-name"), build_method("input")]
    report = evaluate(methods, clean_images[:2], "awgn", sigmas=(25,), progress=False)
    loaded = EvaluationReport.load(report.save(tmp_path / "eval"))
    assert loaded.rows == {"mine": MethodRow("model", "zoo-name"), "input (no restoration)": MethodRow("input", "input")}
    assert loaded.values == report.values
    assert loaded.summary("mine", "sigma25") == report.summary("mine", "sigma25")
    assert loaded.methods_of_kind("model") == ["mine"]


def test_results_of_the_format_before_rows_had_a_kind_still_read():
    """The committed zoo evaluations were written before rows carried kind and source."""
    path = REPO_ROOT / "zoo" / "colour" / "eval-awgn-cbsd68.json"
    content = json.loads(path.read_text())
    assert "format" not in content  # the old format, as committed
    report = EvaluationReport.load(path)
    kinds = {name: report.row(name).kind for name in report.values}
    assert kinds["input (no restoration)"] == "input"
    assert kinds["DnCNN (dncnn_color_blind)"] == "baseline" and report.row("FFDNet (ffdnet_color)").source == "ffdnet"
    assert "runs/zoo-colour-stage4/best" in report.methods_of_kind("model")
    stored = content["methods"]["runs/zoo-colour-stage4/best"]["sigma25"]["psnr"]
    assert report.summary("runs/zoo-colour-stage4/best", "sigma25")["mean"] == pytest.approx(stored["mean"], abs=1e-12)


def test_a_results_file_that_is_not_one_is_named(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps({"protocol": "seed"}))
    with pytest.raises(ValueError, match="missing data, images, conditions, methods"):
        EvaluationReport.load(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such evaluation file"):
        EvaluationReport.load(tmp_path / "elsewhere.json")


def test_a_noise_level_model_is_evaluated_blind_and_given_the_true_sigma(tmp_path, clean_images, monkeypatch):
    import hfdae.inference

    given = []
    restore = hfdae.inference.restore

    def recording_restore(model, images, **kwargs):
        given.append(kwargs.get("noise_level"))
        return restore(model, images, **kwargs)

    monkeypatch.setattr(hfdae.inference, "restore", recording_restore)
    model_dir = tmp_path / "model"
    make_model("small", noise_level_input=True).save_pretrained(model_dir)
    data = tmp_path / "data"
    save_image(clean_images[0][1], data / "one.png")
    report = evaluate_models([str(model_dir)], str(data), "awgn", sigmas=(15, 25), with_ssim=False,
                             given_sigma=True, progress=False)
    assert report.rows[f"{model_dir} (given sigma)"] == MethodRow("model", str(model_dir))
    assert sorted(value for value in given if value is not None) == pytest.approx([15 / 255, 25 / 255])
    assert given.count(None) == 2  # the blind row
    with pytest.raises(ValueError, match="noise-level input"):
        Method.from_model(make_model("small"), "blind only", given_sigma=True)
