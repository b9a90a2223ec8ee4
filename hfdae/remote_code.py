"""The files beside a model's weights that make transformers' image processor and pipeline work.

Every model folder gets ``preprocessor_config.json``, the settings of
:class:`~hfdae.DenoisingAutoencoderImageProcessor` for this model (``AutoImageProcessor`` and the
``image-restoration`` pipeline read it). A folder that carries code for ``trust_remote_code`` (a Hub push)
also gets the image processor and pipeline files with every module they import relatively (found as
transformers' loader finds them), ``custom_pipelines`` in ``config.json`` and an ``auto_map`` in
``preprocessor_config.json``, so that without hfdae installed

>>> pipeline("image-restoration", model=REPO, trust_remote_code=True)
>>> AutoImageProcessor.from_pretrained(REPO, trust_remote_code=True)

work too. Write the files into a zoo folder (no code) with ``write_pipeline_files("zoo/colour",
include_code=False)``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from transformers.dynamic_module_utils import get_relative_import_files

from .configuration_hfdae import DenoisingAutoencoderConfig
from .image_processing_hfdae import DenoisingAutoencoderImageProcessor
from .pipeline_hfdae import CUSTOM_PIPELINES

__all__ = ["PIPELINE_CODE_FILES", "IMAGE_PROCESSOR_AUTO_MAP", "pipeline_code_files", "write_pipeline_files"]

PACKAGE_DIR = Path(__file__).resolve().parent
IMAGE_PROCESSOR_AUTO_MAP = {"AutoImageProcessor": "image_processing_hfdae.DenoisingAutoencoderImageProcessor"}
PIPELINE_MODULE = "pipeline_hfdae.py"
PROCESSOR_MODULE = "image_processing_hfdae.py"


def pipeline_code_files() -> list[str]:
    """The files (names in the package) that the pipeline and the image processor need as remote code: the
    two modules and, recursively, every module they import relatively, as transformers' loader gathers them."""
    names = {PIPELINE_MODULE, PROCESSOR_MODULE}
    for module in (PIPELINE_MODULE, PROCESSOR_MODULE):
        names.update(Path(path).name for path in get_relative_import_files(PACKAGE_DIR / module))
    return sorted(names)


PIPELINE_CODE_FILES = tuple(pipeline_code_files())


def write_pipeline_files(folder: str | os.PathLike, include_code: bool = True) -> list[Path]:
    """Add the image processor's settings (and, with ``include_code``, the pipeline's code) to a model folder.

    Args:
        folder: a model folder with ``config.json`` (as ``save_pretrained`` or
            :func:`hfdae.hub.build_model_folder` write it).
        include_code: also copy the code of :data:`PIPELINE_CODE_FILES`, name the pipeline in
            ``config.json``'s ``custom_pipelines`` and give ``preprocessor_config.json`` an ``auto_map``
            (for ``trust_remote_code``). Without it, ``custom_pipelines`` is removed from ``config.json``.

    Returns:
        The files written or changed.
    """
    folder = Path(folder)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{folder}: no config.json here; is this a model folder?")
    config_dict = json.loads(config_path.read_text())
    config = DenoisingAutoencoderConfig.from_dict(config_dict)  # validates the fields the processor reads
    processor = DenoisingAutoencoderImageProcessor.from_model_config(config)
    processor_dict = processor.to_dict()
    written = [folder / "preprocessor_config.json", config_path]
    if include_code:
        processor_dict["auto_map"] = dict(IMAGE_PROCESSOR_AUTO_MAP)
        config_dict["custom_pipelines"] = json.loads(json.dumps(CUSTOM_PIPELINES))
        for name in PIPELINE_CODE_FILES:
            shutil.copyfile(PACKAGE_DIR / name, folder / name)
            written.append(folder / name)
    else:
        config_dict.pop("custom_pipelines", None)
    (folder / "preprocessor_config.json").write_text(json.dumps(processor_dict, indent=2, sort_keys=True) + "\n")
    if config_dict != json.loads(config_path.read_text()):  # a zoo folder's config.json stays as it was
        config_path.write_text(json.dumps(config_dict, indent=2, sort_keys=True) + "\n")
    else:
        written.remove(config_path)
    return written
