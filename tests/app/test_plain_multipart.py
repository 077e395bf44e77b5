"""`app.api.plain_multipart` reads exactly what Starlette's parser reads, or declines.

Every body it accepts is also parsed by Starlette's `MultiPartParser` (the general path), and the
two must give the same files; the bodies real clients send must be accepted (else the fast
path never runs), and the unusual ones declined (the general path names their problems).
"""

from __future__ import annotations

import asyncio
import random

import httpx
import pytest
from starlette.datastructures import Headers, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from app.api.plain_multipart import boundary_of, file_parts

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR--x\r\n--\r\n\r\nend"
BOUNDARY = b"b0undary"
MAX_PARTS = 4


def _part(head: bytes, data: bytes, boundary: bytes = BOUNDARY) -> bytes:
    return b"--" + boundary + b"\r\n" + head + b"\r\n\r\n" + data + b"\r\n"


def _form(parameters: bytes) -> bytes:
    return b"Content-Disposition: form-data; " + parameters


def _body(*parts: bytes, boundary: bytes = BOUNDARY, close: bytes = b"--\r\n") -> bytes:
    return b"".join(parts) + b"--" + boundary + close


def _file(name: str = "a.png", data: bytes = PNG, field: str = "file") -> bytes:
    head = f'Content-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
    return _part(head.encode() + b"Content-Type: image/png", data)


def _starlette(body: bytes, content_type: bytes) -> list[tuple[str, bytes]] | None:
    """What the general path reads: (filename, bytes) of each `file`; None if it refuses or
    finds anything but file uploads there."""

    async def stream():
        yield body

    async def parse() -> list[tuple[str, bytes]] | None:
        headers = Headers(raw=[(b"content-type", content_type)])
        parser = MultiPartParser(headers, stream(), max_files=MAX_PARTS, max_fields=100)
        try:
            form = await parser.parse()
        except MultiPartException:
            return None
        files = []
        for index, value in enumerate(form.getlist("file")):
            if not isinstance(value, UploadFile):
                return None
            files.append((value.filename or f"file[{index}]", await value.read()))
        await form.close()
        return files

    return asyncio.run(parse())


def _plain(body: bytes, content_type: bytes) -> list[tuple[str, bytes]] | None:
    boundary = boundary_of(content_type)
    if boundary is None:
        return None
    uploads = file_parts(body, boundary, "file", MAX_PARTS)
    return None if uploads is None else [(u.name, u.data) for u in uploads]


def _httpx_body(files: list[tuple[str, tuple[str, bytes, str]]]) -> tuple[bytes, bytes]:
    request = httpx.Request("POST", "http://x/", files=files)
    return request.read(), request.headers["content-type"].encode()


CONTENT_TYPE = b"multipart/form-data; boundary=" + BOUNDARY

ACCEPTED = {
    "one file": _body(_file()),
    "three files": _body(_file("a.png"), _file("b.png", b"\x00" * 40), _file("c d.png", b"")),
    "no trailing CRLF": _body(_file(), close=b"--"),
    "no part Content-Type": _body(_part(_form(b'name="file"; filename="x"'), PNG)),
    "lower-case headers, unquoted name": _body(
        _part(
            b'content-disposition: form-data; name=file; filename="x.png"\r\ncontent-type: a/b',
            PNG,
        )
    ),
    "filename first": _body(_part(_form(b'filename="y.png"; name="file"'), PNG)),
    "data full of CRLF and dashes": _body(_file(data=b"\r\n--b0undar\r\n\r\n--\r\n")),
}

DECLINED = {
    "preamble": b"hello\r\n" + _body(_file()),
    "epilogue": _body(_file(), close=b"--\r\nmore"),
    "no close delimiter": _body(_file(), close=b"\r\n"),
    "a text field": _body(_file(), _part(b'Content-Disposition: form-data; name="note"', b"hi")),
    "another field name": _body(_file(field="image")),
    "no filename": _body(_part(b'Content-Disposition: form-data; name="file"', PNG)),
    "empty filename": _body(_part(_form(b'name="file"; filename=""'), PNG)),
    "windows path": _body(_file("C:\\\\photos\\\\a.png")),
    "RFC 2231 filename": _body(
        _part(b"Content-Disposition: form-data; name=\"file\"; filename*=utf-8''a%20b.png", PNG)
    ),
    "percent in filename": _body(_file("a%20b.png")),
    "escaped quote": _body(_file('a\\"b.png')),
    "transfer encoding": _body(
        _part(
            b'Content-Disposition: form-data; name="file"; filename="a"\r\n'
            b"Content-Transfer-Encoding: base64",
            b"iVBORw0K",
        )
    ),
    "two dispositions": _body(
        _part(
            b'Content-Disposition: form-data; name="file"; filename="a"\r\n'
            b'Content-Disposition: form-data; name="file"; filename="b"',
            PNG,
        )
    ),
    "repeated parameter": _body(
        _part(b'Content-Disposition: form-data; name="file"; name="file"; filename="a"', PNG)
    ),
    "not form-data": _body(
        _part(b'Content-Disposition: attachment; name="file"; filename="a"', PNG)
    ),
    "padding after the boundary": _body(_file().replace(BOUNDARY + b"\r\n", BOUNDARY + b"  \r\n")),
    "no header end": b"--"
    + BOUNDARY
    + b"\r\nContent-Disposition: form-data\r\n--"
    + BOUNDARY
    + b"--",
    "no parts": b"--" + BOUNDARY + b"--\r\n",
    "too many files": _body(*[_file(f"{i}.png") for i in range(MAX_PARTS + 1)]),
    "empty": b"",
}


@pytest.mark.parametrize("case", ACCEPTED)
def test_usual_bodies_are_read_as_the_general_parser_reads_them(case: str) -> None:
    body = ACCEPTED[case]
    plain = _plain(body, CONTENT_TYPE)
    assert plain is not None
    assert plain == _starlette(body, CONTENT_TYPE)


def test_the_bodies_httpx_sends_are_read() -> None:
    files = [("file", (f"{i}.png", bytes([i]) * (i + 1) + PNG, "image/png")) for i in range(3)]
    body, content_type = _httpx_body(files)
    plain = _plain(body, content_type)
    assert plain == [(f"{i}.png", bytes([i]) * (i + 1) + PNG) for i in range(3)]
    assert plain == _starlette(body, content_type)


@pytest.mark.parametrize("case", DECLINED)
def test_unusual_bodies_are_left_to_the_general_parser(case: str) -> None:
    assert _plain(DECLINED[case], CONTENT_TYPE) is None


@pytest.mark.parametrize(
    ("content_type", "boundary"),
    [
        (b"multipart/form-data; boundary=abc", b"abc"),
        (b'Multipart/Form-Data;boundary="a b:c"', b"a b:c"),
        (b"multipart/form-data; boundary=abc; charset=utf-8", None),
        (b"multipart/form-data", None),
        (b"multipart/form-data; boundary=", None),
        (b"multipart/form-data; boundary=" + b"x" * 71, None),
        (b"multipart/mixed; boundary=abc", None),
        (b"image/png", None),
    ],
)
def test_boundary_of(content_type: bytes, boundary: bytes | None) -> None:
    assert boundary_of(content_type) == boundary


def test_mutated_bodies_are_read_as_the_general_parser_reads_them_or_declined() -> None:
    """Thousands of random byte edits of usual bodies: whatever is accepted reads the same."""
    rng = random.Random(1234)
    seeds = list(ACCEPTED.values())
    alphabet = b'\r\n-;="\\ :%*abcfilenm' + BOUNDARY
    accepted = 0
    for _ in range(3000):
        body = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 3)):
            position = rng.randrange(len(body) + 1)
            edit = rng.random()
            if edit < 0.4 and position < len(body):
                del body[position]
            elif edit < 0.8:
                body.insert(position, rng.choice(alphabet))
            elif position < len(body):
                body[position] = rng.choice(alphabet)
        plain = _plain(bytes(body), CONTENT_TYPE)
        if plain is not None:
            accepted += 1
            assert plain == _starlette(bytes(body), CONTENT_TYPE), bytes(body)
    assert accepted > 300  # most edits land in the data, which the parsers read alike
