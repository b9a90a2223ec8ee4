"""hfdae.remote_code: the processor settings and pipeline code written beside a model's weights."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from transformers.dynamic_module_utils import get_imports

import hfdae
from hfdae.remote_code import PIPELINE_CODE_FILES, write_pipeline_files

from conftest import make_model

# what a user without hfdae needs for the pipeline's remote code (scikit-image: the 'auto' noise estimate)
ALLOWED_PACKAGES = {"torch", "transformers", "safetensors", "numpy", "PIL", "yaml", "tqdm", "skimage", "httpx"}


def test_the_pipeline_code_closes_over_its_relative_imports_and_needs_few_packages():
    package = Path(hfdae.__file__).parent
    assert {"pipeline_hfdae.py", "image_processing_hfdae.py", "inference.py", "modeling_hfdae.py",
            "configuration_hfdae.py", "blocks.py"} <= set(PIPELINE_CODE_FILES)
    packages = set()
    for name in PIPELINE_CODE_FILES:
        packages.update(get_imports(package / name))  # transformers' own check: what it asks the user to install
    third_party = {name for name in packages if name not in sys.stdlib_module_names}
    assert third_party <= ALLOWED_PACKAGES, third_party - ALLOWED_PACKAGES


@pytest.mark.parametrize("include_code", [False, True])
def test_folders_get_the_processor_config_and_with_code_the_pipeline(tmp_path, include_code):
    model = make_model("small", noise_level_input=True)
    model.save_pretrained(tmp_path)
    write_pipeline_files(tmp_path, include_code=include_code)
    settings = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert settings["noise_level_input"] is True and settings["size_multiple"] == model.config.size_multiple
    config = json.loads((tmp_path / "config.json").read_text())
    code = {path.name for path in tmp_path.glob("*.py")}
    if include_code:
        assert "auto_map" in settings and config["custom_pipelines"]["image-restoration"]["pt"] == ["AutoModel"]
        assert code == set(PIPELINE_CODE_FILES)
        write_pipeline_files(tmp_path, include_code=False)  # a zoo folder: the pipeline entry goes again
        assert "custom_pipelines" not in json.loads((tmp_path / "config.json").read_text())
    else:
        assert "auto_map" not in settings and "custom_pipelines" not in config and not code


def test_a_folder_without_config_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="no config.json here"):
        write_pipeline_files(tmp_path)
