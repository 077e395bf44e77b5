"""The service with 1 and N worker processes against the HTTP ceiling with 1 and N (issue 16).

Ceiling: `benchmarks.ceiling_app` (the same multipart upload parsed by a bare FastAPI endpoint
that answers a constant) under `uvicorn --workers`. Service: `python -m app` with
TAGGER_WORKERS. Each is driven by `hey` at 64 clients with single-image PNG uploads, all four
processes up at once and taking turns within every round (who goes first alternates), so
machine noise falls on all alike. Rows are medians over the rounds; the verdicts hold the run to
issue 16's targets. With `server_cpus` the servers run on those cores only and hey on the rest,
so that the load generator takes none of the servers' CPU (a machine with cores to spare).
"""

from __future__ import annotations

import logging
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

from app.cpus import usable_cpus
from benchmarks import protocols, stats
from benchmarks.service import (
    Service,
    ServiceError,
    child_pids,
    confined_to,
    free_port,
    process_cpu_seconds,
)
from benchmarks.tables import fmt, table

logger = logging.getLogger(__name__)

CLIENTS = 64
CEILING, SERVICE = "ceiling", "service"
MIN_FRACTION_OF_CEILING = 0.5
MIN_IMAGES_PER_S_2_CORES = 2500.0
MAX_P99_MS = 50.0


class Ceiling:
    """`uvicorn benchmarks.ceiling_app:app --workers N` on a loopback port; a context manager
    with what `protocols.hey_with_cpu` needs (`base_url`, `cpu_seconds`)."""

    def __init__(self, workers: int, log_path: Path, cpus: frozenset[int] | None = None) -> None:
        self.workers = workers
        self.cpus = cpus
        self.port = free_port()
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float:
        assert self.process is not None
        pid = self.process.pid
        return sum(process_cpu_seconds(p) for p in (pid, *child_pids(pid)))

    def __enter__(self) -> Ceiling:
        command = [sys.executable, "-m", "uvicorn", "benchmarks.ceiling_app:app",
                   "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers),
                   "--log-level", "warning", "--no-access-log"]  # fmt: skip
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, preexec_fn=confined_to(self.cpus)
            )
        deadline = time.monotonic() + 60
        children = self.workers if self.workers > 1 else 0  # one worker: uvicorn forks none
        while len(child_pids(self.process.pid)) < children or not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise ServiceError(f"the ceiling app did not start: {self.log_path.read_text()}")
            time.sleep(0.2)
        return self

    def _answers(self) -> bool:
        try:
            files = {"file": ("a.png", b"x", "image/png")}
            url = f"{self.base_url}/v1/models/fashion/classify"
            return httpx.post(url, files=files, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def __exit__(self, *_: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def worker_counts(cores: int) -> tuple[int, ...]:
    """1, and `cores` when there are several."""
    return (1,) if cores == 1 else (1, cores)


def run(
    store_root: Path,
    model: str,
    image: bytes,
    scratch: Path,
    *,
    seconds: float = 8.0,
    rounds: int = 3,
    counts: Sequence[int] | None = None,
    server_cpus: frozenset[int] | None = None,
) -> dict[str, Any]:
    """Samples, rows and verdicts of the ceiling and the service at each worker count; with
    `server_cpus`, the servers on those cores and hey on the others."""
    cores = len(server_cpus) if server_cpus else usable_cpus()
    client_cpus = None
    if server_cpus:
        client_cpus = frozenset(os.sched_getaffinity(0)) - server_cpus
        if not client_cpus:
            raise ValueError(f"no core is left for hey besides the servers' {sorted(server_cpus)}")
    counts = tuple(counts or worker_counts(cores))
    request = protocols.upload_request(model, image)
    samples: list[dict[str, Any]] = []
    with ExitStack() as stack:
        targets: dict[tuple[str, int], Any] = {}
        for n in counts:
            ceiling = Ceiling(n, scratch / f"ceiling-{n}.log", server_cpus)
            targets[(CEILING, n)] = stack.enter_context(ceiling)
            settings = {"TAGGER_WORKERS": str(n)}
            log = scratch / f"service-{n}.log"
            service = stack.enter_context(
                Service(store_root, model, log, settings, cpus=server_cpus)
            )
            service.wait_for_workers(n)
            targets[(SERVICE, n)] = service
        order = list(targets)
        for key in order:  # warm-up: connections, first batches
            protocols.hey_with_cpu(targets[key], request, CLIENTS, 2.0, scratch, client_cpus)
        for round_index in range(rounds):
            for kind, n in order if round_index % 2 == 0 else order[::-1]:
                result = protocols.hey_with_cpu(
                    targets[(kind, n)], request, CLIENTS, seconds, scratch, client_cpus
                )
                logger.info("workers round %d, %s x%d: %s", round_index + 1, kind, n, result)
                samples.append({**result, "kind": kind, "workers": n, "round": round_index})
    rows = summarise(samples)
    return {
        "cores": cores,
        "server_cpus": sorted(server_cpus) if server_cpus else None,
        "client_cpus": sorted(client_cpus) if client_cpus else None,
        "clients": CLIENTS,
        "samples": samples,
        "rows": rows,
        "verdicts": verdicts(rows, cores),
    }


_KEYS = ("requests_per_s", "p50_ms", "p99_ms", "server_cpu_ms_per_request")


def summarise(samples: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per worker count: the service's and the ceiling's medians, and the fraction."""
    rows = []
    for n in sorted({int(s["workers"]) for s in samples}):
        row: dict[str, Any] = {"workers": n}
        for kind in (SERVICE, CEILING):
            picked = [s for s in samples if s["workers"] == n and s["kind"] == kind]
            for key in _KEYS:
                values = [float(s.get(key, math.nan)) for s in picked]
                row[f"{kind}_{key}"] = statistics.median(values) if values else math.nan
            row[f"{kind}_errors"] = sum(float(s.get("errors", 0.0)) for s in picked)
        row["fraction_of_ceiling"] = stats.ratio(
            row["service_requests_per_s"], row["ceiling_requests_per_s"]
        )
        rows.append(row)
    return rows


def verdicts(rows: Sequence[Mapping[str, Any]], cores: int) -> list[dict[str, Any]]:
    """Issue 16's targets for N = cores workers (a missing row is not met)."""
    row = next((r for r in rows if r["workers"] == cores), None)

    def value(key: str) -> float:
        return math.nan if row is None else float(row[key])

    fraction, rate, p99 = (
        value("fraction_of_ceiling"),
        value("service_requests_per_s"),
        value("service_p99_ms"),
    )
    out = [
        {
            "target": f"service with {cores} workers >= {MIN_FRACTION_OF_CEILING:g} x the "
            f"bare-endpoint ceiling with {cores}",
            "measured": f"{fmt(rate)} vs {fmt(value('ceiling_requests_per_s'))} requests/s: "
            f"{fmt(fraction, 2)}x",
            "value": fraction,
            "met": fraction >= MIN_FRACTION_OF_CEILING,
        },
        {
            "target": f"p99 <= {MAX_P99_MS:g} ms at {CLIENTS} clients with {cores} workers",
            "measured": f"{fmt(p99, 1)} ms (the bare ceiling's own: "
            f"{fmt(value('ceiling_p99_ms'), 1)} ms)",
            "value": p99,
            "met": p99 <= MAX_P99_MS,
        },
    ]
    if cores == 2:
        out.insert(
            1,
            {
                "target": f">= {MIN_IMAGES_PER_S_2_CORES:g} images/s on 2 cores",
                "measured": f"{fmt(rate)} images/s",
                "value": rate,
                "met": rate >= MIN_IMAGES_PER_S_2_CORES,
            },
        )
    return out


def _where(section: Mapping[str, Any]) -> str:
    servers, clients = section.get("server_cpus"), section.get("client_cpus")
    if not servers:
        return f"{section['cores']} usable cores, hey on the same cores"
    return f"servers on cores {_cores(servers)}, hey on cores {_cores(clients or [])}"


def _cores(cpus: Sequence[int]) -> str:
    return ",".join(str(cpu) for cpu in cpus)


def lines(section: Mapping[str, Any]) -> list[str]:
    """The report's section: one row per worker count, then the verdicts."""
    if not section:
        return []
    if "skipped" in section:
        return ["## Worker processes vs the HTTP ceiling", "", f"Skipped: {section['skipped']}", ""]
    headers = ["workers", "service images/s", "p50 ms", "p99 ms", "CPU ms/request",
               "ceiling requests/s", "ceiling CPU ms/request", "fraction of ceiling",
               "non-200"]  # fmt: skip
    rows = [
        (r["workers"], r["service_requests_per_s"], fmt(r["service_p50_ms"], 1),
         fmt(r["service_p99_ms"], 1), fmt(r["service_server_cpu_ms_per_request"], 2),
         r["ceiling_requests_per_s"], fmt(r["ceiling_server_cpu_ms_per_request"], 2),
         f"{fmt(r['fraction_of_ceiling'], 2)}x", fmt(r["service_errors"]))
        for r in section["rows"]
    ]  # fmt: skip
    out = [
        "## Worker processes vs the HTTP ceiling (same run, interleaved rounds, medians)",
        "",
        f"hey, {section['clients']} clients, one 28x28 PNG per multipart request; "
        f"{_where(section)}; the ceiling is a bare FastAPI endpoint that parses "
        "the same upload and answers a constant (`benchmarks/ceiling_app.py`).",
        "",
        *table(headers, rows),
        "",
    ]
    for verdict in section["verdicts"]:
        met = "met" if verdict["met"] else "NOT met"
        out.append(f"- {verdict['target']}: **{met}** ({verdict['measured']})")
    return [*out, ""]
