"""Evaluation protocols. This module holds the chapter's five-output PSNR protocol (section 18.4.4).

For every test image: five outputs, one from the clean image and one from a single instance of each of
the four degradations (fixed seeds, so every model sees the same degraded inputs); PSNR (and SSIM)
of each and of their average; per condition the mean and standard deviation over the images.
"""

from __future__ import annotations

import statistics
import zlib
from dataclasses import dataclass, field

import torch

from .degradations import CHAPTER_DEGRADATIONS, build_degradation
from .metrics import psnr, ssim

__all__ = ["CHAPTER_CONDITIONS", "degrade_for_evaluation", "ChapterProtocolResult", "chapter_protocol"]

CHAPTER_CONDITIONS = ("identity",) + tuple(CHAPTER_DEGRADATIONS)


def degrade_for_evaluation(clean: torch.Tensor, condition: str, image_name: str, seed: int = 0) -> torch.Tensor:
    """One fixed instance of ``condition`` applied to ``clean`` [1, C, H, W].

    The seed depends on ``(seed, image_name, condition)`` only (not on Python's salted ``hash``), so
    every model, run and machine gets the same degraded input for the same image.
    """
    generator = torch.Generator().manual_seed(seed + zlib.crc32(f"{image_name}/{condition}".encode()))
    return build_degradation(condition)(clean.cpu(), generator=generator).images.to(clean.device)


@dataclass
class ChapterProtocolResult:
    """Per-image values and summaries of the chapter's protocol.

    ``psnr[image][condition]`` and ``ssim[image][condition]`` in dB / unitless, with the extra
    condition ``"average"`` (the mean of the five outputs' values); ``input_psnr`` likewise for the
    degraded inputs (the floor).
    """

    psnr: dict[str, dict[str, float]] = field(default_factory=dict)
    ssim: dict[str, dict[str, float]] = field(default_factory=dict)
    input_psnr: dict[str, dict[str, float]] = field(default_factory=dict)

    def summary(self, metric: str = "psnr") -> dict[str, dict[str, float]]:
        """``{condition: {"mean": ..., "std": ...}}`` over the images (population std)."""
        table = getattr(self, metric)
        conditions = list(CHAPTER_CONDITIONS) + ["average"]
        result = {}
        for condition in conditions:
            values = [per_image[condition] for per_image in table.values()]
            result[condition] = {
                "mean": statistics.fmean(values),
                "std": statistics.pstdev(values) if len(values) > 1 else 0.0,
            }
        return result

    @property
    def mean_psnr(self) -> float:
        """The headline number: mean over images of the five-output average PSNR."""
        return self.summary("psnr")["average"]["mean"]


@torch.inference_mode()
def chapter_protocol(
    model: torch.nn.Module,
    images: list[tuple[str, torch.Tensor]],
    seed: int = 0,
    with_ssim: bool = False,
    device: torch.device | str | None = None,
) -> ChapterProtocolResult:
    """Run the chapter's five-output protocol of ``model`` on named clean images [C, H, W] in [0, 1].

    The model is put in eval mode for the pass and restored to its previous mode after.
    Identical-image PSNR (a model returning the clean input exactly) is capped at 100 dB so averages stay finite.
    """
    from .inference import restore

    device = device or next(model.parameters()).device
    result = ChapterProtocolResult()
    for name, clean in images:
        clean = clean.unsqueeze(0).to(device).float()
        result.psnr[name], result.ssim[name], result.input_psnr[name] = {}, {}, {}
        for condition in CHAPTER_CONDITIONS:
            degraded = degrade_for_evaluation(clean, condition, name, seed)
            restored = restore(model, degraded)
            result.psnr[name][condition] = min(100.0, float(psnr(restored, clean)[0]))
            result.input_psnr[name][condition] = min(100.0, float(psnr(degraded.clamp(0, 1), clean)[0]))
            if with_ssim:
                result.ssim[name][condition] = float(ssim(restored, clean)[0])
        for table in (result.psnr, result.input_psnr) + ((result.ssim,) if with_ssim else ()):
            table[name]["average"] = statistics.fmean(table[name][c] for c in CHAPTER_CONDITIONS)
    if not with_ssim:
        result.ssim = {}
    return result
