"""A regular pip install works outside the checkout: wheel built, installed non-editable into a fresh environment.

Every other test imports hfdae from the checkout (an editable install), which hides what a wheel leaves out:
files outside the package (the card template once lived in ``model_cards/``), package data, zoo models that
only a checkout holds. Here the wheel is built from a copy of the package, installed with ``--no-deps`` into
a new virtual environment whose dependencies come from this interpreter's site-packages (a ``.pth`` line: no
download), and used from a folder outside the checkout with ``PYTHONPATH`` cleared; the tests assert that the
``hfdae`` they run is the installed one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    """A fresh environment with the hfdae wheel installed; ``{"python", "hfdae", "env", "cwd"}``."""
    root = tmp_path_factory.mktemp("install")
    source = root / "source"  # a copy, so that building writes nothing into the checkout
    shutil.copytree(REPO_ROOT / "hfdae", source / "hfdae", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, source / name)
    wheels = root / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--wheel-dir", str(wheels), str(source)], check=True)
    (wheel,) = wheels.glob("hfdae-*.whl")

    environment = root / "env"
    venv.EnvBuilder(with_pip=False).create(environment)
    python = environment / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    "--no-index", str(wheel)], check=True)
    # the dependencies (torch, transformers ...) from this interpreter, after the environment's own packages
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    Path(purelib, "dependencies-from-the-test-environment.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    cwd = root / "elsewhere"
    cwd.mkdir()
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "HFDAE_ZOO_DIR")}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(root / "hf_home"), MPLBACKEND="Agg", TRANSFORMERS_VERBOSITY="error")
    return {"python": str(python), "hfdae": str(environment / "bin" / "hfdae"), "env": env, "cwd": cwd,
            "environment": environment}


def run(installed: dict, *command: str, env: dict | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(list(command), cwd=installed["cwd"], env={**installed["env"], **(env or {})},
                            capture_output=True, text=True)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result


def test_the_installed_package_is_the_one_imported(installed):
    result = run(installed, installed["python"], "-c", "import hfdae; print(hfdae.__file__)")
    path = Path(result.stdout.strip()).resolve()
    assert installed["environment"].resolve() in path.parents and REPO_ROOT not in path.parents


def test_help_answers_without_importing_the_heavy_libraries(installed):
    result = run(installed, installed["hfdae"], "--help")
    assert "evaluate" in result.stdout
    # no clock (a loaded machine would fail it): what makes it fast is that torch and friends stay unloaded
    code = ("import sys, contextlib, io\nfrom hfdae.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n    main(['--help'])\n"
            "print(sorted(name for name in ('torch', 'transformers', 'numpy') if name in sys.modules))")
    assert run(installed, installed["python"], "-c", code).stdout.strip() == "[]"


def test_the_demo_runs(installed):
    result = run(installed, installed["hfdae"], "demo", "--output", "demo", "--size", "64", "--samples", "coins")
    assert "| coins |" in result.stdout and (installed["cwd"] / "demo" / "panel_coins.png").is_file()
    assert "model: default (embedded)" in result.stdout and str(installed["environment"]) not in result.stdout


def test_card_and_dry_run_push_of_a_zoo_name(installed):
    run(installed, installed["hfdae"], "card", "colour", "--output", "card/README.md")
    assert "widths 32-64-128-256" in (installed["cwd"] / "card" / "README.md").read_text()
    run(installed, installed["hfdae"], "push", "colour", "--repo-id", "me/x", "--dry-run", "upload")
    files = {path.name for path in (installed["cwd"] / "upload").iterdir()}
    assert {"README.md", "config.json", "model.safetensors", "modeling_hfdae.py"} <= files


def test_every_zoo_name_loads_or_fails_at_once_saying_how(installed):
    script = """
import json, time, warnings
import hfdae
from hfdae.zoo import ZooModelUnavailableError
outcome = {}
for entry in hfdae.list_zoo():
    started = time.perf_counter()
    try:
        model = hfdae.load_model(entry.name)
        outcome[entry.name] = ["loaded", entry.available, time.perf_counter() - started, model.config.images_seen > 0]
    except ZooModelUnavailableError as error:
        outcome[entry.name] = ["unavailable", entry.available, time.perf_counter() - started, str(error)]
print(json.dumps(outcome))
"""
    outcome = json.loads(run(installed, installed["python"], "-c", script).stdout)
    assert outcome["colour"][:2] == ["loaded", True] and outcome["colour"][3]  # the embedded default, trained
    for name, (result, available, seconds, detail) in outcome.items():
        assert (result == "loaded") == available, name  # list_zoo says which load here
        if result == "unavailable":
            # at once: no network attempt (which would wait about 30 s); the bound leaves room for a loaded machine
            assert seconds < 10 and "HFDAE_ZOO_DIR" in detail and f"zoo/{name}/" in detail, name
    # pointed at a zoo folder (the checkout's), every name that ships there loads
    shipped = sorted(path.name for path in (REPO_ROOT / "zoo").iterdir() if (path / "model.safetensors").is_file())
    outcome = json.loads(run(installed, installed["python"], "-c", script,
                             env={"HFDAE_ZOO_DIR": str(REPO_ROOT / "zoo")}).stdout)
    for name in shipped:
        if name in outcome:
            assert outcome[name][0] == "loaded" and outcome[name][3], name
