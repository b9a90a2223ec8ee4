"""Zoo names: the embedded default, a local zoo folder, then the Hub id."""

from __future__ import annotations

import pytest

import hfdae
from hfdae import zoo
from hfdae.inference import DEFAULT_MODEL_DIR

from conftest import make_model


def test_every_zoo_entry_has_a_hub_id_and_at_most_one_is_embedded():
    entries = hfdae.list_zoo()
    assert [entry.name for entry in entries] == list(hfdae.ZOO)
    assert all(entry.hub_id == f"{zoo.ZOO_HUB_ORGANISATION}/hfdae-{entry.name}" for entry in entries)
    assert sum(entry.embedded for entry in entries) <= 1


def test_names_resolve_to_embedded_then_local_folder_then_hub(tmp_path, monkeypatch):
    monkeypatch.setenv(zoo.ZOO_DIRECTORY_VARIABLE, str(tmp_path))
    monkeypatch.setitem(zoo.ZOO, "embedded-one", zoo.ZooEntry("embedded-one", "a test entry", embedded=True))
    other = next(entry.name for entry in hfdae.list_zoo() if not entry.embedded)
    embedded_dir = tmp_path / "embedded"
    make_model("small").save_pretrained(embedded_dir)
    assert zoo.resolve_zoo_name("embedded-one", embedded_dir) == str(embedded_dir)
    assert zoo.resolve_zoo_name("embedded-one", tmp_path / "no-embedded-model") == hfdae.ZOO["embedded-one"].hub_id
    assert zoo.resolve_zoo_name(other, DEFAULT_MODEL_DIR) == hfdae.ZOO[other].hub_id
    model = make_model("small")
    model.config.images_seen = 7
    model.save_pretrained(tmp_path / other)
    assert zoo.resolve_zoo_name(other, DEFAULT_MODEL_DIR) == str(tmp_path / other)
    assert zoo.resolve_zoo_name("not-a-zoo-name", DEFAULT_MODEL_DIR) is None
    loaded = hfdae.load_model(other)
    assert loaded.config.images_seen == 7


def test_missing_zoo_model_offline_fails_with_the_hub_id(tmp_path, monkeypatch):
    monkeypatch.setenv(zoo.ZOO_DIRECTORY_VARIABLE, str(tmp_path))
    other = next(entry.name for entry in hfdae.list_zoo() if not entry.embedded)
    with pytest.raises(OSError, match=hfdae.ZOO[other].hub_id):
        hfdae.load_model(other)
