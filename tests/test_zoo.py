"""The zoo: each entry names its preset and where its weights are; unavailable entries fail at once, saying how."""

from __future__ import annotations

import time

import pytest
from huggingface_hub import ModelCard

import hfdae
from hfdae import zoo
from hfdae.configuration_hfdae import DenoisingAutoencoderConfig
from hfdae.protocols import get_protocol, list_tasks
from hfdae.runs import resolve_model_source

from conftest import make_model

ARCHITECTURE_FIELDS = ("widths", "blocks_per_level", "skip_connections", "residual_connections", "norm", "upsample",
                       "predict_residual", "colour_space", "extra_input_channels", "space_to_depth_factor",
                       "noise_level_input")


def test_every_zoo_entry_names_a_preset_a_task_and_where_its_weights_are():
    entries = hfdae.list_zoo()
    assert [entry.name for entry in entries] == list(hfdae.ZOO)
    assert sum(entry.weights == zoo.EMBEDDED for entry in entries) == 1
    for entry in entries:
        assert entry.preset in hfdae.list_presets()
        assert entry.task in list_tasks()
        assert entry.weights in (zoo.EMBEDDED, zoo.LOCAL) or entry.hub_id.count("/") == 1


@pytest.mark.parametrize("name", list(hfdae.ZOO))
def test_the_weights_of_an_entry_are_its_preset_s_architecture(name):
    entry = hfdae.ZOO[name]
    folder = entry.local_folder()
    if folder is None:
        pytest.skip(f"{name} is not on this machine")
    saved = DenoisingAutoencoderConfig.from_pretrained(folder)
    expected = DenoisingAutoencoderConfig.from_preset(entry.preset, **entry.overrides)
    assert {key: getattr(saved, key) for key in ARCHITECTURE_FIELDS} == \
        {key: getattr(expected, key) for key in ARCHITECTURE_FIELDS}
    assert saved.task == entry.task


@pytest.mark.parametrize("name", list(hfdae.ZOO))
def test_the_card_of_an_entry_names_each_result_s_task_by_its_protocol(name):
    """Each model-index row's task is its protocol's (the seed protocol is restoration, awgn denoising, ...)."""
    directory = zoo.zoo_directory()  # the checkout's zoo/: every entry's card is committed there
    assert directory is not None and (directory / name / "README.md").is_file(), f"zoo/{name}/README.md is missing"
    results = ModelCard.load(directory / name / "README.md").data.eval_results
    assert results
    for result in results:
        protocol = get_protocol(result.dataset_args["protocol"])
        assert result.task_name == protocol.task_name, (result.dataset_name, result.task_name)


def test_a_local_zoo_folder_makes_an_entry_available(tmp_path, monkeypatch):
    monkeypatch.setenv(zoo.ZOO_DIRECTORY_VARIABLE, str(tmp_path))
    other = next(entry for entry in hfdae.list_zoo() if entry.weights == zoo.LOCAL)
    assert not other.available and other.locate() is None
    assert other.name not in [entry.name for entry in hfdae.list_zoo(available_only=True)]
    model = make_model("small")
    model.config.images_seen = 7
    model.save_pretrained(tmp_path / other.name)
    assert other.available and other.locate() == str(tmp_path / other.name)
    assert hfdae.load_model(other.name).config.images_seen == 7
    # the embedded entry is available everywhere, whatever the zoo folder holds
    embedded = next(entry for entry in hfdae.list_zoo() if entry.weights == zoo.EMBEDDED)
    assert embedded.locate() == str(zoo.EMBEDDED_MODEL_DIR) and embedded.available


def test_an_unavailable_zoo_model_fails_at_once_saying_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv(zoo.ZOO_DIRECTORY_VARIABLE, str(tmp_path))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # not even a reachable-looking Hub may be tried
    other = next(entry for entry in hfdae.list_zoo() if entry.weights == zoo.LOCAL)
    started = time.perf_counter()
    with pytest.raises(zoo.ZooModelUnavailableError) as caught:
        hfdae.load_model(other.name)
    assert time.perf_counter() - started < 10  # no network attempt (about 30 s); room for a loaded machine
    message = str(caught.value)
    assert f"zoo model {other.name!r} is not available" in message and zoo.ZOO_DIRECTORY_VARIABLE in message
    assert f"zoo/{other.name}/" in message and "hfdae.list_zoo()" in message


def test_a_published_entry_not_on_this_machine_loads_from_the_hub(tmp_path, monkeypatch):
    monkeypatch.setenv(zoo.ZOO_DIRECTORY_VARIABLE, str(tmp_path))
    monkeypatch.setitem(zoo.ZOO, "published", zoo.ZooEntry("published", "small", "restore", "a test", weights="org/dae"))
    source = resolve_model_source("published")
    assert (source.kind, source.location, source.folder) == ("zoo", "org/dae", None)
    with pytest.raises(OSError, match="zoo model 'published', published as Hub repo 'org/dae'.*HF_HUB_OFFLINE"):
        source.load()  # offline in tests: from the cache only, at once


@pytest.mark.parametrize(("source", "kind"), [("default", "default"), ("colour", "zoo"), ("org/model", "hub")])
def test_model_sources_resolve_in_order(source, kind):
    assert resolve_model_source(source).kind == kind


def test_a_run_folder_resolves_to_its_best_model(tmp_path):
    make_model("small").save_pretrained(tmp_path / "run" / "best")
    make_model("small").save_pretrained(tmp_path / "run" / "final")
    (tmp_path / "run" / "log.jsonl").write_text("")
    run = resolve_model_source(tmp_path / "run")
    assert (run.kind, run.folder, run.run_dir) == ("run", tmp_path / "run" / "best", tmp_path / "run")
    assert resolve_model_source(tmp_path / "run", "final").folder == tmp_path / "run" / "final"
    inside = resolve_model_source(tmp_path / "run" / "final")
    assert (inside.kind, inside.run_dir) == ("folder", tmp_path / "run")
    with pytest.raises(FileNotFoundError, match="no such folder, and not a Hub repo id"):
        resolve_model_source(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="neither a model folder"):
        resolve_model_source(tmp_path)
