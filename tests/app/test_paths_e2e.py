"""Path and name abuse: every path parameter is checked at the edge, never reaches the file
system, and an encoded slash cannot reroute a request."""

from __future__ import annotations

import httpx
import pytest
from app_helpers import Evaluated, encode
from test_errors_e2e import assert_error

pytestmark = pytest.mark.asyncio(loop_scope="session")

BAD_NAMES = ("a" * 256, "b" * 129, "Fashion", "-x", "_x", "a.b", "a%20b", "%C3%A9", "%2E%2E")
BAD_VERSIONS = (
    "1.0",
    "%201",
    "+1",
    "%2B1",
    "01",
    "-1",
    "1e0",
    "0x1",
    "1%20",
    "9" * 19,
    "%E2%91%A0",
)


def _routes(model: str = "fashion", version: str = "1", alias: str = "latest") -> list[tuple]:
    base = f"/v1/models/{model}"
    return [
        ("GET", base),
        ("GET", f"{base}/versions/{version}"),
        ("POST", f"{base}/classify"),
        ("POST", f"{base}/versions/{version}/classify"),
        ("POST", f"{base}/labels/{alias}/classify"),
    ]


async def test_invalid_model_names_are_404_invalid_name_on_every_route(
    client: httpx.AsyncClient, evaluated: Evaluated
) -> None:
    files = {"file": ("a.png", encode(evaluated.images[0]), "image/png")}
    for name in BAD_NAMES:
        for method, url in _routes(model=name):
            response = await client.request(method, url, files=files if method == "POST" else None)
            assert_error(response, 404, "invalid_name", "model")


async def test_invalid_aliases_are_404_invalid_name(
    client: httpx.AsyncClient, evaluated: Evaluated
) -> None:
    files = {"file": ("a.png", encode(evaluated.images[0]), "image/png")}
    for alias in BAD_NAMES:
        url = f"/v1/models/fashion/labels/{alias}/classify"
        assert_error(await client.post(url, files=files), 404, "invalid_name", "alias")


async def test_versions_are_plain_decimal_numbers_only(
    client: httpx.AsyncClient, evaluated: Evaluated, trained_store
) -> None:
    files = {"file": ("a.png", encode(evaluated.images[0]), "image/png")}
    version = trained_store.version
    for bad in (*BAD_VERSIONS, "x"):
        response = await client.get(f"/v1/models/fashion/versions/{bad}")
        assert_error(response, 404, "invalid_version", "version")
        response = await client.post(f"/v1/models/fashion/versions/{bad}/classify", files=files)
        assert_error(response, 404, "invalid_version", "version")
    assert (await client.get(f"/v1/models/fashion/versions/{version}")).status_code == 200
    ok = await client.post(f"/v1/models/fashion/versions/{version}/classify", files=files)
    assert ok.status_code == 200, ok.text
    assert ok.json()["version"] == version


async def test_an_encoded_slash_does_not_reroute(
    client: httpx.AsyncClient, evaluated: Evaluated, trained_store
) -> None:
    files = {"file": ("a.png", encode(evaluated.images[0]), "image/png")}
    version = trained_store.version
    for slash in ("%2F", "%2f"):
        segment = f"fashion{slash}versions{slash}{version}"
        response = await client.post(f"/v1/models/{segment}/classify", files=files)
        assert_error(response, 404, "not_found", "%2F")
        assert_error(await client.get(f"/v1/models/{segment}"), 404, "not_found", "%2F")
        response = await client.get(f"/v1/models/fashion/versions/{version}{slash}x")
        assert response.status_code == 404
        assert response.json()["error"]["code"] in ("not_found", "invalid_version")


async def test_method_abuse_is_405_in_the_error_shape(client: httpx.AsyncClient) -> None:
    for method, url in (
        ("GET", "/v1/models/fashion/classify"),
        ("DELETE", "/v1/models/fashion"),
        ("PUT", "/v1/models"),
        ("POST", "/healthz"),
        ("PATCH", "/v1/models/fashion/versions/1"),
    ):
        response = await client.request(method, url)
        assert_error(response, 405, "method_not_allowed")
        assert response.headers["allow"]
