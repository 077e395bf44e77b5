"""Typed errors: each carries the server's error `code`, HTTP `status` and `request_id`."""

from __future__ import annotations


class TaggerError(Exception):
    """A request the tagger could not answer, and why (`code` is the server's, e.g.
    `model_not_found`, `overloaded`, `corrupt_image`)."""

    def __init__(
        self, message: str, code: str, status: int | None = None, request_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.request_id = request_id

    def __str__(self) -> str:
        extras = [f"HTTP {self.status}"] if self.status else []
        extras += [f"request {self.request_id}"] if self.request_id else []
        return f"{self.code}: {self.message}" + (f" ({', '.join(extras)})" if extras else "")


class RequestRejected(TaggerError):
    """A 4xx: the request itself is wrong (unknown model, bad API key, bad top_k). Never retried."""


class ImageRejected(TaggerError):
    """One image the tagger refuses (corrupt, unsupported, too large); the rest get tagged."""


class ServiceUnavailable(TaggerError):
    """The server kept answering 503/5xx (overloaded, not ready) through every retry."""


class ConnectionFailed(TaggerError):
    """The server could not be reached (refused, reset, timed out) through every retry."""
