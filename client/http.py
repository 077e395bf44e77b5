"""`AsyncTaggerClient` and `TaggerClient`: the service over HTTP, on httpx (with StreamTransport
for a plain-http service reached without a proxy: httpx's default transport costs the service
CPU on a shared machine; see client/transport.py).

Work is split into requests within the limits the server reports (`GET /v1/limits`), sent with
at most `concurrency` in flight (halved on each 503, grown back as answers come). 503 is retried
after the server's Retry-After, 504 and connection failures with backoff, 4xx never. A request
refused for one of its images is split until the refused image stands alone, so every other
image still gets its labels.
"""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar

import httpx

from client.errors import ImageRejected
from client.images import Encoded, ImageInput, UnreadableInput, encode
from client.limiter import AdaptiveLimit
from client.loop_thread import LoopThread
from client.protocol import (
    LIMITS_PATH,
    RETRY_STATUSES,
    Limits,
    RetryPolicy,
    classify_path,
    connection_failed,
    error_from_answer,
    multipart_body,
    plan_chunks,
    results_from_body,
    retry_after_s,
    unavailable_after,
)
from client.results import ImageResult
from client.transport import StreamTransport

T = TypeVar("T")
DEFAULT_MODEL = "fashion"


class AsyncTaggerClient:
    """The tagging service at `url`. Use as `async with AsyncTaggerClient(url) as tagger:`."""

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        *,
        concurrency: int = 4,
        backoff_s: float = 0.2,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if concurrency < 1 or retries < 0:
            raise ValueError("concurrency must be >= 1 and retries >= 0")
        self.url = url.rstrip("/")
        self.retry = RetryPolicy(attempts=retries + 1, backoff_s=backoff_s)
        self.concurrency = concurrency
        transport = transport or _lean_transport(self.url)
        self._http = httpx.AsyncClient(
            base_url=self.url,
            timeout=timeout,
            headers={"Authorization": f"Bearer {api_key}"} if api_key else {},
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            transport=transport,
        )
        # With StreamTransport the client hands it requests itself: no redirects, cookies, auth
        # flows or event hooks are in use, and httpx's layers for them cost twice the transport.
        self._direct = transport if isinstance(transport, StreamTransport) else None
        self._in_flight = AdaptiveLimit(concurrency)
        self._limits: Limits | None = None
        self._urls: dict[tuple[str, int], httpx.URL] = {}

    async def __aenter__(self) -> AsyncTaggerClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def limits(self) -> Limits:
        """Images and bytes one request may carry, read from the server once."""
        if self._limits is None:
            response = await self._send("GET", LIMITS_PATH)
            if response.status_code == 404:  # a server from before /v1/limits: its defaults
                self._limits = Limits.fallback()
            else:
                self._limits = Limits.from_body(self._json_or_raise(response))
        return self._limits

    async def models(self) -> list[dict[str, Any]]:
        """The store's models as the server lists them (`GET /v1/models`)."""
        return self._json_or_raise(await self._send("GET", "/v1/models"))["models"]

    async def ready(self) -> bool:
        """Whether the server answers and has its model loaded (`/readyz`); never retried."""
        try:
            response = await self._http.get("/readyz")
        except httpx.TransportError:
            return False
        return response.status_code == 200

    async def classify(
        self,
        images: Iterable[ImageInput],
        model: str = DEFAULT_MODEL,
        *,
        version: int | None = None,
        alias: str | None = None,
        top_k: int = 5,
    ) -> list[ImageResult]:
        """One result per image, in order. An image the server (or this client: a missing file)
        refuses gets a result with `error`; a refused request (unknown model, bad top_k, bad
        key) raises RequestRejected, and a server that stays unavailable or unreachable through
        every retry raises ServiceUnavailable or ConnectionFailed."""
        path = classify_path(model, version, alias)
        images = list(images)  # any iterable of images
        results: list[ImageResult | None] = [None] * len(images)
        sendable: list[tuple[int, Encoded]] = []
        for index, image in enumerate(images):
            try:
                sendable.append((index, encode(image, index)))
            except UnreadableInput as exc:
                error = ImageRejected(str(exc), "unreadable_input")
                results[index] = ImageResult((), model, None, error)
        if sendable:
            limits = await self.limits()
            chunks = plan_chunks([item for _, item in sendable], limits)

            async def run(chunk: list[int]) -> None:
                items = [sendable[i] for i in chunk]
                answers = await self._classify_chunk(path, model, [e for _, e in items], top_k)
                for (index, _), answer in zip(items, answers, strict=True):
                    results[index] = answer

            if len(chunks) == 1:
                await run(chunks[0])
            else:
                await gather_all([run(chunk) for chunk in chunks])
        done = [result for result in results if result is not None]
        if len(done) != len(images):
            raise AssertionError("an image got no result")
        return done

    async def _classify_chunk(
        self, path: str, model: str, items: list[Encoded], top_k: int
    ) -> list[ImageResult]:
        body, content_type = multipart_body(items)
        headers = {"Content-Type": content_type}
        response = await self._send("POST", self._url(path, top_k), content=body, headers=headers)
        if response.is_success:
            return results_from_body(response.json(), len(items))
        error = error_from_answer(response.status_code, _body(response), response.headers)
        if not isinstance(error, ImageRejected):
            raise error
        if len(items) == 1:
            return [ImageResult((), model, None, error)]
        half = len(items) // 2
        first, second = await asyncio.gather(
            self._classify_chunk(path, model, items[:half], top_k),
            self._classify_chunk(path, model, items[half:], top_k),
        )
        return first + second

    def _url(self, path: str, top_k: int) -> httpx.URL:
        """The absolute classify URL, built once: httpx merging a relative one with the base
        and its query costs about as much as the rest of a request."""
        url = self._urls.get((path, top_k))
        if url is None:
            url = self._urls[path, top_k] = httpx.URL(self.url + path, params={"top_k": top_k})
        return url

    async def _send(self, method: str, url: str | httpx.URL, **kwargs: Any) -> httpx.Response:
        """One request, retried on 503 (after Retry-After) and connection failures (after
        backoff); any other answer is returned as it is."""
        request = self._http.build_request(method, url, **kwargs)  # built before a slot is free
        attempts = self.retry.attempts
        for attempt in range(attempts):
            try:
                async with self._in_flight:
                    response = await self._exchange(request)
            except httpx.TransportError as exc:
                if attempt + 1 == attempts:
                    raise connection_failed(self.url, attempts, exc) from exc
                delay = self.retry.delay_s(attempt, None)
            else:
                if response.status_code not in RETRY_STATUSES:
                    self._in_flight.succeeded()
                    # A request waiting for the slot this one freed goes out before this
                    # answer is read: the server sees requests back to back and batches them.
                    await asyncio.sleep(0)
                    return response
                self._in_flight.overloaded()
                if attempt + 1 == attempts:
                    status, headers = response.status_code, response.headers
                    error = error_from_answer(status, _body(response), headers)
                    raise unavailable_after(error, attempts)
                delay = self.retry.delay_s(attempt, retry_after_s(response.headers))
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def _exchange(self, request: httpx.Request) -> httpx.Response:
        if self._direct is None:
            return await self._http.send(request)
        response = await self._direct.handle_async_request(request)
        response.request = request
        await response.aread()
        return response

    def _json_or_raise(self, response: httpx.Response) -> Any:
        if not response.is_success:
            raise error_from_answer(response.status_code, _body(response), response.headers)
        return response.json()


def _lean_transport(url: str) -> httpx.AsyncBaseTransport | None:
    """StreamTransport for a plain-http service reached directly; None (httpx's own transport:
    TLS, proxies from the environment) otherwise."""
    parsed = httpx.URL(url)
    direct = not urllib.request.getproxies() or urllib.request.proxy_bypass(parsed.host)
    return StreamTransport() if parsed.scheme == "http" and direct else None


async def gather_all(work: list[Coroutine[Any, Any, None]]) -> None:
    """Run `work` together; the first failure cancels the rest and is raised as it is."""
    try:
        async with asyncio.TaskGroup() as group:
            for item in work:
                group.create_task(item)
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


class TaggerClient:
    """The blocking twin of `AsyncTaggerClient` (same arguments, same behaviour): it runs one on
    a private event loop thread, so it works from any thread, inside an event loop or not."""

    def __init__(self, url: str, api_key: str | None = None, **options: Any) -> None:
        self._runner = LoopThread("tagger-client")

        async def build() -> AsyncTaggerClient:
            return AsyncTaggerClient(url, api_key, **options)

        self._client = self._call(build())
        self.url = self._client.url

    def _call(self, work: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(work)

    def __enter__(self) -> TaggerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._runner.closed:
            return
        self._call(self._client.aclose())
        self._runner.close()

    def limits(self) -> Limits:
        return self._call(self._client.limits())

    def models(self) -> list[dict[str, Any]]:
        return self._call(self._client.models())

    def ready(self) -> bool:
        return self._call(self._client.ready())

    def classify(
        self,
        images: Iterable[ImageInput],
        model: str = DEFAULT_MODEL,
        *,
        version: int | None = None,
        alias: str | None = None,
        top_k: int = 5,
    ) -> list[ImageResult]:
        """See `AsyncTaggerClient.classify`."""
        work = self._client.classify(images, model, version=version, alias=alias, top_k=top_k)
        return self._call(work)
