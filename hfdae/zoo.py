"""The model zoo: trained checkpoints by short name.

A zoo name (``"colour"``, ``"skip"`` ...) resolves, in order, to

1. the embedded default inside the package, for the entry marked ``embedded`` (no download);
2. the folder ``NAME`` in the local zoo directory: ``$HFDAE_ZOO_DIR``, or ``zoo/`` of a source checkout
   (each folder is Hub-ready: config.json, model.safetensors, README.md, eval.json);
3. the Hugging Face Hub repo ``hfdae/hfdae-NAME`` (see :data:`ZOO_HUB_ORGANISATION`).

>>> import hfdae
>>> [entry.name for entry in hfdae.list_zoo()]
>>> model = hfdae.load_model("colour")
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ZOO_HUB_ORGANISATION", "ZooEntry", "ZOO", "list_zoo", "zoo_directory", "resolve_zoo_name"]

ZOO_HUB_ORGANISATION = "hfdae"
ZOO_DIRECTORY_VARIABLE = "HFDAE_ZOO_DIR"
_CHECKOUT_ZOO = Path(__file__).resolve().parent.parent / "zoo"


@dataclass(frozen=True)
class ZooEntry:
    """One zoo model.

    Args:
        name: the short name ``hfdae.load_model`` accepts.
        description: what it was trained for.
        embedded: this checkpoint ships inside the package as the default model.
    """

    name: str
    description: str
    embedded: bool = False

    @property
    def hub_id(self) -> str:
        """The Hub repo id the zoo folder is published under."""
        return f"{ZOO_HUB_ORGANISATION}/hfdae-{self.name}"


ZOO: dict[str, ZooEntry] = {
    entry.name: entry
    for entry in (
        ZooEntry("colour", "colour flagship: wide skip U-Net, blind Gaussian noise up to sigma 50, salt and pepper, "
                           "blur, knockout", embedded=True),
        ZooEntry("colour-v1", "the first colour flagship (2.10 M parameters, full-resolution skip U-Net, blind); "
                              "kept to rerun comparisons and as the parent of the task models"),
        ZooEntry("small", "Figure 18.4's small design (shallow, skips), the chapter's four degradations"),
        ZooEntry("noskip", "Figure 18.4's deep design without skips, the chapter's four degradations"),
        ZooEntry("skip", "Figure 18.4's deep design with skips, the chapter's four degradations"),
        ZooEntry("gray", "gray flagship, trained on Train400"),
        ZooEntry("inpaint", "inpainting, fine-tuned from the colour flagship with the mask as an input channel"),
    )
}


def list_zoo() -> list[ZooEntry]:
    """The zoo's entries, in order."""
    return list(ZOO.values())


def zoo_directory() -> Path | None:
    """The local zoo folder: ``$HFDAE_ZOO_DIR``, else ``zoo/`` of a source checkout, else None."""
    configured = os.environ.get(ZOO_DIRECTORY_VARIABLE)
    if configured:
        return Path(configured)
    return _CHECKOUT_ZOO if _CHECKOUT_ZOO.is_dir() else None


def resolve_zoo_name(name: str, embedded_directory: Path) -> str | None:
    """Where the zoo model ``name`` loads from (a folder path or a Hub id); None if ``name`` is not a zoo name."""
    entry = ZOO.get(name)
    if entry is None:
        return None
    if entry.embedded and (embedded_directory / "model.safetensors").is_file():
        return str(embedded_directory)
    directory = zoo_directory()
    if directory is not None and (directory / name / "config.json").is_file():
        return str(directory / name)
    return entry.hub_id
