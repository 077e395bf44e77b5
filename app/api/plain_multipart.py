"""The plain multipart bodies that nearly every client sends, split without a streaming parser.

`file_parts` reads a whole buffered body and returns its file parts, or None for anything it
does not recognise exactly (a preamble, other fields, other part headers, quoting or escapes
in a parameter, a missing filename, a missing close delimiter). None sends the request down
the general path (Starlette's `MultiPartParser` in `app.api.uploads`), which either reads it
the same way or names the problem; what this returns equals what that parser would read
(tests/app/test_plain_multipart.py compares the two).
"""

from __future__ import annotations

import re

from app.core.decoding import Upload

# One parameter of a header value: `; key=value` or `; key="value"`, without escapes.
_PARAMETER = re.compile(rb';[ \t]*([A-Za-z0-9_*-]+)=("[^"\\\r\n]*"|[^";\\\s]+)[ \t]*')
# Filenames taken as they are: printable ASCII without quote, backslash or percent (the general
# parser rewrites Windows paths and decodes RFC 2231 forms).
_PLAIN_FILENAME = re.compile(rb"[\x20-\x21\x23-\x24\x26-\x5b\x5d-\x7e]+")
# A part's header line: printable ASCII and tabs (no stray CR or LF, no other controls).
_HEADER_LINE = re.compile(rb"[\t\x20-\x7e]*")
_MULTIPART = b"multipart/form-data"


def boundary_of(content_type: bytes) -> bytes | None:
    """The boundary of a `multipart/form-data; boundary=...` Content-Type; None otherwise."""
    kind, _, rest = content_type.partition(b";")
    if kind.strip().lower() != _MULTIPART:
        return None
    parameters = _parameters(b";" + rest)
    if parameters is None or set(parameters) != {b"boundary"}:
        return None
    boundary = parameters[b"boundary"]
    return boundary if 0 < len(boundary) <= 70 else None


def file_parts(body: bytes, boundary: bytes, field: str, max_parts: int) -> list[Upload] | None:
    """The files of form field `field`, in order; None unless the body is nothing but at most
    `max_parts` plain file parts of that field."""
    delimiter = b"\r\n--" + boundary
    pieces = (b"\r\n" + body).split(delimiter)
    # pieces: the empty preamble, the parts (each starting with CRLF), the close delimiter's rest.
    if len(pieces) < 3 or pieces[0] or pieces[-1] not in (b"--", b"--\r\n"):
        return None
    parts = pieces[1:-1]
    if len(parts) > max_parts:
        return None
    uploads = []
    wanted = field.encode()
    for part in parts:
        head, separator, data = part.partition(b"\r\n\r\n")
        if not separator or not head.startswith(b"\r\n"):
            return None
        filename = _plain_file_part(head[2:], wanted)
        if filename is None:
            return None
        uploads.append(Upload(data, filename))
    return uploads


def _plain_file_part(head: bytes, field: bytes) -> str | None:
    """The filename of a part whose headers are a form-data disposition naming `field` with a
    plain filename, and at most a Content-Type; None for any other part."""
    disposition = None
    for line in head.split(b"\r\n"):
        name, colon, value = line.partition(b":")
        name = name.lower()
        if not colon or not _HEADER_LINE.fullmatch(line):
            return None
        if name == b"content-disposition" and disposition is None:
            disposition = value.strip()
        elif name != b"content-type":
            return None
    if disposition is None:
        return None
    kind, _, rest = disposition.partition(b";")
    if kind.strip().lower() != b"form-data":
        return None
    parameters = _parameters(b";" + rest)
    if parameters is None or set(parameters) != {b"name", b"filename"}:
        return None
    filename = parameters[b"filename"]
    if parameters[b"name"] != field or not _PLAIN_FILENAME.fullmatch(filename):
        return None
    return filename.decode("ascii")


def _parameters(text: bytes) -> dict[bytes, bytes] | None:
    """`; key=value` pairs (keys lower-cased, quotes removed); None if anything else is there
    or a key repeats."""
    parameters: dict[bytes, bytes] = {}
    position = 0
    for match in _PARAMETER.finditer(text):
        if match.start() != position:
            return None
        key, value = match.group(1).lower(), match.group(2)
        if key in parameters:
            return None
        parameters[key] = value[1:-1] if value.startswith(b'"') else value
        position = match.end()
    if position != len(text.rstrip()):
        return None
    return parameters
