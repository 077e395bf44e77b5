"""TensorFlow against ONNX Runtime, same version, same run: the raw model and the service.

Raw: both runtimes loaded in this process by the service's own code (`app.core.runtime`, with
the service's default thread settings), called at each batch size; the runtimes take turns
within every round so machine noise falls on both alike. Service: two `python -m app`
processes, `TAGGER_RUNTIME=tensorflow` and `=onnxruntime`, driven in turns by `hey` with
single-image upload requests at 1 and 64 clients. Each row is the median over its rounds.
The verdicts hold the run to issue 12's targets.
"""

from __future__ import annotations

import logging
import math
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks import protocols, stats
from benchmarks.service import Service
from benchmarks.tables import fmt, table

logger = logging.getLogger(__name__)

TENSORFLOW = "tensorflow"
ONNXRUNTIME = "onnxruntime"
RUNTIMES = (TENSORFLOW, ONNXRUNTIME)
NAMES = {TENSORFLOW: "TensorFlow", ONNXRUNTIME: "ONNX Runtime"}
CLIENTS: tuple[int, ...] = (1, 64)

MIN_RAW_SPEEDUP = 5.0
MAX_P50_MS_AT_1_CLIENT = 1.0


def raw_rows(samples: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per batch size: each runtime's median ms per call and images/s, and the
    ONNX Runtime speed-up (TensorFlow ms / ONNX Runtime ms)."""
    rows = []
    for size in sorted({int(s["batch_size"]) for s in samples}):
        row: dict[str, Any] = {"batch_size": size}
        for runtime in RUNTIMES:
            ms = [
                float(s["ms"])
                for s in samples
                if s["batch_size"] == size and s["runtime"] == runtime
            ]
            median = statistics.median(ms) if ms else math.nan
            row[f"{runtime}_ms"] = median
            row[f"{runtime}_images_per_s"] = stats.ratio(1000.0 * size, median)
        row["speedup"] = stats.ratio(row[f"{TENSORFLOW}_ms"], row[f"{ONNXRUNTIME}_ms"])
        rows.append(row)
    return rows


def served_rows(rows: Sequence[Mapping[str, Any]], runtime: str) -> list[dict[str, Any]]:
    """One runtime's columns as the raw `model` rows (what service-vs-raw compares with)."""
    return [
        {
            "batch_size": row["batch_size"],
            "images_per_s": row[f"{runtime}_images_per_s"],
            "ms_per_batch": row[f"{runtime}_ms"],
            "runtime": runtime,
        }
        for row in rows
    ]


def service_samples(
    services: Mapping[str, Service],
    request: protocols.Request,
    scratch: Path,
    *,
    clients: Sequence[int] = CLIENTS,
    seconds: float = 8.0,
    rounds: int = 3,
) -> list[dict[str, Any]]:
    """hey results for each runtime's service, client count and round, the services taking
    turns (who goes first alternates by round)."""
    order = list(services)
    for runtime in order:  # warm-up: first connections, first batches of each size
        for count in clients:
            protocols.hey_with_cpu(services[runtime], request, count, 1.0, scratch)
    samples = []
    for round_index in range(rounds):
        for count in clients:
            for runtime in order if round_index % 2 == 0 else order[::-1]:
                result = protocols.hey_with_cpu(services[runtime], request, count, seconds, scratch)
                logger.info(
                    "runtimes round %d, %d clients, %s: %s", round_index + 1, count, runtime, result
                )
                samples.append(
                    {**result, "runtime": runtime, "clients": count, "round": round_index}
                )
    return samples


_SERVICE_KEYS = ("requests_per_s", "p50_ms", "p99_ms", "server_cpu_ms_per_request")


def service_rows(samples: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per (clients, runtime): medians over the rounds, errors summed."""
    rows = []
    for count in sorted({int(s["clients"]) for s in samples}):
        for runtime in RUNTIMES:
            picked = [s for s in samples if s["clients"] == count and s["runtime"] == runtime]
            if not picked:
                continue
            row: dict[str, Any] = {"clients": count, "runtime": runtime, "rounds": len(picked)}
            for key in _SERVICE_KEYS:
                row[key] = statistics.median(float(s.get(key, math.nan)) for s in picked)
            row["errors"] = sum(float(s.get("errors", 0.0)) for s in picked)
            rows.append(row)
    return rows


def _find(rows: Sequence[Mapping[str, Any]], **wanted: Any) -> Mapping[str, Any] | None:
    return next((r for r in rows if all(r.get(k) == v for k, v in wanted.items())), None)


def _value(row: Mapping[str, Any] | None, key: str) -> float:
    return math.nan if row is None else float(row.get(key, math.nan))


def verdicts(
    raw: Sequence[Mapping[str, Any]], service: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Issue 12's three benchmark targets against this run: target, what was measured, met.

    A target whose numbers are missing (a part skipped or failed) is not met.
    """
    batch_1 = _find(raw, batch_size=1)
    tf_ms, ort_ms = _value(batch_1, f"{TENSORFLOW}_ms"), _value(batch_1, f"{ONNXRUNTIME}_ms")
    speedup = stats.ratio(tf_ms, ort_ms)
    ort_1 = _find(service, clients=1, runtime=ONNXRUNTIME)
    tf_1 = _find(service, clients=1, runtime=TENSORFLOW)
    p50 = _value(ort_1, "p50_ms")
    ort_64 = _value(_find(service, clients=64, runtime=ONNXRUNTIME), "requests_per_s")
    tf_64 = _value(_find(service, clients=64, runtime=TENSORFLOW), "requests_per_s")
    return [
        {
            "target": f"raw ONNX Runtime batch 1 >= {MIN_RAW_SPEEDUP:g}x TensorFlow batch 1",
            "measured": f"{fmt(ort_ms, 3)} vs {fmt(tf_ms, 3)} ms per call: {fmt(speedup, 1)}x",
            "value": speedup,
            "met": speedup >= MIN_RAW_SPEEDUP,  # False for NaN
        },
        {
            "target": f"service p50 at 1 client (hey) <= {MAX_P50_MS_AT_1_CLIENT:g} ms "
            "with ONNX Runtime",
            "measured": f"{fmt(p50, 2)} ms; TensorFlow {fmt(_value(tf_1, 'p50_ms'), 2)} ms",
            "value": p50,
            "met": p50 <= MAX_P50_MS_AT_1_CLIENT,
        },
        {
            "target": "single-image images/s at 64 clients: ONNX Runtime >= TensorFlow",
            "measured": f"{fmt(ort_64)} vs {fmt(tf_64)} images/s: "
            f"{fmt(stats.ratio(ort_64, tf_64), 2)}x",
            "value": stats.ratio(ort_64, tf_64),
            "met": ort_64 >= tf_64,
        },
    ]


def raw_table(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The raw model table: both runtimes side by side per batch size."""
    headers = ["batch", "TensorFlow ms", "TensorFlow images/s", "ONNX Runtime ms",
               "ONNX Runtime images/s", "ONNX Runtime speed-up"]  # fmt: skip
    return table(
        headers,
        [(r["batch_size"], fmt(r[f"{TENSORFLOW}_ms"], 3), r[f"{TENSORFLOW}_images_per_s"],
          fmt(r[f"{ONNXRUNTIME}_ms"], 3), r[f"{ONNXRUNTIME}_images_per_s"],
          f"{fmt(r['speedup'], 1)}x") for r in rows],
    )  # fmt: skip


def service_table(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The service table: one row per runtime and client count."""
    headers = ["runtime", "clients", "images/s", "p50 ms", "p99 ms", "server CPU ms/request",
               "non-200"]  # fmt: skip
    return table(
        headers,
        [(NAMES.get(r["runtime"], r["runtime"]), r["clients"], r["requests_per_s"],
          fmt(r["p50_ms"], 1), fmt(r["p99_ms"], 1), fmt(r["server_cpu_ms_per_request"], 2),
          fmt(r["errors"])) for r in rows],
    )  # fmt: skip


def lines(section: Mapping[str, Any], with_raw: bool = True) -> list[str]:
    """The report's section: the raw table (unless `with_raw` is False because the raw part's
    own section shows it), the service table, and one verdict line per target."""
    if not section:
        return []
    out = [
        "## TensorFlow vs ONNX Runtime (same version, same run, interleaved rounds, medians)",
        "",
    ]
    if with_raw and section.get("raw"):
        out += [
            "Raw model in process, loaded by `app.core.runtime`:",
            "",
            *raw_table(section["raw"]),
        ]
    if rows := section.get("service"):
        out += ["Service, one image per request (upload API, hey):", "", *service_table(rows)]
    elif skipped := section.get("service_skipped"):
        out += [f"Service part skipped: {skipped}.", ""]
    out += [
        f"- {v['target']}: **{'met' if v['met'] else 'NOT met'}** ({v['measured']})"
        for v in section.get("verdicts", [])
    ]
    return [*out, ""]
