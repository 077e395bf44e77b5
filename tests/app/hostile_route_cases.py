"""Hostile request lines: bad path segments, wrong methods and bad query parameters."""

from __future__ import annotations

from collections.abc import Iterator

from hostile_common import CLASSIFY, GOOD_PNG, VERSION, Case, Expect, raw_post
from hostile_http import request_bytes

BAD_NAMES: dict[str, str] = {
    "256-chars": "a" * 256,
    "1000-chars": "f" * 1000,
    "dotdot": "..",
    "encoded-dotdot": "%2e%2e",
    "encoded-slash-upper": "fashion%2Fversions%2F1",
    "encoded-slash-lower": "fashion%2fversions%2f1",
    "encoded-nul": "%00",
    "encoded-nul-inside": "fash%00ion",
    "encoded-unicode": "fashi%C3%B6n",
    "raw-utf8-bytes": "fashi\xc3\xb6n",
    "encoded-leading-space": "%20fashion",
    "encoded-trailing-tab": "fashion%09",
    "uppercase": "FASHION",
    "backslash": "fashion%5C..",
    "bad-percent": "fashion%zz",
    "double-encoded-slash": "fashion%252Fx",
}
MODEL_ROUTES: dict[str, tuple[str, str]] = {
    "classify": ("POST", "/v1/models/{}/classify"),
    "version-classify": ("POST", f"/v1/models/{{}}/versions/{VERSION}/classify"),
    "alias-classify": ("POST", "/v1/models/{}/labels/latest/classify"),
    "get-model": ("GET", "/v1/models/{}"),
    "get-version": ("GET", f"/v1/models/{{}}/versions/{VERSION}"),
}
BAD_VERSIONS: dict[str, str] = {
    "1.0": "1.0",
    "plus-1": "+1",
    "minus-1": "-1",
    "leading-zero": "01",
    "20-digits": "99999999999999999999",
    "300-digits": "9" * 300,
    "encoded-leading-space": "%201",
    "encoded-trailing-space": "1%20",
    "encoded-nul": "%00",
    "exponent": "1e0",
    "hex": "0x1",
    "underscore": "1_0",
    "fullwidth-digit": "%EF%BC%91",
    "encoded-slash": "%2F1",
    "zero": "0",
}
VERSION_ROUTES: dict[str, tuple[str, str]] = {
    "version-classify": ("POST", "/v1/models/fashion/versions/{}/classify"),
    "get-version": ("GET", "/v1/models/fashion/versions/{}"),
}
BAD_ALIASES: dict[str, str] = {
    "256-chars": "a" * 256,
    "dotdot": "..",
    "encoded-slash": "a%2Fb",
    "encoded-nul": "%00",
    "encoded-unicode": "st%C3%A4ble",
    "encoded-space": "%20stable",
    "uppercase": "LATEST",
    "digits": "1",
}


def _call(method: str, path: str) -> bytes:
    if method == "POST":
        return raw_post(path, GOOD_PNG, "image/png")
    return request_bytes(method, path)


def _bad_segments(
    kind: str, routes: dict[str, tuple[str, str]], values: dict[str, str]
) -> Iterator[Case]:
    """Every bad value in the one `{}` segment of every route: each must be refused."""
    for route, (method, template) in routes.items():
        for label, value in values.items():
            yield Case(
                f"path-{kind}-{label}-{route}",
                _call(method, template.format(value)),
                Expect.REFUSED,
                before_app=label == "raw-utf8-bytes",  # httptools refuses non-ASCII targets
            )


def path_cases() -> Iterator[Case]:
    bad = Expect.REFUSED
    yield from _bad_segments("model", MODEL_ROUTES, BAD_NAMES)
    yield from _bad_segments("version", VERSION_ROUTES, BAD_VERSIONS)
    for label, alias in BAD_ALIASES.items():
        path = f"/v1/models/fashion/labels/{alias}/classify"
        yield Case(
            f"path-alias-{label}-alias-classify",
            _call("POST", path),
            Expect.SAFE if label == "digits" else bad,
        )
    for label, (method, path) in {
        "model-empty": ("POST", "/v1/models//classify"),
        "double-slash-after-model": ("POST", "/v1/models/fashion//classify"),
        "version-empty": ("POST", "/v1/models/fashion/versions//classify"),
        "alias-empty": ("POST", "/v1/models/fashion/labels//classify"),
        "leading-double-slash": ("POST", "//v1/models/fashion/classify"),
        "get-version-empty": ("GET", "/v1/models/fashion/versions/"),
        "dot-segments": ("POST", "/v1/models/fashion/versions/../classify"),
    }.items():
        yield Case(f"path-{label}", _call(method, path), bad)
    for label, (method, path) in {
        "classify": ("POST", "/v1/models/fashion/classify/"),
        "version-classify": ("POST", f"/v1/models/fashion/versions/{VERSION}/classify/"),
        "get-model": ("GET", "/v1/models/fashion/"),
        "get-version": ("GET", f"/v1/models/fashion/versions/{VERSION}/"),
    }.items():
        yield Case(f"path-trailing-slash-{label}", _call(method, path))


METHOD_ROUTES: dict[str, tuple[str, str]] = {
    "classify": ("POST", CLASSIFY),
    "version-classify": ("POST", f"/v1/models/fashion/versions/{VERSION}/classify"),
    "alias-classify": ("POST", "/v1/models/fashion/labels/latest/classify"),
    "list-models": ("GET", "/v1/models"),
    "get-model": ("GET", "/v1/models/fashion"),
    "get-version": ("GET", f"/v1/models/fashion/versions/{VERSION}"),
    "healthz": ("GET", "/healthz"),
    "readyz": ("GET", "/readyz"),
    "metrics": ("GET", "/metrics"),
}


def method_cases() -> Iterator[Case]:
    bad = Expect.REFUSED
    for route, (allowed, path) in METHOD_ROUTES.items():
        for method in ("PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"):
            body = GOOD_PNG if method in ("PUT", "PATCH") else b""
            yield Case(
                f"method-{method}-{route}",
                request_bytes(method, path, [("Content-Type", "image/png")] if body else [], body),
                bad,
            )
        head = request_bytes("HEAD", path)
        yield Case(
            f"method-HEAD-{route}", head, bad if allowed == "POST" else Expect.SAFE, head=True
        )
        if allowed == "POST":
            yield Case(f"method-GET-{route}", request_bytes("GET", path), bad)
    for token in ("FOO", "BREW", "post", "CONNECT", "PROPFIND"):
        yield Case(
            f"method-{token}-classify",
            raw_post(CLASSIFY, GOOD_PNG, "image/png").replace(b"POST", token.encode(), 1),
            bad,
            before_app=True,
        )


def query_cases() -> Iterator[Case]:
    for label, query, expect in (
        ("top_k-0", "top_k=0", Expect.REFUSED),
        ("top_k-minus-1", "top_k=-1", Expect.REFUSED),
        ("top_k-11", "top_k=11", Expect.REFUSED),
        ("top_k-huge", "top_k=99999999999999999999", Expect.REFUSED),
        ("top_k-5000-digits", "top_k=" + "9" * 5000, Expect.REFUSED),
        ("top_k-non-numeric", "top_k=abc", Expect.REFUSED),
        ("top_k-float", "top_k=1.5", Expect.REFUSED),
        ("top_k-exponent", "top_k=1e1", Expect.REFUSED),
        ("top_k-nul", "top_k=%00", Expect.REFUSED),
        ("top_k-hex", "top_k=0x3", Expect.REFUSED),
        ("top_k-empty", "top_k=", Expect.SAFE),
        ("top_k-repeated", "top_k=1&top_k=2", Expect.SAFE),
        ("top_k-repeated-invalid", "top_k=3&top_k=abc", Expect.REFUSED),
        ("unknown-parameter", "colour=blue", Expect.OK),
        ("garbage-query", "%%%&&&===", Expect.SAFE),
    ):
        yield Case(f"query-{label}", raw_post(f"{CLASSIFY}?{query}", GOOD_PNG, "image/png"), expect)
