"""Hostile-client scenarios: counts -> numbers and a pass/fail against each goal. Pure functions.

The goals are issue 10's: slow clients keep >= 80% of the legitimate throughput with 0 non-200
answers; the worst accepted image raises a light stream's p99 by <= 50 ms and the service's RSS
by <= 300 MB; SIGTERM under load answers every request that reached the server (the clients'
200s equal the access log's 200s) with 0 resets or requests dropped without an answer.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from benchmarks import heyload, stats
from benchmarks.keepalive import DROPPED, RESET

MIN_THROUGHPUT_RATIO = 0.8
MAX_P99_RISE_MS = 50.0
MAX_RSS_RISE_MB = 300.0
MB = 1_000_000

SLOW_CLIENTS_GOAL = f"throughput >= {MIN_THROUGHPUT_RATIO:.0%} of baseline, 0 non-200"
WORST_IMAGE_GOAL = f"p99 +<= {MAX_P99_RISE_MS:.0f} ms, RSS +<= {MAX_RSS_RISE_MB:.0f} MB"
SIGTERM_GOAL = "clients' 200s = log's 200s, 0 resets, 0 dropped, every run"


def access_log_statuses(lines: Iterable[str], request_id: str | None = None) -> Counter[str]:
    """Statuses of classify requests in the service's JSON access log (`app.access` lines).

    With `request_id`, only the requests that carried that X-Request-Id. Lines that are not
    JSON (a traceback, TensorFlow's chatter) are skipped.
    """
    counts: Counter[str] = Counter()
    for line in lines:
        if not line.startswith("{"):
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if entry.get("logger") != "app.access" or not str(entry.get("route", "")).endswith(
            "/classify"
        ):
            continue
        if request_id is not None and entry.get("request_id") != request_id:
            continue
        counts[str(entry.get("status"))] += 1
    return counts


def legit_stream(
    answers: Sequence[heyload.Answer], seconds: float, server_count: int
) -> dict[str, Any]:
    """hey's rows for the legitimate stream, against the service's count of those requests.

    hey writes no row for a request that got no answer; one the service logged but hey has no
    row for was lost, and counts as a non-200 like any error status.
    """
    statuses = [a.status for a in answers]
    ok = statuses.count(200)
    lost = max(0, server_count - len(answers))
    wire = [a.wire_s for a in answers]
    return {
        "seconds": seconds,
        "requests": len(answers),
        "ok": ok,
        "lost": lost,
        "non_200": len(answers) - ok + lost,
        "statuses": stats.status_counts(statuses),
        "ok_per_s": stats.rate(ok, seconds),
        "server_count": server_count,
        "p50_ms": 1000.0 * stats.percentile(wire, 50) if wire else math.nan,
        "p99_ms": 1000.0 * stats.percentile(wire, 99) if wire else math.nan,
    }


def judge_slow_clients(baseline: Mapping[str, Any], attacked: Mapping[str, Any]) -> dict[str, Any]:
    """Legitimate throughput under attack against the baseline, and its non-200 answers."""
    ratio = stats.ratio(float(attacked["ok_per_s"]), float(baseline["ok_per_s"]))
    non_200 = int(attacked["non_200"])
    return {
        "throughput_ratio": ratio,
        "non_200": non_200,
        "goal": SLOW_CLIENTS_GOAL,
        "passed": not math.isnan(ratio) and ratio >= MIN_THROUGHPUT_RATIO and non_200 == 0,
    }


def accepted(status: int) -> bool:
    """Whether the service took an image past its header checks: anything but a 4xx refusal.

    A 5xx or no answer (status 0) is accepted too: the service spent work on it and failed.
    """
    return not 400 <= status < 500


def pick_worst(probes: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The probe that took the service longest among those it accepted (else among all)."""
    if not probes:
        raise ValueError("no probes to pick from")
    taken = [p for p in probes if accepted(int(p["status"]))] or list(probes)
    return max(taken, key=lambda p: float(p["seconds"]))


def judge_worst_image(
    baseline_p99_ms: float, attacked_p99_ms: float, rss_before: int, rss_peak: int
) -> dict[str, Any]:
    """p99 rise of the light stream and RSS rise of the service against the goal."""
    p99_rise = attacked_p99_ms - baseline_p99_ms
    rss_rise_mb = (rss_peak - rss_before) / MB
    return {
        "p99_rise_ms": p99_rise,
        "rss_rise_mb": rss_rise_mb,
        "goal": WORST_IMAGE_GOAL,
        "passed": (
            not math.isnan(p99_rise)
            and p99_rise <= MAX_P99_RISE_MS
            and rss_rise_mb <= MAX_RSS_RISE_MB
        ),
    }


def judge_sigterm_run(
    client: Mapping[str, int], log: Mapping[str, int], exit_code: int | None
) -> dict[str, Any]:
    """One SIGTERM run: the clients' outcomes against the access log's statuses."""
    client_answers = {k: n for k, n in client.items() if k.isdigit()}
    dropped = {k: client.get(k, 0) for k in DROPPED if client.get(k, 0)}
    client_200, log_200 = client.get("200", 0), log.get("200", 0)
    return {
        "client": dict(sorted(client.items())),
        "log": dict(sorted(log.items())),
        "client_200": client_200,
        "log_200": log_200,
        "client_answered": sum(client_answers.values()),
        "log_answered": sum(log.values()),
        "resets": client.get(RESET, 0),
        "dropped": sum(dropped.values()),
        "dropped_by_kind": dropped,
        "exit_code": exit_code,
        "passed": client_200 == log_200 and not dropped and exit_code is not None,
    }


def judge_sigterm(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Every run must pass; totals over the runs for the report."""
    return {
        "runs": len(runs),
        "runs_passed": sum(1 for r in runs if r["passed"]),
        "resets": sum(int(r["resets"]) for r in runs),
        "dropped": sum(int(r["dropped"]) for r in runs),
        "client_200": sum(int(r["client_200"]) for r in runs),
        "log_200": sum(int(r["log_200"]) for r in runs),
        "goal": SIGTERM_GOAL,
        "passed": bool(runs) and all(r["passed"] for r in runs),
    }
