"""Admission control: a bound on classify requests in flight, checked when a request arrives.

The batch queue's own limit applies only once a request's body is read and decoded; under
overload requests would pile up before that point. Counting them from arrival means the one
that would exceed the bound is refused before any of its work is done, so the refusal is fast.
"""

from __future__ import annotations

from types import TracebackType

from prometheus_client import Counter

from app.errors import Overloaded


class Admission:
    """`with admission:` around a request's work; entering raises `Overloaded` when full."""

    def __init__(self, limit: int, retry_after_s: int, rejected: Counter) -> None:
        self.limit = limit
        self.in_flight = 0
        self._retry_after_s = retry_after_s
        self._rejected = rejected

    def __enter__(self) -> None:
        if self.in_flight >= self.limit:
            self._rejected.inc()
            raise Overloaded(
                f"{self.limit} requests are already in progress; retry shortly",
                self._retry_after_s,
            )
        self.in_flight += 1

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.in_flight -= 1
