"""hfdae: denoising autoencoders that work, on the Hugging Face stack.

``import hfdae`` registers the ``hfdae`` model type with ``transformers.AutoConfig``,
``transformers.AutoModel`` and ``transformers.AutoImageProcessor``, so ``AutoModel.from_pretrained(path_or_repo_id)``
returns a :class:`DenoisingAutoencoder`, and the ``image-restoration`` task with transformers' pipeline registry,
so ``transformers.pipeline("image-restoration", model=path_or_repo_id)`` restores images.
"""

from transformers import AutoConfig, AutoImageProcessor, AutoModel
from transformers.pipelines import PIPELINE_REGISTRY

from .configuration_hfdae import PRESETS, DenoisingAutoencoderConfig, list_presets
from .modeling_hfdae import (
    CheckpointError,
    DenoisingAutoencoder,
    DenoisingAutoencoderOutput,
    noise_level_map,
    out_of_range_penalty,
    reconstruction_loss,
)

from .inference import DEFAULT_MODEL_DIR, denoise_files, denoise_image, estimate_noise_level, is_trained, load_model, restore
from .zoo import ZOO, ZooEntry, list_zoo
from .acceleration import fold_batch_norm, prepare_for_inference
from .image_processing_hfdae import DenoisingAutoencoderImageProcessor
from .pipeline_hfdae import ImageRestorationPipeline
from .dataset_restoration import restore_dataset

__version__ = "0.1.0"

AutoConfig.register(DenoisingAutoencoderConfig.model_type, DenoisingAutoencoderConfig, exist_ok=True)
AutoModel.register(DenoisingAutoencoderConfig, DenoisingAutoencoder, exist_ok=True)
# one class for both of transformers' backend names, so neither asks for a fallback
AutoImageProcessor.register(
    DenoisingAutoencoderConfig,
    image_processor_classes={"pil": DenoisingAutoencoderImageProcessor, "torchvision": DenoisingAutoencoderImageProcessor},
    exist_ok=True,
)
# pipeline("image-restoration") without a model restores with the embedded default (no download)
PIPELINE_REGISTRY.register_pipeline(
    "image-restoration",
    pipeline_class=ImageRestorationPipeline,
    pt_model=AutoModel,
    default={"model": (str(DEFAULT_MODEL_DIR), None)} if (DEFAULT_MODEL_DIR / "model.safetensors").is_file() else None,
    type="image",
)

__all__ = [
    "PRESETS",
    "CheckpointError",
    "DenoisingAutoencoder",
    "DenoisingAutoencoderConfig",
    "DenoisingAutoencoderImageProcessor",
    "ImageRestorationPipeline",
    "restore_dataset",
    "DenoisingAutoencoderOutput",
    "denoise_files",
    "denoise_image",
    "is_trained",
    "list_presets",
    "list_zoo",
    "fold_batch_norm",
    "prepare_for_inference",
    "ZOO",
    "ZooEntry",
    "load_model",
    "restore",
    "estimate_noise_level",
    "noise_level_map",
    "out_of_range_penalty",
    "reconstruction_loss",
]
