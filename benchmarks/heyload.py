"""Overload driven by `hey` (Go): a client that outruns the service on a small machine.

The httpx generator tops out near 540 requests/s on 2 cores, below what the service answers, so
with it "4x the sustainable rate" overloads the client. Here `hey` finds the sustainable rate
(closed loop) and then offers about 4x that with rate-limited workers (`-q` is per worker),
writing one csv row per answered request. hey leaves connection errors and timeouts out of its
csv, so losses are counted against the service's own request counter. Latencies are on the
wire (hey's response-time less its DNS+dialup), as the httpx path measures them: connection
setup, paid once per worker and slow when hundreds of workers dial a busy server at once, is
reported apart. Latency percentiles leave out requests sent in the first `SETTLE_S`: hundreds of
workers dialling and sending at the same instant make a burst that a steady overload does not
have; the all-requests p99s are kept beside them.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks import stats

logger = logging.getLogger(__name__)

REJECTED = (429, 503)
PER_WORKER_QPS = 10.0  # each worker waits for its answer, so 1/qps must exceed accepted latency
MAX_WORKERS = 1024
SETTLE_S = 1.0


@dataclass(frozen=True)
class Answer:
    """One csv row: total time (s, connection setup included), status, start offset (s), and
    the part of the total spent opening the connection (0 on a reused one)."""

    latency_s: float
    status: int
    offset_s: float
    connect_s: float = 0.0

    @property
    def wire_s(self) -> float:
        return max(0.0, self.latency_s - self.connect_s)


def parse_csv(text: str) -> list[Answer]:
    """hey's `-o csv` output -> one Answer per answered request (header required)."""
    reader = csv.DictReader(io.StringIO(text.strip()))
    missing = {"response-time", "DNS+dialup", "status-code", "offset"} - set(
        reader.fieldnames or ()
    )
    if missing:
        raise ValueError(f"not hey csv output: missing columns {sorted(missing)}")
    return [
        Answer(
            float(row["response-time"]),
            int(row["status-code"]),
            float(row["offset"]),
            float(row["DNS+dialup"]),
        )
        for row in reader
    ]


def span_s(answers: Sequence[Answer]) -> float:
    """From the first request sent until the last answer arrived."""
    if not answers:
        return math.nan
    return max(a.offset_s + a.latency_s for a in answers) - min(a.offset_s for a in answers)


def closed_loop_rate(answers: Sequence[Answer]) -> float:
    """200s per second over the run's span: the sustainable rate of a closed-loop probe."""
    return stats.rate(sum(1 for a in answers if a.status == 200), span_s(answers))


def workers_for(target_per_s: float, per_worker: float = PER_WORKER_QPS) -> tuple[int, float]:
    """(workers, requests/s per worker) whose product is the target, at most MAX_WORKERS."""
    if not target_per_s > 0:
        raise ValueError(f"target rate must be positive, not {target_per_s}")
    workers = min(MAX_WORKERS, max(1, math.ceil(target_per_s / per_worker)))
    return workers, target_per_s / workers


def _ms(values: Sequence[float], q: float) -> float:
    return 1000.0 * stats.percentile(values, q) if values else math.nan


def summarise(
    answers: Sequence[Answer], seconds: float, server_answered: float, settle_s: float = 0.0
) -> dict:
    """Counts by status, accepted/rejected latency, offered vs answered, losses.

    `seconds` is the nominal run length (hey's -z); `server_answered` is the service's own count
    of classify requests it answered meanwhile. A request the service answered that hey has no
    row for was lost on the client side (timeout, reset). Counts cover every answer; latency
    percentiles only requests sent from `settle_s` on (the `*_all_p99_ms` ones cover all).
    """
    steady = [a for a in answers if a.offset_s >= settle_s]
    statuses = [a.status for a in answers]
    accepted = [a.wire_s for a in steady if a.status == 200]
    rejected = [a.wire_s for a in steady if a.status in REJECTED]
    connects = [a.connect_s for a in answers]
    other = sum(1 for s in statuses if s != 200 and s not in REJECTED)
    lost = max(0, int(server_answered) - len(answers))
    rejected_p99_ms = _ms(rejected, 99)
    return {
        "requests": len(answers),
        "sent": len(answers) + lost,
        "answered": len(answers),
        "server_answered": int(server_answered),
        "lost": lost,
        "ok": statuses.count(200),
        "rejected": sum(1 for s in statuses if s in REJECTED),
        "rejected_503": statuses.count(503),
        "rejected_429": statuses.count(429),
        "other_statuses": other,
        "statuses": stats.status_counts(statuses),
        "seconds": seconds,
        "span_s": span_s(answers),
        "offered_per_s": stats.rate(len(answers) + lost, seconds),
        "requests_per_s": stats.rate(statuses.count(200), seconds),
        "accepted_per_s": stats.rate(statuses.count(200), seconds),
        "rejected_per_s": stats.rate(len(answers) - statuses.count(200) - other, seconds),
        "settle_s": settle_s,
        "accepted_all_p99_ms": _ms([a.wire_s for a in answers if a.status == 200], 99),
        "rejected_all_p99_ms": _ms([a.wire_s for a in answers if a.status in REJECTED], 99),
        **stats.latency_summary(accepted),
        "accepted_p50_ms": _ms(accepted, 50),
        "accepted_p99_ms": _ms(accepted, 99),
        "rejected_p50_ms": _ms(rejected, 50),
        "rejected_p99_ms": rejected_p99_ms,
        "rejected_p99_under_50ms": bool(rejected) and rejected_p99_ms < 50.0,
        "accepted_total_p99_ms": _ms([a.latency_s for a in steady if a.status == 200], 99),
        "rejected_total_p99_ms": _ms([a.latency_s for a in steady if a.status in REJECTED], 99),
        "connect_p99_ms": _ms(connects, 99),
        "connect_max_ms": 1000.0 * max(connects, default=math.nan),
        "unexpected_statuses": other,
        "every_request_answered": lost == 0 and other == 0 and int(server_answered) == len(answers),
    }


def run_csv(
    url: str,
    body: Path,
    workers: int,
    seconds: float,
    per_worker_qps: float | None = None,
    timeout_s: int = 15,
    headers: Sequence[str] = (),
) -> list[Answer]:
    """`hey -o csv` with a raw image/png body; rate-limited per worker when a qps is given.

    `headers` ("Name: value") go on every request, e.g. an X-Request-Id to find them in the log.
    """
    command = ["hey", "-z", f"{seconds:g}s", "-c", str(workers), "-t", str(timeout_s),
               "-m", "POST", "-T", "image/png", "-D", str(body), "-o", "csv"]  # fmt: skip
    if per_worker_qps is not None:
        command += ["-q", f"{per_worker_qps:.3f}"]
    for header in headers:
        command += ["-H", header]
    logger.info("running %s", " ".join([*command, url]))
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    return parse_csv(output)


def server_classify_count(before: Mapping, after: Mapping, route: str) -> float:
    """Classify requests the service answered between two /metrics snapshots, any status."""
    return stats.metric_delta(before, after, "tagger_requests_total", route=route)
