"""Load generators: closed-loop clients and open-loop arrivals (httpx), and `hey` when present."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from benchmarks import stats

Files = list[tuple[str, tuple[str, bytes, str]]]
NO_ANSWER = 0  # status recorded for a connection error or a client-side timeout


@dataclass
class LoadResult:
    """What one load run saw: one latency and one status per request sent."""

    clients: int
    images_per_request: int
    seconds: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    offered_per_s: float | None = None  # open loop: the arrival rate actually achieved
    failures: dict[str, int] = field(default_factory=dict)  # client-side errors by type
    # Open loop only: from the first byte sent (without waiting for a client connection).
    wire_latencies_s: list[float] = field(default_factory=list)

    @property
    def ok(self) -> int:
        return sum(1 for status in self.statuses if status == 200)

    @property
    def errors(self) -> int:
        return len(self.statuses) - self.ok

    def summary(self) -> dict[str, object]:
        ok_latencies = [t for t, s in zip(self.latencies_s, self.statuses, strict=True) if s == 200]
        return {
            "clients": self.clients,
            "images_per_request": self.images_per_request,
            "seconds": round(self.seconds, 3),
            "requests": len(self.statuses),
            "ok": self.ok,
            "errors": self.errors,
            "statuses": stats.status_counts(self.statuses),
            "requests_per_s": stats.rate(self.ok, self.seconds),
            "images_per_s": stats.rate(self.ok * self.images_per_request, self.seconds),
            **stats.latency_summary(ok_latencies),
            "client_failures": dict(self.failures),
            **({"offered_per_s": self.offered_per_s} if self.offered_per_s is not None else {}),
        }


def multipart(image: bytes, count: int, content_type: str = "image/png") -> Files:
    """`count` copies of the image as repeated multipart `file` fields."""
    return [("file", (f"image{i}.png", image, content_type)) for i in range(count)]


class ClientPool:
    """Many small httpx clients instead of one big one.

    One `AsyncClient` with hundreds of connections spends more CPU managing its pool than
    sending requests, so each client here holds at most `per_client` connections.
    """

    def __init__(self, connections: int, per_client: int = 4, timeout_s: float = 30.0) -> None:
        count = max(1, -(-connections // per_client))
        limits = httpx.Limits(max_connections=per_client, max_keepalive_connections=per_client)
        self.clients = [httpx.AsyncClient(limits=limits, timeout=timeout_s) for _ in range(count)]

    def client(self, index: int) -> httpx.AsyncClient:
        return self.clients[index % len(self.clients)]

    async def __aenter__(self) -> ClientPool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await asyncio.gather(*(client.aclose() for client in self.clients))


async def _post(
    client: httpx.AsyncClient, url: str, files: Files, wire: bool = False
) -> tuple[float, int, str, float]:
    """(latency, status, error class name or "", latency on the wire or NaN).

    With `wire`, the second latency starts when the request's first byte goes out (httpcore's
    trace hook), leaving out time spent waiting for a free client connection.
    """
    sent_at = math.nan

    async def trace(event: str, info: object) -> None:
        nonlocal sent_at
        if event == "http11.send_request_headers.started":
            sent_at = time.perf_counter()

    start = time.perf_counter()
    try:
        async with asyncio.timeout(client.timeout.read):  # a whole-request limit
            extensions = {"trace": trace} if wire else None
            response = await client.post(url, files=files, extensions=extensions)
        status, error = response.status_code, ""
    except (httpx.HTTPError, TimeoutError) as exc:
        status, error = NO_ANSWER, type(exc).__name__
    end = time.perf_counter()
    return end - start, status, error, end - sent_at


def _record(result: LoadResult, latency: float, status: int, error: str, wire: float) -> None:
    result.latencies_s.append(latency)
    result.statuses.append(status)
    result.wire_latencies_s.append(wire)
    if error:
        result.failures[error] = result.failures.get(error, 0) + 1


async def closed_loop(
    pool: ClientPool, url: str, files: Files, clients: int, seconds: float
) -> LoadResult:
    """`clients` workers, each sending its next request as soon as the previous one is answered.

    Requests started within `seconds` are measured to completion; throughput divides by the
    time from the start until the last of them was answered.
    """
    result = LoadResult(clients, sum(1 for name, _ in files if name == "file"))
    start = time.perf_counter()
    deadline = start + seconds

    async def worker(index: int) -> None:
        client = pool.client(index)
        while time.perf_counter() < deadline:
            _record(result, *await _post(client, url, files))

    await asyncio.gather(*(worker(index) for index in range(clients)))
    result.seconds = time.perf_counter() - start
    return result


async def open_loop(
    pool: ClientPool, url: str, files: Files, rate_per_s: float, seconds: float
) -> LoadResult:
    """Arrivals at a fixed rate whatever the answers do (the way overload really arrives).

    Each request is its own task; `offered_per_s` reports the rate this process managed to
    send at, which is lower than asked when the client machine cannot keep up.
    """
    total = max(1, int(rate_per_s * seconds))
    result = LoadResult(0, sum(1 for name, _ in files if name == "file"))
    start = time.perf_counter()
    tasks = []
    for index in range(total):
        delay = start + index / rate_per_s - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(_post(pool.client(index), url, files, wire=True)))
    sent = time.perf_counter() - start
    for outcome in await asyncio.gather(*tasks):
        _record(result, *outcome)
    result.seconds = time.perf_counter() - start
    result.clients = len(tasks)
    result.offered_per_s = stats.rate(total, sent) if sent > 0 else rate_per_s
    return result


def hey_available() -> bool:
    return shutil.which("hey") is not None


def run_hey(
    url: str, image: bytes, clients: int, seconds: float, scratch: Path
) -> dict[str, float] | None:
    """Raw HTTP numbers from `hey` (Go, no Python client overhead), JSON body; None if absent."""
    if not hey_available():
        return None
    body = scratch / "hey-body.json"
    body.write_text(json.dumps({"instances": [{"b64": base64.b64encode(image).decode()}]}))
    command = ["hey", "-z", f"{seconds:g}s", "-c", str(clients), "-m", "POST",
               "-T", "application/json", "-D", str(body), url]  # fmt: skip
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return parse_hey(output)


def parse_hey(output: str) -> dict[str, float]:
    """Requests/s, latency percentiles (ms) and non-200 count from hey's text report."""
    result: dict[str, float] = {}
    if match := re.search(r"Requests/sec:\s+([\d.]+)", output):
        result["requests_per_s"] = float(match.group(1))
    for q in ("50", "95", "99"):
        if match := re.search(rf"\s{q}%+ in ([\d.]+) secs", output):
            result[f"p{q}_ms"] = 1000.0 * float(match.group(1))
    codes = dict(re.findall(r"\[(\d{3})\]\s+(\d+) responses", output))
    result["ok"] = float(codes.get("200", 0))
    result["errors"] = float(sum(int(n) for code, n in codes.items() if code != "200"))
    return result
