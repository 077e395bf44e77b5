"""`GET /v1/models/{m}/versions/{v}/evaluation[/{file}]`: the version's report.json and only
the files it lists, never a path out of evaluation/; in process (no model is loaded)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from prometheus_client import CollectorRegistry

from app.config import Settings
from app.main import create_app
from model_store import ModelStore

pytestmark = pytest.mark.asyncio(loop_scope="session")

KEY = "evaluation-key"
FIGURES = ("confusion_matrix.png", "learning_curves.png", "reliability.png")


@pytest.fixture(scope="module")
def root(trained_store: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the trained store; version 1's evaluation/ gains a file it does not list and
    a secret beside the store that symlinks point at."""
    root = tmp_path_factory.mktemp("evaluation-store") / "models"
    shutil.copytree(trained_store.root, root)
    (root.parent / "secret.txt").write_text("not for clients\n")
    return root


def evaluation_dir(root: Path) -> Path:
    return root / "fashion" / "1" / "evaluation"


@pytest.fixture
async def http(root: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        Settings(model_store=root, poll_interval_s=0, api_key=KEY), registry=CollectorRegistry()
    )
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://tagger", headers={"X-API-Key": KEY}
    ) as client:
        yield client


def error_of(response: httpx.Response, status: int = 404) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json()["error"]


async def raw_get(http: httpx.AsyncClient, raw_path: bytes) -> httpx.Response:
    """GET with the path exactly as given, as uvicorn passes it on (`path` percent-decoded,
    `raw_path` as sent): httpx itself would resolve `..` and `.` before sending."""
    app = http._transport.app  # type: ignore[attr-defined]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": unquote(raw_path.decode("ascii")),
        "raw_path": raw_path,
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"tagger"), (b"x-api-key", KEY.encode())],
        "client": ("127.0.0.1", 1),
        "server": ("tagger", 80),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    headers = [(k.decode(), v.decode()) for k, v in start["headers"]]
    return httpx.Response(start["status"], headers=headers, content=body)


async def test_evaluation_is_the_versions_report_json(
    http: httpx.AsyncClient, root: Path, trained_store: Any
) -> None:
    response = await http.get("/v1/models/fashion/versions/1/evaluation")
    assert response.status_code == 200
    assert response.json() == json.loads((evaluation_dir(root) / "report.json").read_text())
    assert response.json()["metrics"]["accuracy"] == trained_store.metadata.metrics.test.accuracy
    assert tuple(response.json()["figures"]) == FIGURES


@pytest.mark.parametrize("file", [*FIGURES, "report.md"])
async def test_each_listed_file_is_served(http: httpx.AsyncClient, root: Path, file: str) -> None:
    response = await http.get(f"/v1/models/fashion/versions/1/evaluation/{file}")
    assert response.status_code == 200
    assert response.content == (evaluation_dir(root) / file).read_bytes()
    kind = "image/png" if file.endswith(".png") else "text/markdown"
    assert response.headers["content-type"].startswith(kind)


async def test_a_file_the_evaluation_does_not_list_is_404_naming_it(
    http: httpx.AsyncClient,
) -> None:
    error = error_of(await http.get("/v1/models/fashion/versions/1/evaluation/predictions.npz"))
    assert error["code"] == "evaluation_not_found"
    assert "'predictions.npz'" in error["message"]
    assert "fashion version 1" in error["message"]
    assert "confusion_matrix.png" in error["message"]  # says what it does list


async def test_unknown_version_and_model_are_404_naming_them(http: httpx.AsyncClient) -> None:
    error = error_of(await http.get("/v1/models/fashion/versions/9/evaluation"))
    assert error["code"] == "version_not_found" and "version 9" in error["message"]
    error = error_of(await http.get("/v1/models/fashion/versions/9/evaluation/reliability.png"))
    assert error["code"] == "version_not_found"
    error = error_of(await http.get("/v1/models/nope/versions/1/evaluation"))
    assert error["code"] == "model_not_found" and "'nope'" in error["message"]


@pytest.mark.parametrize(
    "raw_path",
    [
        b"/v1/models/fashion/versions/1/evaluation/..",
        b"/v1/models/fashion/versions/1/evaluation/.",
        b"/v1/models/fashion/versions/1/evaluation/%2E%2E",
        b"/v1/models/fashion/versions/1/evaluation/../metadata.json",
        b"/v1/models/fashion/versions/1/evaluation/..%2Fmetadata.json",
        b"/v1/models/fashion/versions/1/evaluation/..%2fmetadata.json",
        b"/v1/models/fashion/versions/1/evaluation/%2E%2E%2F..%2F..%2Faliases.json",
        b"/v1/models/fashion/versions/1/evaluation/..%5Cmetadata.json",
        b"/v1/models/fashion/versions/1/evaluation//etc/passwd",
        b"/v1/models/fashion/versions/1/evaluation/%2Fetc%2Fpasswd",
        b"/v1/models/fashion/versions/1/evaluation/%00report.md",
        b"/v1/models/fashion/versions/1/evaluation/report.md%00.png",
        b"/v1/models/fashion/versions/1/evaluation/evaluation/report.md",
    ],
)
async def test_no_path_leaves_the_listed_files(http: httpx.AsyncClient, raw_path: bytes) -> None:
    response = await raw_get(http, raw_path)
    assert response.status_code == 404, (raw_path, response.text)
    assert response.json()["error"]["message"]  # this API's JSON error, not a file
    assert b"saved_model" not in response.content and b"root:" not in response.content


def rewrite_report(root: Path, figures: list[str]) -> None:
    path = evaluation_dir(root) / "report.json"
    report = json.loads(path.read_text())
    path.write_text(json.dumps({**report, "figures": figures}))


@pytest.mark.parametrize(
    "listed",
    ["../metadata.json", "/etc/passwd", "..", "./report.json", "sub/../../metadata.json"],
)
async def test_a_report_listing_a_path_out_is_not_followed(
    http: httpx.AsyncClient, root: Path, listed: str
) -> None:
    original = (evaluation_dir(root) / "report.json").read_text()
    rewrite_report(root, [*FIGURES, listed])
    try:
        response = await raw_get(
            http,
            b"/v1/models/fashion/versions/1/evaluation/" + listed.replace("/", "%2F").encode(),
        )
        assert response.status_code == 404, response.text
        listing = await http.get("/v1/models/fashion/versions/1/evaluation/reliability.png")
        assert listing.status_code == 200  # the names that are plain files still are
    finally:
        (evaluation_dir(root) / "report.json").write_text(original)


async def test_a_listed_symlink_is_refused(http: httpx.AsyncClient, root: Path) -> None:
    directory = evaluation_dir(root)
    original = (directory / "reliability.png").read_bytes()
    (directory / "reliability.png").unlink()
    try:
        os.symlink(root.parent / "secret.txt", directory / "reliability.png")
        error = error_of(await http.get("/v1/models/fashion/versions/1/evaluation/reliability.png"))
        assert "'reliability.png'" in error["message"]
        (directory / "reliability.png").unlink()
        os.symlink(directory / "report.md", directory / "reliability.png")  # even one inside
        error_of(await http.get("/v1/models/fashion/versions/1/evaluation/reliability.png"))
    finally:
        (directory / "reliability.png").unlink(missing_ok=True)
        (directory / "reliability.png").write_bytes(original)


async def test_an_evaluation_directory_symlinked_elsewhere_is_refused(
    http: httpx.AsyncClient, root: Path, tmp_path: Path
) -> None:
    directory = evaluation_dir(root)
    moved = tmp_path / "evaluation"
    shutil.move(directory, moved)
    try:
        os.symlink(moved, directory)
        response = await http.get("/v1/models/fashion/versions/1/evaluation/reliability.png")
        assert response.status_code == 200  # the directory itself may be a link: files are in it
        (moved / "confusion_matrix.png").unlink()
        os.symlink(root.parent / "secret.txt", moved / "confusion_matrix.png")
        error_of(await http.get("/v1/models/fashion/versions/1/evaluation/confusion_matrix.png"))
    finally:
        directory.unlink()
        shutil.move(moved, directory)


async def test_a_version_without_evaluation_is_404_saying_so(
    http: httpx.AsyncClient, root: Path, trained_store: Any
) -> None:
    store = ModelStore(root)
    metadata = store.metadata("fashion", 1)
    with store.staging("fashion") as staged:
        shutil.copytree(store.version_dir("fashion", 1), staged, dirs_exist_ok=True)
        (staged / "metadata.json").unlink()
        shutil.rmtree(staged / "evaluation")
        version = store.publish(
            "fashion", staged, metadata.model_copy(update={"files": {}})
        ).version
    try:
        error = error_of(await http.get(f"/v1/models/fashion/versions/{version}/evaluation"))
        assert error["code"] == "evaluation_not_found"
        assert f"fashion version {version} has no evaluation" in error["message"]
        error = error_of(
            await http.get(f"/v1/models/fashion/versions/{version}/evaluation/reliability.png")
        )
        assert f"fashion version {version}" in error["message"]
    finally:
        shutil.rmtree(store.version_dir("fashion", version))


async def test_the_evaluation_needs_the_api_key(http: httpx.AsyncClient) -> None:
    for path in ("/evaluation", "/evaluation/reliability.png"):
        response = await http.get(f"/v1/models/fashion/versions/1{path}", headers={"X-API-Key": ""})
        assert error_of(response, 401)["code"] == "unauthorized"
    bare = httpx.AsyncClient(transport=http._transport, base_url="http://tagger")
    async with bare:
        response = await bare.get("/v1/models/fashion/versions/1/evaluation")
        assert error_of(response, 401)["message"].startswith("missing API key")
