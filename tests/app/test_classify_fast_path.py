"""The classify fast path (app.api.classify_fast_path) over real uvicorn: the usual requests skip
FastAPI's route and get exactly its answers; every other request still goes through the route.

Which path answered is seen by counting calls of the FastAPI route's own function
(`app.api.routes.classify._classify`), which the fast path never calls.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from app_helpers import Evaluated, Server, encode, make_settings, run_server

from app.api.routes import classify

URL = "/v1/models/fashion/classify"
KEY = "fast-path-key"


@pytest.fixture
def route_calls(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every call of the FastAPI route's body, recorded (then made as usual)."""
    calls: list[Any] = []
    original = classify._classify

    async def counted(*args: Any) -> Any:
        calls.append(args[2:])
        return await original(*args)

    monkeypatch.setattr(classify, "_classify", counted)
    return calls


@pytest.fixture(scope="module")
def keyed_server(shared_root: Path) -> Iterator[Server]:
    with run_server(make_settings(shared_root, api_key=KEY)) as handle:
        yield handle


def _png(evaluated: Evaluated, index: int = 0) -> bytes:
    return encode(evaluated.images[index])


def _usual_requests(png: bytes, other: bytes, version: int) -> dict[str, dict[str, Any]]:
    """Requests the fast path answers: name -> httpx.post keyword arguments."""
    return {
        "multipart": {"url": URL, "files": {"file": ("a.png", png, "image/png")}},
        "three files": {
            "url": URL,
            "files": [("file", (f"{i}.png", (png, other)[i % 2], "image/png")) for i in range(3)],
        },
        "raw body": {"url": URL, "content": png, "headers": {"content-type": "image/png"}},
        "top_k": {"url": URL + "?top_k=3", "files": {"file": ("a.png", png, "image/png")}},
        "pinned version": {
            "url": f"/v1/models/fashion/versions/{version}/classify",
            "files": {"file": ("a.png", png, "image/png")},
        },
        "alias": {
            "url": "/v1/models/fashion/labels/latest/classify",
            "files": {"file": ("a.png", png, "image/png")},
        },
    }


def test_usual_requests_skip_the_route_and_get_its_answers(
    server: Server, evaluated: Evaluated, trained_store: Any, route_calls: list[Any]
) -> None:
    """Each usual request is answered without the route; the same request with an ignored
    extra query parameter goes through the route, and the two answers are identical."""
    png, other = _png(evaluated, 0), _png(evaluated, 1)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for name, request in _usual_requests(png, other, trained_store.version).items():
            fast = http.post(**request)
            assert fast.status_code == 200, (name, fast.text)
            assert route_calls == [], name
            slow_url = request["url"] + ("&" if "?" in request["url"] else "?") + "via=route"
            slow = http.post(**{**request, "url": slow_url})
            assert len(route_calls) == 1, name
            route_calls.clear()
            assert fast.json() == slow.json(), name
            assert fast.headers["content-type"] == slow.headers["content-type"]
    assert len(fast.json()["results"]) == 1


@pytest.mark.parametrize(
    ("url", "files_or_body", "status", "code"),
    [
        ("/v1/models/nope/classify", "png", 404, "model_not_found"),
        ("/v1/models/fashion/versions/999/classify", "png", 404, None),
        ("/v1/models/fashion/labels/nope/classify", "png", 404, None),
        (URL + "?top_k=99", "png", 422, "invalid_top_k"),
        (URL, b"not an image", 415, None),
        (URL, "truncated png", 400, "corrupt_image"),
        (URL, b"", 400, "empty_file"),
    ],
)
def test_failures_on_the_fast_path_equal_the_routes(
    server: Server,
    evaluated: Evaluated,
    route_calls: list[Any],
    url: str,
    files_or_body: str | bytes,
    status: int,
    code: str | None,
) -> None:
    png = _png(evaluated)
    data = {"png": png, "truncated png": png[:60]}.get(files_or_body, files_or_body)
    request = {"files": {"file": ("a.png", data, "image/png")}}
    with httpx.Client(base_url=server.url, timeout=30) as http:
        fast = http.post(url, **request)
        assert route_calls == []
        slow = http.post(url + ("&" if "?" in url else "?") + "via=route", **request)
        assert len(route_calls) == 1
    assert fast.status_code == slow.status_code == status, fast.text
    fast_error, slow_error = fast.json()["error"], slow.json()["error"]
    assert fast_error["request_id"] == fast.headers["x-request-id"]
    assert {**fast_error, "request_id": ""} == {**slow_error, "request_id": ""}
    if code is not None:
        assert fast_error["code"] == code


def test_unusual_requests_go_through_the_route(
    server: Server, evaluated: Evaluated, route_calls: list[Any]
) -> None:
    png = _png(evaluated)
    cases: dict[str, dict[str, Any]] = {
        "json body": {"json": {"instances": [{"b64": base64.b64encode(png).decode()}]}},
        "other form field": {"files": {"file": ("a.png", png)}, "data": {"note": "x"}},
        "windows filename": {"files": {"file": ("C:\\a.png", png)}},
        "image +json type": {"content": png, "headers": {"content-type": "image/x+json"}},
        "encoded path": {"files": {"file": ("a.png", png)}, "url": "/v1/models/fashio%6E/classify"},
        "top_k zero": {"files": {"file": ("a.png", png)}, "url": URL + "?top_k=0"},
        "top_k words": {"files": {"file": ("a.png", png)}, "url": URL + "?top_k=three"},
        "upper-case name": {
            "files": {"file": ("a.png", png)},
            "url": "/v1/models/Fashion/classify",
        },
    }
    # (status, whether the route's body runs, the error's code). FastAPI refuses a bad parameter
    # before the body runs: its code, not one the fast path or the core would give, shows who.
    expected = {
        "json body": (200, True, None),
        "other form field": (200, True, None),
        "windows filename": (200, True, None),
        "image +json type": (400, True, "malformed_json"),  # read as JSON, as the route reads it
        "encoded path": (200, True, None),
        "top_k zero": (422, True, "invalid_top_k"),
        "top_k words": (422, False, "invalid_request"),
        "upper-case name": (404, False, "invalid_name"),
    }
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for name, request in cases.items():
            url = request.pop("url", URL)
            response = http.post(url, **request)
            status, reaches_route, code = expected[name]
            assert response.status_code == status, (name, response.text)
            assert len(route_calls) == reaches_route, name
            if code is not None:
                assert response.json()["error"]["code"] == code, (name, response.text)
            route_calls.clear()


def test_with_an_api_key_only_a_good_key_takes_the_fast_path(
    keyed_server: Server, evaluated: Evaluated, route_calls: list[Any]
) -> None:
    files = {"file": ("a.png", _png(evaluated), "image/png")}
    with httpx.Client(base_url=keyed_server.url, timeout=30) as http:
        for headers in ({"x-api-key": KEY}, {"authorization": f"Bearer {KEY}"}):
            assert http.post(URL, files=files, headers=headers).status_code == 200
        assert route_calls == []
        refusals = [
            {},
            {"x-api-key": "wrong"},
            {"authorization": f"Basic {KEY}"},
            {"authorization": f"Bearer {KEY}", "x-api-key": "wrong"},
        ]
        for headers in refusals:
            response = http.post(URL, files=files, headers=headers)
            assert response.status_code == 401, headers
            assert response.json()["error"]["code"] == "unauthorized"
    assert route_calls == []  # refused by the API-key dependency, before the route's body
