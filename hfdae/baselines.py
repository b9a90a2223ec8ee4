"""What an evaluation compares: :class:`Method` (an hfdae model or a baseline) and the baseline registry.

A method restores an :class:`~hfdae.protocols.EvaluationCase`: the degraded image with what is known about
how it was made (the noise sigma, the drawn parameters such as a blur sigma, the mask of destroyed pixels),
so a classical tool can be given the true kernel or the mask. Each method says what it is (``kind``:
``model``, ``baseline`` or ``input``) and where it came from (``source``), and ``results.json`` keeps both.

Baselines are registered in :data:`BASELINES` by name; ``hfdae evaluate --baseline SPEC`` and
:func:`build_baseline` take ``NAME`` or ``NAME=ARGUMENT`` (a weights file for the published networks):

- ``input``: the degraded input itself, the floor every method must beat;
- ``bm3d``: BM3D / CBM3D (the ``bm3d`` package) given the true noise sigma;
- ``dncnn=PATH``, ``ffdnet=PATH``: DnCNN and FFDNet from their published weights (:mod:`hfdae.peers`);
  FFDNet is given the true sigma.

Adding a baseline is one :class:`Baseline` entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .protocols import IDENTITY, EvaluationCase

if TYPE_CHECKING:  # this registry imports without torch, for `hfdae evaluate --help`
    import torch

__all__ = ["METHOD_KINDS", "Method", "Baseline", "BASELINES", "list_baselines", "build_baseline"]

METHOD_KINDS = ("model", "baseline", "input")
INPUT_ROW_NAME = "input (no restoration)"


@dataclass
class Method:
    """A restoration method under evaluation: ``restore(case) -> restored [1, C, H, W]``.

    Args:
        name: the row name in tables (unique within an evaluation).
        restore: the restoration function of an :class:`~hfdae.protocols.EvaluationCase`.
        kind: ``"model"`` (an hfdae model), ``"baseline"`` (a classical tool or a published network) or
            ``"input"`` (the degraded input itself).
        source: where the method comes from: a model's source (zoo name, folder, Hub id), a baseline's spec
            (``"bm3d"``, ``"dncnn=PATH"``).
        runs_on: which cases it runs on (None: every case), e.g. only those with a known noise sigma.
        channels: the image channels it works on (1 or 3), or None for any.
        device: where it runs (for the report's machine line).
    """

    name: str
    restore: Callable[[EvaluationCase], torch.Tensor]
    kind: str = "baseline"
    source: str = ""
    runs_on: Callable[[EvaluationCase], bool] | None = None
    channels: int | None = None
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.kind not in METHOD_KINDS:
            raise ValueError(f"kind={self.kind!r} is not valid; choose one of {list(METHOD_KINDS)}")

    def applies_to(self, case: EvaluationCase) -> bool:
        """Whether the method runs on ``case``."""
        return self.runs_on is None or self.runs_on(case)

    @classmethod
    def from_model(cls, model, name: str | None = None, source: str | None = None, **restore_kwargs) -> "Method":
        """An hfdae model (``restore_kwargs`` go to :func:`hfdae.inference.restore`: tiling, self-ensemble).

        Evaluations run in fp32 unless ``precision`` says otherwise, so that numbers do not depend on whether
        the machine has native bf16; the inference copy (folded batch norm) is made once here. A model with a
        mask input channel is given the case's mask (zeros where the case has none).

        Args:
            model: a :class:`~hfdae.DenoisingAutoencoder`.
            name: the row name (default: the model's ``name_or_path``, else its preset).
            source: the model's source (default: ``name``).
        """
        from .inference import prepare_for_inference, restore

        label = name or str(model.config.name_or_path or model.config.preset or "hfdae")
        restore_kwargs.setdefault("precision", "fp32")
        if restore_kwargs.get("fast", True):
            model = prepare_for_inference(model)
        takes_mask = bool(model.config.extra_input_channels)

        def restore_case(case: EvaluationCase) -> torch.Tensor:
            extra = case.mask if takes_mask else None
            return restore(model, case.degraded, extra_inputs=extra, **restore_kwargs)

        return cls(label, restore_case, kind="model", source=source or label, channels=model.config.image_channels,
                   device=str(next(model.parameters()).device))

    @classmethod
    def noisy_input(cls) -> "Method":
        """The degraded input itself: the floor every method must beat (see :func:`build_baseline`)."""
        return build_baseline("input")


def _has_sigma(case: EvaluationCase) -> bool:
    return case.sigma is not None


def _run_network(network: torch.nn.Module, degraded: torch.Tensor, *args) -> torch.Tensor:
    import torch

    with torch.inference_mode():
        return network(degraded.float(), *args)


def _input(argument: str | None) -> Method:
    # the clean condition would score infinite PSNR: it says nothing about the floor
    return Method(INPUT_ROW_NAME, lambda case: case.degraded, kind="input", source="input",
                  runs_on=lambda case: case.condition != IDENTITY)


def _bm3d(argument: str | None) -> Method:
    from .peers import bm3d_denoise

    return Method("BM3D", lambda case: bm3d_denoise(case.degraded, case.sigma), source="bm3d", runs_on=_has_sigma)


def _dncnn(path: str) -> Method:
    from .peers import load_dncnn

    network = load_dncnn(path)
    return Method(f"DnCNN ({Path(path).stem})", lambda case: _run_network(network, case.degraded),
                  source=f"dncnn={path}", channels=network.model[0].in_channels)


def _ffdnet(path: str) -> Method:
    from .peers import load_ffdnet

    network = load_ffdnet(path)
    return Method(f"FFDNet ({Path(path).stem})", lambda case: _run_network(network, case.degraded, case.sigma),
                  source=f"ffdnet={path}", runs_on=_has_sigma, channels=network.model[-1].out_channels // 4)


@dataclass(frozen=True)
class Baseline:
    """A registered baseline.

    Args:
        name: the spec's name (``--baseline NAME`` or ``NAME=ARGUMENT``).
        build: ``build(argument) -> Method`` (``argument`` is None for baselines that take none).
        description: what it is, for ``hfdae evaluate --help`` and ``docs/protocols.md``.
        argument: what the argument is (e.g. ``"PATH"`` of published weights); None: it takes none.
        reference: the citation model cards list under Sources when a table holds this baseline.
    """

    name: str
    build: Callable[[str | None], Method]
    description: str
    argument: str | None = None
    reference: str | None = None


BASELINES: dict[str, Baseline] = {
    baseline.name: baseline
    for baseline in (
        Baseline("input", _input, "the degraded input itself (the floor every method must beat)"),
        Baseline("bm3d", _bm3d, "BM3D (gray) / CBM3D (colour) from the bm3d package, given the true noise sigma",
                 reference="K. Dabov, A. Foi, V. Katkovnik, K. Egiazarian, \"Image Denoising by Sparse 3-D"
                           " Transform-Domain Collaborative Filtering\" (BM3D), IEEE TIP 2007 (baseline; the `bm3d`"
                           " package)."),
        Baseline("dncnn", _dncnn, "DnCNN from its published weights (blind: runs on every condition)",
                 argument="PATH",
                 reference="DnCNN's published weights (Zhang et al., 2017, above) (baseline)."),
        Baseline("ffdnet", _ffdnet, "FFDNet from its published weights, given the true noise sigma", argument="PATH",
                 reference="K. Zhang, W. Zuo, L. Zhang, \"FFDNet: Toward a Fast and Flexible Solution for CNN-Based"
                           " Image Denoising\", IEEE TIP 2018 ([arXiv:1710.04026](https://arxiv.org/abs/1710.04026))"
                           " (baseline; published weights, given the true sigma)."),
    )
}


def list_baselines() -> list[str]:
    """The baseline specs :func:`build_baseline` takes, e.g. ``["input", "bm3d", "dncnn=PATH", "ffdnet=PATH"]``."""
    return [name + (f"={baseline.argument}" if baseline.argument else "") for name, baseline in BASELINES.items()]


def build_baseline(spec: str) -> Method:
    """A baseline method from its spec: ``NAME`` or ``NAME=ARGUMENT`` (see :func:`list_baselines`)."""
    name, separator, argument = spec.partition("=")
    baseline = BASELINES.get(name)
    if baseline is None or bool(baseline.argument) != bool(argument) or (separator and not baseline.argument):
        raise ValueError(f"baseline {spec!r} is not valid; use one of {', '.join(list_baselines())}")
    return baseline.build(argument or None)


def baseline_name(source: str) -> str | None:
    """The registered baseline a row's ``source`` spec names (``"dncnn=/x.pth"`` -> ``"dncnn"``), or None."""
    name = source.partition("=")[0]
    return name if name in BASELINES else None
