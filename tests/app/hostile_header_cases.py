"""Hostile headers: Content-Type, Content-Length, chunking, HTTP versions, and auth abuse."""

from __future__ import annotations

from collections.abc import Iterator

from hostile_common import (
    API_KEY,
    BODY_WAIT_TIMEOUT_S,
    CLASSIFY,
    GOOD_PNG,
    MAX_UPLOAD_BYTES,
    Case,
    Expect,
    b64,
    raw_post,
)
from hostile_http import request_bytes


def header_cases() -> Iterator[Case]:
    bad = Expect.REFUSED
    wait = BODY_WAIT_TIMEOUT_S
    yield Case("header-no-content-type", raw_post(CLASSIFY, GOOD_PNG, None), bad)
    for label, ctype in (
        ("slash", "/"),
        ("text-plain", "text/plain"),
        ("form-urlencoded", "application/x-www-form-urlencoded"),
        ("garbage-bytes", "\xff\xfe;;;="),
    ):
        yield Case(f"header-content-type-{label}", raw_post(CLASSIFY, GOOD_PNG, ctype), bad)
    yield Case("header-content-type-image-star", raw_post(CLASSIFY, GOOD_PNG, "image/"))
    head = request_bytes("POST", CLASSIFY, [("Content-Type", "image/png")], length=False)[:-2]

    def with_length(value: str, body: bytes = GOOD_PNG) -> bytes:
        return head + f"Content-Length: {value}\r\n\r\n".encode() + body

    yield Case("header-content-length-too-small", with_length("10"), bad)
    yield Case(
        "header-content-length-too-large",
        with_length(str(len(GOOD_PNG) + 100)),
        bad,
        timeout_s=wait,
    )
    yield Case("header-content-length-over-limit", with_length(str(MAX_UPLOAD_BYTES * 2)), bad)
    yield Case("header-content-length-2-to-the-64", with_length(str(2**64)), bad, before_app=True)
    for label, value in (
        ("negative", "-1"),
        ("non-numeric", "abc"),
        ("plus-sign", "+10"),
        ("list", f"{len(GOOD_PNG)}, {len(GOOD_PNG)}"),
        ("empty", ""),
    ):
        yield Case(f"header-content-length-{label}", with_length(value), bad, before_app=True)
    yield Case(
        "header-content-length-twice",
        head + b"Content-Length: 10\r\nContent-Length: 20\r\n\r\n" + GOOD_PNG,
        bad,
        before_app=True,
    )

    def chunked(body: bytes, encoding: str = "chunked", extra: str = "") -> bytes:
        return head + f"Transfer-Encoding: {encoding}\r\n{extra}\r\n".encode() + body

    chunk = f"{len(GOOD_PNG):x}\r\n".encode() + GOOD_PNG + b"\r\n"
    yield Case("header-chunked-control", chunked(chunk + b"0\r\n\r\n"), Expect.OK)
    yield Case(
        "header-chunked-extension",
        chunked(f"{len(GOOD_PNG):x};name=value\r\n".encode() + GOOD_PNG + b"\r\n0\r\n\r\n"),
    )
    yield Case(
        "header-chunked-bad-size",
        chunked(b"zz\r\n" + GOOD_PNG + b"\r\n0\r\n\r\n"),
        bad,
        before_app=True,
    )
    yield Case(
        "header-chunked-size-overflow",
        chunked(b"f" * 40 + b"\r\nab\r\n0\r\n\r\n"),
        bad,
        before_app=True,
    )
    yield Case("header-chunked-unterminated", chunked(chunk), bad, timeout_s=wait)
    yield Case(
        "header-chunked-with-content-length",
        chunked(chunk + b"0\r\n\r\n", extra=f"Content-Length: {len(GOOD_PNG)}\r\n"),
        bad,
        before_app=True,
    )
    for encoding in ("gzip", "chunked, chunked", "identity", "xchunked"):
        yield Case(
            f"header-transfer-encoding-{encoding.replace(', ', '-')}",
            chunked(chunk + b"0\r\n\r\n", encoding),
            before_app=True,
        )
    many = [(f"X-Pad-{i}", "v" * 16) for i in range(500)]
    yield Case(
        "header-500-headers",
        request_bytes("POST", CLASSIFY, [("Content-Type", "image/png"), *many], GOOD_PNG),
    )
    yield Case(
        "header-one-16kb-value",
        request_bytes(
            "POST", CLASSIFY, [("Content-Type", "image/png"), ("X-Pad", "v" * 16_000)], GOOD_PNG
        ),
    )
    yield Case(
        "header-name-with-space",
        request_bytes("GET", "/healthz", [("X Bad", "1")]),
        bad,
        before_app=True,
    )
    yield Case(
        "header-value-high-bytes",
        request_bytes("GET", "/v1/models/fashion", [(b"X-Thing", b"\xff\xfe\x80")]),
    )
    yield Case(
        "header-value-nul",
        request_bytes("GET", "/v1/models/fashion", [(b"X-Thing", b"a\x00b")]),
        bad,
        before_app=True,
    )
    yield Case(
        "header-obsolete-line-folding",
        request_bytes("GET", "/v1/models/fashion", [("X-Thing", "a\r\n b")]),
        before_app=True,
    )
    for label, value in (
        ("200-chars", "r" * 200),
        ("spaces", "a b c"),
        ("empty", ""),
        ("markup", "<script>alert(1)</script>"),
        ("traversal", "../../x"),
        ("high-bytes", "\xe9\xff"),
        ("json-quote", '"},{"x":"'),
    ):
        yield Case(
            f"header-request-id-{label}",
            request_bytes("GET", "/v1/models/shoes", [("X-Request-ID", value)]),
            bad,
        )
    for label, value in (
        ("bearer-alone", "Bearer"),
        ("bearer-empty", "Bearer "),
        ("basic", "Basic Zm9vOmJhcg=="),
        ("bearer-three-parts", "Bearer a b c"),
        ("bearer-10kb", "Bearer " + "k" * 10_000),
        ("high-bytes", "\xff\xfe"),
        ("unknown-scheme", "Digest username=x"),
    ):
        yield Case(
            f"header-authorization-{label}",
            request_bytes("GET", "/v1/models/fashion", [("Authorization", value)]),
        )
    yield Case("header-no-host", b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n")
    yield Case(
        "header-absolute-form-target", request_bytes("GET", "http://evil.example/v1/models/fashion")
    )
    yield Case("header-http-1.0", b"GET /healthz HTTP/1.0\r\n\r\n", Expect.OK)
    yield Case("header-http-2.0-version", b"GET /healthz HTTP/2.0\r\n\r\n", before_app=True)
    yield Case("header-http-9.9-version", b"GET /healthz HTTP/9.9\r\n\r\n", bad, before_app=True)
    yield Case("header-h2-preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", bad, before_app=True)
    yield Case(
        "header-expect-100-continue",
        request_bytes(
            "POST", CLASSIFY, [("Content-Type", "image/png"), ("Expect", "100-continue")], GOOD_PNG
        ),
        Expect.OK,
    )
    yield Case(
        "header-expect-unknown",
        request_bytes(
            "POST", CLASSIFY, [("Content-Type", "image/png"), ("Expect", "200-ok")], GOOD_PNG
        ),
    )


def auth_cases() -> Iterator[Case]:
    """Authorization abuse against the server that requires a key (401 unless it is right)."""
    bad = Expect.REFUSED
    model = "/v1/models/fashion"
    for label, headers, expect in (
        ("none", [], bad),
        ("bearer-alone", [("Authorization", "Bearer")], bad),
        ("bearer-empty", [("Authorization", "Bearer ")], bad),
        ("bearer-wrong-key", [("Authorization", "Bearer nope")], bad),
        ("bearer-three-parts", [("Authorization", f"Bearer {API_KEY} b c")], bad),
        ("bearer-10kb", [("Authorization", "Bearer " + "k" * 10_000)], bad),
        ("basic", [("Authorization", "Basic " + b64(f"u:{API_KEY}".encode()))], bad),
        ("bare-key", [("Authorization", API_KEY)], bad),
        ("unknown-scheme", [("Authorization", f"Digest {API_KEY}")], bad),
        ("high-bytes", [("Authorization", "Bearer \xff\xfe")], bad),
        ("key-prefix", [("Authorization", f"Bearer {API_KEY[:-1]}")], bad),
        ("x-api-key-empty", [("X-API-Key", "")], bad),
        ("x-api-key-wrong", [("X-API-Key", "nope")], bad),
        ("lowercase-scheme", [("Authorization", f"bearer {API_KEY}")], Expect.SAFE),
        ("both-one-wrong", [("Authorization", "Bearer nope"), ("X-API-Key", API_KEY)], Expect.SAFE),
        ("bearer-control", [("Authorization", f"Bearer {API_KEY}")], Expect.OK),
        ("x-api-key-control", [("X-API-Key", API_KEY)], Expect.OK),
    ):
        yield Case(f"auth-{label}", request_bytes("GET", model, headers), expect, keyed=True)
    yield Case(
        "auth-key-in-query", request_bytes("GET", f"{model}?api_key={API_KEY}"), bad, keyed=True
    )
    yield Case("auth-classify-no-key", raw_post(CLASSIFY, GOOD_PNG, "image/png"), bad, keyed=True)
    yield Case(
        "auth-classify-no-key-large-body",
        raw_post(CLASSIFY, GOOD_PNG * 50, "image/png"),
        bad,
        keyed=True,
    )
