"""The hostile-input corpus: each case is the exact bytes of one request and what may answer it.

Every case must be answered below 500 within its timeout; a 4xx must be the documented JSON
error. `Expect.REFUSED` cases must be refused (4xx), `Expect.OK` ones served (2xx), `Expect.SAFE`
ones may go either way. `before_app` marks requests that HTTP itself (uvicorn's parser) may
refuse with its own plain-text 4xx before the application sees them: the lead decides whether
those must become JSON too.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

import hostile_images as img
from hostile_http import httpx_request_bytes, request_bytes

# Limits of the corpus server (see test_hostile_corpus.py): small, so the bombs stay cheap.
MAX_PIXELS = 4_000_000
MAX_UPLOAD_BYTES = 1_000_000
MAX_IMAGES = 4
VERSION = 1
API_KEY = "corpus-key-1"
CLASSIFY = "/v1/models/fashion/classify"
TIMEOUT_S = 5.0
# Requests whose body never fully arrives: only a server-side read timeout can answer them.
BODY_WAIT_TIMEOUT_S = 15.0


class Expect(Enum):
    OK = "2xx"
    REFUSED = "4xx"
    SAFE = "any status below 500"


@dataclass(frozen=True)
class Case:
    id: str
    data: bytes
    expect: Expect = Expect.SAFE
    before_app: bool = False
    timeout_s: float = TIMEOUT_S
    head: bool = False
    # Sent one at a time (beside the others), so one slow decode cannot time out the next.
    alone: bool = False
    # Sent to the second server, which requires the API key `API_KEY`.
    keyed: bool = False


def upload(
    data: bytes, filename: str = "item.png", content_type: str = "image/png", path: str = CLASSIFY
) -> bytes:
    return httpx_request_bytes("POST", path, files={"file": (filename, data, content_type)})


def raw_post(path: str, body: bytes, content_type: str | None, **kwargs: Any) -> bytes:
    headers = [("Content-Type", content_type)] if content_type is not None else []
    return request_bytes("POST", path, headers, body, **kwargs)


def post_json(body: bytes | Any, content_type: str = "application/json") -> bytes:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return raw_post(CLASSIFY, raw, content_type)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


GOOD_PNG = img.valid("png")


def image_cases() -> Iterator[Case]:
    fmts = list(img.FORMATS)
    for position, fmt in enumerate(fmts):
        _, ext, ctype = img.FORMATS[fmt]
        good = img.valid(fmt)
        header = img.header_length(fmt)
        name = f"item.{ext}"

        def case(
            label: str,
            data: bytes,
            expect: Expect,
            fmt: str = fmt,
            name: str = name,
            ctype: str = ctype,
        ) -> Case:
            return Case(f"image-{fmt}-{label}", upload(data, name, ctype), expect)

        yield case("valid", good, Expect.OK)
        yield Case(f"image-{fmt}-raw-body", raw_post(CLASSIFY, good, ctype), Expect.OK)
        yield case("empty", b"", Expect.REFUSED)
        yield Case(f"image-{fmt}-raw-empty", raw_post(CLASSIFY, b"", ctype), Expect.REFUSED)
        for cut in (4, 12):
            yield case(f"truncated-at-{cut}", good[:cut], Expect.REFUSED)
        yield case("header-only", good[:header], Expect.REFUSED)
        yield case("truncated-at-half", good[: len(good) // 2], Expect.REFUSED)
        yield case("truncated-last-byte", good[:-1], Expect.SAFE)
        yield case("wrong-magic", b"\0\0\0\0" + good[4:], Expect.REFUSED)
        garbage = bytes(range(256)) * 4
        yield case("garbage-after-header", good[:header] + garbage, Expect.SAFE)
        yield case("trailing-garbage", good + garbage, Expect.SAFE)
        huge = 16384 if fmt == "webp" else 60000
        yield case(f"forged-{huge}x{huge}", img.with_size(fmt, huge, huge), Expect.REFUSED)
        # Too little pixel data for the size: libjpeg pads such a JPEG with grey and warns.
        short = Expect.SAFE if fmt == "jpeg" else Expect.REFUSED
        yield case("forged-1000x1000", img.with_size(fmt, 1000, 1000), short)
        if fmt != "webp":  # VP8L stores width-1: a zero size cannot be written
            yield case("zero-width", img.with_size(fmt, 0, 32), Expect.REFUSED)
            yield case("zero-height", img.with_size(fmt, 32, 0), Expect.REFUSED)
        other = fmts[(position + 1) % len(fmts)]
        _, other_ext, other_ctype = img.FORMATS[other]
        yield Case(
            f"image-{fmt}-disguised-as-{other}",
            upload(good, f"item.{other_ext}", other_ctype),
            Expect.SAFE,
        )
        yield Case(
            f"image-{fmt}-as-text-plain",
            upload(good, "item.txt", "text/plain"),
            Expect.SAFE,
        )
    noise = bytes(range(256)) * 8
    yield Case("image-not-an-image", upload(noise, "x.png"), Expect.REFUSED)
    yield Case(
        "image-svg",
        upload(b"<svg xmlns='http://www.w3.org/2000/svg'/>", "x.svg", "image/svg+xml"),
        Expect.REFUSED,
    )
    yield Case("image-png-bad-ihdr-crc", upload(img.png(28, 28, ihdr_crc=0)), Expect.REFUSED)
    yield Case("image-png-bad-idat-crc", upload(img.png(28, 28, idat_crc=0)), Expect.SAFE)
    yield Case("image-png-no-iend", upload(img.png(28, 28, iend=False)), Expect.SAFE)
    yield Case("image-png-bit-depth-3", upload(img.png(28, 28, bit_depth=3)), Expect.REFUSED)
    yield Case("image-png-colour-type-5", upload(img.png(28, 28, colour_type=5)), Expect.REFUSED)
    yield Case("image-png-idat-not-zlib", upload(img.png(28, 28, idat=noise)), Expect.REFUSED)
    yield Case(
        "image-bmp-negative-width",
        upload(img.with_size("bmp", -32, 32), "x.bmp", "image/bmp"),
        Expect.REFUSED,
    )
    yield Case(
        "image-tiff-strip-past-end",
        upload(img.tiff(28, 28, data=b"\0" * 10, strip_bytes=10**9), "x.tif", "image/tiff"),
        Expect.REFUSED,
    )


def bomb_cases() -> Iterator[Case]:
    side_over, side_under = (2001, 2000), (2000, 1999)  # MAX_PIXELS is 2000x2000
    for label, (w, h), expect in (
        ("over", side_over, Expect.REFUSED),
        ("under", side_under, Expect.SAFE),
    ):
        yield Case(f"bomb-png-{w}x{h}-{label}-max-pixels", upload(img.png(w, h)), expect)
        yield Case(
            f"bomb-gif-{w}x{h}-{label}-max-pixels",
            upload(img.blank("L", w, h, "gif"), "b.gif", "image/gif"),
            expect,
        )
        yield Case(
            f"bomb-jpeg-{w}x{h}-{label}-max-pixels",
            upload(img.blank("L", w, h, "jpeg"), "b.jpg", "image/jpeg"),
            expect,
        )
        yield Case(
            f"bomb-tiff-{w}x{h}-{label}-max-pixels",
            upload(
                img.blank("L", w, h, "tiff", compression="tiff_adobe_deflate"),
                "b.tif",
                "image/tiff",
            ),
            expect,
        )
        yield Case(
            f"bomb-bmp-rle8-{w}x{h}-{label}-max-pixels",
            upload(img.bmp_rle8(w, h), "b.bmp", "image/bmp"),
            expect,
        )
        yield Case(
            f"bomb-webp-{w}x{h}-{label}-max-pixels",
            upload(img.blank("L", w, h, "webp"), "b.webp", "image/webp"),
            expect,
        )
    w, h = side_under
    yield Case("bomb-png-16-bit-grey", upload(img.png(w, h, bit_depth=16)))
    yield Case("bomb-png-16-bit-rgba", upload(img.png(1000, 1000, bit_depth=16, colour_type=6)))
    for mode, label in (("I;16", "16-bit"), ("I", "32-bit-int"), ("F", "32-bit-float")):
        data = img.blank(mode, w, h, "tiff", compression="tiff_adobe_deflate")
        yield Case(f"bomb-tiff-{label}", upload(data, "b.tif", "image/tiff"))
    nan_inf = (b"\x00\x00\xc0\x7f" + b"\x00\x00\x80\x7f" + b"\x00\x00\x80\xff") * 12
    yield Case(
        "bomb-tiff-float-nan-inf",
        upload(img.tiff(6, 6, bits=32, sample_format=3, data=nan_inf), "f.tif", "image/tiff"),
    )
    # Letterboxing pads to a square of the long side: the extremes ask for terabytes (refused
    # by the allocator at once), 20000x200 for 400 MB. Longer sides between those would really
    # allocate gigabytes on this shared machine, so they are left to the benchmarks.
    for w, h in (
        (1, MAX_PIXELS),
        (MAX_PIXELS, 1),
        (2, MAX_PIXELS // 2),
        (MAX_PIXELS // 2, 2),
        (20000, 200),
        (4000, 1000),
        (1000, 4000),
    ):
        yield Case(f"bomb-aspect-png-{w}x{h}", upload(img.png(w, h)))
    yield Case(
        "bomb-aspect-gif-8000x500", upload(img.blank("L", 8000, 500, "gif"), "a.gif", "image/gif")
    )
    yield Case(
        "bomb-aspect-jpeg-500x8000",
        upload(img.blank("L", 500, 8000, "jpeg"), "a.jpg", "image/jpeg"),
    )
    yield Case(
        "bomb-aspect-png-json-1x4000000",
        post_json({"instances": [{"b64": b64(img.png(1, MAX_PIXELS))}]}),
    )
    yield Case("bomb-deflate-png-2000x2000-zeros", upload(img.png(2000, 2000)))
    yield Case("bomb-deflate-png-ztxt-64mb", upload(img.png_text_bomb(64 * 2**20)))
    yield Case(
        "bomb-deflate-png-idat-64mb-for-28x28", upload(img.png_idat_bomb(28, 28, 64 * 2**20))
    )
    yield Case("bomb-frames-gif-300x16x16", upload(img.gif_frames(300, 16), "f.gif", "image/gif"))
    yield Case("bomb-frames-gif-2000x2x2", upload(img.gif_frames(2000, 2), "f.gif", "image/gif"))
    yield Case(
        "bomb-frames-tiff-200-pages",
        upload(
            img.pillow(
                img.noise(8, 8),
                "tiff",
                save_all=True,
                append_images=[img.noise(8, 8, s) for s in range(199)],
            ),
            "p.tif",
            "image/tiff",
        ),
    )


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
    "classify": ("POST", "/v1/models/{m}/classify"),
    "version-classify": ("POST", f"/v1/models/{{m}}/versions/{VERSION}/classify"),
    "alias-classify": ("POST", "/v1/models/{m}/labels/latest/classify"),
    "get-model": ("GET", "/v1/models/{m}"),
    "get-version": ("GET", f"/v1/models/{{m}}/versions/{VERSION}"),
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
    "version-classify": ("POST", "/v1/models/fashion/versions/{v}/classify"),
    "get-version": ("GET", "/v1/models/fashion/versions/{v}"),
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


def path_cases() -> Iterator[Case]:
    bad = Expect.REFUSED
    for route, (method, template) in MODEL_ROUTES.items():
        for label, name in BAD_NAMES.items():
            yield Case(
                f"path-model-{label}-{route}",
                _call(method, template.format(m=name)),
                bad,
                before_app=label == "raw-utf8-bytes",  # httptools refuses non-ASCII targets
            )
    for route, (method, template) in VERSION_ROUTES.items():
        for label, version in BAD_VERSIONS.items():
            yield Case(
                f"path-version-{label}-{route}", _call(method, template.format(v=version)), bad
            )
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


def _alone(cases: Iterator[Case]) -> Iterator[Case]:
    for case in cases:
        yield replace(case, alone=True)


def all_cases() -> list[Case]:
    cases = [
        *image_cases(),
        *_alone(bomb_cases()),
        *multipart_cases(),
        *json_cases(),
        *header_cases(),
        *path_cases(),
        *method_cases(),
        *query_cases(),
        *auth_cases(),
    ]
    ids = [case.id for case in cases]
    duplicates = {i for i in ids if ids.count(i) > 1}
    assert not duplicates, f"duplicate case ids: {sorted(duplicates)}"
    return cases
