"""What the sync and async clients share: request planning, answers -> results, retry policy.

Kept free of any I/O so both clients send exactly the same requests and read answers the same way.
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from client.errors import (
    ConnectionFailed,
    ImageRejected,
    RequestRejected,
    ServiceUnavailable,
    TaggerError,
)
from client.images import Encoded
from client.results import ImageResult, Prediction

LIMITS_PATH = "/v1/limits"
# Used only against a server from before /v1/limits: its defaults (TAGGER_MAX_IMAGES_PER_REQUEST,
# TAGGER_MAX_UPLOAD_BYTES).
FALLBACK_MAX_IMAGES = 32
FALLBACK_MAX_UPLOAD_BYTES = 10 * 1024 * 1024
# Multipart framing per file (boundary, Content-Disposition, Content-Type), beside its name.
PART_OVERHEAD_BYTES = 256
# Statuses that say "this request, as sent, is wrong" and that a split cannot change.
_REQUEST_LEVEL_CODES = {"invalid_top_k"}
_IMAGE_STATUSES = {400, 413, 415, 422}
# 503: refused for load, with Retry-After; 504: the deadline passed in a queue (backoff).
RETRY_STATUSES = {503, 504}


@dataclass(frozen=True, slots=True)
class Limits:
    """What one classify request may carry, as the server reports it."""

    max_images_per_request: int
    max_upload_bytes: int

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> Limits:
        return cls(int(body["max_images_per_request"]), int(body["max_upload_bytes"]))

    @classmethod
    def fallback(cls) -> Limits:
        return cls(FALLBACK_MAX_IMAGES, FALLBACK_MAX_UPLOAD_BYTES)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """`attempts` tries in all; between them the server's Retry-After (503), else exponential
    backoff from `backoff_s` up to `max_backoff_s`, with jitter."""

    attempts: int = 4
    backoff_s: float = 0.2
    max_backoff_s: float = 10.0

    def delay_s(self, attempt: int, retry_after_s: float | None) -> float:
        backoff = min(self.max_backoff_s, self.backoff_s * 2**attempt)
        if retry_after_s is not None:
            # Never earlier than asked; a little later, so a crowd of clients spreads out.
            return retry_after_s + random.uniform(0, min(1.0, backoff))
        return backoff * random.uniform(0.5, 1.0)


def classify_path(model: str, version: int | None, alias: str | None) -> str:
    if version is not None and alias is not None:
        raise ValueError("give version or alias, not both")
    base = f"/v1/models/{quote(model, safe='')}"
    if version is not None:
        base += f"/versions/{int(version)}"
    elif alias is not None:
        base += f"/labels/{quote(alias, safe='')}"
    return base + "/classify"


def part_name(image: Encoded) -> str:
    """The multipart filename: the file's base name (the server names it in error messages)."""
    name = image.name.replace("\\", "/").rsplit("/", 1)[-1]
    if name.isprintable() and '"' not in name:  # the usual case, without a loop per character
        return name or "image"
    return "".join(c if c.isprintable() and c not in '"\r\n' else "_" for c in name) or "image"


def multipart_body(images: list[Encoded]) -> tuple[bytes, str]:
    """The request body (field `file`, repeated) and its Content-Type, built in one piece: sent
    as one buffer it costs one socket write, where httpx's streamed form costs several per file."""
    boundary = secrets.token_hex(16).encode()
    parts = []
    for image in images:
        parts += [
            b"--" + boundary + b"\r\n",
            b'Content-Disposition: form-data; name="file"; filename="',
            part_name(image).encode(),
            b'"\r\nContent-Type: application/octet-stream\r\n\r\n',
            image.data,
            b"\r\n",
        ]
    parts.append(b"--" + boundary + b"--\r\n")
    return b"".join(parts), f"multipart/form-data; boundary={boundary.decode()}"


def plan_chunks(images: list[Encoded], limits: Limits) -> list[list[int]]:
    """Indices of `images` grouped, in order, into requests within the server's limits. An image
    that alone exceeds the upload limit goes alone (and the server refuses just that one)."""
    chunks: list[list[int]] = []
    current: list[int] = []
    size = 0
    budget = limits.max_upload_bytes - PART_OVERHEAD_BYTES  # the closing boundary
    for index, image in enumerate(images):
        cost = len(image.data) + len(part_name(image).encode()) + PART_OVERHEAD_BYTES
        if current and (len(current) >= limits.max_images_per_request or size + cost > budget):
            chunks.append(current)
            current, size = [], 0
        current.append(index)
        size += cost
    if current:
        chunks.append(current)
    return chunks


def results_from_body(body: dict[str, Any], expected: int) -> list[ImageResult]:
    model, version = body["model"], int(body["version"])
    results = [
        ImageResult(
            tuple(Prediction(p["label"], float(p["confidence"])) for p in entry["predictions"]),
            model,
            version,
        )
        for entry in body["results"]
    ]
    if len(results) != expected:
        raise TaggerError(
            f"the server answered {len(results)} results for {expected} images", "bad_answer"
        )
    return results


def error_from_answer(status: int, body: Any, headers: Any) -> TaggerError:
    """The typed error for a non-2xx answer (this API's `{"error": {code, message,
    request_id}}`, or anything else a proxy may send)."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        code = str(error.get("code") or f"http_{status}")
        message = str(error.get("message") or "")
        request_id = error.get("request_id") or headers.get("x-request-id")
    else:
        code, message = f"http_{status}", str(error or body or "")[:500]
        request_id = headers.get("x-request-id")
    if status in RETRY_STATUSES or status >= 500:
        return ServiceUnavailable(message, code, status, request_id)
    if status in _IMAGE_STATUSES and code not in _REQUEST_LEVEL_CODES:
        # One image of the request (or their number or size together) was refused: a split
        # finds which; alone, the image itself is the problem.
        return ImageRejected(message, code, status, request_id)
    return RequestRejected(message, code, status, request_id)


def retry_after_s(headers: Any) -> float | None:
    value = headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to backoff


def connection_failed(url: str, attempts: int, exc: Exception) -> ConnectionFailed:
    return ConnectionFailed(
        f"could not reach {url} after {attempts} attempt{'s' * (attempts != 1)}: "
        f"{type(exc).__name__}: {exc}",
        "connection_failed",
    )


def unavailable_after(error: TaggerError, attempts: int) -> TaggerError:
    error.message = f"{error.message} (still after {attempts} attempts)"
    error.args = (error.message,)
    return error
