"""The middleware that gives every request an id, a metric and one access-log line."""

from __future__ import annotations

import logging
import random
import re
import time
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import ClientGone, error_json
from app.metrics import Metrics

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("app.access")
# Request ids come from a generator of their own, seeded from the OS: code that seeds the
# module-level `random` (training, tests) must not make them repeat.
_ids = random.Random()

REQUEST_ID_HEADER = "x-request-id"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_CLIENT_CLOSED = 499  # nginx's status for a client that went away before the answer
# Set in scope state by app.server when it refuses a request the app is handling:
# (status the client got, error code).
HTTP_REFUSAL_STATE_KEY = "http_refusal"


class RequestContextMiddleware:
    """Request id, in-flight gauge, request metrics and the access log; last-resort 500s.

    A plain ASGI middleware (not BaseHTTPMiddleware) so request bodies stream and client
    disconnects reach the endpoint.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        # Route templates x methods x statuses: bounded, like the labels themselves.
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        incoming = _header(scope, REQUEST_ID_HEADER)
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else new_request_id()
        state["request_id"] = request_id
        status = 0
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_with_id)
        except (ClientGone, ClientDisconnect):
            # Hung up mid-body or while waiting (or timed out by app.server): not our error.
            status = _CLIENT_CLOSED
            state["error_code"] = "client_disconnected"
        except Exception:
            logger.exception("unhandled error", extra={"request_id": request_id})
            if status == 0:
                status = 500
                await _send_500(scope, send_with_id)
        finally:
            refusal = state.get(HTTP_REFUSAL_STATE_KEY)
            if refusal is not None and refusal[0]:  # app.server answered for the app (408)
                status, state["error_code"] = refusal
            self.metrics.in_flight.dec()
            elapsed = time.perf_counter() - started
            route_obj = scope.get("route")
            route = getattr(route_obj, "path", None) or "unmatched"
            method = scope["method"]
            self._observe(route, method, status, elapsed)
            if access_logger.isEnabledFor(logging.INFO):
                _access_log(scope, state, request_id, route, status, elapsed)

    def _observe(self, route: str, method: str, status: int, elapsed: float) -> None:
        """Request count and latency; labelled children are looked up once per label set."""
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self.metrics.requests.labels(route, method, str(status)),
                self.metrics.request_duration.labels(route, method),
            )
        children[0].inc()
        children[1].observe(elapsed)


def _access_log(
    scope: Scope, state: dict[str, Any], request_id: str, route: str, status: int, elapsed: float
) -> None:
    method = scope["method"]
    access_logger.info(
        "%s %s %d",
        method,
        scope["path"],
        status,
        extra={
            "request_id": request_id,
            "method": method,
            "route": route,
            "status": status,
            "latency_ms": round(elapsed * 1000, 3),
            "model": state.get("model"),
            "version": state.get("version"),
            "images": state.get("images"),
            "error_code": state.get("error_code"),
        },
    )


def new_request_id() -> str:
    """32 random hex digits, like uuid4().hex but without a system call per request."""
    return f"{_ids.getrandbits(128):032x}"


def _header(scope: Scope, name: str) -> str:
    wanted = name.encode()
    for key, value in scope.get("headers", ()):
        if key.lower() == wanted:
            return value.decode("latin-1")
    return ""


async def _send_500(scope: Scope, send: Send) -> None:
    message = "internal server error; quote the request id"
    await error_json(scope, 500, "internal_error", message)(scope, _nothing, send)


async def _nothing() -> Message:
    return {"type": "http.disconnect"}
