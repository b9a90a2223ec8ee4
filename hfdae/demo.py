"""``hfdae demo``: degrade bundled sample photos four ways, restore them, save panels, print PSNR.

The conditions are the chapter's (section 18.4.4): the clean image and one instance of each of the
four degradations (Gaussian noise, salt and pepper, blur, knockout), each with a fixed seed: the ``seed``
protocol of :mod:`hfdae.protocols` on crops of the photos scikit-image ships. The "average" column is the
chapter's five-output PSNR average. (The Gradio app, for your own images, is :mod:`hfdae.space`.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .protocols import CHAPTER_CONDITIONS, IDENTITY
from .samples import DEMO_CROP_SIZE, DEMO_SAMPLES

if TYPE_CHECKING:  # imported when the demo runs, so that `hfdae demo --help` is quick
    from .modeling_hfdae import DenoisingAutoencoder

__all__ = ["DEMO_CONDITIONS", "DemoResult", "run_demo", "model_label"]

DEMO_CONDITIONS = CHAPTER_CONDITIONS


@dataclass
class DemoResult:
    """PSNR per sample and condition (``(degraded, restored)`` in dB) and the panel files written."""

    psnr: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)
    panels: list[Path] = field(default_factory=list)
    trained: bool = False

    def table(self) -> str:
        """A Markdown table: one row per sample, ``degraded -> restored`` dB per condition and their average."""
        names = ["clean" if condition == IDENTITY else condition for condition in DEMO_CONDITIONS]
        header = "| image | " + " | ".join(names) + " | average of 5 |"
        lines = [header, "|" + "---|" * (len(DEMO_CONDITIONS) + 2)]
        for name, values in self.psnr.items():
            cells = [_format_pair(*values[condition]) for condition in DEMO_CONDITIONS]
            restored = [values[condition][1] for condition in DEMO_CONDITIONS]
            cells.append(f"{sum(restored) / len(restored):.2f}")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        return "\n".join(lines)


def _format_pair(degraded: float, restored: float) -> str:
    degraded_text = "clean" if degraded == float("inf") else f"{degraded:.2f}"
    return f"{degraded_text} -> {restored:.2f}"


def run_demo(
    model: DenoisingAutoencoder,
    output_dir: str | Path = "demo_output",
    samples: tuple[str, ...] = DEMO_SAMPLES,
    size: int | None = DEMO_CROP_SIZE,
    seed: int = 0,
) -> DemoResult:
    """Run the demo with ``model``; write one panel PNG per sample into ``output_dir``.

    Args:
        model: the model to restore with.
        output_dir: where ``panel_<sample>.png`` files go.
        samples: names of bundled sample images (see :mod:`hfdae.samples`).
        size: central crop side in pixels (None: whole images).
        seed: base seed of the degradations (each sample and condition gets its own fixed seed).
    """
    from .baselines import Method, build_baseline
    from .evaluation import evaluate
    from .inference import is_trained
    from .plots import PanelRow, restoration_panel
    from .processing import array_to_tensor, center_crop
    from .samples import sample_image

    channels = model.config.image_channels
    result = DemoResult(trained=is_trained(model))
    status = "trained" if result.trained else "UNTRAINED (random weights)"
    for name in samples:
        clean = center_crop(array_to_tensor(sample_image(name, channels)), size)
        # the same protocol, seeds and scoring as `hfdae evaluate --protocol seed`
        floor = build_baseline("input")
        report = evaluate([Method.from_model(model, "model"), floor], [(name, clean)], "seed",
                          seed=seed, with_ssim=False, progress=False, keep_image=name)
        rows = []
        result.psnr[name] = {}
        for condition in DEMO_CONDITIONS:
            restored_psnr = report.values["model"][condition]["psnr"][name]
            floor_values = report.values[floor.name].get(condition)
            degraded_psnr = floor_values["psnr"][name] if floor_values else float("inf")
            result.psnr[name][condition] = (degraded_psnr, restored_psnr)
            label = "clean input" if condition == IDENTITY else condition
            rows.append(PanelRow(label, report.kept_inputs[condition], report.kept_outputs["model"][condition],
                                 clean, degraded_psnr, restored_psnr))
        title = f"{name}: model {model_label(model)} ({status})"
        result.panels.append(restoration_panel(rows, Path(output_dir) / f"panel_{name}.png", title))
    return result


def model_label(model: DenoisingAutoencoder) -> str:
    """A short name for a model in titles: its folder's name or Hub id, never an absolute path."""
    name = str(model.config.name_or_path or "")
    if not name:
        return model.config.preset or "hfdae"
    path = Path(name)
    if path.is_absolute() or path.exists():
        from .zoo import EMBEDDED_MODEL_DIR

        if path.resolve() == EMBEDDED_MODEL_DIR:
            return "default (embedded)"
        return "/".join(path.parts[-2:]) if path.name in ("best", "final") else path.name
    return name
