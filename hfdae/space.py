"""The Gradio demo, deployable as a Hugging Face Space: denoise, inpaint and compare models in a browser.

>>> from hfdae.space import DenoisingSpace
>>> space = DenoisingSpace({"default (embedded)": "default"})
>>> result = space.denoise("photo.png", "gaussian", strength=0.5, seed=0)   # the app's functions, plain
>>> space.build_demo().launch(server_name="127.0.0.1", **space.launch_options())

``hfdae space`` does the same from the command line and ``spaces/hfdae-demo/app.py`` on a Space.
This is the only hfdae module that imports gradio (the ``space`` extra: ``pip install "hfdae[space]"``).

What the app promises its visitors and its host:
    - it offers only the models it was configured with (labels -> ``hfdae.load_model`` specs); a visitor
      picks a label and cannot type a path or a repo id;
    - outputs are lossless PNG files, written in the app's own output folder (the only folder it adds to
      what gradio serves), and pruned after an hour;
    - uploads above ``max_pixels`` are refused with a message naming both sizes (read from the file's
      header, before decoding, on the Denoise and Compare tabs); images above ``tile_pixels`` are
      restored in 512x512 tiles by :func:`hfdae.restore`;
    - requests queue, ``concurrency_limit`` at a time (CPU-bound work gains nothing from more).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import numpy as np
import torch
from PIL import Image

from .degradations import CHAPTER_DEGRADATIONS, Degradation, GaussianBlur, GaussianNoise, Knockout, SaltPepper
from .inference import DEFAULT_MODEL, load_model, restore
from .metrics import psnr, ssim
from .modeling_hfdae import DenoisingAutoencoder
from .processing import ImageReadError, array_to_tensor, quantize_8bit, read_image, save_image
from .samples import DEMO_SAMPLES, write_sample_folder

__all__ = [
    "ALREADY_DEGRADED",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MODELS",
    "DEFAULT_TILE_PIXELS",
    "MAX_PIXELS_VARIABLE",
    "MODELS_VARIABLE",
    "TILE_SIZE",
    "DenoisingSpace",
    "Restoration",
    "build_demo",
    "launch",
    "models_from_environment",
    "parse_model_specs",
    "synthetic_degradation",
]

DEFAULT_MODEL_LABEL = "default (embedded)"
DEFAULT_MODELS: dict[str, str] = {DEFAULT_MODEL_LABEL: DEFAULT_MODEL}
DEFAULT_MAX_PIXELS = 4_000_000
# The Space reads its models from here: "LABEL=SPEC, LABEL=SPEC" (see parse_model_specs).
MODELS_VARIABLE = "HFDAE_SPACE_MODELS"
MAX_PIXELS_VARIABLE = "HFDAE_SPACE_MAX_PIXELS"
ALREADY_DEGRADED = "none"
# Images above this many pixels are restored in tiles of TILE_SIZE (hfdae.restore's own threshold is for
# bigger machines: a shared CPU Space should hold one tile's activations, not a 4 MP image's).
DEFAULT_TILE_PIXELS = 1024 * 1024
TILE_SIZE = 512
RESULT_MAX_AGE_SECONDS = 3600

# What strength 1 means for each degradation; 0.5, the slider's default, gives the levels the models
# were trained around (Gaussian sigma 25/255, 5% salt and pepper, blur sigma 1.5, 30 blocks per 128x128).
_FULL_STRENGTH = {"gaussian": 50.0, "salt_pepper": 0.10, "blur": 3.0, "knockout": 60.0}
_DEGRADATION_LABELS = {
    "gaussian": "Gaussian noise",
    "salt_pepper": "Salt and pepper",
    "blur": "Blur",
    "knockout": "Knockout (zeroed blocks)",
    ALREADY_DEGRADED: "None: my image is already degraded",
}


def parse_model_specs(entries: Sequence[str] | str | None) -> dict[str, str]:
    """Model entries -> ``{label: spec}``, the form :class:`DenoisingSpace` takes.

    Args:
        entries: ``"LABEL=SPEC"`` strings, or one string of them separated by commas. SPEC is anything
            :func:`hfdae.load_model` takes ("default", a zoo name, a folder, a Hub repo id); a bare SPEC is
            its own label ("default" is labelled ``"default (embedded)"``). None or empty: the default model.
    """
    if isinstance(entries, str):
        entries = entries.split(",")
    models: dict[str, str] = {}
    for entry in (entry.strip() for entry in entries or ()):
        if not entry:
            continue
        label, separator, spec = entry.partition("=")
        label, spec = (label.strip(), spec.strip()) if separator else ("", label.strip())
        if not spec:
            raise ValueError(f"model entry {entry!r} has no spec; write LABEL=SPEC, e.g. 'denoiser=default'")
        label = label or (DEFAULT_MODEL_LABEL if spec == DEFAULT_MODEL else spec)
        if label in models:
            raise ValueError(f"two models are labelled {label!r}; give each its own LABEL=SPEC")
        models[label] = spec
    return models or dict(DEFAULT_MODELS)


def models_from_environment() -> dict[str, str]:
    """The Space's models: ``$HFDAE_SPACE_MODELS`` (``"LABEL=SPEC, ..."``), else the embedded default."""
    return parse_model_specs(os.environ.get(MODELS_VARIABLE))


def synthetic_degradation(name: str, strength: float) -> Degradation:
    """The degradation the Denoise tab adds: one of the chapter's four at ``strength`` in [0, 1].

    Strength 1 is Gaussian noise of sigma 50/255, 10% salt and pepper, a blur of sigma 3 px, or 60 zeroed
    blocks (up to 9x9 px) per 128x128 pixels; the amount scales linearly with the strength.
    """
    if name not in _FULL_STRENGTH:
        raise gr.Error(f"unknown degradation {name!r}; choose one of {', '.join(CHAPTER_DEGRADATIONS)}")
    if not 0 <= strength <= 1:
        raise gr.Error(f"strength must be between 0 and 1, got {strength}")
    amount = strength * _FULL_STRENGTH[name]
    if name == "gaussian":
        return GaussianNoise(sigma=amount / 255)
    if name == "salt_pepper":
        return SaltPepper(fraction=amount)
    if name == "blur":
        return GaussianBlur(sigma=amount)
    return Knockout(min_blocks=round(amount), max_blocks=round(amount))


def _describe_degradation(name: str, strength: float) -> str:
    amount = strength * _FULL_STRENGTH[name]
    return {
        "gaussian": f"Gaussian noise, sigma {amount:.1f}/255",
        "salt_pepper": f"salt and pepper on {amount:.1%} of the pixels",
        "blur": f"Gaussian blur, sigma {amount:.2f} px",
        "knockout": f"knockout, {round(amount)} blocks per 128x128 pixels",
    }[name]


@dataclass
class Restoration:
    """One restoration made by the app, with what it shows about it.

    Args:
        model: the label of the model that restored.
        degraded: PNG of the model's input (the synthesised degradation, the upload, or the holes).
        restored: PNG of the restoration (the file offered for download).
        seconds: restoration time, model loading excluded.
        psnr_degraded, psnr_restored, ssim_degraded, ssim_restored: against the clean reference, when
            there is one (a synthesised degradation; for inpainting, PSNR inside the painted area against
            the pixels under the paint); None otherwise.
        condition: what degraded the input, in words.
        scope: what the PSNR covers, when not the whole image.
    """

    model: str
    degraded: Path
    restored: Path
    seconds: float
    condition: str
    psnr_degraded: float | None = None
    psnr_restored: float | None = None
    ssim_degraded: float | None = None
    ssim_restored: float | None = None
    scope: str = ""

    def summary(self) -> str:
        """A Markdown summary: the metrics table (when there is a reference), model, input and time."""
        lines = [f"**{self.model}**, {self.seconds:.2f} s; input: {self.condition}.", ""]
        if self.psnr_restored is None:
            lines.append("No clean reference (the upload is the degraded image), so no PSNR or SSIM.")
            return "\n".join(lines)
        if self.scope:
            lines += [f"PSNR {self.scope}.", ""]
        lines += ["| | PSNR (dB) | SSIM |", "|---|---|---|"]
        for name, value, similarity in (("input", self.psnr_degraded, self.ssim_degraded),
                                        ("restored", self.psnr_restored, self.ssim_restored)):
            lines.append(f"| {name} | {value:.2f} | {'-' if similarity is None else f'{similarity:.4f}'} |")
        return "\n".join(lines)


@dataclass
class _Prepared:
    name: str
    degraded: torch.Tensor  # [1, C, H, W] on 8-bit levels: exactly what the PNG holds
    clean: torch.Tensor | None
    mask: torch.Tensor | None  # [1, 1, H, W] float, 1 where pixels were destroyed
    condition: str


class DenoisingSpace:
    """The app: its configured models (loaded once, cached), its upload limit and its output folder.

    The methods :meth:`denoise`, :meth:`inpaint` and :meth:`compare` are what the tabs run; they take
    plain Python values, so they can be called (and tested) without a browser. They raise ``gr.Error``,
    which gradio shows to the visitor, for anything the visitor can fix.

    Args:
        models: ``{label: spec}``, spec as for :func:`hfdae.load_model`; the labels are all a visitor
            sees and can choose. Default: the embedded model.
        max_pixels: largest upload, in pixels (width x height).
        output_dir: folder for the examples and the results (default: a new temporary folder).
        tile_pixels: images above this many pixels are restored in overlapping 512x512 tiles.
    """

    def __init__(
        self,
        models: Mapping[str, str] | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        output_dir: str | os.PathLike | None = None,
        tile_pixels: int = DEFAULT_TILE_PIXELS,
    ) -> None:
        self.models = dict(models) if models else dict(DEFAULT_MODELS)
        if max_pixels < 1:
            raise ValueError(f"max_pixels must be positive, got {max_pixels}")
        self.max_pixels = int(max_pixels)
        self.tile_pixels = int(tile_pixels)
        self.output_dir = Path(output_dir) if output_dir else Path(tempfile.mkdtemp(prefix="hfdae-space-"))
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self._loaded: dict[str, DenoisingAutoencoder] = {}
        self._load_lock = threading.Lock()

    @property
    def labels(self) -> list[str]:
        """The model labels, in the configured order."""
        return list(self.models)

    def model(self, label: str | None = None) -> DenoisingAutoencoder:
        """The model labelled ``label`` (default: the first), loaded on first use and then cached."""
        label = self.labels[0] if label is None else label
        if label not in self.models:
            raise gr.Error(f"unknown model {label!r}; this demo offers {', '.join(map(repr, self.labels))}")
        with self._load_lock:
            if label not in self._loaded:
                self._loaded[label] = load_model(self.models[label])
            return self._loaded[label]

    def inpainting_labels(self) -> list[str]:
        """The labels of models that take the hole mask as an extra input channel (loads every model)."""
        return [label for label in self.labels if self.model(label).config.extra_input_channels == 1]

    def check_size(self, width: int, height: int) -> None:
        """Refuse an image above ``max_pixels`` with a message that names its size and the limit."""
        if width * height > self.max_pixels:
            raise gr.Error(
                f"The image is {width}x{height} = {width * height:,} pixels, above this demo's limit of"
                f" {self.max_pixels:,} pixels ({_megapixels(self.max_pixels)}). Downscale or crop it, or"
                " restore it locally with `hfdae denoise`."
            )

    # ----------------------------------------------------------------------------------------------
    # The tabs
    # ----------------------------------------------------------------------------------------------

    def denoise(
        self,
        image: str | os.PathLike | Image.Image | np.ndarray | None,
        degradation: str = "gaussian",
        strength: float = 0.5,
        seed: int = 0,
        model: str | None = None,
    ) -> Restoration:
        """Denoise tab: degrade ``image`` (or take it as already degraded) and restore it.

        Args:
            image: the upload (a file path, a PIL image or an H x W x C uint8 array).
            degradation: one of the chapter's four (``"gaussian"``, ``"salt_pepper"``, ``"blur"``,
                ``"knockout"``), synthesised on the image, which is then the clean reference; or
                :data:`ALREADY_DEGRADED` to restore the upload as it is (no metrics).
            strength: in [0, 1], see :func:`synthetic_degradation`.
            seed: seed of the degradation's random draws.
            model: a configured label (default: the first).
        """
        prepared = self._prepare(image, degradation, strength, seed)
        return self._restore(prepared, model, self._new_result_folder())

    def compare(
        self,
        image: str | os.PathLike | Image.Image | np.ndarray | None,
        degradation: str = "gaussian",
        strength: float = 0.5,
        seed: int = 0,
        models: Sequence[str] | None = None,
    ) -> list[Restoration]:
        """Compare tab: several models on the same input; one :class:`Restoration` each, in order.

        Arguments as :meth:`denoise`; ``models`` is a list of labels (None: all configured models).
        """
        labels = self.labels if models is None else list(models)
        if not labels:
            raise gr.Error("Tick at least one model to compare.")
        for label in labels:
            self.model(label)  # unknown labels fail before any work
        prepared = self._prepare(image, degradation, strength, seed)
        folder = self._new_result_folder()
        return [self._restore(prepared, label, folder, f"{index}-") for index, label in enumerate(labels, 1)]

    def inpaint(self, editor: Mapping | None, model: str | None = None) -> Restoration:
        """Inpaint tab: fill the painted parts of an image.

        Painted pixels are set to 0 and restored; the result keeps every unpainted pixel of the upload.
        A model with a mask input (``extra_input_channels == 1``) gets the mask (1 = hole); the others
        fill holes as they learned from knockout (blocks up to 9x9 px): thin strokes work best.

        Args:
            editor: the image editor's value: ``{"background": H x W x C uint8 array, "layers": [H x W x 4
                arrays whose alpha marks the paint], ...}``.
            model: a configured label (default: the first model with a mask input, else the first).
        """
        if not editor or editor.get("background") is None:
            raise gr.Error("Upload an image, then paint over the parts to fill in.")
        background = np.asarray(editor["background"])
        height, width = background.shape[:2]
        self.check_size(width, height)
        if background.ndim == 2:
            background = background[:, :, None]
        pixels = background[:, :, :3] if background.shape[2] >= 3 else background[:, :, :1]  # alpha dropped
        painted = np.zeros((height, width), dtype=bool)
        for layer in editor.get("layers") or []:
            layer = np.asarray(layer)
            if layer.ndim == 3 and layer.shape[2] == 4 and layer.shape[:2] == (height, width):
                painted |= layer[:, :, 3] > 0
        if not painted.any():
            raise gr.Error("Paint over the parts of the image to fill in first (the brush tool).")
        original = array_to_tensor(np.ascontiguousarray(pixels)).unsqueeze(0)
        mask = torch.from_numpy(painted)[None, None]
        holes = original.masked_fill(mask, 0.0)
        label = model if model is not None else next(iter(self.inpainting_labels()), self.labels[0])
        prepared = _Prepared("image", holes, original, mask.float(), f"{painted.mean():.1%} of the pixels painted over")
        return self._restore(prepared, label, self._new_result_folder(), keep_unmasked=True)

    # ----------------------------------------------------------------------------------------------
    # The work
    # ----------------------------------------------------------------------------------------------

    def _read_upload(self, image) -> tuple[torch.Tensor, str]:
        """The upload as a [1, C, H, W] tensor on 8-bit levels (alpha dropped) and a name for its files."""
        if image is None:
            raise gr.Error("Upload an image or pick an example first.")
        if isinstance(image, np.ndarray):
            image = Image.fromarray(image)
        if isinstance(image, Image.Image):
            name, source = "image", image
            self.check_size(*image.size)
        else:
            path = Path(image)
            name, source = _safe_stem(path), path
            try:
                with Image.open(path) as opened:  # reads the header only: the size, before decoding
                    size = opened.size
            except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
                raise gr.Error(f"{path.name}: not a readable image ({error})") from error
            self.check_size(*size)
        try:
            record = read_image(source, name=name)
        except ImageReadError as error:
            raise gr.Error(str(error)) from error
        return quantize_8bit(array_to_tensor(record.pixels)).unsqueeze(0), name

    def _prepare(self, image, degradation: str, strength: float, seed: int) -> _Prepared:
        strength = 0.5 if strength is None else float(strength)
        upload, name = self._read_upload(image)
        if degradation == ALREADY_DEGRADED:
            return _Prepared(name, upload, None, None, "the upload as it is")
        synthetic = synthetic_degradation(degradation, strength)
        generator = torch.Generator().manual_seed(int(seed or 0))
        batch = synthetic(upload, generator=generator)
        mask = None if batch.mask is None else batch.mask.float()
        return _Prepared(name, quantize_8bit(batch.images), upload,
                         mask, f"{_describe_degradation(degradation, strength)}, seed {int(seed or 0)}")

    def _restore(self, prepared: _Prepared, label: str | None, folder: Path, prefix: str = "",
                 keep_unmasked: bool = False) -> Restoration:
        label = self.labels[0] if label is None else label
        model = self.model(label)
        start = time.perf_counter()
        height, width = prepared.degraded.shape[-2:]
        tile_size = TILE_SIZE if height * width > self.tile_pixels else None
        restored = _run_model(model, prepared.degraded, prepared.mask, tile_size)
        seconds = time.perf_counter() - start
        if keep_unmasked:
            restored = torch.where(prepared.mask.bool(), restored, prepared.clean)
        restored = quantize_8bit(restored)
        degraded_path = folder / f"{prepared.name}-degraded.png"
        if not degraded_path.exists():
            save_image(prepared.degraded, degraded_path)
        restored_path = save_image(restored, folder / f"{prefix}{prepared.name}-restored-{_safe_name(label)}.png")
        result = Restoration(label, degraded_path, restored_path, seconds, prepared.condition)
        if prepared.clean is not None:
            if keep_unmasked:  # inpainting: score the painted area only
                result.scope = "inside the painted area, against the pixels under the paint"
                inside = prepared.mask.bool().expand_as(prepared.clean)
                reference = prepared.clean[inside].view(1, 1, 1, -1)
                result.psnr_degraded = float(psnr(prepared.degraded[inside].view(1, 1, 1, -1), reference)[0])
                result.psnr_restored = float(psnr(restored[inside].view(1, 1, 1, -1), reference)[0])
            else:
                result.psnr_degraded = float(psnr(prepared.degraded, prepared.clean)[0])
                result.psnr_restored = float(psnr(restored, prepared.clean)[0])
                result.ssim_degraded = float(ssim(prepared.degraded, prepared.clean)[0])
                result.ssim_restored = float(ssim(restored, prepared.clean)[0])
        return result

    def _new_result_folder(self) -> Path:
        """A fresh folder for one request's files; folders older than an hour are deleted on the way."""
        results = self.output_dir / "results"
        results.mkdir(exist_ok=True)
        cutoff = time.time() - RESULT_MAX_AGE_SECONDS
        for old in results.iterdir():
            if old.is_dir() and old.stat().st_mtime < cutoff:
                shutil.rmtree(old, ignore_errors=True)
        folder = results / uuid.uuid4().hex
        folder.mkdir()
        return folder

    # ----------------------------------------------------------------------------------------------
    # The page
    # ----------------------------------------------------------------------------------------------

    def launch_options(self) -> dict:
        """Keyword arguments for ``demo.launch``: serve the output folder only, cap upload bytes."""
        # 8 bytes per pixel covers an uncompressed 16-bit RGBA file at the pixel limit.
        return {"allowed_paths": [str(self.output_dir.resolve())], "max_file_size": max(self.max_pixels * 8, 1 << 20)}

    def build_demo(self, concurrency_limit: int = 1, queue_size: int | None = 32) -> gr.Blocks:
        """The page: Denoise, Inpaint and Compare tabs over this space's models, with its queue set up.

        Args:
            concurrency_limit: requests restored at a time (the rest wait in the queue).
            queue_size: most requests waiting; None for no limit.
        """
        labels = self.labels
        inpainting = self.inpainting_labels()  # loads every model now: a bad spec fails at start-up
        examples = [str(path) for path in write_sample_folder(self.output_dir / "examples", DEMO_SAMPLES)]
        degradation_choices = [(text, value) for value, text in _DEGRADATION_LABELS.items()]

        def denoise(image, degradation, strength, seed, model):
            result = self.denoise(image, degradation, strength, seed, model)
            return str(result.degraded), str(result.restored), result.summary(), str(result.restored)

        def inpaint(editor, model):
            result = self.inpaint(editor, model)
            return str(result.degraded), str(result.restored), result.summary(), str(result.restored)

        def compare(image, degradation, strength, seed, models):
            results = self.compare(image, degradation, strength, seed, models)
            first = results[0]
            reference = "" if first.psnr_degraded is None else f": {first.psnr_degraded:.2f} dB"
            gallery = [(str(first.degraded), f"input{reference}")]
            gallery += [(str(result.restored), _caption(result)) for result in results]
            return gallery, _comparison_table(results)

        with gr.Blocks(title="hfdae: denoising autoencoders", delete_cache=(3600, RESULT_MAX_AGE_SECONDS)) as demo:
            gr.Markdown(_introduction(self, inpainting))
            with gr.Tab("Denoise"):
                with gr.Row():
                    with gr.Column(scale=1):
                        image = _upload("Image", "denoise-input")
                        degradation, strength, seed = _degradation_controls(degradation_choices, "denoise")
                        model = gr.Dropdown(labels, value=labels[0], label="Model", elem_id="denoise-model")
                        run = gr.Button("Run", variant="primary", elem_id="denoise-run")
                        gr.Examples(examples, inputs=image, label="Examples (bundled photos)")
                    with gr.Column(scale=2):
                        with gr.Row():
                            degraded = _result_image("Degraded (the model's input)", "denoise-degraded")
                            restored = _result_image("Restored", "denoise-restored")
                        summary = gr.Markdown(elem_id="denoise-summary")
                        download = gr.DownloadButton("Download the restored PNG", elem_id="denoise-download")
                run.click(denoise, [image, degradation, strength, seed, model], [degraded, restored, summary, download],
                          api_name="denoise")

            with gr.Tab("Inpaint"):
                with gr.Row():
                    with gr.Column(scale=1):
                        editor = gr.ImageEditor(
                            label="Paint over what to fill in", type="numpy", image_mode="RGBA", format="png",
                            sources=["upload", "clipboard"], transforms=(), layers=False,
                            brush=gr.Brush(colors=["#ff00ff"], color_mode="fixed", default_size=6),
                            eraser=gr.Eraser(), elem_id="inpaint-input",
                        )
                        inpaint_model = gr.Dropdown(labels, value=(inpainting or labels)[0], label="Model",
                                                    info=_inpaint_note(inpainting), elem_id="inpaint-model")
                        inpaint_run = gr.Button("Fill in", variant="primary", elem_id="inpaint-run")
                        gr.Examples(examples, inputs=editor, label="Examples (bundled photos)")
                    with gr.Column(scale=2):
                        with gr.Row():
                            holes = _result_image("Holes (the model's input)", "inpaint-holes")
                            filled = _result_image("Filled in", "inpaint-restored")
                        inpaint_summary = gr.Markdown(elem_id="inpaint-summary")
                        inpaint_download = gr.DownloadButton("Download the filled-in PNG")
                inpaint_run.click(inpaint, [editor, inpaint_model], [holes, filled, inpaint_summary, inpaint_download],
                                  api_name="inpaint")

            with gr.Tab("Compare"):
                with gr.Row():
                    with gr.Column(scale=1):
                        compare_image = _upload("Image", "compare-input")
                        compare_controls = _degradation_controls(degradation_choices, "compare")
                        compare_models = gr.CheckboxGroup(labels, value=labels, label="Models")
                        compare_run = gr.Button("Compare", variant="primary", elem_id="compare-run")
                        gr.Examples(examples, inputs=compare_image, label="Examples (bundled photos)")
                    with gr.Column(scale=2):
                        gallery = gr.Gallery(label="Input and restorations", format="png", columns=len(labels) + 1,
                                             rows=1, object_fit="contain", elem_id="compare-gallery")
                        table = gr.Markdown()
                compare_run.click(compare, [compare_image, *compare_controls, compare_models], [gallery, table],
                                  api_name="compare")
        demo.queue(default_concurrency_limit=concurrency_limit, max_size=queue_size)
        return demo


def build_demo(
    models: Mapping[str, str] | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    output_dir: str | os.PathLike | None = None,
    concurrency_limit: int = 1,
) -> gr.Blocks:
    """The demo over ``models`` (``{label: spec}``; default: the embedded model), queue set up.

    Launch it with ``launch_options()`` of its :class:`DenoisingSpace` (``demo.space``), or use :func:`launch`.
    """
    space = DenoisingSpace(models, max_pixels=max_pixels, output_dir=output_dir)
    demo = space.build_demo(concurrency_limit=concurrency_limit)
    demo.space = space
    return demo


def launch(
    models: Mapping[str, str] | None = None,
    server_name: str = "127.0.0.1",
    server_port: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    output_dir: str | os.PathLike | None = None,
    concurrency_limit: int = 1,
    **launch_kwargs,
) -> gr.Blocks:
    """Build the demo and serve it (on 127.0.0.1 unless told otherwise); blocks unless
    ``prevent_thread_lock=True`` is passed. Extra keyword arguments go to ``gr.Blocks.launch``."""
    demo = build_demo(models, max_pixels=max_pixels, output_dir=output_dir, concurrency_limit=concurrency_limit)
    demo.launch(server_name=server_name, server_port=server_port, **demo.space.launch_options(), **launch_kwargs)
    return demo


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


def _run_model(model: DenoisingAutoencoder, images: torch.Tensor, mask: torch.Tensor | None,
               tile_size: int | None) -> torch.Tensor:
    """Restore [1, C, H, W] (in tiles of ``tile_size``, if given); a model with a mask input gets ``mask``
    (1 in the holes; zeros, no holes, when None)."""
    extra_channels = model.config.extra_input_channels
    if extra_channels not in (0, 1):
        raise gr.Error(f"this model takes {extra_channels} extra input channels; the demo only knows a 1-channel mask")
    if extra_channels == 1 and mask is None:
        mask = torch.zeros_like(images[:, :1])
    return restore(model, images, tile_size=tile_size, extra_inputs=mask if extra_channels else None)


def _safe_name(text: str) -> str:
    """Letters, digits, dots, dashes and underscores only, at most 40: safe in a file name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")[:40] or "image"


def _safe_stem(path: Path) -> str:
    return _safe_name(path.stem)


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:.3g} MP"


def _caption(result: Restoration) -> str:
    quality = "" if result.psnr_restored is None else f"{result.psnr_restored:.2f} dB, "
    return f"{result.model}: {quality}{result.seconds:.2f} s"


def _comparison_table(results: list[Restoration]) -> str:
    first = results[0]
    lines = [f"Input: {first.condition}.", ""]
    if first.psnr_restored is None:
        lines += ["| model | time (s) |", "|---|---|"]
        lines += [f"| {result.model} | {result.seconds:.2f} |" for result in results]
        return "\n".join(lines)
    lines += ["| model | PSNR (dB) | SSIM | time (s) |", "|---|---|---|---|",
              f"| input (no restoration) | {first.psnr_degraded:.2f} | {first.ssim_degraded:.4f} | - |"]
    lines += [f"| {result.model} | {result.psnr_restored:.2f} | {result.ssim_restored:.4f} | {result.seconds:.2f} |"
              for result in results]
    return "\n".join(lines)


def _upload(label: str, elem_id: str) -> gr.Image:
    # filepath and no image_mode: gradio hands over the uploaded file untouched, so its size is checked
    # from the header before anything decodes it.
    return gr.Image(label=label, type="filepath", image_mode=None, sources=["upload", "clipboard"], format="png",
                    elem_id=elem_id)


def _result_image(label: str, elem_id: str) -> gr.Image:
    # png: gradio's default output format, webp, is lossy and would change the pixels being scored.
    return gr.Image(label=label, format="png", interactive=False, buttons=["download", "fullscreen"], elem_id=elem_id)


def _degradation_controls(choices: list[tuple[str, str]], prefix: str) -> tuple[gr.Radio, gr.Slider, gr.Number]:
    degradation = gr.Radio(choices, value="gaussian", label="Degradation to add", elem_id=f"{prefix}-degradation")
    strength = gr.Slider(0, 1, value=0.5, step=0.05, label="Strength",
                         info="1 = Gaussian sigma 50/255, 10% salt and pepper, blur sigma 3 px, 60 blocks per 128x128")
    seed = gr.Number(0, precision=0, minimum=0, label="Seed")
    return degradation, strength, seed


def _inpaint_note(inpainting: list[str]) -> str:
    if inpainting:
        return f"{', '.join(inpainting)}: trained to fill holes given their mask"
    return ("no inpainting model is configured: the models fill small holes, as they learned from knockout"
            " (blocks up to 9x9 px), so paint thin strokes")


def _introduction(space: DenoisingSpace, inpainting: list[str]) -> str:
    rows = []
    for label in space.labels:
        config = space.model(label).config
        description = (config.training_summary or {}).get("description", "")
        kind = "mask input (inpainting)" if label in inpainting else f"{config.colour_space}"
        rows.append(f"| {label} | {kind} | {config.images_seen:,} | {description} |")
    return "\n".join([
        "# hfdae: denoising autoencoders",
        "Add noise, salt and pepper, blur or knockout to a photo (or upload an already damaged one) and"
        " restore it; paint holes and fill them in; compare models. Runs on CPU; results are lossless PNG."
        f" Images up to {_megapixels(space.max_pixels)}.",
        "",
        "| model | input | training images seen | trained for |",
        "|---|---|---|---|",
        *rows,
    ])
