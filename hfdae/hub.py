"""Sharing models on the Hugging Face Hub: Hub-ready folders and one-commit uploads.

>>> from hfdae.hub import build_model_folder, push_model, push_to_hub
>>> build_model_folder("runs/zoo-colour", "upload/", evaluations=["eval/seed/results.json"], repo_id="me/dae")
>>> push_to_hub("runs/zoo-colour", "me/dae", evaluations=["eval/seed/results.json"])
>>> push_model(model, "me/dae")          # an in-memory model (model.push_to_hub is transformers' own)

A Hub folder (what :func:`build_model_folder` writes and :func:`upload_model_folder` commits) holds::

    config.json                 the configuration, with an ``auto_map`` for ``trust_remote_code``
    model.safetensors           the weights (hfdae never uploads a pickle)
    README.md                   the model card (:mod:`hfdae.cards`): metadata, ``model-index`` from the evaluations
    learning_curve.png          the run's learning curve, when there is one
    training_run.yaml  validation_log.jsonl
                                the run's training configuration and validation records, when there is a run
                                (so a card rebuilt from the folder alone keeps its training section)
    eval-<protocol>-<data>.json the ``hfdae evaluate`` results the card's tables and model-index come from
    configuration_hfdae.py  modeling_hfdae.py  blocks.py
                                the model's self-contained code, so that
                                ``AutoModel.from_pretrained(repo_id, trust_remote_code=True)`` works without hfdae
    preprocessor_config.json    the image processor's settings (hfdae.DenoisingAutoencoderImageProcessor)
    pipeline_hfdae.py  image_processing_hfdae.py  and the modules they import (hfdae.remote_code)
                                the ``image-restoration`` pipeline, named in config.json's ``custom_pipelines``,
                                so ``pipeline("image-restoration", model=repo_id, trust_remote_code=True)`` works
                                without hfdae

Everything is uploaded in ONE commit, after the folder has been checked locally (the weights load
strictly into the configuration, the card parses), so a failed push leaves no partial upload; a repo
created for a push that then fails is deleted again.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from .cards import (
    FOLDER_TRAINING_CONFIG,
    FOLDER_VALIDATION_LOG,
    LICENSE,
    _dataset_name,
    _default_model_name,
    model_folder,
    render_model_card,
    training_files,
)
from .evaluation import EvaluationReport
from .runs import LEARNING_CURVE, validation_records

__all__ = [
    "HubError",
    "REMOTE_CODE_FILES",
    "AUTO_MAP",
    "build_model_folder",
    "check_model_folder",
    "upload_model_folder",
    "push_to_hub",
    "push_model",
]

logger = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
# configuration_hfdae.py, blocks.py and modeling_hfdae.py import only torch, transformers, safetensors and
# each other (tests/test_modeling.py checks it), so they can travel with the weights.
REMOTE_CODE_FILES = ("configuration_hfdae.py", "modeling_hfdae.py", "blocks.py")
AUTO_MAP = {
    "AutoConfig": "configuration_hfdae.DenoisingAutoencoderConfig",
    "AutoModel": "modeling_hfdae.DenoisingAutoencoder",
}
# files a model folder may never carry: pickles run code when loaded
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
class HubError(OSError):
    """A push or Hub request that failed for a reason outside the code: offline, no or a rejected token,
    no permission, an unknown repository or revision, an unreachable server. The message names the repo
    id and the cause."""


# --- the Hub folder ---------------------------------------------------------------------------------------


def _evaluation_file_name(report: EvaluationReport, taken: set[str]) -> str:
    stem = f"eval-{report.protocol}-{_dataset_name(report.data)}".lower().replace("/", "-")
    name, counter = f"{stem}.json", 2
    while name in taken:
        name, counter = f"{stem}-{counter}.json", counter + 1
    return name


def build_model_folder(
    source: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    evaluations: Sequence[str | os.PathLike] = (),
    run_dir: str | os.PathLike | None = None,
    checkpoint: str = "best",
    repo_id: str | None = None,
    model_name: str | None = None,
    model_method: str | None = None,
    license: str = LICENSE,
    tags: Iterable[str] = (),
    overwrite: bool = False,
    notes: str | os.PathLike | None = None,
    include_code: bool = True,
) -> Path:
    """Assemble the folder that :func:`upload_model_folder` uploads (see the module docstring for its files).

    Args:
        source: a model source with a folder here: a model folder, a training run folder (its ``best/`` or
            ``final/`` model), ``"default"`` or a zoo name.
        out_dir: the folder to write; it must not exist, or be empty, unless ``overwrite``.
        evaluations: ``results.json`` files of ``hfdae evaluate`` for this model (copied as
            ``eval-<protocol>-<data>.json``; the card's tables and ``model-index`` come from them).
        run_dir: the training run folder, when ``source`` is a model folder outside it.
        checkpoint: ``"best"`` or ``"final"``, for a run folder.
        repo_id: the Hub repo id the folder is for (the card's loading examples use it).
        model_name, model_method, license, tags: see :func:`hfdae.cards.render_model_card`.
        overwrite: replace the contents of an existing ``out_dir``.
        notes: see :func:`hfdae.cards.render_model_card`.
        include_code: add the model's code and an ``auto_map`` for ``trust_remote_code`` loading (always
            done for uploads; a folder kept in a repository, like ``zoo/NAME``, can leave it out).

    Returns:
        ``out_dir``. The weights are checked to load strictly into the configuration first.
    """
    model_dir, found_run = model_folder(source, checkpoint)
    run_dir = Path(run_dir) if run_dir is not None else found_run
    out_dir = Path(out_dir)
    weights = model_dir / "model.safetensors"
    if not weights.is_file():
        pickles = sorted(path.name for path in model_dir.iterdir() if path.suffix in PICKLE_SUFFIXES)
        hint = (f" (only {', '.join(pickles)}: hfdae never uploads pickles; load the model and save_pretrained it"
                " to get safetensors)") if pickles else ""
        raise FileNotFoundError(f"{model_dir}: no model.safetensors{hint}")
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())) and not overwrite:
        raise FileExistsError(f"{out_dir} already exists and is not empty; choose an empty folder or overwrite=True")
    # built in a staging folder and renamed at the end: a failure leaves no half-built folder
    staging = out_dir.with_name(f".{out_dir.name}.building")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        _fill_model_folder(staging, model_dir, run_dir, evaluations, include_code, repo_id=repo_id,
                           model_name=model_name or _default_model_name(model_dir, run_dir, repo_id),
                           model_method=model_method, license=license, tags=tags, notes=notes)
        check_model_folder(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if out_dir.is_dir():
        shutil.rmtree(out_dir)
    elif out_dir.exists():
        out_dir.unlink()
    staging.rename(out_dir)
    return out_dir


def _fill_model_folder(folder: Path, model_dir: Path, run_dir: Path | None, evaluations, include_code: bool,
                       **card_options) -> None:
    config = json.loads((model_dir / "config.json").read_text())
    config.pop("auto_map", None)
    if include_code:
        config["auto_map"] = dict(AUTO_MAP)
        for name in REMOTE_CODE_FILES:
            shutil.copyfile(PACKAGE_DIR / name, folder / name)
    (folder / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    from .remote_code import write_pipeline_files

    write_pipeline_files(folder, include_code=include_code)  # preprocessor_config.json (+ the pipeline's code)
    shutil.copyfile(model_dir / "model.safetensors", folder / "model.safetensors")
    # what the card takes from the training run (or, built from another Hub folder, that folder's copies of it),
    # kept so that a card rebuilt from this folder alone loses nothing
    training = training_files(model_dir, run_dir)
    learning_curve = None
    if training.learning_curve is not None:
        learning_curve = folder / LEARNING_CURVE
        shutil.copyfile(training.learning_curve, learning_curve)
    if training.config is not None:
        shutil.copyfile(training.config, folder / FOLDER_TRAINING_CONFIG)
    if validation := validation_records(training.records):
        (folder / FOLDER_VALIDATION_LOG).write_text("".join(json.dumps(record) + "\n" for record in validation))
    copies: list[Path] = []
    for path in evaluations:
        path = Path(path)
        path = path / "results.json" if path.is_dir() else path
        name = _evaluation_file_name(EvaluationReport.load(path), {copy.name for copy in copies})
        shutil.copyfile(path, folder / name)
        copies.append(folder / name)
    card = render_model_card(folder, run_dir=run_dir, evaluations=copies, learning_curve=learning_curve,
                             card_dir=folder, **card_options)
    card.save(folder / "README.md")


def check_model_folder(folder: str | os.PathLike) -> list[Path]:
    """Check a Hub folder before any upload and return its files (sorted).

    Raises ``FileNotFoundError``/``ValueError`` naming the problem: a missing ``config.json``,
    ``model.safetensors`` or ``README.md``; a pickle or a subfolder; weights that do not load strictly into
    the configuration (:class:`hfdae.CheckpointError`); a card whose metadata does not parse; an
    ``auto_map`` that points at code the folder does not hold.
    """
    from huggingface_hub import ModelCard

    from .modeling_hfdae import DenoisingAutoencoder

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    for name in ("config.json", "model.safetensors", "README.md"):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder}: no {name} (build the folder with hfdae.hub.build_model_folder)")
    entries = sorted(folder.iterdir())
    unexpected = [path.name for path in entries if path.is_dir() or path.suffix in PICKLE_SUFFIXES]
    if unexpected:
        raise ValueError(f"{folder}: refusing to upload {', '.join(unexpected)} (no pickles or subfolders)")
    config = json.loads((folder / "config.json").read_text())
    for reference in (config.get("auto_map") or {}).values():
        module = reference.split(".")[0] + ".py"
        if not (folder / module).is_file():
            raise FileNotFoundError(f"{folder}: config.json's auto_map needs {module}, which is missing")
    DenoisingAutoencoder.from_pretrained(folder)  # CheckpointError on corrupt or mismatched weights
    try:
        ModelCard.load(folder / "README.md")
    except Exception as error:  # yaml and metadata errors come in several types
        raise ValueError(f"{folder / 'README.md'}: the model card does not parse ({error})") from error
    return [path for path in entries if path.is_file()]


# --- uploading ----------------------------------------------------------------------------------------------


def _transport_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for module in ("httpx2", "httpx", "requests"):
        try:
            imported = __import__(module)
        except ImportError:
            continue
        for name in ("TransportError", "RequestException"):
            if isinstance(getattr(imported, name, None), type):
                errors.append(getattr(imported, name))
    return tuple(errors)


def _describe_hub_error(error: BaseException, repo_id: str, revision: str | None, endpoint: str) -> str:
    from huggingface_hub.errors import (
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if isinstance(error, OfflineModeIsEnabled):
        return "HF_HUB_OFFLINE is set, so no request may reach the Hub; unset it to push"
    if isinstance(error, RevisionNotFoundError):
        return f"the revision {revision!r} does not exist in {repo_id} (create the branch first, or leave out revision)"
    if isinstance(error, HfHubHTTPError):
        status = error.response.status_code if error.response is not None else None
        server = (error.server_message or "").strip().splitlines()[0] if error.server_message else ""
        detail = f" (the Hub said: {server})" if server else ""
        if isinstance(error, RepositoryNotFoundError) or status == 404:
            # the Hub answers 401 or 404 alike for a missing repo and for a private one the token cannot see
            return (f"the repository {repo_id} does not exist, or this token cannot see it ({status}); check the repo"
                    f" id (a pull request needs an existing repo){detail}")
        if status == 401:
            return ("the Hub rejected the token (401 Unauthorized): set HF_TOKEN to a valid token with write access,"
                    f" or run `hf auth login`{detail}")
        if status == 403:
            return f"this token may not write to {repo_id} (403 Forbidden): use a token with write access{detail}"
        return f"the Hub answered {status}{detail}"
    if isinstance(error, _transport_errors()):
        return f"could not reach the Hub at {endpoint} ({type(error).__name__}: {error})"
    return f"{type(error).__name__}: {error}"


def _hub_error_types() -> tuple[type[BaseException], ...]:
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    return (HfHubHTTPError, OfflineModeIsEnabled) + _transport_errors()


def _hub_cause(error: BaseException) -> BaseException | None:
    """The Hub or network error behind ``error`` (huggingface_hub wraps some, e.g. failed LFS uploads)."""
    types, seen = _hub_error_types(), set()
    while error is not None and id(error) not in seen:
        if isinstance(error, types):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def _status(error: BaseException) -> int | None:
    response = getattr(error, "response", None)
    return getattr(response, "status_code", None)


def _create_repo_if_missing(api, repo_id: str, private: bool | None) -> bool:
    """Create the model repo; False when it already exists. Raises the Hub's error otherwise."""
    from huggingface_hub.errors import HfHubHTTPError

    try:
        api.create_repo(repo_id, private=private, exist_ok=False)
        return True
    except HfHubHTTPError as error:
        if _status(error) == 409:
            return False
        if _status(error) in (401, 402, 403):  # may not create in the namespace, but may write to the repo
            try:
                api.repo_info(repo_id)
                return False
            except HfHubHTTPError:
                raise error from None
        raise


def upload_model_folder(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    private: bool | None = None,
    revision: str | None = None,
    create_pr: bool = False,
    token: str | None = None,
    commit_message: str | None = None,
    commit_description: str | None = None,
    endpoint: str | None = None,
):
    """Upload a Hub folder (made by :func:`build_model_folder`) as ONE commit.

    The folder is checked first (:func:`check_model_folder`); then the repo is created if it does not exist
    (not for a pull request, which needs an existing repo), and every file goes into one commit. Should
    the commit fail, a repo or branch created for it is deleted again.

    Args:
        folder: the Hub folder.
        repo_id: ``"namespace/name"``.
        private: make a newly created repo private (an existing repo keeps its visibility).
        revision: the branch to commit to (created from ``main`` if missing), or the branch a pull request
            targets; default ``main``.
        create_pr: open a pull request with the commit instead of committing to the branch.
        token: a Hub token; default ``HF_TOKEN`` or the token saved by ``hf auth login``.
        commit_message, commit_description: of the commit (a default message names the model).
        endpoint: the Hub's URL; default ``HF_ENDPOINT`` or https://huggingface.co.

    Returns:
        huggingface_hub's ``CommitInfo`` (``commit_url``, ``oid``, ``pr_url``).

    Raises:
        HubError: offline, no token, a rejected token, no permission, an unknown repo or revision, an
            unreachable server; the message names the repo id and the cause.
    """
    from huggingface_hub import CommitOperationAdd, HfApi, constants, get_token
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    files = check_model_folder(folder)
    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise ValueError(f"repo id {repo_id!r} is not valid: {error}") from error
    if repo_id.count("/") != 1:
        raise ValueError(f"repo id {repo_id!r}: give it as NAMESPACE/NAME (your user name or an organisation)")
    endpoint = (endpoint or constants.ENDPOINT).rstrip("/")
    prefix = f"could not push to {repo_id} on {endpoint}"
    if constants.is_offline_mode():
        raise HubError(f"{prefix}: HF_HUB_OFFLINE is set, so no request may reach the Hub; unset it to push")
    token = token or get_token()
    if not token:
        raise HubError(f"{prefix}: no Hugging Face token; set HF_TOKEN or run `hf auth login`")

    api = HfApi(endpoint=endpoint, token=token)
    created_repo = created_branch = False
    try:
        if not create_pr:
            created_repo = _create_repo_if_missing(api, repo_id, private)
            if revision not in (None, constants.DEFAULT_REVISION):
                created_branch = _create_branch_if_missing(api, repo_id, revision)
        operations = [CommitOperationAdd(path_in_repo=path.name, path_or_fileobj=str(path)) for path in files]
        return api.create_commit(
            repo_id,
            operations,
            commit_message=commit_message or _default_commit_message(folder),
            commit_description=commit_description,
            revision=revision,
            create_pr=create_pr,
        )
    except Exception as error:
        note = _roll_back(api, repo_id, revision, created_repo, created_branch)
        cause = _hub_cause(error)
        if cause is None:  # not the Hub's doing: let it through, having cleaned up
            if note:
                logger.warning("push to %s failed%s", repo_id, note)
            raise
        raise HubError(f"{prefix}: {_describe_hub_error(cause, repo_id, revision, endpoint)}{note}") from error


def _create_branch_if_missing(api, repo_id: str, branch: str) -> bool:
    from huggingface_hub.errors import HfHubHTTPError

    try:
        api.create_branch(repo_id, branch=branch, exist_ok=False)
        return True
    except HfHubHTTPError as error:
        if _status(error) == 409:
            return False
        raise


def _roll_back(api, repo_id: str, revision: str | None, created_repo: bool, created_branch: bool) -> str:
    """Delete what this push created before it failed; returns a note for the error message."""
    if not (created_repo or created_branch):
        return ""
    try:
        if created_repo:
            api.delete_repo(repo_id, missing_ok=True)
            return f"; the repository {repo_id} created for this push was deleted again"
        api.delete_branch(repo_id, branch=revision)
        return f"; the branch {revision!r} created for this push was deleted again"
    except Exception as error:  # the original failure matters more; say what is left behind
        left = f"repository {repo_id}" if created_repo else f"branch {revision!r}"
        return f"; the empty {left} created for this push could not be deleted ({type(error).__name__}: {error})"


def _default_commit_message(folder: str | os.PathLike) -> str:
    config = json.loads((Path(folder) / "config.json").read_text())
    preset = config.get("preset") or "custom"
    return f"Upload hfdae model ({preset} design, {config.get('images_seen', 0):,} training images seen)"


def push_to_hub(
    source: str | os.PathLike,
    repo_id: str,
    *,
    private: bool | None = None,
    revision: str | None = None,
    create_pr: bool = False,
    token: str | None = None,
    commit_message: str | None = None,
    commit_description: str | None = None,
    endpoint: str | None = None,
    **folder_options,
):
    """Build the Hub folder of a model or run folder and upload it in one commit; returns the ``CommitInfo``.

    The named arguments are :func:`upload_model_folder`'s; ``folder_options`` go to
    :func:`build_model_folder` (``evaluations``, ``run_dir``, ``checkpoint``, ``model_method``, ``license``,
    ``tags``, ``notes``).
    """
    with tempfile.TemporaryDirectory(prefix="hfdae-push-") as staging:
        folder = build_model_folder(source, Path(staging) / "upload", repo_id=repo_id, **folder_options)
        return upload_model_folder(folder, repo_id, private=private, revision=revision, create_pr=create_pr,
                                   token=token, commit_message=commit_message,
                                   commit_description=commit_description, endpoint=endpoint)


def push_model(model, repo_id: str, **kwargs):
    """Upload an in-memory :class:`~hfdae.DenoisingAutoencoder` with hfdae's card, code and checks.

    (``model.push_to_hub`` is transformers' own: it uploads the weights and config without a card.)

    The model is saved with ``save_pretrained`` (safetensors) and pushed with :func:`push_to_hub`; keyword
    arguments are those of :func:`push_to_hub` (``evaluations``, ``run_dir``, ``private``, ``revision``,
    ``create_pr``, ``token``, ``commit_message`` ...). transformers' ``max_shard_size`` is not supported
    (hfdae models fit one file) and ``tags`` are added to the card.
    """
    if kwargs.pop("max_shard_size", None) not in (None, "50GB"):
        raise ValueError("hfdae models are uploaded as one model.safetensors; max_shard_size is not supported")
    with tempfile.TemporaryDirectory(prefix="hfdae-model-") as staging:
        model.save_pretrained(staging)
        return push_to_hub(staging, repo_id, **kwargs)
