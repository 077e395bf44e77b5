"""The service scenarios: concurrency sweep, unbatched, soak and overload.

Overload runs through `hey` when it is on PATH (the httpx generator saturates before the
service on a small machine), else through httpx with a note saying so.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from benchmarks import heyload, stats
from benchmarks.load import ClientPool, closed_loop, hey_available, multipart, open_loop, run_hey
from benchmarks.service import Service

logger = logging.getLogger(__name__)

CLASSIFY_ROUTE = "/v1/models/{model}/classify"


@dataclass(frozen=True)
class Plan:
    """How long and how wide each part runs; `QUICK` and `FULL` below."""

    name: str
    raw_batch_sizes: tuple[int, ...]
    raw_seconds: float
    clients: tuple[int, ...]
    images_per_request: tuple[int, ...]
    seconds_per_level: float
    warmup_s: float
    unbatched_clients: tuple[int, ...]
    overload_seconds: float
    overload_factor: float = 4.0
    overload_max_queue: int = 64
    overload_probe_seconds: float = 5.0  # hey's closed-loop probe of the sustainable rate
    overload_probe_clients: int = 64
    # Large enough that 256 clients x 8 images queue instead of being refused: the sweep
    # measures capacity; the overload scenario measures the bounded queue.
    sweep_max_queue: int = 4096
    soak_seconds: float = 300.0
    soak_clients: int = 64


FULL = Plan(
    name="full",
    raw_batch_sizes=(1, 2, 4, 8, 16, 32, 64, 128, 256),
    raw_seconds=1.5,
    clients=(1, 4, 16, 64, 256),
    images_per_request=(1, 8),
    seconds_per_level=8.0,
    warmup_s=1.0,
    unbatched_clients=(1, 4, 16, 64, 256),
    overload_seconds=30.0,
)
QUICK = Plan(
    name="quick",
    raw_batch_sizes=(1, 4, 16, 64, 256),
    raw_seconds=0.3,
    clients=(1, 16, 64),
    images_per_request=(1, 8),
    seconds_per_level=2.0,
    warmup_s=0.3,
    unbatched_clients=(1, 64),
    overload_seconds=6.0,
    overload_probe_seconds=3.0,
)


async def _measure(
    service: Service, files: list, clients: int, seconds: float, warmup_s: float
) -> dict[str, object]:
    """One closed-loop level, with the service's own batch-size and request counts as deltas."""
    async with ClientPool(clients) as pool:
        await closed_loop(pool, service.classify_url, files, clients, warmup_s)
        before = service.metrics()
        result = await closed_loop(pool, service.classify_url, files, clients, seconds)
        after = service.metrics()
    summary = result.summary()
    summary["mean_batch_size"] = stats.mean_batch_size(before, after)
    summary["server_ok_requests"] = stats.metric_delta(
        before, after, "tagger_requests_total", route=CLASSIFY_ROUTE, status="200"
    )
    logger.info(
        "%3d clients x %d images: %8.0f images/s  p50 %7.1f ms  p99 %7.1f ms  batch %.1f  "
        "errors %d", clients, result.images_per_request, summary["images_per_s"],
        summary["p50_ms"], summary["p99_ms"], summary["mean_batch_size"], result.errors,
    )  # fmt: skip
    return summary


async def sweep(
    service: Service,
    image: bytes,
    clients: Sequence[int],
    images_per_request: Sequence[int],
    plan: Plan,
) -> list[dict[str, object]]:
    """Closed-loop clients at each concurrency, for each request size."""
    rows = []
    for count in images_per_request:
        for level in clients:
            rows.append(
                await _measure(
                    service, multipart(image, count), level, plan.seconds_per_level, plan.warmup_s
                )
            )
    return rows


def hey_sweep(service: Service, image: bytes, plan: Plan, scratch) -> list[dict[str, float]]:
    """The same single-image levels through `hey` (JSON bodies), for HTTP numbers without httpx."""
    rows = []
    for level in plan.clients:
        numbers = run_hey(service.classify_url, image, level, plan.seconds_per_level, scratch)
        if numbers is None:
            return []
        rows.append({"clients": level, **numbers})
    return rows


async def soak(service: Service, image: bytes, plan: Plan) -> dict[str, object]:
    """`soak_clients` closed-loop clients for `soak_seconds`: memory growth, errors, losses."""
    files = multipart(image, 1)
    rss: list[tuple[float, int]] = []
    async with ClientPool(plan.soak_clients) as pool:
        await closed_loop(pool, service.classify_url, files, plan.soak_clients, plan.warmup_s)
        before = service.metrics()
        start = time.monotonic()
        rss.append((0.0, service.rss_bytes()))
        load = asyncio.create_task(
            closed_loop(pool, service.classify_url, files, plan.soak_clients, plan.soak_seconds)
        )
        while not load.done():
            await asyncio.wait({load}, timeout=min(30.0, plan.soak_seconds / 10))
            rss.append((time.monotonic() - start, service.rss_bytes()))
        result = load.result()
        after = service.metrics()
    summary = result.summary()
    answered = stats.metric_delta(before, after, "tagger_requests_total", route=CLASSIFY_ROUTE)
    summary.update(
        rss_start_mib=rss[0][1] / 2**20,
        rss_end_mib=rss[-1][1] / 2**20,
        rss_samples_mib=[(round(t, 1), round(b / 2**20, 1)) for t, b in rss],
        lost=summary["statuses"].get(str(0), 0),  # type: ignore[union-attr]
        server_answered=answered,
        mean_batch_size=stats.mean_batch_size(before, after),
    )
    return summary


HTTPX_NOTE = (
    "hey not on PATH: overload driven by the httpx generator, which on a small machine saturates "
    "before the service, so its sustainable rate and rejection latencies are partly the client's"
)


async def overload(
    service: Service, image: bytes, sweep_sustainable_per_s: float, plan: Plan, scratch: Path
) -> dict:
    """`overload_factor` x the sustainable rate against a small queue, through hey if present."""
    if hey_available():
        summary = overload_hey(service, image, plan, scratch)
    else:
        logger.warning(HTTPX_NOTE)
        summary = await overload_httpx(service, image, sweep_sustainable_per_s, plan)
        summary.update(generator="httpx", generator_note=HTTPX_NOTE, sustainable_source="sweep")
    health = service.healthy()
    async with httpx.AsyncClient(timeout=10) as client:
        after = await client.post(service.classify_url, files=multipart(image, 1))
    summary.update(
        max_queue=int(service.settings["TAGGER_MAX_QUEUE"]),
        health_after=health,
        classify_after=after.status_code,
        healthy_after=all(code == 200 for code in health.values()) and after.status_code == 200,
    )
    return summary


def overload_hey(service: Service, image: bytes, plan: Plan, scratch: Path) -> dict:
    """hey closed loop for the sustainable rate, then rate-limited workers at the factor x it."""
    body = scratch / "overload.png"
    body.write_bytes(image)
    probe = heyload.run_csv(
        service.classify_url, body, plan.overload_probe_clients, plan.overload_probe_seconds
    )
    sustainable = heyload.closed_loop_rate(probe)
    target = plan.overload_factor * sustainable
    workers, per_worker = heyload.workers_for(target)
    before = service.metrics()
    answers = heyload.run_csv(
        service.classify_url, body, workers, plan.overload_seconds, per_worker_qps=per_worker
    )
    after = service.metrics()
    server = heyload.server_classify_count(before, after, CLASSIFY_ROUTE)
    summary = heyload.summarise(answers, plan.overload_seconds, server, heyload.SETTLE_S)
    summary.update(
        generator="hey",
        sustainable_source=f"hey closed loop, {plan.overload_probe_clients} clients",
        sustainable_per_s=sustainable,
        probe_statuses=stats.status_counts(a.status for a in probe),
        target_per_s=target,
        clients=workers,
        per_client_qps=per_worker,
        mean_batch_size=stats.mean_batch_size(before, after),
    )
    logger.info(
        "overload (hey): %d workers x %.2f/s = %.0f/s asked, %.0f/s offered, statuses %s, "
        "rejected p50/p99 %.1f/%.1f ms, lost %d", workers, per_worker, target,
        summary["offered_per_s"], summary["statuses"], summary["rejected_p50_ms"],
        summary["rejected_p99_ms"], summary["lost"],
    )  # fmt: skip
    return summary


async def overload_httpx(
    service: Service, image: bytes, sustainable_per_s: float, plan: Plan
) -> dict:
    """Open-loop arrivals at `overload_factor` x the sustainable rate against a small queue."""
    target = plan.overload_factor * sustainable_per_s
    files = multipart(image, 1)
    # An answer later than 15 s (past the default 10 s request deadline) counts as lost.
    async with ClientPool(1024, timeout_s=15.0) as pool:
        result = await open_loop(pool, service.classify_url, files, target, plan.overload_seconds)
    # Rejection speed is the server's: time on the wire, not time waiting for a connection.
    rejected = [
        wire
        for wire, status in zip(result.wire_latencies_s, result.statuses, strict=True)
        if status in (429, 503) and not math.isnan(wire)
    ]
    waited = [
        total - wire
        for total, wire in zip(result.latencies_s, result.wire_latencies_s, strict=True)
        if not math.isnan(wire)
    ]
    unexpected = [s for s in result.statuses if s not in (200, 429, 503)]
    summary = result.summary()
    rejected_p99_ms = 1000.0 * stats.percentile(rejected, 99) if rejected else math.nan
    summary.update(
        target_per_s=target,
        sustainable_per_s=sustainable_per_s,
        rejected=len(rejected),
        rejected_p99_ms=rejected_p99_ms,
        rejected_p50_ms=1000.0 * stats.percentile(rejected, 50) if rejected else math.nan,
        client_wait_p99_ms=1000.0 * stats.percentile(waited, 99) if waited else math.nan,
        unexpected_statuses=len(unexpected),
        every_request_answered=not unexpected,
        sent=len(result.statuses),
        answered=len(result.statuses) - summary["statuses"].get("0", 0),  # type: ignore[union-attr]
        lost=summary["statuses"].get("0", 0),  # type: ignore[union-attr]
        accepted_p50_ms=summary["p50_ms"],
        accepted_p99_ms=summary["p99_ms"],
        rejected_p99_under_50ms=bool(rejected) and rejected_p99_ms < 50.0,
    )
    return summary
