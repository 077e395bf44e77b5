"""Clients for cnn-tagger: `TaggerClient` / `AsyncTaggerClient` over HTTP, `Tagger` in process
(imported on first use: it loads the serving code and a runtime), and `python -m client tag`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from client.errors import (
    ConnectionFailed,
    ImageRejected,
    RequestRejected,
    ServiceUnavailable,
    TaggerError,
)
from client.http import AsyncTaggerClient, TaggerClient
from client.protocol import Limits
from client.results import ImageResult, Prediction

if TYPE_CHECKING:
    from client.embedded import Tagger

__all__ = [
    "AsyncTaggerClient",
    "ConnectionFailed",
    "ImageRejected",
    "ImageResult",
    "Limits",
    "Prediction",
    "RequestRejected",
    "ServiceUnavailable",
    "Tagger",
    "TaggerClient",
    "TaggerError",
]


def __getattr__(name: str) -> Any:
    if name == "Tagger":
        from client.embedded import Tagger

        return Tagger
    raise AttributeError(f"module 'client' has no attribute {name!r}")
