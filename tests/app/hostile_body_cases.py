"""Hostile request bodies: malformed multipart forms and malformed or abusive JSON."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

from hostile_common import CLASSIFY, GOOD_PNG, MAX_IMAGES, Case, Expect, b64, post_json, raw_post


def _part(headers: str, body: bytes) -> bytes:
    return headers.replace("\n", "\r\n").encode() + b"\r\n\r\n" + body + b"\r\n"


FILE_PART = 'Content-Disposition: form-data; name="file"; filename="a.png"\nContent-Type: image/png'


def multipart(
    body: bytes, boundary: str | None = "XyZ", media: str = "multipart/form-data", **kwargs: Any
) -> bytes:
    ctype = media if boundary is None else f"{media}; boundary={boundary}"
    return raw_post(CLASSIFY, body, ctype, **kwargs)


def multipart_cases() -> Iterator[Case]:
    good = b"--XyZ\r\n" + _part(FILE_PART, GOOD_PNG) + b"--XyZ--\r\n"
    bad = Expect.REFUSED
    yield Case("multipart-control", multipart(good), Expect.OK)
    yield Case("multipart-missing-boundary", multipart(good, None), bad)
    yield Case("multipart-empty-boundary", multipart(good, ""), bad)
    yield Case("multipart-wrong-boundary", multipart(good, "Other"), bad)
    yield Case("multipart-quoted-boundary", multipart(good, '"XyZ"'), Expect.OK)
    long = "b" * 200
    yield Case("multipart-boundary-200-chars", multipart(good.replace(b"XyZ", long.encode()), long))
    yield Case(
        "multipart-unterminated-part", multipart(b"--XyZ\r\n" + _part(FILE_PART, GOOD_PNG)), bad
    )
    yield Case(
        "multipart-ends-mid-headers", multipart(b"--XyZ\r\nContent-Disposition: form-da"), bad
    )
    yield Case("multipart-empty-body", multipart(b""), bad)
    yield Case("multipart-preamble-only", multipart(b"hello there\r\n"), bad)
    yield Case("multipart-no-parts", multipart(b"--XyZ--\r\n"), bad)
    for field in ("image", "files", "File", "file[]"):
        headers = FILE_PART.replace('name="file"', f'name="{field}"')
        yield Case(
            f"multipart-field-named-{field}",
            multipart(b"--XyZ\r\n" + _part(headers, GOOD_PNG) + b"--XyZ--\r\n"),
            bad,
        )
    text = 'Content-Disposition: form-data; name="file"'
    yield Case(
        "multipart-file-field-not-a-file",
        multipart(b"--XyZ\r\n" + _part(text, GOOD_PNG) + b"--XyZ--\r\n"),
        bad,
    )
    yield Case(
        "multipart-empty-file",
        multipart(b"--XyZ\r\n" + _part(FILE_PART, b"") + b"--XyZ--\r\n"),
        bad,
    )
    for count in (MAX_IMAGES + 1, 100):
        body = b"--XyZ\r\n".join([b""] + [_part(FILE_PART, GOOD_PNG)] * count) + b"--XyZ--\r\n"
        yield Case(f"multipart-{count}-files", multipart(body), bad)
    body = b"--XyZ\r\n".join([b""] + [_part(text + str(i), b"x") for i in range(500)])
    yield Case("multipart-500-text-fields", multipart(body + b"--XyZ--\r\n"), bad)
    for size in (16_000, 200_000):
        headers = FILE_PART.replace("a.png", "a" * size + ".png")
        yield Case(
            f"multipart-part-header-{size // 1000}kb",
            multipart(b"--XyZ\r\n" + _part(headers, GOOD_PNG) + b"--XyZ--\r\n"),
        )
    many = FILE_PART + "".join(f"\nX-Pad-{i}: {i}" for i in range(2000))
    yield Case(
        "multipart-2000-part-headers",
        multipart(b"--XyZ\r\n" + _part(many, GOOD_PNG) + b"--XyZ--\r\n"),
    )
    inner = b"--In\r\n" + _part(FILE_PART, GOOD_PNG) + b"--In--\r\n"
    nested = (
        'Content-Disposition: form-data; name="file"\nContent-Type: multipart/mixed; boundary=In'
    )
    yield Case(
        "multipart-nested-mixed",
        multipart(b"--XyZ\r\n" + _part(nested, inner) + b"--XyZ--\r\n"),
        bad,
    )
    nested_file = nested.replace('name="file"', 'name="file"; filename="n.png"')
    yield Case(
        "multipart-nested-as-file",
        multipart(b"--XyZ\r\n" + _part(nested_file, inner) + b"--XyZ--\r\n"),
        bad,
    )
    twice = FILE_PART + '\nContent-Disposition: form-data; name="other"'
    yield Case(
        "multipart-duplicate-content-disposition",
        multipart(b"--XyZ\r\n" + _part(twice, GOOD_PNG) + b"--XyZ--\r\n"),
    )
    yield Case(
        "multipart-no-content-disposition",
        multipart(b"--XyZ\r\n" + _part("Content-Type: image/png", GOOD_PNG) + b"--XyZ--\r\n"),
        bad,
    )
    yield Case(
        "multipart-header-without-colon",
        multipart(b"--XyZ\r\n" + _part(FILE_PART + "\nNoColonHere", GOOD_PNG) + b"--XyZ--\r\n"),
    )
    for label, filename in (
        ("traversal", "../../etc/passwd"),
        ("unicode", "Ünïcødé😀.png"),
        ("empty", ""),
    ):
        headers = FILE_PART.replace('"a.png"', json.dumps(filename, ensure_ascii=False))
        yield Case(
            f"multipart-filename-{label}",
            multipart(b"--XyZ\r\n" + _part(headers, GOOD_PNG) + b"--XyZ--\r\n"),
        )
    yield Case("multipart-mixed-media-type", multipart(good, media="multipart/mixed"), bad)
    encoded = FILE_PART + "\nContent-Transfer-Encoding: base64"
    yield Case(
        "multipart-base64-transfer-encoding",
        multipart(b"--XyZ\r\n" + _part(encoded, base64.b64encode(GOOD_PNG)) + b"--XyZ--\r\n"),
    )
    yield Case("multipart-lf-line-endings", multipart(good.replace(b"\r\n", b"\n")))
    yield Case(
        "multipart-text-and-file-named-file",
        multipart(
            b"--XyZ\r\n"
            + _part(text, b"hello")
            + b"--XyZ\r\n"
            + _part(FILE_PART, GOOD_PNG)
            + b"--XyZ--\r\n"
        ),
    )


def json_cases() -> Iterator[Case]:
    bad = Expect.REFUSED
    good = b64(GOOD_PNG)
    yield Case("json-control", post_json({"instances": [{"b64": good}]}), Expect.OK)
    yield Case("json-invalid-utf8", post_json(b'{"instances": [{"b64": "\xff\xfe\xfd"}]}'), bad)
    yield Case("json-truncated", post_json(b'{"instances": [{"b64": "iVBORw0'), bad)
    yield Case("json-empty-body", post_json(b""), bad)
    yield Case("json-whitespace-body", post_json(b" \n\t "), bad)
    yield Case("json-deep-arrays-2500", post_json(b"[" * 2500 + b"]" * 2500), bad)
    yield Case(
        "json-deep-objects-2500-in-instance",
        post_json(b'{"instances": [' + b'{"a":' * 2500 + b"1" + b"}" * 2500 + b"]}"),
        bad,
    )
    yield Case("json-deep-arrays-100000", post_json(b"[" * 100_000 + b"]" * 100_000), bad)
    digits = b"9" * 5000
    yield Case("json-huge-int-top-level", post_json(digits), bad)
    yield Case("json-huge-int-as-instances", post_json(b'{"instances": ' + digits + b"}"), bad)
    yield Case("json-huge-int-as-b64", post_json(b'{"instances": [{"b64": ' + digits + b"}]}"), bad)
    yield Case(
        "json-huge-int-beside-valid-instance",
        post_json(b'{"instances": [{"b64": "' + good.encode() + b'"}], "n": ' + digits + b"}"),
    )
    yield Case("json-huge-float", post_json(b'{"instances": 1e999999}'), bad)
    for token in (b"NaN", b"Infinity", b"-Infinity"):
        yield Case(
            f"json-{token.decode()}-as-instances", post_json(b'{"instances": ' + token + b"}"), bad
        )
        yield Case(
            f"json-{token.decode()}-as-b64",
            post_json(b'{"instances": [{"b64": ' + token + b"}]}"),
            bad,
        )
    for label, doc in (
        ("array", []),
        ("string", "x"),
        ("number", 1),
        ("null", None),
        ("true", True),
    ):
        yield Case(f"json-top-level-{label}", post_json(doc), bad)
    for label, value in (
        ("object", {}),
        ("string", "x"),
        ("number", 3),
        ("null", None),
        ("true", True),
        ("object-with-b64", {"b64": good}),
    ):
        yield Case(f"json-instances-as-{label}", post_json({"instances": value}), bad)
    for label, value in (
        ("string", good),
        ("list", [good]),
        ("null", None),
        ("number", 1),
        ("empty-object", {}),
        ("object-without-b64", {"image": good}),
    ):
        yield Case(f"json-instance-as-{label}", post_json({"instances": [value]}), bad)
    for label, value in (
        ("number", 1),
        ("null", None),
        ("object", {"b64": good}),
        ("list", [good]),
        ("true", True),
        ("empty-string", ""),
    ):
        yield Case(f"json-b64-as-{label}", post_json({"instances": [{"b64": value}]}), bad)
    for label, value in (
        ("bad-chars", "***"),
        ("bad-padding", "abc"),
        ("only-padding", "===="),
        ("unicode", "ÿÿÿÿ"),
        ("urlsafe-alphabet", "-_-_"),
        ("data-uri", "data:image/png;base64," + good),
    ):
        yield Case(f"json-b64-invalid-{label}", post_json({"instances": [{"b64": value}]}), bad)
    yield Case("json-b64-lone-surrogate", post_json(b'{"instances": [{"b64": "\\ud800"}]}'), bad)
    for label, data in (
        ("text", b"hello world"),
        ("html", b"<html></html>"),
        ("zeros", b"\0" * 1000),
    ):
        yield Case(f"json-b64-of-{label}", post_json({"instances": [{"b64": b64(data)}]}), bad)
    for count, instance in (
        (MAX_IMAGES + 1, {"b64": ""}),
        (10_000, {}),
        (60_000, {"b64": ""}),
        (100_000, {}),
    ):
        label = "empty-b64" if instance else "empty-objects"
        yield Case(f"json-{count}-{label}", post_json({"instances": [instance] * count}), bad)
    yield Case(
        "json-duplicate-instances-key",
        post_json(b'{"instances": [], "instances": [{"b64": "' + good.encode() + b'"}]}'),
    )
    yield Case(
        "json-duplicate-b64-key",
        post_json(b'{"instances": [{"b64": "***", "b64": "' + good.encode() + b'"}]}'),
    )
    body = json.dumps({"instances": [{"b64": good}]}).encode()
    yield Case("json-utf8-bom", post_json(b"\xef\xbb\xbf" + body))
    yield Case(
        "json-utf16", post_json(body.decode().encode("utf-16"), "application/json; charset=utf-16")
    )
    yield Case("json-plus-json-type", post_json(body, "application/vnd.tagger+json"), Expect.OK)
    yield Case("json-plus-json-type-invalid", post_json(b"{", "application/problem+json"), bad)
    yield Case(
        "json-long-unknown-string", post_json({"instances": [{"b64": good}], "pad": "x" * 500_000})
    )
    for label, raw in (
        ("comment", b'{"instances": [] /* c */}'),
        ("trailing-comma", b'{"instances": [],}'),
        ("single-quotes", b"{'instances': []}"),
    ):
        yield Case(f"json-{label}", post_json(raw), bad)
