"""The model zoo: trained weights by short name, each naming its architecture preset and where its weights are.

The architectures are the presets of :mod:`hfdae.configuration_hfdae` (``hfdae.list_presets()``:
``small``, ``noskip``, ``skip``, ``flagship``); ``DenoisingAutoencoderConfig.from_preset(NAME)`` builds one
with random weights. A zoo entry is trained weights of a preset (timm's model / pretrained-tag split):
``hfdae.load_model(NAME)`` loads them. Each entry says where its weights are:

- ``embedded``: inside the installed package (the default model; every install has it);
- ``local``: a zoo folder ``NAME/`` (``config.json`` + ``model.safetensors``, Hub-ready with its card and
  evaluations) in ``$HFDAE_ZOO_DIR``, or in ``zoo/`` of a source checkout;
- a Hub repo id (``org/name``), for entries published on the Hugging Face Hub.

A local folder always wins (so a checkout or ``$HFDAE_ZOO_DIR`` can hold newer weights); an entry that is
nowhere on this machine and not published fails at once with how to get it. :func:`list_zoo` lists the
entries and :meth:`ZooEntry.locate` says where each loads from here (None: not available).

>>> import hfdae
>>> [(entry.name, entry.preset, entry.available) for entry in hfdae.list_zoo()]
>>> model = hfdae.load_model("colour")

Adding a model to the zoo is one :class:`ZooEntry` line in :data:`ZOO`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "EMBEDDED",
    "LOCAL",
    "ZOO_DIRECTORY_VARIABLE",
    "ZOO_HUB_ORGANISATION",
    "EMBEDDED_MODEL_DIR",
    "ZooEntry",
    "ZOO",
    "ZooModelUnavailableError",
    "list_zoo",
    "get_zoo_entry",
    "zoo_directory",
    "zoo_table",
]

EMBEDDED = "embedded"
LOCAL = "local"
ZOO_DIRECTORY_VARIABLE = "HFDAE_ZOO_DIR"
# where zoo entries will be published (hfdae/hfdae-NAME); an entry names its Hub id once it is published
ZOO_HUB_ORGANISATION = "hfdae"
# the embedded default's weights, installed with the package (package data)
EMBEDDED_MODEL_DIR = Path(__file__).resolve().parent / "default_model"
_CHECKOUT_ZOO = Path(__file__).resolve().parent.parent / "zoo"


class ZooModelUnavailableError(FileNotFoundError):
    """A zoo model whose weights are not on this machine and not published: the message says how to get them."""


@dataclass(frozen=True)
class ZooEntry:
    """One zoo model.

    Args:
        name: the short name ``hfdae.load_model`` takes.
        preset: its architecture (a preset of ``hfdae.list_presets()``).
        task: what it was trained for (a task of :func:`hfdae.protocols.list_tasks`).
        description: what it is, in a line.
        weights: where its weights are: :data:`EMBEDDED` (in the package), :data:`LOCAL` (a zoo folder only) or
            the Hub repo id it is published under.
        overrides: the configuration fields in which it differs from its preset (``colour_space``, extra
            input channels ...).
    """

    name: str
    preset: str
    task: str
    description: str
    weights: str = LOCAL
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def hub_id(self) -> str | None:
        """The Hub repo id it is published under, or None while it is not."""
        return self.weights if self.weights not in (EMBEDDED, LOCAL) else None

    def local_folder(self) -> Path | None:
        """Its folder on this machine (embedded, then ``$HFDAE_ZOO_DIR`` or a checkout's ``zoo/``), or None."""
        if self.weights == EMBEDDED and (EMBEDDED_MODEL_DIR / "model.safetensors").is_file():
            return EMBEDDED_MODEL_DIR
        directory = zoo_directory()
        if directory is not None and (directory / self.name / "config.json").is_file():
            return directory / self.name
        return None

    def locate(self) -> str | None:
        """Where it loads from on this machine: a folder, or its Hub id where published; None if unavailable."""
        folder = self.local_folder()
        if folder is not None:
            return str(folder)
        return self.hub_id

    @property
    def available(self) -> bool:
        """Whether :func:`hfdae.load_model` can load it here (from a folder, or from the Hub where published)."""
        return self.locate() is not None

    def unavailable_message(self) -> str:
        """How to get this model, for an install that does not have it."""
        directory = os.environ.get(ZOO_DIRECTORY_VARIABLE)
        looked = f"${ZOO_DIRECTORY_VARIABLE}={directory}" if directory else f"${ZOO_DIRECTORY_VARIABLE} (not set)"
        return (
            f"zoo model {self.name!r} is not available in this install: its weights are not in the package, not in"
            f" {looked}, and not published on the Hub yet (it will be {ZOO_HUB_ORGANISATION}/hfdae-{self.name}). They"
            f" ship in zoo/{self.name}/ of the hfdae source repository: point {ZOO_DIRECTORY_VARIABLE} at a folder"
            f" holding {self.name}/ (config.json and model.safetensors), e.g. a checkout's zoo/, or load the folder"
            f" itself with hfdae.load_model(PATH). hfdae.list_zoo() says which models this install has."
        )


ZOO: dict[str, ZooEntry] = {
    entry.name: entry
    for entry in (
        ZooEntry("colour", "flagship", "restore", "colour flagship: blind Gaussian noise up to sigma 50, salt and"
                 " pepper, blur, knockout (the embedded default)", weights=EMBEDDED),
        ZooEntry("colour-v1", "flagship", "restore", "the first colour flagship (2.10 M parameters, full-resolution"
                 " skip U-Net, blind); kept to rerun comparisons and as the parent of the task models"),
        ZooEntry("small", "small", "restore", "Figure 18.4's small design (shallow, skips), the chapter's four"
                 " degradations"),
        ZooEntry("noskip", "noskip", "restore", "Figure 18.4's deep design without skips, the chapter's four degradations"),
        ZooEntry("skip", "skip", "restore", "Figure 18.4's deep design with skips, the chapter's four degradations"),
        ZooEntry("gray", "flagship", "denoise", "gray blind Gaussian denoiser (sigma <= 55): the first colour flagship"
                 " converted to one channel, deepened at full resolution and trained on CBSD432 in gray",
                 overrides={"colour_space": "gray", "blocks_per_level": [3, 1, 1, 1]}),
        ZooEntry("gray-v1", "flagship", "restore", "the first gray flagship (Train400, the chapter's four degradations);"
                 " the zoo's `gray` until 2026-12-03", overrides={"colour_space": "gray"}),
        ZooEntry("inpaint", "flagship", "inpaint", "inpainting, fine-tuned from the colour flagship with the mask as"
                 " an input channel", overrides={"extra_input_channels": 1}),
        ZooEntry("deblur", "flagship", "deblur", "blind deblurring (Gaussian blur sigma < 3 plus light noise),"
                 " fine-tuned from colour-v1"),
        ZooEntry("photo", "flagship", "photo", "noisy photos saved as JPEG (4:2:0, as phones do) or PNG: Gaussian or"
                 " Poisson-Gaussian sensor noise, fine-tuned from colour-v1"),
        ZooEntry("colour-v2", "flagship-v2", "restore", "an early, short training of the v2 design (space-to-depth stem,"
                 " noise-level input: the strength control); faster than colour-v1, well behind it in quality"),
    )
}


def list_zoo(available_only: bool = False) -> list[ZooEntry]:
    """The zoo's entries, in order (``available_only``: those this machine can load; see :meth:`ZooEntry.locate`)."""
    return [entry for entry in ZOO.values() if entry.available or not available_only]


def get_zoo_entry(name: str) -> ZooEntry | None:
    """The zoo entry called ``name``, or None."""
    return ZOO.get(name)


def zoo_directory() -> Path | None:
    """The local zoo folder: ``$HFDAE_ZOO_DIR``, else ``zoo/`` of a source checkout, else None."""
    configured = os.environ.get(ZOO_DIRECTORY_VARIABLE)
    if configured:
        return Path(configured)
    return _CHECKOUT_ZOO if _CHECKOUT_ZOO.is_dir() else None


def zoo_table() -> str:
    """A Markdown table of the zoo: name, preset, task, where it loads from here, description."""
    lines = ["| name | preset | task | loads from (here) | what |", "|---|---|---|---|---|"]
    for entry in ZOO.values():
        where = entry.locate() or "not available (see hfdae.load_model's message)"
        if entry.weights == EMBEDDED and entry.local_folder() == EMBEDDED_MODEL_DIR:
            where = "embedded in the package"
        lines.append(f"| {entry.name} | {entry.preset} | {entry.task} | {where} | {entry.description} |")
    return "\n".join(lines)
