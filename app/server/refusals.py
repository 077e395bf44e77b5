"""The answers the HTTP layer writes itself (app.server.protocol), before or instead of the
app: the service's JSON error body with `Connection: close`, and one log line per refusal."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

from uvicorn.protocols.http.httptools_impl import STATUS_LINE

from app.api.errors import error_body
from app.api.request_context import REQUEST_ID_HEADER

logger = logging.getLogger(__name__)


def refusal_bytes(
    status: int,
    code: str,
    message: str,
    request_id: str,
    default_headers: Sequence[tuple[bytes, bytes]],
) -> bytes:
    """A whole HTTP/1.1 response: status line, uvicorn's default headers, the JSON error body
    with its request id (also sent as X-Request-ID), and `Connection: close`."""
    body = json.dumps(error_body(code, message, request_id)).encode()
    head = [STATUS_LINE[status]]
    for name, value in default_headers:
        head += [name, b": ", value, b"\r\n"]
    head += [
        b"content-type: application/json\r\n",
        b"content-length: %d\r\n" % len(body),
        REQUEST_ID_HEADER.encode() + b": " + request_id.encode() + b"\r\n",
        b"connection: close\r\n\r\n",
    ]
    return b"".join(head) + body


def log_refusal(client: tuple[str, int] | None, code: str, status: int, request_id: str) -> None:
    """One line for a request the HTTP layer refused (status 0: none sent)."""
    logger.info(
        "request refused by the HTTP layer: %s",
        code,
        extra={
            "error_code": code,
            "status": status or None,
            "client": f"{client[0]}:{client[1]}" if client else "",
            "request_id": request_id or None,
        },
    )
