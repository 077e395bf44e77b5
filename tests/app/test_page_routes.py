"""The page's own routes (`/`, `/static/*`, `/samples`): public, strict CSP, package files
only; in process (no model is needed)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import numpy as np
import pytest
from app_helpers import FASHION_DIR
from PIL import Image
from prometheus_client import CollectorRegistry

from app.api.routes.page import CONTENT_SECURITY_POLICY, STATIC_DIR
from app.config import Settings
from app.main import create_app
from training.fashion import IMAGES_MAGIC, LABELS, LABELS_MAGIC, read_idx

pytestmark = pytest.mark.asyncio(loop_scope="session")

KEY = "page-key"


def client(tmp_path: Path, **settings: object) -> httpx.AsyncClient:
    values = {"model_store": tmp_path, "poll_interval_s": 0, "api_key": KEY, **settings}
    app = create_app(Settings(**values), registry=CollectorRegistry())
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://tagger")


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with client(tmp_path) as open_client:
        yield open_client


async def test_the_page_and_its_files_are_public_with_a_strict_policy(
    http: httpx.AsyncClient,
) -> None:
    page = await http.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert policy == CONTENT_SECURITY_POLICY
    assert "'unsafe-inline'" not in policy and "script-src 'self'" in policy
    assert "default-src 'none'" in policy
    for name, kind in (("page.js", "text/javascript"), ("page.css", "text/css")):
        response = await http.get(f"/static/{name}")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(kind)
        assert response.content == (STATIC_DIR / name).read_bytes()
    assert (await http.get("/v1/models")).status_code == 401  # the API still needs the key


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


async def test_the_page_holds_no_inline_script_or_style_and_loads_nothing_remote() -> None:
    parser = _Tags()
    parser.feed((STATIC_DIR / "index.html").read_text())
    assert not [tag for tag, _ in parser.tags if tag == "style"]
    inline = [
        (t, a) for t, a in parser.tags for name in a if name == "style" or name.startswith("on")
    ]
    assert inline == []
    scripts = [attrs.get("src") or "" for tag, attrs in parser.tags if tag == "script"]
    assert scripts and all(src.startswith("/static/") for src in scripts)
    for path in STATIC_DIR.iterdir():
        text = path.read_text().replace("http://www.w3.org/2000/svg", "")
        assert "http://" not in text and "https://" not in text and ".innerHTML" not in text


async def test_only_shipped_files_are_served(http: httpx.AsyncClient) -> None:
    for name in ("nope.js", "%2E%2E", "index.html", "..%2Fconfig.py"):
        response = await http.get(f"/static/{name}")
        assert response.status_code == 404, name
        assert response.json()["error"]["code"] == "not_found"


async def test_samples_are_the_first_test_image_of_each_class(http: httpx.AsyncClient) -> None:
    images = read_idx(FASHION_DIR / "t10k-images-idx3-ubyte.gz", IMAGES_MAGIC)
    labels = read_idx(FASHION_DIR / "t10k-labels-idx1-ubyte.gz", LABELS_MAGIC)
    listing = (await http.get("/samples")).json()["samples"]
    assert [s["label"] for s in listing] == LABELS
    for sample in listing:
        assert int(labels[sample["index"]]) == LABELS.index(sample["label"])
        assert sample["index"] == int(np.argmax(labels == labels[sample["index"]]))
        png = await http.get(sample["url"])
        assert png.headers["content-type"] == "image/png"
        assert np.array_equal(
            np.asarray(Image.open(io.BytesIO(png.content))), images[sample["index"]]
        )
    missing = await http.get("/samples/12345.png")
    assert missing.status_code == 404 and "12345" in missing.json()["error"]["message"]


async def test_without_the_data_set_there_are_no_samples(tmp_path: Path) -> None:
    async with client(tmp_path, fashion_mnist_dir=tmp_path / "absent") as http:
        assert (await http.get("/samples")).json() == {"samples": []}
        assert (await http.get("/samples/0.png")).status_code == 404


async def test_the_page_is_not_part_of_the_api_schema(http: httpx.AsyncClient) -> None:
    schema = (await http.get("/openapi.json", headers={"X-API-Key": KEY})).json()
    assert not [
        p
        for p in schema["paths"]
        if not p.startswith(("/v1", "/v2", "/healthz", "/readyz", "/metrics"))
    ]
    assert "/v1/models/{model}/versions/{version}/evaluation/{file}" in schema["paths"]
