"""Bounded JSON request bodies: depth, value count and instance count checked while scanning.

`json.loads` alone reads a whole document before anything can be checked, builds every value
first and recurses once per nesting level: a 10 MB body of 900,000 tiny instances, or of a
million nulls, costs seconds before its size can be refused, and deep nesting raises
`RecursionError`. So the body is first scanned for its structure with one compiled regex that
steps over strings in C; the scan stops at the first limit passed, and only a document that
passed it reaches `json.loads`, whose work is then bounded too.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

INSTANCES_KEY = "instances"
_STRUCTURE = re.compile(rb'[\[\]{},:"]')
_WINDOW_BYTES = 1 << 20
_KEY_BYTES = 64
_QUOTE, _COLON, _OPEN_ARRAY = ord('"'), ord(":"), ord("[")
_OPEN, _CLOSE = frozenset(b"[{"), frozenset(b"]}")
_INSTANCES_TOKEN = json.dumps(INSTANCES_KEY).encode()


class JsonBodyError(Exception):
    """The body is refused: `status` and `code` are what the client is told."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class JsonLimits:
    max_depth: int
    max_values: int
    max_instances: int


def parse_json_body(body: bytes, limits: JsonLimits) -> Any:
    """The document in `body`, refused with `JsonBodyError` when malformed or past a limit."""
    check_structure(body, limits)
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise JsonBodyError(400, "malformed_json", f"the body is not valid JSON: {exc}") from exc
    except (ValueError, RecursionError) as exc:  # e.g. an integer of more than 4,300 digits
        raise JsonBodyError(400, "malformed_json", f"the body is not valid JSON: {exc}") from exc


def check_structure(body: bytes, limits: JsonLimits) -> None:
    """Refuse `body` at the first point where it nests deeper than `max_depth`, holds more
    than `max_values` values or its top-level `instances` array more than `max_instances`.

    The counts are those of a valid JSON prefix: where the body is malformed, `json.loads`
    stops no later than this scan does, so its work is bounded by the same limits. Each step
    is a C call over at most `_WINDOW_BYTES`, so the thread running it never holds the GIL long.
    """
    view = _structure_view(body)
    stack: list[int] = []  # the opening characters of the containers we are in
    values = 0  # containers opened plus separators: an upper bound of the values read so far
    last_string = b""  # the token before, when it was a short string (a key, perhaps)
    top_key = b""
    instances_separators = -1  # commas seen in the top-level instances array; -1: not in it
    position, size = 0, len(view)
    while position < size:
        match = _STRUCTURE.search(view, position, position + _WINDOW_BYTES)
        if match is None:
            position += _WINDOW_BYTES
            continue
        start = match.start()
        char = view[start]
        position = start + 1
        if char == _QUOTE:
            end = view.find(b'"', position)
            if end < 0:
                return  # unterminated: json.loads refuses it
            last_string = view[start : end + 1] if end - start <= _KEY_BYTES else b""
            position = end + 1
            continue
        previous, last_string = last_string, b""
        if char == _COLON:
            if len(stack) == 1:
                top_key = previous
            continue
        if char in _OPEN:
            values += 1
            if len(stack) >= limits.max_depth:
                raise JsonBodyError(
                    400,
                    "json_too_deep",
                    f"the JSON body nests deeper than {limits.max_depth} levels",
                )
            if len(stack) == 1 and char == _OPEN_ARRAY and top_key == _INSTANCES_TOKEN:
                instances_separators = 0
            stack.append(char)
        elif char in _CLOSE:
            if stack:
                stack.pop()
            if len(stack) < 2:
                instances_separators = -1
        else:  # a comma
            values += 1
            if len(stack) == 2 and instances_separators >= 0:
                instances_separators += 1
                if instances_separators >= limits.max_instances:
                    raise JsonBodyError(
                        413,
                        "too_many_images",
                        f"more than {limits.max_instances} instances in one request; "
                        f"the limit is {limits.max_instances}",
                    )
        if values > limits.max_values:
            raise JsonBodyError(
                413, "json_too_large", f"the JSON body holds more than {limits.max_values} values"
            )


def _structure_view(body: bytes) -> bytes:
    """`body` with every escaped backslash and escaped quote blanked out (C-speed replaces),
    so the next `"` after an opening quote is the string's end. In a valid string each run of
    backslashes starts an escape, so pairing them from the left is how a parser reads them."""
    if b"\\" not in body:
        return body
    return body.replace(b"\\\\", b"__").replace(b'\\"', b"__")
