"""Hostile-client scenarios against `python -m app` on loopback (issue 10's benchmark proof).

- slow clients: 1,000 connections trickling heads and bodies at 1 byte/s while hey sends single
  images with 2 clients; the same hey run without attackers first is the baseline.
- worst accepted image: each hostile PNG of `bombs.BOMBS` probed alone, then 4 clients looping
  the costliest one the service accepted while a light hey stream runs (baselined alone first).
- SIGTERM under load: 32 keep-alive raw-socket clients, SIGTERM mid-run, each request's outcome
  against the service's access log; several runs.
Each scenario reports its numbers and `passed` against its goal (see `verdicts`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import signal
import subprocess
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from benchmarks import bombs, heyload, verdicts
from benchmarks.keepalive import KeepAliveLoad, classify_request
from benchmarks.service import Service
from benchmarks.slowclients import SlowClients, raise_fd_limit

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
INFO_LOG = {"TAGGER_LOG_LEVEL": "INFO"}  # one access-log line per request, with its status
LOG_SETTLE_S = 0.5  # the access-log line is written just after the answer
FD_MARGIN = 1024  # descriptors besides the attack's sockets (TensorFlow, hey, the log)


@dataclass(frozen=True)
class HostilePlan:
    """Sizes and lengths of the hostile scenarios; `FULL` and `QUICK` below."""

    name: str
    slow_connections: int = 1000
    slow_interval_s: float = 1.0  # one byte per interval per connection
    slow_ramp_s: float = 2.0  # attackers connect spread over this long
    slow_seconds: float = 10.0  # each legitimate hey run (baseline, under attack)
    legit_clients: int = 2
    worst_clients: int = 4
    light_clients: int = 1
    light_seconds: float = 12.0  # longer than one decode of the worst image on today's code
    probe_timeout_s: float = 30.0  # past it a probe counts as accepted with no answer
    sigterm_runs: int = 5
    sigterm_clients: int = 32
    sigterm_after_s: float = 2.0  # load before the SIGTERM
    sigterm_exit_timeout_s: float = 45.0


FULL = HostilePlan(name="full")
QUICK = HostilePlan(
    name="quick", slow_seconds=5.0, light_seconds=6.0, sigterm_runs=3, sigterm_after_s=1.0
)


def _classify_path(service: Service) -> str:
    return f"/v1/models/{service.model}/classify"


def _log_statuses(service: Service, request_id: str | None = None) -> Counter[str]:
    lines = service.log_path.read_text(errors="replace").splitlines()
    return verdicts.access_log_statuses(lines, request_id)


async def _hey_stream(
    service: Service, body: Path, clients: int, seconds: float, request_id: str
) -> dict[str, Any]:
    """hey with single images for `seconds`, its requests tagged to be counted in the log.

    Also the CPU (in cores) the service, this process (attackers included) and hey used
    meanwhile: on a small machine the attackers' own cost is part of what the run measures.
    """
    cpu_before = _cpu_seconds(service)
    started = time.monotonic()
    answers = await asyncio.to_thread(
        heyload.run_csv,
        service.classify_url,
        body,
        clients,
        seconds,
        headers=[f"X-Request-Id: {request_id}"],
    )
    wall = time.monotonic() - started
    cores = {
        f"{who}_cores": (after - before) / wall
        for who, before, after in zip(
            ("service", "bench", "hey"), cpu_before, _cpu_seconds(service), strict=True
        )
    }
    await asyncio.sleep(LOG_SETTLE_S)
    server_count = sum(_log_statuses(service, request_id).values())
    return {**verdicts.legit_stream(answers, seconds, server_count), **cores}


def _cpu_seconds(service: Service) -> tuple[float, float, float]:
    """CPU seconds so far of the service, of this process, and of its waited-for children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (
        service.cpu_seconds(),
        own.ru_utime + own.ru_stime,
        children.ru_utime + children.ru_stime,
    )


async def _healthy_after(service: Service, image: bytes) -> bool:
    async with httpx.AsyncClient(timeout=30) as client:
        answer = await client.post(
            service.classify_url, content=image, headers={"content-type": "image/png"}
        )
    health = await asyncio.to_thread(service.healthy)
    return answer.status_code == 200 and all(code == 200 for code in health.values())


async def _sample(values: list[int], read: Any, every_s: float) -> None:
    while True:
        values.append(read())
        await asyncio.sleep(every_s)


async def slow_clients(
    store_root: Path, model: str, image: bytes, plan: HostilePlan, scratch: Path
) -> dict[str, Any]:
    """Legitimate single-image throughput with and without `slow_connections` slow attackers."""
    fd_limit = raise_fd_limit(plan.slow_connections + FD_MARGIN)
    body = scratch / "legit.png"
    body.write_bytes(image)
    with Service(store_root, model, scratch / "slow-clients.log", INFO_LOG) as service:
        baseline = await _hey_stream(
            service, body, plan.legit_clients, plan.slow_seconds, "bench-legit-baseline"
        )
        attack = SlowClients(
            HOST, service.port, _classify_path(service), plan.slow_connections,
            plan.slow_interval_s, plan.slow_ramp_s,
        )  # fmt: skip
        attack.start()
        open_counts: list[int] = []
        sampler = asyncio.create_task(_sample(open_counts, lambda: attack.stats.open_now, 0.5))
        try:
            open_at_start = await attack.ramped()
            open_counts.clear()  # the pressure during the measurement, not the ramp
            attacked = await _hey_stream(
                service, body, plan.legit_clients, plan.slow_seconds, "bench-legit-attacked"
            )
        finally:
            sampler.cancel()
            await attack.stop()
        healthy = await _healthy_after(service, image)
        service.kill()  # the attackers' leftovers need no drain
    result = {
        "connections": plan.slow_connections,
        "interval_s": plan.slow_interval_s,
        "legit_clients": plan.legit_clients,
        "fd_limit": fd_limit,
        "baseline": baseline,
        "attacked": attacked,
        "attackers_open_at_start": open_at_start,
        "attackers_open_min": min(open_counts, default=0),
        "attackers_open_mean": sum(open_counts) / len(open_counts) if open_counts else 0.0,
        "attackers": attack.stats.summary(),
        "healthy_after": healthy,
        **verdicts.judge_slow_clients(baseline, attacked),
    }
    logger.info(
        "slow clients: %.0f -> %.0f ok/s (x%.2f), %d non-200, attackers open >= %d: passed %s",
        baseline["ok_per_s"], attacked["ok_per_s"], result["throughput_ratio"],
        result["non_200"], result["attackers_open_min"], result["passed"],
    )  # fmt: skip
    return result


def _error_code(answer: httpx.Response) -> str | None:
    try:
        return answer.json().get("error", {}).get("code")
    except (ValueError, AttributeError):
        return None


async def _probe(
    client: httpx.AsyncClient, service: Service, bomb: bombs.Bomb, data: bytes
) -> dict[str, Any]:
    """One hostile image alone: status, error code, time, the service's RSS after it."""
    start = time.perf_counter()
    try:
        answer = await client.post(
            service.classify_url, content=data, headers={"content-type": "image/png"}
        )
        status = answer.status_code
        code = _error_code(answer) if status != 200 else None
    except httpx.HTTPError as exc:
        status, code = 0, type(exc).__name__
    seconds = time.perf_counter() - start
    probe = {
        "name": bomb.name,
        "bytes": len(data),
        "pixels": bomb.pixels,
        "status": status,
        "error_code": code,
        "seconds": seconds,
        "rss_after_mb": service.rss_bytes() / verdicts.MB,
        "peak_rss_after_mb": service.peak_rss_bytes() / verdicts.MB,
    }
    logger.info("worst image probe %s: %s %s in %.2f s", bomb.name, status, code or "", seconds)
    return probe


async def _loop_posts(
    client: httpx.AsyncClient, url: str, data: bytes, statuses: Counter[str]
) -> None:
    while True:
        try:
            answer = await client.post(url, content=data, headers={"content-type": "image/png"})
            statuses[str(answer.status_code)] += 1
        except httpx.HTTPError as exc:
            statuses[type(exc).__name__] += 1


async def worst_image(
    store_root: Path, model: str, image: bytes, plan: HostilePlan, scratch: Path
) -> dict[str, Any]:
    """A light stream's p99 and the service's RSS while clients loop the worst accepted image."""
    body = scratch / "light.png"
    body.write_bytes(image)
    encoded = {bomb.name: bombs.encode(bomb) for bomb in bombs.BOMBS}
    with Service(store_root, model, scratch / "worst-image.log", INFO_LOG) as service:
        baseline = await _hey_stream(
            service, body, plan.light_clients, plan.light_seconds, "bench-light-baseline"
        )
        rss_before = service.rss_bytes()
        async with httpx.AsyncClient(timeout=plan.probe_timeout_s) as client:
            probes = [await _probe(client, service, b, encoded[b.name]) for b in bombs.BOMBS]
        worst = verdicts.pick_worst(probes)
        statuses: Counter[str] = Counter()
        rss_samples: list[int] = []
        limits = httpx.Limits(max_connections=plan.worst_clients)
        async with httpx.AsyncClient(timeout=plan.probe_timeout_s, limits=limits) as client:
            attackers = [
                asyncio.create_task(
                    _loop_posts(client, service.classify_url, encoded[worst["name"]], statuses)
                )
                for _ in range(plan.worst_clients)
            ]
            sampler = asyncio.create_task(_sample(rss_samples, service.rss_bytes, 0.25))
            try:
                await asyncio.sleep(0.5)
                attacked = await _hey_stream(
                    service, body, plan.light_clients, plan.light_seconds, "bench-light-attacked"
                )
            finally:
                for task in (*attackers, sampler):
                    task.cancel()
                await asyncio.gather(*attackers, sampler, return_exceptions=True)
        peak = service.peak_rss_bytes()
        service.kill()  # hostile decodes may still run; their drain is not measured here
    result = {
        "clients": plan.worst_clients,
        "light_clients": plan.light_clients,
        "probes": probes,
        "worst": worst["name"],
        "worst_accepted": verdicts.accepted(int(worst["status"])),
        "attack_statuses": dict(sorted(statuses.items())),
        "baseline": baseline,
        "attacked": attacked,
        "rss_before_mb": rss_before / verdicts.MB,
        "rss_sampled_peak_mb": max(rss_samples, default=0) / verdicts.MB,
        "peak_rss_mb": peak / verdicts.MB,
        **verdicts.judge_worst_image(baseline["p99_ms"], attacked["p99_ms"], rss_before, peak),
    }
    logger.info(
        "worst image %s x%d: light p99 %.1f -> %.1f ms, RSS +%.0f MB: passed %s",
        worst["name"], plan.worst_clients, baseline["p99_ms"], attacked["p99_ms"],
        result["rss_rise_mb"], result["passed"],
    )  # fmt: skip
    return result


def _wait_exit(process: subprocess.Popen[bytes], timeout_s: float) -> int | None:
    try:
        return process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return None


async def _sigterm_run(
    store_root: Path, model: str, image: bytes, plan: HostilePlan, log_path: Path
) -> dict[str, Any]:
    service = Service(store_root, model, log_path, INFO_LOG).start()
    try:
        request = classify_request(HOST, service.port, _classify_path(service), image, "image/png")
        load = KeepAliveLoad(HOST, service.port, request, plan.sigterm_clients)
        load.start()
        await asyncio.sleep(plan.sigterm_after_s)
        assert service.process is not None
        service.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        exit_code = await asyncio.to_thread(
            _wait_exit, service.process, plan.sigterm_exit_timeout_s
        )
        drain_s = time.monotonic() - signalled
        clients_ended = await load.wait(timeout_s=10.0)
    finally:
        with contextlib.suppress(Exception):
            service.kill()
    run = verdicts.judge_sigterm_run(load.outcomes, _log_statuses(service), exit_code)
    run.update(
        drain_s=drain_s,
        clients_ended=clients_ended,
        dropped_on_new_connection=dict(load.dropped_on_new_connection),
    )
    return run


async def sigterm(
    store_root: Path, model: str, image: bytes, plan: HostilePlan, scratch: Path
) -> dict[str, Any]:
    """`sigterm_runs` times: 32 keep-alive clients, SIGTERM mid-run, outcomes against the log."""
    runs = []
    for index in range(plan.sigterm_runs):
        log_path = scratch / f"sigterm-{index}.log"
        run = await _sigterm_run(store_root, model, image, plan, log_path)
        logger.info(
            "sigterm run %d: client %s, log %s, exit %s after %.1f s: passed %s",
            index + 1, run["client"], run["log"], run["exit_code"], run["drain_s"], run["passed"],
        )  # fmt: skip
        runs.append(run)
    return {
        "clients": plan.sigterm_clients,
        "after_s": plan.sigterm_after_s,
        "per_run": runs,
        **verdicts.judge_sigterm(runs),
    }


async def run_all(
    store_root: Path, model: str, image: bytes, plan: HostilePlan, scratch: Path
) -> dict[str, Any]:
    """The three scenarios in turn, each on its own service."""
    started = time.monotonic()
    results: dict[str, Any] = {"plan": asdict(plan)}
    scenarios = (
        ("slow_clients", slow_clients, verdicts.SLOW_CLIENTS_GOAL),
        ("worst_image", worst_image, verdicts.WORST_IMAGE_GOAL),
        ("sigterm", sigterm, verdicts.SIGTERM_GOAL),
    )
    for name, scenario, goal in scenarios:
        try:
            results[name] = await scenario(store_root, model, image, plan, scratch)
        except Exception as exc:  # a service that dies under attack is a result, not a crash
            logger.exception("hostile scenario %s did not finish", name)
            results[name] = {"error": f"{type(exc).__name__}: {exc}", "goal": goal, "passed": False}
    results["seconds"] = time.monotonic() - started
    return results


def run(store_root: Path, model: str, image: bytes, plan: HostilePlan, scratch: Path) -> dict:
    """`run_all` on uvloop when installed (uvicorn[standard] brings it): on plain asyncio the
    raw-socket clients are too slow to race a draining server, and SIGTERM looks cleaner than
    it is."""
    try:
        import uvloop
    except ImportError:
        logger.warning("uvloop not installed: the hostile clients run on plain asyncio")
        return asyncio.run(run_all(store_root, model, image, plan, scratch))
    return uvloop.run(run_all(store_root, model, image, plan, scratch))
