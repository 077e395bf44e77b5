"""Admission control: a bound on classify requests in flight, spent only on requests whose
body has arrived.

The batch queue's own limit applies only once a request's body is read and decoded; under
overload requests would pile up before that point, so a plain ASGI middleware in front of
routing bounds them earlier. It reads the body first (refusing at once a declared or streamed
body over TAGGER_MAX_UPLOAD_BYTES), then takes a slot, then runs the route with the body
replayed: a client trickling its body (bounded by TAGGER_BODY_TIMEOUT_S in app.server) holds
no slot, so slow clients cannot refuse everyone else, and a slot is held no longer than a fast
request takes. Refusing stays cheap: a request that finds the service full, on arrival or once
its body is in, gets 503 `overloaded` before any decode.

Reading bodies before admission would leave the memory they take bounded only by connections x
TAGGER_MAX_UPLOAD_BYTES, so bodies also share a byte budget (TAGGER_MAX_BUFFERED_BODY_BYTES):
each body is charged the bytes received so far, until its request is answered, and one that
no longer fits gets 503 `overloaded` before more of it is read; a declared Content-Length that
cannot fit in what is left is refused on arrival, before any of it is read. Bytes received,
not bytes declared: a client that declares a large body and then trickles holds only what it
sent, so slow clients cannot spend the budget for everyone else. A small body fits while
bytes remain.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from prometheus_client import Counter
from starlette.requests import ClientDisconnect
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.deps import metrics_of, settings_of
from app.api.errors import error_json

# How the path of every inference route ends (this API, OIP v2, TF Serving): a cheap first test
# before matching the routes themselves.
INFERENCE_PATH_SUFFIXES = ("/classify", "/infer", ":predict", ":classify")
# Scope key of the body admission buffered, for the layers inside it (the route gets it replayed).
BODY_SCOPE_KEY = "tagger.body"
# Distinct (method, path) pairs whose route match is remembered; past this the memory starts
# over (paths name models and versions, so a client can make up any number of them).
_MATCHES_REMEMBERED = 1024


class Admission:
    """How many bounded requests are in flight (in all, and per model) and how many body bytes
    they and the requests still receiving theirs hold, with the limits of both.

    `model_limit` bounds one model's requests and `limit` all of them: with several models
    `limit` is `model_limit` per served model, so a flood on one model leaves the others their
    share of the slots (one model: the two are equal, one bound as before)."""

    def __init__(
        self,
        limit: int,
        buffered_limit_bytes: int,
        retry_after_s: int,
        rejected: Counter,
        report_buffered: Callable[[float], None] = lambda _: None,
    ) -> None:
        self.limit = limit
        self.model_limit = limit
        self.in_flight = 0
        self.by_model: dict[str, int] = {}
        self.buffered_limit_bytes = buffered_limit_bytes
        self.buffered_bytes = 0
        self.retry_after_s = retry_after_s
        self.rejected = rejected
        self.report_buffered = report_buffered  # the gauge's `set`, told of every change

    @property
    def full(self) -> bool:
        return self.in_flight >= self.limit

    def refusal(self, model: str) -> str | None:
        """Why one more request for `model` cannot be admitted now; None if it can."""
        if self.in_flight >= self.limit:
            return f"{self.limit} requests are already in progress; retry shortly"
        if self.by_model.get(model, 0) >= self.model_limit:
            return (
                f"{self.model_limit} requests for model {model!r} are already in progress; "
                "retry shortly"
            )
        return None

    def enter(self, model: str) -> None:
        self.in_flight += 1
        self.by_model[model] = self.by_model.get(model, 0) + 1

    def leave(self, model: str) -> None:
        self.in_flight -= 1
        left = self.by_model[model] - 1
        if left:
            self.by_model[model] = left
        else:
            del self.by_model[model]

    def fits(self, size_bytes: int) -> bool:
        """Whether `size_bytes` more body bytes fit in the budget now."""
        return self.buffered_bytes + size_bytes <= self.buffered_limit_bytes


class _Reservation:
    """The body bytes one request has charged to the budget; `release` gives them back."""

    __slots__ = ("admission", "held_bytes")

    def __init__(self, admission: Admission) -> None:
        self.admission = admission
        self.held_bytes = 0

    def add(self, size_bytes: int) -> bool:
        """Charge `size_bytes` more; False (nothing charged) if they do not fit."""
        admission = self.admission
        if admission.buffered_bytes + size_bytes > admission.buffered_limit_bytes:
            return False
        admission.buffered_bytes += size_bytes
        admission.report_buffered(admission.buffered_bytes)
        self.held_bytes += size_bytes
        return True

    def release(self) -> None:
        if self.held_bytes:
            admission = self.admission
            admission.buffered_bytes -= self.held_bytes
            admission.report_buffered(admission.buffered_bytes)
            self.held_bytes = 0


class _UploadTooLarge(Exception):
    """The body is (or is declared) over TAGGER_MAX_UPLOAD_BYTES."""


class _OverBudget(Exception):
    """The body does not fit in what is left of TAGGER_MAX_BUFFERED_BODY_BYTES."""


class AdmissionMiddleware:
    """Reads the body of a request to `routes` (413 `upload_too_large` past the upload limit),
    charging it to the body budget as it arrives, then counts it while it runs; past either
    limit answers 503 `overloaded` with Retry-After at once. Sits inside
    RequestContextMiddleware, so a refusal still gets a request id, the route's metrics and an
    access-log line."""

    def __init__(self, app: ASGIApp, admission: Admission, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.admission = admission
        # Only the inference routes: matched on every inference request, before the router.
        self.routes = tuple(
            route
            for route in routes
            if getattr(route, "path", "").endswith(INFERENCE_PATH_SUFFIXES)
        )
        # (method, root path, path) -> the route and path parameters it matched (None: none).
        self._matches: dict[tuple[str, str, str], tuple[BaseRoute, dict[str, Any]] | None] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        matched = self._bounded_route(scope)
        if matched is None:
            await self.app(scope, receive, send)
            return
        route, path_params = matched
        model = str(path_params.get("model", ""))
        scope["route"] = route  # for the metrics and log line, whatever happens next
        scope["path_params"] = path_params  # as routing will set them: matched once, here
        admission = self.admission
        refusal = admission.refusal(model)
        if refusal is not None:  # refused before the body is read
            await self._refuse_overloaded(scope, send, refusal)
            return
        reservation = _Reservation(admission)
        try:
            body = await self._receive_body(scope, receive, send, reservation)
            if body is None:  # refused
                return
            refusal = admission.refusal(model)
            if refusal is not None:
                await self._refuse_overloaded(scope, send, refusal)
                return
            admission.enter(model)
            scope[BODY_SCOPE_KEY] = body
            try:
                await self.app(scope, _replay(body, receive), send)
            finally:
                admission.leave(model)
        finally:
            reservation.release()

    async def _receive_body(
        self, scope: Scope, receive: Receive, send: Send, reservation: _Reservation
    ) -> bytes | None:
        """The body, charged to `reservation`; None once it was refused (413 or 503)."""
        limit = settings_of(scope["app"]).max_upload_bytes
        declared = _declared_length(scope)
        try:
            if declared is not None and declared > limit:
                raise _UploadTooLarge
            if declared and not self.admission.fits(declared):
                raise _OverBudget
            return await _read_body(receive, limit, reservation)
        except _UploadTooLarge:
            await self._refuse_too_large(scope, send, limit, declared)
        except _OverBudget:
            admission = self.admission
            message = (
                f"request bodies already hold {admission.buffered_bytes} of the "
                f"{admission.buffered_limit_bytes} bytes allowed at once; retry shortly"
            )
            await self._refuse_overloaded(scope, send, message)
        return None

    async def _refuse_too_large(
        self, scope: Scope, send: Send, limit: int, declared: int | None
    ) -> None:
        metrics_of(scope["app"]).images_rejected.labels("upload_too_large").inc()
        message = f"the upload exceeds the limit of {limit} bytes"
        if declared is not None and declared > limit:
            message = f"the upload is {declared} bytes; the limit is {limit} bytes"
        # The unread rest is dropped by uvicorn as it arrives (TAGGER_BODY_TIMEOUT_S bounds
        # it); closing now instead would reset the connection before the client reads this.
        await error_json(scope, 413, "upload_too_large", message)(scope, _no_body, send)

    async def _refuse_overloaded(self, scope: Scope, send: Send, message: str = "") -> None:
        self.admission.rejected.inc()
        response = error_json(
            scope,
            503,
            "overloaded",
            message or f"{self.admission.limit} requests are already in progress; retry shortly",
            {"Retry-After": str(self.admission.retry_after_s)},
        )
        await response(scope, _no_body, send)

    def _bounded_route(self, scope: Scope) -> tuple[BaseRoute, dict[str, Any]] | None:
        """The inference route `scope` goes to and its path parameters; None for other paths.
        A path seen before is not matched again (the routes' regular expressions and parameter
        conversion ran on every inference request)."""
        if scope["type"] != "http" or not scope["path"].endswith(INFERENCE_PATH_SUFFIXES):
            return None
        key = (scope["method"], scope.get("root_path", ""), scope["path"])
        try:
            matched = self._matches[key]
        except KeyError:
            matched = self._match(scope)
            if len(self._matches) >= _MATCHES_REMEMBERED:
                self._matches.clear()
            self._matches[key] = matched
        return None if matched is None else (matched[0], dict(matched[1]))

    def _match(self, scope: Scope) -> tuple[BaseRoute, dict[str, Any]] | None:
        for route in self.routes:
            match, child = route.matches(scope)
            if match is Match.FULL:
                return route, dict(child.get("path_params", {}))
        return None


async def _read_body(receive: Receive, limit: int, reservation: _Reservation) -> bytes:
    """The whole request body, charged to `reservation` as it arrives. Raises _UploadTooLarge
    past `limit` bytes, _OverBudget once the body does not fit in the budget, ClientDisconnect
    if the client goes away first."""
    chunks: list[bytes] = []
    total = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        total += len(chunk)
        if total > limit:
            raise _UploadTooLarge
        if not reservation.add(len(chunk)):
            raise _OverBudget
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """`receive` that gives the buffered body once, then waits on the connection (so the
    route still learns of a disconnect)."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _no_body() -> Message:
    """A response never reads the request; the body's unread rest is dropped by uvicorn."""
    return {"type": "http.disconnect"}


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None
