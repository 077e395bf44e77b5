"""Load generators: closed-loop clients and open-loop arrivals (httpx), and `hey` when present."""

from __future__ import annotations

import asyncio
import base64
import json
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
            **({"offered_per_s": self.offered_per_s} if self.offered_per_s is not None else {}),
        }


def multipart(image: bytes, count: int, content_type: str = "image/png") -> Files:
    """`count` copies of the image as repeated multipart `file` fields."""
    return [("file", (f"image{i}.png", image, content_type)) for i in range(count)]


def make_client(connections: int, timeout_s: float = 30.0) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(limits=limits, timeout=timeout_s)


async def _post(client: httpx.AsyncClient, url: str, files: Files) -> tuple[float, int]:
    start = time.perf_counter()
    try:
        response = await client.post(url, files=files)
        status = response.status_code
    except httpx.HTTPError:
        status = NO_ANSWER
    return time.perf_counter() - start, status


async def closed_loop(
    client: httpx.AsyncClient, url: str, files: Files, clients: int, seconds: float
) -> LoadResult:
    """`clients` workers, each sending its next request as soon as the previous one is answered.

    Requests started within `seconds` are measured to completion; throughput divides by the
    time from the start until the last of them was answered.
    """
    result = LoadResult(clients, sum(1 for name, _ in files if name == "file"))
    start = time.perf_counter()
    deadline = start + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            latency, status = await _post(client, url, files)
            result.latencies_s.append(latency)
            result.statuses.append(status)

    await asyncio.gather(*(worker() for _ in range(clients)))
    result.seconds = time.perf_counter() - start
    return result


async def open_loop(
    client: httpx.AsyncClient, url: str, files: Files, rate_per_s: float, seconds: float
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
        tasks.append(asyncio.create_task(_post(client, url, files)))
    sent = time.perf_counter() - start
    for latency, status in await asyncio.gather(*tasks):
        result.latencies_s.append(latency)
        result.statuses.append(status)
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
