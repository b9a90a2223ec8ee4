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
  FFDNet is given the true sigma;
- ``richardson_lucy``, ``wiener``: scikit-image's deconvolutions given the true Gaussian kernel (deblurring);
- ``biharmonic``: scikit-image's biharmonic inpainting given the mask of the holes.

The methods given a noise sigma (``bm3d``, ``ffdnet``) can be given another one instead of the true sigma,
where a condition has none (noise followed by JPEG) or the true one is not the best: ``bm3d@20`` or
``ffdnet=PATH@20`` (always 20), ``bm3d@FILE.json`` (a sigma per condition, e.g. chosen on a validation split
by ``benchmarks/tune_baseline_sigma.py``). ``richardson_lucy@ITERATIONS`` and ``wiener@BALANCE`` set their one
setting the same way.

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
    def from_model(cls, model, name: str | None = None, source: str | None = None, given_sigma: bool = False,
                   **restore_kwargs) -> "Method":
        """An hfdae model (``restore_kwargs`` go to :func:`hfdae.inference.restore`: tiling, self-ensemble).

        Evaluations run in fp32 unless ``precision`` says otherwise, so that numbers do not depend on whether
        the machine has native bf16; the inference copy (folded batch norm) is made once here. A model with a
        mask input channel is given the case's mask (zeros where the case has none).

        Args:
            model: a :class:`~hfdae.DenoisingAutoencoder`.
            name: the row name (default: the model's ``name_or_path``, else its preset).
            source: the model's source (default: ``name``).
            given_sigma: give a model with a noise-level input the case's true noise sigma (``noise_level``), as
                FFDNet is given it; the method then runs only on cases with a known sigma. Without it, blind.
        """
        from .inference import prepare_for_inference, restore

        label = name or str(model.config.name_or_path or model.config.preset or "hfdae")
        restore_kwargs.setdefault("precision", "fp32")
        if restore_kwargs.get("fast", True):
            model = prepare_for_inference(model)
        takes_mask = bool(model.config.extra_input_channels)
        if given_sigma and not getattr(model.config, "noise_level_input", False):
            raise ValueError(f"{label}: given_sigma needs a model with a noise-level input (noise_level_input=True)")

        def restore_case(case: EvaluationCase) -> torch.Tensor:
            extra = case.mask if takes_mask else None
            level = {"noise_level": case.sigma / 255} if given_sigma else {}
            return restore(model, case.degraded, extra_inputs=extra, **restore_kwargs, **level)

        return cls(label, restore_case, kind="model", source=source or label, channels=model.config.image_channels,
                   device=str(next(model.parameters()).device),
                   runs_on=(lambda case: case.sigma is not None) if given_sigma else None)

    @classmethod
    def noisy_input(cls) -> "Method":
        """The degraded input itself: the floor every method must beat (see :func:`build_baseline`)."""
        return build_baseline("input")


def _run_network(network: torch.nn.Module, degraded: torch.Tensor, *args) -> torch.Tensor:
    import torch

    with torch.inference_mode():
        return network(degraded.float(), *args)


def _input(argument: str | None) -> Method:
    # the clean condition would score infinite PSNR: it says nothing about the floor
    return Method(INPUT_ROW_NAME, lambda case: case.degraded, kind="input", source="input",
                  runs_on=lambda case: case.condition != IDENTITY)


class SigmaChoice:
    """The noise sigma (0-255) a sigma-taking baseline is given: the case's true sigma (``setting`` None), a fixed
    one (``"20"``) or one per condition from a JSON file ``{"condition": sigma}`` (``"FILE.json"``)."""

    def __init__(self, setting: str | None):
        self.setting = setting
        self.per_condition: dict[str, float] | None = None
        self.fixed: float | None = None
        if setting is None:
            return
        if setting.endswith(".json"):
            import json

            try:
                self.per_condition = {name: float(value) for name, value in json.loads(Path(setting).read_text()).items()}
            except (OSError, ValueError, AttributeError, TypeError) as error:
                raise ValueError(f"sigma file {setting!r}: expected a JSON object {{condition: sigma}} ({error})") from error
        else:
            try:
                self.fixed = float(setting)
            except ValueError:
                raise ValueError(f"sigma {setting!r} is neither a number (0-255) nor a .json file") from None

    def __call__(self, case: EvaluationCase) -> float | None:
        if self.fixed is not None:
            return self.fixed
        if self.per_condition is not None:
            return self.per_condition.get(case.condition)
        return case.sigma

    def applies_to(self, case: EvaluationCase) -> bool:
        return self(case) is not None

    def label(self, name: str) -> str:
        if self.fixed is not None:
            return f"{name} (sigma {self.fixed:g})"
        if self.per_condition is not None:
            return f"{name} (sigma per condition, {Path(self.setting).name})"
        return name


def _split_setting(argument: str | None) -> tuple[str | None, str | None]:
    """``"PATH@SETTING"`` -> (PATH, SETTING); ``"@SETTING"`` -> (None, SETTING)."""
    if argument is None:
        return None, None
    head, separator, setting = argument.rpartition("@")
    return (head or None, setting) if separator else (argument, None)


def _bm3d(argument: str | None) -> Method:
    from .peers import bm3d_denoise

    sigma = SigmaChoice(_split_setting(argument)[1])
    return Method(sigma.label("BM3D"), lambda case: bm3d_denoise(case.degraded, sigma(case)),
                  source="bm3d" + (f"@{sigma.setting}" if sigma.setting else ""), runs_on=sigma.applies_to)


def _blur_sigma(case: EvaluationCase) -> float | None:
    """The true blur sigma of a case whose degradation is a Gaussian blur (the ``deblur`` protocol)."""
    if case.degradation.get("name") == "blur" and case.degradation.get("sigma") is not None:
        return float(case.degradation["sigma"])
    return None


def _setting(argument: str | None, default: float, what: str) -> float:
    setting = _split_setting(argument)[1]
    try:
        return default if setting is None else float(setting)
    except ValueError:
        raise ValueError(f"{what} {setting!r} is not a number") from None


def _deconvolution(title: str, deblur, option: str, value: float, spec: str) -> Method:
    """A deconvolution baseline given each blurred case's true Gaussian kernel (``deblur(images, sigma, option=)``)."""
    return Method(f"{title}, true kernel)", lambda case: deblur(case.degraded, _blur_sigma(case), **{option: value}),
                  source=spec, runs_on=lambda case: _blur_sigma(case) is not None)


def _richardson_lucy(argument: str | None) -> Method:
    from .classical import richardson_lucy_deblur

    iterations = int(_setting(argument, 30, "Richardson-Lucy iterations"))
    return _deconvolution(f"Richardson-Lucy ({iterations} iterations", richardson_lucy_deblur, "iterations",
                          iterations, f"richardson_lucy@{iterations}")


def _wiener(argument: str | None) -> Method:
    from .classical import wiener_deblur

    balance = _setting(argument, 1e-4, "Wiener balance")
    return _deconvolution(f"Wiener (balance {balance:g}", wiener_deblur, "balance", balance, f"wiener@{balance:g}")


def _biharmonic(argument: str | None) -> Method:
    from .classical import biharmonic_inpaint

    return Method("biharmonic inpainting (given the mask)", lambda case: biharmonic_inpaint(case.degraded, case.mask),
                  source="biharmonic", runs_on=lambda case: case.mask is not None and case.condition == "inpaint")


def _dncnn(path: str) -> Method:
    from .peers import load_dncnn

    network = load_dncnn(path)
    return Method(f"DnCNN ({Path(path).stem})", lambda case: _run_network(network, case.degraded),
                  source=f"dncnn={path}", channels=network.model[0].in_channels)


def _ffdnet(argument: str) -> Method:
    from .peers import load_ffdnet

    path, setting = _split_setting(argument)
    sigma = SigmaChoice(setting)
    network = load_ffdnet(path)
    return Method(sigma.label(f"FFDNet ({Path(path).stem})"),
                  lambda case: _run_network(network, case.degraded, sigma(case)),
                  source=f"ffdnet={argument}", runs_on=sigma.applies_to, channels=network.model[-1].out_channels // 4)


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
        Baseline("bm3d", _bm3d, "BM3D (gray) / CBM3D (colour) from the bm3d package, given the true noise sigma"
                 " (bm3d@SIGMA or bm3d@FILE.json: a fixed sigma or one per condition)",
                 reference="K. Dabov, A. Foi, V. Katkovnik, K. Egiazarian, \"Image Denoising by Sparse 3-D"
                           " Transform-Domain Collaborative Filtering\" (BM3D), IEEE TIP 2007 (baseline; the `bm3d`"
                           " package)."),
        Baseline("dncnn", _dncnn, "DnCNN from its published weights (blind: runs on every condition)",
                 argument="PATH",
                 reference="DnCNN's published weights (Zhang et al., 2017, above) (baseline)."),
        Baseline("ffdnet", _ffdnet, "FFDNet from its published weights, given the true noise sigma (PATH@SIGMA or"
                 " PATH@FILE.json: a fixed sigma or one per condition)", argument="PATH",
                 reference="K. Zhang, W. Zuo, L. Zhang, \"FFDNet: Toward a Fast and Flexible Solution for CNN-Based"
                           " Image Denoising\", IEEE TIP 2018 ([arXiv:1710.04026](https://arxiv.org/abs/1710.04026))"
                           " (baseline; published weights, given the true sigma)."),
        Baseline("richardson_lucy", _richardson_lucy,
                 "Richardson-Lucy deconvolution (scikit-image) given the true Gaussian kernel; @N iterations (30)",
                 reference="W. H. Richardson, \"Bayesian-Based Iterative Method of Image Restoration\", JOSA 1972;"
                           " L. B. Lucy, AJ 1974 (baseline; scikit-image's `restoration.richardson_lucy`)."),
        Baseline("wiener", _wiener,
                 "Wiener deconvolution (scikit-image) given the true Gaussian kernel; @BALANCE (1e-4)",
                 reference="Wiener deconvolution (baseline; scikit-image's `restoration.wiener`)."),
        Baseline("biharmonic", _biharmonic, "biharmonic inpainting (scikit-image) given the mask of the holes",
                 reference="S. B. Damelin, N. S. Hoang, \"On Surface Completion and Image Inpainting by Biharmonic"
                           " Functions\", 2018 (baseline; scikit-image's `restoration.inpaint_biharmonic`)."),
    )
}


def list_baselines() -> list[str]:
    """The baseline specs :func:`build_baseline` takes, e.g. ``["input", "bm3d", "dncnn=PATH", "ffdnet=PATH"]``."""
    return [name + (f"={baseline.argument}" if baseline.argument else "") for name, baseline in BASELINES.items()]


def build_baseline(spec: str) -> Method:
    """A baseline method from its spec: ``NAME``, ``NAME=ARGUMENT`` (see :func:`list_baselines`), each with an
    optional ``@SETTING`` (a sigma, a sigma file, iterations; see the module's docstring)."""
    name, separator, argument = spec.partition("=")
    if not separator and "@" in name:  # NAME@SETTING
        name, _, setting = name.partition("@")
        argument = "@" + setting
    baseline = BASELINES.get(name)
    has_argument = bool(_split_setting(argument or None)[0]) if argument else False
    if baseline is None or bool(baseline.argument) != has_argument or (separator and not baseline.argument):
        raise ValueError(f"baseline {spec!r} is not valid; use one of {', '.join(list_baselines())}")
    return baseline.build(argument or None)


def baseline_name(source: str) -> str | None:
    """The registered baseline a row's ``source`` spec names (``"dncnn=/x.pth"`` -> ``"dncnn"``), or None."""
    name = source.partition("=")[0].partition("@")[0]
    return name if name in BASELINES else None
