"""The bounds `TaggerHttpProtocol` (app.server.protocol) holds every connection to: head and
body timeouts, head size and field count, and the drain's grace for idle connections."""

from __future__ import annotations

from dataclasses import dataclass

from app.config import Settings

# How long an idle keep-alive connection stays open once shutdown begins: long enough for a
# request a busy client already sent (or is about to send) to arrive and be answered.
DRAIN_IDLE_GRACE_S = 1.0


@dataclass(frozen=True, slots=True)
class TransportLimits:
    header_timeout_s: float
    body_timeout_s: float
    max_header_bytes: int
    max_headers: int
    drain_grace_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> TransportLimits:
        grace = DRAIN_IDLE_GRACE_S
        if settings.shutdown_timeout_s:
            grace = min(grace, settings.shutdown_timeout_s / 2)
        return cls(
            settings.header_timeout_s,
            settings.body_timeout_s,
            settings.max_header_bytes,
            settings.max_headers,
            grace,
        )
