"""Settings for the HTTP transport: where to listen, header and body timeouts, header limits."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ListenSettings(BaseModel):
    """The address the server binds."""

    host: str = "0.0.0.0"
    port: int = Field(default=8000, ge=1, le=65535)


class HttpSettings(BaseModel):
    """How long a request may take to arrive, and how large its headers and buffered bodies."""

    header_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description=(
            "Longest wait for a request's line and headers, from connection open (or the end "
            "of the previous response on a keep-alive connection); then 408 `header_timeout`."
        ),
    )
    body_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description=(
            "Longest wait for a request's whole body once its headers are in; then 408 "
            "`body_timeout` (if no answer has started) and the connection is closed."
        ),
    )
    max_header_bytes: int = Field(
        default=32 * 1024,
        ge=1024,
        description=(
            "Largest request line + headers, in bytes; past it 431 `headers_too_large` at once."
        ),
    )
    max_headers: int = Field(
        default=100,
        ge=1,
        description="Most header fields in one request; past it 431 `headers_too_large`.",
    )
    max_buffered_body_bytes: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Classify request body bytes held in memory at once, received so far by requests "
            "not yet answered. A body that no longer fits gets 503 `overloaded` + Retry-After "
            "before more of it is read; one whose declared Content-Length cannot fit in what "
            "is left, on arrival. At least TAGGER_MAX_UPLOAD_BYTES. Unset: 256 MiB, or twice "
            "TAGGER_MAX_UPLOAD_BYTES if that is more."
        ),
    )
