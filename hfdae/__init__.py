"""hfdae: denoising autoencoders that work, on the Hugging Face stack.

``import hfdae`` registers the ``hfdae`` model type with ``transformers.AutoConfig`` and
``transformers.AutoModel``, so ``AutoModel.from_pretrained(path_or_repo_id)`` returns a
:class:`DenoisingAutoencoder`.

The package imports its modules lazily (``hfdae.load_model`` imports torch on first use), so that the
command line answers ``hfdae --help`` without importing torch and transformers. The registration with the
Auto classes happens as soon as transformers is imported (before or after ``import hfdae``).
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

_MODEL_FILES = (f"{__name__}.configuration_hfdae", f"{__name__}.blocks", f"{__name__}.modeling_hfdae")
_registered = False


def _initializing(name: str) -> bool:
    spec = getattr(sys.modules.get(name), "__spec__", None)
    return bool(getattr(spec, "_initializing", False))


def _register_with_transformers() -> None:
    """Register the config and model classes, once transformers is loaded and no model file is half-imported."""
    global _registered
    if _registered or "transformers" not in sys.modules or any(_initializing(name) for name in _MODEL_FILES):
        return
    _registered = True
    from transformers import AutoConfig, AutoModel

    from .configuration_hfdae import DenoisingAutoencoderConfig
    from .modeling_hfdae import DenoisingAutoencoder

    AutoConfig.register(DenoisingAutoencoderConfig.model_type, DenoisingAutoencoderConfig, exist_ok=True)
    AutoModel.register(DenoisingAutoencoderConfig, DenoisingAutoencoder, exist_ok=True)
    if _finder in sys.meta_path:
        sys.meta_path.remove(_finder)


class _RegisterAfterImport(importlib.abc.MetaPathFinder):
    """Runs :func:`_register_with_transformers` after transformers (or one of the model files) is imported."""

    watched = ("transformers", *_MODEL_FILES)

    def find_spec(self, fullname, path, target=None):
        if fullname not in self.watched or _registered:
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
