"""The hostile-input corpus's shared parts: the case type, the corpus server's limits, builders.

Every case must be answered below 500 within its timeout; a 4xx must be the documented JSON
error. `Expect.REFUSED` cases must be refused (4xx), `Expect.OK` ones served (2xx), `Expect.SAFE`
ones may go either way. `before_app` marks requests that HTTP's parser refuses before the
application sees them; app.server answers those with the same JSON error shape (checked too).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
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
