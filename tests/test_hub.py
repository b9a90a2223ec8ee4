"""hfdae.hub and loading from the Hub, with no internet.

- Upload: a small in-test server (:class:`FakeHub`) speaks the Hub API that huggingface_hub's
  ``create_repo`` / ``create_commit`` use (create repo, validate-yaml, preupload, the LFS batch API with
  basic transfers, the NDJSON commit, branches, delete); the tests check the exact files of the single
  commit, their bytes, and that the uploaded weights load back identically.
- Download: a real Hub mirror, ``olah`` in offline mode, serves local git repos on 127.0.0.1; child
  processes load by repo id over HTTP, by ``trust_remote_code`` with hfdae made unimportable, and from
  the Hugging Face cache with ``HF_HUB_OFFLINE=1``.
- The folders' cards: tests/test_cards.py (whose run and evaluation fixtures these tests share).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

import pytest
import torch
import yaml
from huggingface_hub import ModelCard, constants

import hfdae
from hfdae import hub
from hfdae.cli import main as cli_main
from hfdae.remote_code import PIPELINE_CODE_FILES

from conftest import make_model
from test_cards import _assert_model_index_matches, evaluations, run_dir  # noqa: F401  (fixtures)

# huggingface_hub 2.4's LFS upload passes a file as `data=`, which httpx2 deprecates: not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>' to upload raw bytes:DeprecationWarning")

REPO_ROOT = Path(__file__).resolve().parent.parent
TOKEN = "hf_test_write_token"
# the model's code, and the image-restoration pipeline's with the modules it imports (hfdae.remote_code)
REMOTE_CODE = {"configuration_hfdae.py", "modeling_hfdae.py", "blocks.py"} | set(PIPELINE_CODE_FILES)


# --- the Hub folder ------------------------------------------------------------------------------------------


def test_build_model_folder_from_a_run(tmp_path, run_dir, evaluations):
    folder = hub.build_model_folder(run_dir, tmp_path / "upload", evaluations=evaluations, repo_id="me/tiny-dae")
    names = {path.name for path in folder.iterdir()}
    assert names == {"config.json", "model.safetensors", "README.md", "learning_curve.png", "preprocessor_config.json",
                     "eval-seed-tinyset.json", "eval-awgn-tinyset.json", "training_run.yaml",
                     "validation_log.jsonl"} | REMOTE_CODE
    config = json.loads((folder / "config.json").read_text())
    assert config["auto_map"] == hub.AUTO_MAP and config["images_seen"] == 4_800
    assert (folder / "model.safetensors").read_bytes() == (run_dir / "best" / "model.safetensors").read_bytes()
    for name in REMOTE_CODE:
        assert (folder / name).read_bytes() == (Path(hfdae.__file__).parent / name).read_bytes()
    assert json.loads((folder / "eval-seed-tinyset.json").read_text()) == json.loads(evaluations[0].read_text())
    assert "](eval-seed-tinyset.json)" in (folder / "README.md").read_text()
    with pytest.raises(FileExistsError, match="not empty"):
        hub.build_model_folder(run_dir, folder)
    # a folder kept in a repository (zoo/NAME) can leave the code out; an upload always carries it
    kept = hub.build_model_folder(run_dir, tmp_path / "kept", evaluations=evaluations, include_code=False)
    assert {path.name for path in kept.iterdir()} == names - REMOTE_CODE
    assert not {"auto_map", "custom_pipelines"} & set(json.loads((kept / "config.json").read_text()))
    # a card rebuilt from the folder alone (no run folder: a zoo name, a download) is the card built from the run
    copies = [kept / "eval-seed-tinyset.json", kept / "eval-awgn-tinyset.json"]  # in the order given above
    rebuilt = hfdae.cards.render_model_card(kept, evaluations=copies, card_dir=kept,
                                            model_name="run-tiny")
    assert rebuilt.text == ModelCard.load(kept / "README.md").text
    assert "| 4,800 | 25.00 | 27.50 |" in rebuilt.text  # the validation table
    # and a folder built from that folder alone (`hfdae push zoo/NAME`) keeps them too: the same files, the same card
    again = hub.build_model_folder(kept, tmp_path / "again", evaluations=copies, include_code=False,
                                   model_name="run-tiny")
    assert {path.name for path in again.iterdir()} == names - REMOTE_CODE
    assert (again / "README.md").read_text() == (kept / "README.md").read_text()


def test_build_model_folder_refuses_pickles_and_broken_weights(tmp_path, run_dir):
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    shutil.copy(run_dir / "best" / "config.json", pickled)
    torch.save(make_model("small").state_dict(), pickled / "pytorch_model.bin")
    with pytest.raises(FileNotFoundError, match="never uploads pickles"):
        hub.build_model_folder(pickled, tmp_path / "out")
    weights = run_dir / "final" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(hfdae.CheckpointError, match="corrupt"):
        hub.build_model_folder(run_dir, tmp_path / "out", checkpoint="final")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))  # nothing half-built


# --- the upload side: a server speaking the Hub's commit API ------------------------------------------------


class FakeHub:
    """The Hub endpoints huggingface_hub 2.4 calls to create a repo and commit to it (HF_HUB_DISABLE_XET=1).

    Files ending in .safetensors or .png go through the LFS batch API (basic transfer + verify), the
    rest inline (base64) in the NDJSON commit, as on the Hub. ``fail`` maps an endpoint name
    (``create``, ``commit``) to an HTTP status to answer instead.
    """

    LFS_SUFFIXES = (".safetensors", ".png")

    def __init__(self, namespaces=("me", "org")) -> None:
        self.namespaces = set(namespaces)
        self.repos: dict[str, dict] = {}  # repo id -> {"private", "branches": {name: {path: bytes}}, "prs"}
        self.commits: list[dict] = []
        self.lfs_objects: dict[str, bytes] = {}
        self.requests: list[tuple[str, str]] = []
        self.fail: dict[str, int] = {}
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                fake._dispatch(self, "GET")

            def do_POST(self):
                fake._dispatch(self, "POST")

            def do_PUT(self):
                fake._dispatch(self, "PUT")

            def do_DELETE(self):
                fake._dispatch(self, "DELETE")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- plumbing

    @staticmethod
    def _body(handler) -> bytes:
        if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(handler.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    handler.rfile.readline()
                    return b"".join(chunks)
                chunks.append(handler.rfile.read(size))
                handler.rfile.readline()
        return handler.rfile.read(int(handler.headers.get("Content-Length") or 0))

    @staticmethod
    def _send(handler, status: int, payload=None, headers=None) -> None:
        body = json.dumps(payload if payload is not None else {}).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(body)

    def _not_found(self, handler, repo_id: str) -> None:
        self._send(handler, 404, {"error": "Repository not found"},
                   {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"})

    def _dispatch(self, handler, method: str) -> None:
        parsed = urlparse(handler.path)
        path, query = unquote(parsed.path), parse_qs(parsed.query)
        body = self._body(handler)
        with self.lock:
            self.requests.append((method, path))
        if path.startswith("/lfs-storage/") and method == "PUT":  # the "S3" side: no Hub token
            oid = path.rsplit("/", 1)[1]
            if "lfs" in self.fail:
                return self._send(handler, self.fail["lfs"], {"error": "storage refused the upload"})
            if hashlib.sha256(body).hexdigest() != oid:
                return self._send(handler, 400, {"error": "sha256 mismatch"})
            with self.lock:
                self.lfs_objects[oid] = body
            return self._send(handler, 200)
        if handler.headers.get("Authorization") != f"Bearer {TOKEN}":
            message = "Invalid credentials in Authorization header"
            return self._send(handler, 401, {"error": message}, {"X-Error-Message": message})
        with self.lock:
            return self._route(handler, method, path, query, body)

    def _route(self, handler, method, path, query, body):
        data = json.loads(body) if body and path.split("/")[-1] not in ("commit",) and "/commit/" not in path else None
        if path == "/api/repos/create" and method == "POST":
            repo_id = f"{data['organization']}/{data['name']}"
            if "create" in self.fail:
                return self._send(handler, self.fail["create"], {"error": "create failed"})
            if data["organization"] not in self.namespaces:
                return self._send(handler, 403, {"error": "You don't have the rights to create a model here"})
            if repo_id in self.repos:
                return self._send(handler, 409, {"error": "You already created this model repo",
                                                 "url": f"{self.url}/{repo_id}"})
            self.repos[repo_id] = {"private": data.get("visibility") == "private", "branches": {"main": {}}, "prs": []}
            return self._send(handler, 200, {"url": f"{self.url}/{repo_id}", "name": repo_id, "id": repo_id})
        if path == "/api/repos/delete" and method == "DELETE":
            repo_id = f"{data['organization']}/{data['name']}"
            if self.repos.pop(repo_id, None) is None:
                return self._not_found(handler, repo_id)
            return self._send(handler, 200)
        if path == "/api/validate-yaml" and method == "POST":
            content = data["content"]
            try:
                assert content.startswith("---\n")
                yaml.safe_load(content.split("---\n")[1])
            except Exception as error:
                return self._send(handler, 400, {"errors": [{"message": str(error)}], "warnings": []})
            return self._send(handler, 200, {"errors": [], "warnings": []})
        if path.endswith(".git/info/lfs/objects/batch") and method == "POST":
            repo_id = path[1:].split(".git/")[0]
            if repo_id not in self.repos:
                return self._not_found(handler, repo_id)
            objects = [{"oid": item["oid"], "size": item["size"], "authenticated": True, "actions": {
                "upload": {"href": f"{self.url}/lfs-storage/{item['oid']}"},
                "verify": {"href": f"{self.url}/{repo_id}.git/info/lfs/objects/verify"}}}
                for item in data["objects"]]
            return self._send(handler, 200, {"transfer": "basic", "objects": objects})
        if path.endswith(".git/info/lfs/objects/verify") and method == "POST":
            stored = self.lfs_objects.get(data["oid"])
            return self._send(handler, 200 if stored is not None and len(stored) == data["size"] else 404)
        parts = path.strip("/").split("/")
        if len(parts) < 4 or parts[:2] != ["api", "models"]:
            return self._send(handler, 404, {"error": f"no route {method} {path}"})
        repo_id, rest = f"{parts[2]}/{parts[3]}", parts[4:]
        repo = self.repos.get(repo_id)
        if repo is None:
            return self._not_found(handler, repo_id)
        create_pr = query.get("create_pr") == ["1"]
        if method == "GET" and (not rest or rest[0] == "revision"):
            files = repo["branches"]["main"]
            return self._send(handler, 200, {"id": repo_id, "modelId": repo_id, "private": repo["private"],
                                             "sha": "0" * 40, "siblings": [{"rfilename": name} for name in files]})
        if rest and rest[0] == "branch":
            branch = "/".join(rest[1:])
            if method == "POST":
                if branch in repo["branches"]:
                    return self._send(handler, 409, {"error": "Reference already exists"})
                repo["branches"][branch] = dict(repo["branches"]["main"])
                return self._send(handler, 200)
            repo["branches"].pop(branch, None)
            return self._send(handler, 200)
        revision = "/".join(rest[1:])
        if revision not in repo["branches"]:
            return self._send(handler, 404, {"error": f"Invalid rev id: {revision}"},
                              {"X-Error-Code": "RevisionNotFound"})
        if rest[0] == "preupload" and method == "POST":
            files = [{"path": item["path"], "shouldIgnore": False, "oid": None,
                      "uploadMode": "lfs" if item["path"].endswith(self.LFS_SUFFIXES) else "regular"}
                     for item in data["files"]]
            return self._send(handler, 200, {"files": files, "commitOid": "0" * 40})
        if rest[0] == "commit" and method == "POST":
            if "commit" in self.fail:
                return self._send(handler, self.fail["commit"], {"error": "commit failed"})
            lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
            header, files, modes = lines[0], {}, {}
            assert header["key"] == "header"
            for line in lines[1:]:
                value = line["value"]
                if line["key"] == "file":
                    files[value["path"]], modes[value["path"]] = base64.b64decode(value["content"]), "regular"
                elif line["key"] == "lfsFile":
                    if value["oid"] not in self.lfs_objects:
                        return self._send(handler, 400, {"error": f"LFS object {value['oid']} was never uploaded"})
                    files[value["path"]], modes[value["path"]] = self.lfs_objects[value["oid"]], "lfs"
                else:
                    return self._send(handler, 400, {"error": f"unexpected operation {line['key']}"})
            oid = hashlib.sha1(body).hexdigest()
            pr_url = None
            if create_pr:
                repo["prs"].append(files)
                pr_url = f"{self.url}/{repo_id}/discussions/{len(repo['prs'])}"
            else:
                repo["branches"][revision].update(files)
            self.commits.append({"repo_id": repo_id, "revision": revision, "create_pr": create_pr,
                                 "summary": header["value"]["summary"], "files": files, "modes": modes})
            return self._send(handler, 200, {"success": True, "commitOid": oid, "pullRequestUrl": pr_url,
                                             "commitUrl": f"{self.url}/{repo_id}/commit/{oid}", "hookOutput": ""})
        return self._send(handler, 404, {"error": f"no route {method} {path}"})


@pytest.fixture
def fake_hub(monkeypatch, tmp_path):
    server = FakeHub()
    # huggingface_hub reads these at import time; conftest set HF_HUB_OFFLINE=1 before that
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setattr(constants, "ENDPOINT", server.url)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "saved-token"))  # none unless a test writes it
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    yield server
    server.close()


def _load_uploaded(files: dict[str, bytes], folder: Path) -> hfdae.DenoisingAutoencoder:
    folder.mkdir()
    for name in ("config.json", "model.safetensors"):
        (folder / name).write_bytes(files[name])
    return hfdae.load_model(folder)


def _assert_same_weights(model: torch.nn.Module, reference: torch.nn.Module) -> None:
    state, expected = model.state_dict(), reference.state_dict()
    assert state.keys() == expected.keys()
    assert all(torch.equal(state[key], expected[key]) for key in expected)


def test_push_uploads_exactly_the_folder_in_one_commit(tmp_path, fake_hub, run_dir, evaluations):
    info = hub.push_to_hub(run_dir, "me/tiny-dae", evaluations=evaluations, private=True)
    assert len(fake_hub.commits) == 1
    commit = fake_hub.commits[0]
    expected = hub.build_model_folder(run_dir, tmp_path / "expected", evaluations=evaluations, repo_id="me/tiny-dae")
    assert set(commit["files"]) == {path.name for path in expected.iterdir()}
    for name, content in commit["files"].items():
        assert content == (expected / name).read_bytes(), name
    assert commit["modes"]["model.safetensors"] == "lfs" and commit["modes"]["config.json"] == "regular"
    assert not any(name.endswith(hub.PICKLE_SUFFIXES) for name in commit["files"])
    assert fake_hub.repos["me/tiny-dae"]["private"] is True
    assert info.oid and info.commit_url.startswith(fake_hub.url)
    uploaded = _load_uploaded(commit["files"], tmp_path / "downloaded")
    _assert_same_weights(uploaded, hfdae.load_model(run_dir / "best"))
    saved = json.loads((run_dir / "best" / "config.json").read_text())
    assert uploaded.config.training_summary == saved["training_summary"]
    card = ModelCard(commit["files"]["README.md"].decode())
    _assert_model_index_matches(card, evaluations)
    # a second push to the existing repo is a second commit, on a new branch
    hub.push_to_hub(run_dir, "me/tiny-dae", revision="experiment")
    assert fake_hub.commits[1]["revision"] == "experiment" and "experiment" in fake_hub.repos["me/tiny-dae"]["branches"]


def test_push_model_writes_safetensors_card_and_code(fake_hub, tmp_path):
    model = make_model("small")
    info = hub.push_model(model, "me/pushed", create_pr=False, commit_message="first")
    commit = fake_hub.commits[-1]
    assert set(commit["files"]) == {"config.json", "model.safetensors", "README.md", "preprocessor_config.json"} | REMOTE_CODE
    assert commit["summary"] == "first" and info.oid
    assert "UNTRAINED" in commit["files"]["README.md"].decode()
    with pytest.warns(hfdae.inference.UntrainedModelWarning):
        _assert_same_weights(_load_uploaded(commit["files"], tmp_path / "back"), model)


def test_pull_request_to_an_existing_repo_and_to_an_unknown_one(fake_hub, run_dir, monkeypatch):
    monkeypatch.delenv("HF_TOKEN")  # the token saved by `hf auth login` serves as well
    Path(constants.HF_TOKEN_PATH).write_text(TOKEN)
    hub.push_to_hub(run_dir, "org/dae")
    info = hub.push_to_hub(run_dir, "org/dae", create_pr=True)
    assert info.pr_url == f"{fake_hub.url}/org/dae/discussions/1" and fake_hub.commits[-1]["create_pr"]
    commits = len(fake_hub.commits)
    with pytest.raises(hub.HubError, match=r"org/unknown.*does not exist"):
        hub.push_to_hub(run_dir, "org/unknown", create_pr=True)
    assert len(fake_hub.commits) == commits and "org/unknown" not in fake_hub.repos


def test_rejected_token_no_rights_and_failed_commit_leave_nothing(fake_hub, run_dir, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    with pytest.raises(hub.HubError, match=r"me/dae.*401 Unauthorized.*HF_TOKEN"):
        hub.push_to_hub(run_dir, "me/dae")
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    with pytest.raises(hub.HubError, match=r"someone/dae.*(403|does not exist)"):
        hub.push_to_hub(run_dir, "someone/dae")
    fake_hub.fail["commit"] = 500
    with pytest.raises(hub.HubError, match=r"answered 500.*created for this push was deleted again"):
        hub.push_to_hub(run_dir, "me/dae")
    fake_hub.fail = {"lfs": 403}  # huggingface_hub wraps LFS failures in a RuntimeError
    with pytest.raises(hub.HubError, match=r"me/dae.*403 Forbidden.*deleted again"):
        hub.push_to_hub(run_dir, "me/dae")
    assert fake_hub.commits == [] and fake_hub.repos == {}
    assert fake_hub.requests.count(("DELETE", "/api/repos/delete")) == 2


def test_offline_missing_token_and_unreachable_hub_fail_before_any_request(fake_hub, run_dir, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(hub.HubError, match=r"me/dae.*HF_HUB_OFFLINE"):
        hub.push_to_hub(run_dir, "me/dae")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(hub.HubError, match=r"me/dae.*no Hugging Face token"):
        hub.push_to_hub(run_dir, "me/dae")
    assert fake_hub.requests == []
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    with pytest.raises(hub.HubError, match=r"could not reach the Hub"):
        hub.push_to_hub(run_dir, "me/dae", token=TOKEN, endpoint=dead)
    with pytest.raises(ValueError, match="NAMESPACE/NAME"):
        hub.push_to_hub(run_dir, "just-a-name")


def test_cli_push_card_and_dry_run(tmp_path, fake_hub, run_dir, evaluations, capsys, monkeypatch):
    dry = tmp_path / "dry"
    assert cli_main(["push", str(run_dir), "--repo-id", "me/cli-dae", "--dry-run", str(dry),
                     "--evaluation", str(evaluations[0])]) == 0
    assert {"README.md", "model.safetensors", "eval-seed-tinyset.json"} <= {path.name for path in dry.iterdir()}
    assert fake_hub.commits == []
    assert cli_main(["push", str(run_dir), "--repo-id", "me/cli-dae", "--private",
                     "--evaluation", str(evaluations[0]), "--evaluation", str(evaluations[1])]) == 0
    assert "me/cli-dae" in capsys.readouterr().out
    assert set(fake_hub.commits[0]["files"]) == {path.name for path in dry.iterdir()} | {"eval-awgn-tinyset.json"}
    card_path = tmp_path / "zoo" / "tiny" / "README.md"
    assert cli_main(["card", str(run_dir / "best"), "--evaluation", str(evaluations[1]), "--name", "hfdae-tiny",
                     "--output", str(card_path)]) == 0
    card = ModelCard.load(card_path)
    _assert_model_index_matches(card, [evaluations[1]])
    assert card.data.model_name == "hfdae-tiny" and "# hfdae-tiny" in card.text
    assert "../../run-tiny/learning_curve.png" in card_path.read_text()
    monkeypatch.delenv("HF_TOKEN")
    assert cli_main(["push", str(run_dir), "--repo-id", "me/cli-dae"]) == 2
    assert "no Hugging Face token" in capsys.readouterr().err


# --- the download side: a real mirror server (olah) ------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _git_repo(folder: Path, files: Path) -> None:
    folder.mkdir(parents=True)
    for path in files.iterdir():
        shutil.copy(path, folder / path.name)
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com", "-c", "init.defaultBranch=main"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "upload"]):
        subprocess.run(git + command, cwd=folder, check=True)


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    """olah in offline mode serving org/dae (good), org/dae-corrupt and org/dae-mismatched on 127.0.0.1."""
    olah = shutil.which("olah-cli") or str(Path(sys.executable).with_name("olah-cli"))
    assert Path(olah).exists(), "olah is not installed: pip install -e '.[dev]'"
    root = tmp_path_factory.mktemp("mirror")
    model = make_model("small")
    model.config.images_seen = 100
    model.save_pretrained(root / "model")
    folder = hub.build_model_folder(root / "model", root / "hub-folder", repo_id="org/dae")
    _git_repo(root / "mirrors" / "models" / "org" / "dae", folder)
    corrupt = root / "corrupt"
    shutil.copytree(folder, corrupt)
    (corrupt / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes()[:2000])
    _git_repo(root / "mirrors" / "models" / "org" / "dae-corrupt", corrupt)
    mismatched = root / "mismatched"
    shutil.copytree(folder, mismatched)
    config = json.loads((folder / "config.json").read_text())
    (mismatched / "config.json").write_text(json.dumps({**config, "widths": [8, 16, 32]}))
    _git_repo(root / "mirrors" / "models" / "org" / "dae-mismatched", mismatched)

    port = _free_port()
    (root / "repos").mkdir()
    (root / "olah.toml").write_text(
        f'[basic]\nhost = "127.0.0.1"\nport = {port}\nmirror-netloc = "127.0.0.1:{port}"\n'
        f'mirror-lfs-netloc = "127.0.0.1:{port}"\nrepos-path = "{root / "repos"}"\n'
        f'mirrors-path = ["{root / "mirrors"}"]\nhf-scheme = "http"\nhf-netloc = "127.0.0.1:9"\n'
        f'hf-lfs-netloc = "127.0.0.1:9"\n\n[accessibility]\noffline = true\n')
    log = open(root / "olah.log", "wb")
    process = subprocess.Popen([olah, "-c", str(root / "olah.toml")], cwd=root, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/models/org/dae/revision/main", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"olah did not start: {(root / 'olah.log').read_text()[-2000:]}")
            time.sleep(0.2)
        yield {"url": url, "folder": folder, "root": root, "model": model}
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _run_child(script: str, env: dict[str, str], cwd: Path) -> dict:
    """Run a Python script in a fresh process (huggingface_hub reads its settings at import) and return
    the JSON it prints last."""
    base = {key: value for key, value in os.environ.items()
            if not key.startswith(("HF_", "HUGGING_FACE", "TRANSFORMERS_OFFLINE"))}
    base.update({"TRANSFORMERS_VERBOSITY": "error", "OMP_NUM_THREADS": "1", "HF_HUB_DISABLE_XET": "1",
                 "HF_HUB_DISABLE_PROGRESS_BARS": "1", "PYTHONPATH": ""})
    base.update(env)
    result = subprocess.run([sys.executable, "-c", script], env=base, cwd=cwd, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


REMOTE_CODE_CHILD = r"""
import importlib.abc, json, sys

class BlockHfdae(importlib.abc.MetaPathFinder):
    # hfdae is installed in this venv (editable); make it unimportable, as for someone without it
    def find_spec(self, name, path=None, target=None):
        if name == "hfdae" or name.startswith("hfdae."):
            raise ModuleNotFoundError(f"No module named {name!r}")

sys.meta_path.insert(0, BlockHfdae())
try:
    import hfdae
    hfdae_importable = True
except ModuleNotFoundError:
    hfdae_importable = False

import torch
from transformers import AutoModel

model = AutoModel.from_pretrained("org/dae", trust_remote_code=True)
torch.manual_seed(1)
output = model(torch.rand(1, 3, 20, 28)).reconstruction
torch.save(output, "remote_output.pt")
print(json.dumps({"hfdae_importable": hfdae_importable, "module": type(model).__module__,
                  "hfdae_loaded": any(name.split(".")[0] == "hfdae" for name in sys.modules),
                  "training": model.training}))
"""

LOADING_CHILD = r"""
import json, sys, warnings
import torch
import hfdae
from transformers import AutoModel

def error_of(name):
    try:
        hfdae.load_model(name)
    except Exception as error:
        return {"type": type(error).__name__, "message": str(error)}
    return None

model = hfdae.load_model("org/dae")
auto = AutoModel.from_pretrained("org/dae")
print(json.dumps({
    "class": type(model).__module__ + "." + type(model).__name__,
    "auto_class": type(auto).__module__ + "." + type(auto).__name__,
    "same_as_auto": all(torch.equal(value, auto.state_dict()[key]) for key, value in model.state_dict().items()),
    "checksum": float(sum(value.double().sum() for value in model.state_dict().values())),
    "missing": error_of(sys.argv[1] if len(sys.argv) > 1 else "org/does-not-exist"),
    "corrupt": error_of("org/dae-corrupt"),
    "mismatched": error_of("org/dae-mismatched"),
}))
"""


def test_trust_remote_code_without_hfdae_from_the_mirror(mirror, tmp_path):
    result = _run_child(REMOTE_CODE_CHILD, {"HF_ENDPOINT": mirror["url"], "HF_HOME": str(tmp_path / "hf")}, tmp_path)
    assert result["hfdae_importable"] is False and result["hfdae_loaded"] is False
    assert result["module"].startswith("transformers_modules.") and result["training"] is False
    torch.manual_seed(1)
    expected = mirror["model"].eval()(torch.rand(1, 3, 20, 28)).reconstruction
    assert torch.equal(torch.load(tmp_path / "remote_output.pt"), expected)


def test_load_by_repo_id_then_offline_from_the_cache(mirror, tmp_path):
    home = str(tmp_path / "hf")
    online = _run_child(LOADING_CHILD, {"HF_ENDPOINT": mirror["url"], "HF_HOME": home}, tmp_path)
    assert online["class"] == online["auto_class"] == "hfdae.modeling_hfdae.DenoisingAutoencoder"
    assert online["same_as_auto"]
    expected = float(sum(value.double().sum() for value in mirror["model"].state_dict().values()))
    assert online["checksum"] == pytest.approx(expected, rel=0, abs=1e-9)
    assert online["missing"]["type"] in ("OSError", "RepositoryNotFoundError", "HubError")
    assert "org/does-not-exist" in online["missing"]["message"]
    assert online["corrupt"]["type"] == "CheckpointError" and "corrupt" in online["corrupt"]["message"]
    assert online["mismatched"]["type"] == "CheckpointError" and "mismatched keys" in online["mismatched"]["message"]
    # the mirror is not reachable from here: an unused port, and HF_HUB_OFFLINE=1
    offline = _run_child(LOADING_CHILD, {"HF_ENDPOINT": f"http://127.0.0.1:{_free_port()}", "HF_HOME": home,
                                         "HF_HUB_OFFLINE": "1"}, tmp_path)
    assert offline["checksum"] == online["checksum"] and offline["same_as_auto"]
    assert "org/does-not-exist" in offline["missing"]["message"] and "cache" in offline["missing"]["message"]
    assert offline["corrupt"]["type"] == "CheckpointError"  # cached as downloaded: still refused
