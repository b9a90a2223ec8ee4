"""hfdae: denoising autoencoders that work, on the Hugging Face stack.

``import hfdae`` registers the ``hfdae`` model type with ``transformers.AutoConfig``,
``transformers.AutoModel`` and ``transformers.AutoImageProcessor``, so ``AutoModel.from_pretrained(path_or_repo_id)``
returns a :class:`DenoisingAutoencoder`, and the ``image-restoration`` task with transformers' pipeline registry,
so ``transformers.pipeline("image-restoration", model=path_or_repo_id)`` restores images.

The package imports its modules lazily (``hfdae.load_model`` imports torch on first use), so that the
command line answers ``hfdae --help`` without importing torch and transformers. The registrations with
transformers happen as soon as transformers is imported (before or after ``import hfdae``).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from typing import Any

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS = {
    "PRESETS": "configuration_hfdae",
    "DenoisingAutoencoderConfig": "configuration_hfdae",
    "list_presets": "configuration_hfdae",
    "CheckpointError": "modeling_hfdae",
    "DenoisingAutoencoder": "modeling_hfdae",
    "DenoisingAutoencoderOutput": "modeling_hfdae",
    "noise_level_map": "modeling_hfdae",
    "out_of_range_penalty": "modeling_hfdae",
    "reconstruction_loss": "modeling_hfdae",
    "denoise_files": "inference",
    "denoise_image": "inference",
    "estimate_noise_level": "inference",
    "is_trained": "inference",
    "load_model": "inference",
    "restore": "inference",
    "ZOO": "zoo",
    "ZooEntry": "zoo",
    "list_zoo": "zoo",
    "PROTOCOLS": "protocols",
    "list_protocols": "protocols",
    "fold_batch_norm": "fusion",
    "prepare_for_inference": "fusion",
    "DenoisingAutoencoderImageProcessor": "image_processing_hfdae",
    "ImageRestorationPipeline": "pipeline_hfdae",
    "restore_dataset": "dataset_restoration",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
            return importlib.import_module(f".{name}", __name__)  # a submodule: hfdae.inference ...
        raise AttributeError(f"module 'hfdae' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


# --- registering with transformers' Auto classes, once transformers is imported ----------------------------

_registered = False


def _initializing(name: str) -> bool:
    spec = getattr(sys.modules.get(name), "__spec__", None)
    return bool(getattr(spec, "_initializing", False))


def _register_with_transformers() -> None:
    """Register the config, model, image processor and pipeline, once transformers is loaded and no hfdae module
    is half-imported (the registration imports them)."""
    global _registered
    if _registered or "transformers" not in sys.modules:
        return
    if any(_initializing(name) for name in list(sys.modules) if name.startswith(f"{__name__}.")):
        return  # retried when that module is done
    _registered = True
    from transformers import AutoConfig, AutoImageProcessor, AutoModel
    from transformers.pipelines import PIPELINE_REGISTRY

    from .configuration_hfdae import DenoisingAutoencoderConfig
    from .image_processing_hfdae import DenoisingAutoencoderImageProcessor
    from .modeling_hfdae import DenoisingAutoencoder
    from .pipeline_hfdae import ImageRestorationPipeline
    from .zoo import EMBEDDED_MODEL_DIR

    AutoConfig.register(DenoisingAutoencoderConfig.model_type, DenoisingAutoencoderConfig, exist_ok=True)
    AutoModel.register(DenoisingAutoencoderConfig, DenoisingAutoencoder, exist_ok=True)
    # one class for both of transformers' backend names, so neither asks for a fallback
    AutoImageProcessor.register(
        DenoisingAutoencoderConfig,
        image_processor_classes={"pil": DenoisingAutoencoderImageProcessor,
                                 "torchvision": DenoisingAutoencoderImageProcessor},
        exist_ok=True,
    )
    # pipeline("image-restoration") without a model restores with the embedded default (no download)
    PIPELINE_REGISTRY.register_pipeline(
        "image-restoration",
        pipeline_class=ImageRestorationPipeline,
        pt_model=AutoModel,
        default={"model": (str(EMBEDDED_MODEL_DIR), None)} if (EMBEDDED_MODEL_DIR / "model.safetensors").is_file()
        else None,
        type="image",
    )
    if _finder in sys.meta_path:
        sys.meta_path.remove(_finder)


class _RegisterAfterImport(importlib.abc.MetaPathFinder):
    """Runs :func:`_register_with_transformers` after transformers (or any hfdae module) is imported."""

    def find_spec(self, fullname, path, target=None):
        if _registered or not (fullname == "transformers" or fullname.startswith(f"{__name__}.")):
            return None
        sys.meta_path.remove(self)  # find the real spec without finding ourselves
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader_exec = spec.loader.exec_module

        def exec_module(module):
            loader_exec(module)
            module.__spec__._initializing = False  # done: the registration may import it
            _register_with_transformers()

        spec.loader.exec_module = exec_module
        return spec


_finder = _RegisterAfterImport()
if "transformers" in sys.modules:
    _register_with_transformers()
else:
    sys.meta_path.insert(0, _finder)
