"""Shared test fixtures. Tests never touch the network or ../shared: they make their own images."""

from __future__ import annotations

import os

import pytest
import torch

# No test may reach the Hub; without this a Hub call retries for ~23 s before failing.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("MPLBACKEND", "Agg")

import hfdae  # noqa: E402  (after the environment is set)

PRESETS = hfdae.list_presets()
COLOUR_SPACES = ("rgb", "gray", "lab")


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path_factory, monkeypatch):
    cache = tmp_path_factory.getbasetemp() / "hf_home"
    monkeypatch.setenv("HF_HOME", str(cache))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(cache / "datasets"))
    torch.manual_seed(0)


def make_model(preset: str = "small", colour_space: str = "rgb", **overrides) -> hfdae.DenoisingAutoencoder:
    """A freshly initialised model of a preset (seeded, so tests are repeatable)."""
    torch.manual_seed(0)
    config = hfdae.DenoisingAutoencoderConfig.from_preset(preset, colour_space=colour_space, **overrides)
    return hfdae.DenoisingAutoencoder(config)


@pytest.fixture
def cpu_bf16(monkeypatch):
    """Force what hfdae's ``"auto"`` precision sees: ``cpu_bf16(True)`` a CPU with native bf16, ``False`` one
    without (through HFDAE_CPU_BF16, which the whole suite can also be run under: see docs/faults.md)."""
    from hfdae.recipe import CPU_BF16_ENVIRONMENT_VARIABLE

    def force(native: bool) -> None:
        monkeypatch.setenv(CPU_BF16_ENVIRONMENT_VARIABLE, "1" if native else "0")

    return force
