import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from hfdae.cli import build_parser, main
from hfdae.samples import write_sample_folder

from conftest import make_model

COMMANDS = sorted(build_parser()._subparsers._group_actions[0].choices)


def test_console_script_help_lists_the_commands():
    # that it answers at once is checked without a clock (a loaded CI machine would fail a timed test): the
    # test below shows that no command's --help imports torch, transformers, numpy or gradio
    result = subprocess.run([sys.executable, "-m", "hfdae.cli", "--help"], capture_output=True, text=True, check=True)
    assert all(command in result.stdout for command in COMMANDS)


def test_every_command_s_help_imports_neither_torch_nor_transformers():
    """The parser takes its defaults from the library's light registries; the heavy libraries load only when a
    command runs."""
    code = ("import sys, contextlib, io\n"
            "from hfdae.cli import main\n"
            f"for command in {COMMANDS!r}:\n"
            "    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
            "        main([command, '--help'])\n"
            "heavy = sorted(name for name in ('torch', 'transformers', 'numpy', 'gradio') if name in sys.modules)\n"
            "print(heavy)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_export_without_the_onnx_extra_says_how_to_get_it(tmp_path, capsys, monkeypatch):
    make_model("small", images_seen=1).save_pretrained(tmp_path / "model")
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if the onnx extra were not installed
    assert main(["export", str(tmp_path / "model"), "--onnx", str(tmp_path / "model.onnx")]) == 2
    error = capsys.readouterr().err
    assert "pip install 'hfdae[onnx]'" in error and "Traceback" not in error
    assert not (tmp_path / "model.onnx").exists()


def test_zoo_command_says_where_each_model_loads_from(capsys):
    assert main(["zoo"]) == 0
    output = capsys.readouterr().out
    assert "| colour | flagship | restore | embedded in the package |" in output


def test_the_demo_panel_title_names_no_absolute_path(tmp_path):
    from hfdae.demo import model_label

    make_model("small").save_pretrained(tmp_path / "run" / "best")
    model = hfdae_load(tmp_path / "run" / "best")
    assert model_label(model) == "run/best"
    assert model_label(hfdae_load("default")) == "default (embedded)"


def hfdae_load(source):
    import warnings

    import hfdae

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hfdae.load_model(source)


def test_demo_writes_panels_and_prints_a_psnr_table(tmp_path, capsys):
    assert main(["demo", "--output", str(tmp_path), "--size", "48", "--samples", "chelsea"]) == 0
    output = capsys.readouterr().out
    assert "| chelsea |" in output and "average of 5" in output
    for condition in ("gaussian", "salt_pepper", "blur", "knockout"):
        assert condition in output
    panel = tmp_path / "panel_chelsea.png"
    assert Image.open(panel).size[0] > 100
    if "UNTRAINED" not in output:  # a trained default must say what it is
        assert "training images seen" in output


def test_demo_counts_the_images_a_later_stage_s_parents_saw(tmp_path, capsys):
    lineage = [{"model": "stage2", "task": "restore", "images_seen": 90, "description": ""},
               {"model": "stage1", "task": "restore", "images_seen": 96, "description": ""}]
    make_model("small", images_seen=84, lineage=lineage).save_pretrained(tmp_path / "model")
    main(["demo", "--model", str(tmp_path / "model"), "--output", str(tmp_path), "--size", "32", "--samples", "coins"])
    assert "(84 training images seen, 270 with its parents')" in capsys.readouterr().out


def test_demo_says_plainly_when_the_model_is_untrained(tmp_path, capsys):
    make_model("small").save_pretrained(tmp_path / "model")
    main(["demo", "--model", str(tmp_path / "model"), "--output", str(tmp_path), "--size", "32", "--samples", "coins"])
    assert "UNTRAINED" in capsys.readouterr().out


def test_denoise_folder_with_one_corrupt_file(tmp_path, capsys):
    make_model("small", images_seen=1).save_pretrained(tmp_path / "model")
    inputs = tmp_path / "photos"
    write_sample_folder(inputs, names=("coins", "chelsea"))
    Image.fromarray(np.full((9, 11), 7, dtype=np.uint16) * 1000).save(inputs / "deep16.png")
    (inputs / "broken.jpg").write_bytes(b"\xff\xd8 this is no jpeg")
    code = main(["denoise", str(inputs), "-o", str(tmp_path / "out"), "--model", str(tmp_path / "model")])
    captured = capsys.readouterr()
    assert code == 0
    assert "broken.jpg" in captured.err
    written = sorted(path.name for path in (tmp_path / "out").iterdir())
    assert written == ["chelsea.png", "coins.png", "deep16.png"]
    deep = Image.open(tmp_path / "out" / "deep16.png")
    assert deep.mode.startswith("I;16") and deep.size == (11, 9)


def test_denoise_reports_a_missing_model_clearly(tmp_path, capsys):
    write_sample_folder(tmp_path / "in", names=("coins",))
    code = main(["denoise", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", str(tmp_path / "nope")])
    assert code == 2
    assert "nope" in capsys.readouterr().err


def test_presets_table(capsys):
    assert main(["presets", "--size", "64"]) == 0
    output = capsys.readouterr().out
    for name in ("small", "noskip", "skip"):
        assert f"| {name} |" in output


def test_denoise_noise_level_auto_reports_the_estimate_and_sigma_is_in_255_units(tmp_path, capsys):
    from hfdae.cli import _noise_level_argument

    model = make_model("small", space_to_depth_factor=2, noise_level_input=True, images_seen=1)
    model.save_pretrained(tmp_path / "model")
    write_sample_folder(tmp_path / "photos", names=("coffee",))
    photos = tmp_path / "photos"
    assert main(["denoise", str(photos), "-o", str(tmp_path / "out"), "--model", str(tmp_path / "model"),
                 "--noise-level", "auto"]) == 0
    assert "estimated noise level of" in capsys.readouterr().out
    assert main(["denoise", str(photos), "-o", str(tmp_path / "out25"), "--model", str(tmp_path / "model"),
                 "--noise-level", "25"]) == 0
    assert _noise_level_argument("25") == 25 / 255 and _noise_level_argument("auto") == "auto"
    with pytest.raises(Exception, match="neither 'auto' nor a sigma"):
        _noise_level_argument("strong")
