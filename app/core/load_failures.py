"""Versions that failed to load, and the backoff before each is tried again."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True)
class _Failure:
    when: float
    attempts: int
    reason: str


class LoadFailures:
    """The last load failure of each version; a success clears it."""

    def __init__(self) -> None:
        self._failed: dict[int, _Failure] = {}

    def record(self, version: int, reason: str) -> None:
        previous = self._failed.get(version)
        attempts = previous.attempts + 1 if previous else 1
        self._failed[version] = _Failure(time.monotonic(), attempts, reason)

    def clear(self, version: int) -> None:
        self._failed.pop(version, None)

    def reason(self, version: int) -> str | None:
        failure = self._failed.get(version)
        return failure.reason if failure else None

    def backing_off(self, version: int) -> bool:
        """A version that failed is retried only after a backoff (1, 2, 4 ... 60 minutes)."""
        failure = self._failed.get(version)
        if failure is None:
            return False
        return time.monotonic() - failure.when < min(60.0 * 2 ** (failure.attempts - 1), 3600.0)
