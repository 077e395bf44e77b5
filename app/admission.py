"""Admission control: a bound on classify requests in flight, checked when a request arrives.

The batch queue's own limit applies only once a request's body is read and decoded; under
overload requests would pile up before that point. Counting them from arrival, in a plain ASGI
middleware in front of routing, means the one that would exceed the bound is refused before
any of its work is done (no body read, no dependency, no decode), so refusing stays cheap
enough to keep up with the arrivals it refuses.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from prometheus_client import Counter
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import error_body


class Admission:
    """How many bounded requests are in flight, and the limit."""

    def __init__(self, limit: int, retry_after_s: int, rejected: Counter) -> None:
        self.limit = limit
        self.in_flight = 0
        self.retry_after_s = retry_after_s
        self.rejected = rejected

    @property
    def full(self) -> bool:
        return self.in_flight >= self.limit


class AdmissionMiddleware:
    """Counts requests to `routes` while they run; past the limit answers 503 `overloaded`
    with Retry-After at once. Sits inside RequestContextMiddleware, so the refusal still gets
    a request id, the route's metrics and an access-log line."""

    def __init__(self, app: ASGIApp, admission: Admission, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.admission = admission
        self.routes = tuple(routes)
        self._message = f"{admission.limit} requests are already in progress; retry shortly"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self._bounded_route(scope)
        if route is None:
            await self.app(scope, receive, send)
            return
        admission = self.admission
        if admission.full:
            admission.rejected.inc()
            scope["route"] = route
            await self._refuse(scope, send)
            return
        admission.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            admission.in_flight -= 1

    def _bounded_route(self, scope: Scope) -> BaseRoute | None:
        if scope["type"] != "http" or not scope["path"].endswith("/classify"):
            return None
        for route in self.routes:
            if route.matches(scope)[0] is Match.FULL:
                return route
        return None

    async def _refuse(self, scope: Scope, send: Send) -> None:
        state = scope.setdefault("state", {})
        state["error_code"] = "overloaded"
        body = json.dumps(
            error_body("overloaded", self._message, state.get("request_id", ""))
        ).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(self.admission.retry_after_s).encode()),
        ]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})
