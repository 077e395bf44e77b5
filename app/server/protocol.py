"""An HTTP protocol for uvicorn that bounds how long and how much a client may make the server
wait for, and drains cleanly (its `Config` is built in app.server).

uvicorn's httptools protocol times out only idle keep-alive connections and, on shutdown,
closes idle keep-alive connections at once (resetting a request already on the wire).
`TaggerHttpProtocol` adds, per connection:

- a head timeout (TAGGER_HEADER_TIMEOUT_S) from connection open, or from the end of the
  previous exchange on a keep-alive connection, until the request's headers are complete:
  408 `header_timeout`. A keep-alive connection on which nothing new arrived is closed
  silently instead (an answer nobody asked for would race the client's next request);
- bounds on the head (TAGGER_MAX_HEADER_BYTES, TAGGER_MAX_HEADERS), checked as the bytes
  arrive, so an oversized head is never buffered: 431 `headers_too_large`;
- a body timeout (TAGGER_BODY_TIMEOUT_S) from headers complete until the whole body is in,
  whatever the route does with it: 408 `body_timeout` if no answer has started, and the app
  sees `http.disconnect` (its request is logged as 408 by app.logging);
- a JSON 400 `invalid_http` for malformed HTTP (uvicorn answers plain text);
- a drain: on shutdown a request in progress is answered with `Connection: close`; an idle
  keep-alive connection stays open `DRAIN_IDLE_GRACE_S` so that a request already sent is
  still answered (with `Connection: close`), then is closed. The listening socket is closed
  at once by uvicorn, and the whole drain stays inside TAGGER_SHUTDOWN_TIMEOUT_S.

Every connection writes through `CoalescingTransport` (app.coalescing_transport), so a
response's head and body leave in one system call and one packet.

Answers written here have the service's JSON error body and `Connection: close`, with the
request id app.logging gave the request if the app saw it, else a fresh one made the same way
(also sent as X-Request-ID). Each refusal is counted in `tagger_http_refusals_total{reason}`
and logged in one line: by app.logging's access log if the app saw the request, else here.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import httptools
from prometheus_client import Counter
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from app.api.disconnect import HANG_UP_SCOPE_KEY, HangUp
from app.api.request_context import HTTP_REFUSAL_STATE_KEY, new_request_id
from app.coalescing_transport import CoalescingTransport
from app.server.limits import TransportLimits
from app.server.refusals import log_refusal, refusal_bytes

# After a refusal, what the client still sends is read and dropped this long (or until it
# closes), so its kernel does not answer our close with a reset that would discard the answer.
LINGER_S = 1.0


class _HeadTooLarge(Exception):
    """Raised from a parser callback: the request head passed a limit."""


class TaggerHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with head/body timeouts, head limits and a clean drain.
    Use a subclass made by `protocol_class` (it sets the limits and the counter)."""

    limits: ClassVar[TransportLimits]
    refusals: ClassVar[Counter]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._drain_timer: asyncio.TimerHandle | None = None
        self._in_head = True  # waiting for, or parsing, a request line and headers
        self._head_seen = False  # a byte of that head has arrived
        self._head_restarted = False  # a new head began inside the chunk being parsed
        self._head_bytes = 0  # raw bytes of the head (a lower bound, chunk by chunk)
        self._head_tally = 0  # exact size of the parsed head so far
        self._header_count = 0
        self._answered = False  # a response was completed on this connection
        self._draining = False
        self._closing = False  # refused: what arrives is dropped until the close

    # Connection life

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        # A response's head and body leave in one write (app.coalescing_transport).
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]
        self._head_timer = self.loop.call_later(self.limits.header_timeout_s, self._head_expired)

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in (self._head_timer, self._body_timer, self._drain_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = self._drain_timer = None
        cycle = self.cycle
        super().connection_lost(exc)
        if cycle is not None and cycle.disconnected:  # as uvicorn decides it: not yet answered
            _hang_up(cycle)

    def eof_received(self) -> None:
        if self._closing:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        self._unset_keepalive_if_required()
        if self._drain_timer is not None:  # a request arrives during the drain: answer it
            self._drain_timer.cancel()
            self._drain_timer = None
        was_in_head = self._in_head
        self._head_restarted = False
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, _HeadTooLarge):
                self._refuse_head(431, "headers_too_large", str(exc.__context__))
            else:
                self._bad_request()
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError:
            self._bad_request()
            return
        if was_in_head and self._in_head and not self._head_restarted:
            # The whole chunk belongs to the head still incomplete: stop before buffering more.
            self._head_bytes += len(data)
            if self._head_bytes > self.limits.max_header_bytes:
                self._refuse_head(431, "headers_too_large", self._head_bytes_message())

    def _bad_request(self) -> None:
        """Malformed HTTP: a JSON 400 (uvicorn's own is plain text), then close."""
        code, message = "invalid_http", "the request is not valid HTTP/1.1"
        if self._in_head or self.cycle is None:
            self._refuse_head(400, code, message)
        else:
            self._refuse_request(self.cycle, 400, code, message)

    # Parser callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        # app.api.disconnect learns from this that the client went away, without a task that
        # waits on `receive` for every request.
        self.scope[HANG_UP_SCOPE_KEY] = HangUp()  # type: ignore[literal-required]
        self._head_seen = True
        self._head_tally = 0
        self._header_count = 0

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        self._head_tally += len(url)
        if self._head_tally > self.limits.max_header_bytes:
            raise _HeadTooLarge(self._head_bytes_message())

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        self._head_tally += len(name) + len(value) + 4  # ": " and CRLF
        if self._header_count > self.limits.max_headers:
            raise _HeadTooLarge(
                f"the request has more than {self.limits.max_headers} header fields; "
                f"the limit is {self.limits.max_headers}"
            )
        if self._head_tally > self.limits.max_header_bytes:
            raise _HeadTooLarge(self._head_bytes_message())
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().on_headers_complete()
        if self._draining and self.cycle is not None:
            self.cycle.keep_alive = False

    def on_message_complete(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        super().on_message_complete()
        self._in_head = True
        self._head_restarted = True
        self._head_seen = False
        self._head_bytes = 0
        self._await_next_head()

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        super()._start_asgi_task(cycle, app)
        if cycle.more_body:  # the body (if any) is still to come; bound how long it may take
            self._body_timer = self.loop.call_later(
                self.limits.body_timeout_s, self._body_expired, cycle
            )

    def on_response_complete(self) -> None:
        self._answered = True
        super().on_response_complete()
        self._await_next_head()

    def _await_next_head(self) -> None:
        """Start the head timer once the previous exchange is over (body in, answer sent)."""
        if self._closing or self.transport.is_closing() or not self._in_head or self.pipeline:
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return
        if self._draining:
            self._close_idle()
            return
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(
                self.limits.header_timeout_s, self._head_expired
            )

    # Timeouts

    def _head_expired(self) -> None:
        self._head_timer = None
        if self._closing or self.transport.is_closing() or not self._in_head:
            return
        if not self._head_seen and self._answered:
            self.transport.close()  # an idle keep-alive connection: nobody is waiting
            return
        self._refuse_head(
            408,
            "header_timeout",
            f"the request line and headers did not arrive within "
            f"{self.limits.header_timeout_s:g} s",
        )

    def _body_expired(self, cycle: RequestResponseCycle) -> None:
        self._body_timer = None
        if self._closing or self.transport.is_closing():
            return
        message = f"the request body did not arrive within {self.limits.body_timeout_s:g} s"
        self._refuse_request(cycle, 408, "body_timeout", message)

    def _refuse_request(
        self, cycle: RequestResponseCycle, status: int, code: str, message: str
    ) -> None:
        """Refuse the request whose body is arriving, whatever the app is doing with it."""
        self.refusals.labels(code).inc()
        if cycle.response_complete:  # answered already; only the unread body is pending
            log_refusal(self.client, code, 0, "")
            self.transport.close()
            return
        # The app sees a disconnect; app.logging logs the request with the status sent here.
        cycle.scope["state"][HTTP_REFUSAL_STATE_KEY] = (
            (0, code) if cycle.response_started else (status, code)
        )
        cycle.disconnected = True
        cycle.message_event.set()
        _hang_up(cycle)
        if cycle.response_started:  # an answer is under way: it cannot be replaced
            self.transport.close()
        else:  # with the id app.logging gave the request, so the answer matches its log line
            request_id = cycle.scope["state"].get("request_id") or new_request_id()
            self._answer(status, code, message, log=False, request_id=request_id)

    # Drain

    def shutdown(self) -> None:
        """uvicorn calls this on every connection when shutdown begins."""
        self._draining = True
        if self._closing:
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.keep_alive = False  # answered with Connection: close, then closed
            for cycle, _ in self.pipeline:
                cycle.keep_alive = False
            return
        if not self._in_head:  # answered already; the unread rest of a body is not a request
            self.transport.close()
            return
        if self._head_seen:
            return  # a request is arriving: it is answered (head timer still applies)
        self._drain_timer = self.loop.call_later(self.limits.drain_grace_s, self._close_idle)

    def _close_idle(self) -> None:
        self._drain_timer = None
        idle = self.cycle is None or self.cycle.response_complete
        if idle and self._in_head and not self._head_seen and not self.transport.is_closing():
            self.transport.close()

    # Answers

    def _refuse_head(self, status: int, code: str, message: str) -> None:
        self.refusals.labels(code).inc()
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined head went wrong while an earlier request is still being answered:
            # let that answer finish, with Connection: close, and read nothing more.
            log_refusal(self.client, code, 0, "")
            self.cycle.keep_alive = False
            self._closing = True
            return
        self._answer(status, code, message, log=True)

    def _answer(
        self, status: int, code: str, message: str, *, log: bool, request_id: str = ""
    ) -> None:
        """Write a JSON error with Connection: close, then close after a short linger."""
        request_id = request_id or new_request_id()
        if log:
            log_refusal(self.client, code, status, request_id)
        headers = self.server_state.default_headers
        self.transport.write(refusal_bytes(status, code, message, request_id, headers))
        self._closing = True
        self.flow.resume_reading()  # keep draining what the client sends; it is dropped
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(LINGER_S, self.transport.close)
        else:
            self.transport.close()

    def _head_bytes_message(self) -> str:
        limit = self.limits.max_header_bytes
        return f"the request line and headers exceed {limit} bytes; the limit is {limit}"


def _hang_up(cycle: RequestResponseCycle) -> None:
    """Tell the request's app (app.api.disconnect) that its client has gone."""
    hang_up = cycle.scope.get(HANG_UP_SCOPE_KEY)
    if isinstance(hang_up, HangUp):
        hang_up.hang_up()
