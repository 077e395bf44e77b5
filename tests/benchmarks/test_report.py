"""The benchmark harness's arithmetic and report, on canned numbers (no timing is measured)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from benchmarks import report, runtimes, stats
from benchmarks.load import LoadResult, parse_hey

METRICS_BEFORE = """\
# HELP tagger_batch_size Images per model call.
# TYPE tagger_batch_size histogram
tagger_batch_size_bucket{le="1.0",model="fashion"} 10.0
tagger_batch_size_bucket{le="+Inf",model="fashion"} 12.0
tagger_batch_size_count{model="fashion"} 12.0
tagger_batch_size_sum{model="fashion"} 30.0
tagger_batch_size_created{model="fashion"} 1.7e9
# HELP tagger_requests_total HTTP requests answered.
# TYPE tagger_requests_total counter
tagger_requests_total{method="POST",route="/v1/models/{model}/classify",status="200"} 30.0
tagger_requests_total{method="POST",route="/v1/models/{model}/classify",status="503"} 2.0
tagger_requests_total{method="GET",route="/healthz",status="200"} 5.0
"""
METRICS_AFTER = """\
# HELP tagger_batch_size Images per model call.
# TYPE tagger_batch_size histogram
tagger_batch_size_bucket{le="1.0",model="fashion"} 10.0
tagger_batch_size_bucket{le="+Inf",model="fashion"} 62.0
tagger_batch_size_count{model="fashion"} 62.0
tagger_batch_size_sum{model="fashion"} 830.0
# HELP tagger_requests_total HTTP requests answered.
# TYPE tagger_requests_total counter
tagger_requests_total{method="POST",route="/v1/models/{model}/classify",status="200"} 830.0
tagger_requests_total{method="POST",route="/v1/models/{model}/classify",status="503"} 9.0
tagger_requests_total{method="GET",route="/healthz",status="200"} 6.0
"""

HEY_OUTPUT = """
Summary:
  Total:\t5.0021 secs
  Requests/sec:\t1234.5678

Latency distribution:
  10% in 0.0101 secs
  50% in 0.0250 secs
  95% in 0.0600 secs
  99% in 0.1200 secs

Status code distribution:
  [200]\t6000 responses
  [503]\t170 responses
"""


@pytest.mark.parametrize("q", [0, 25, 50, 90, 95, 99, 100])
def test_percentile_matches_numpys_linear_interpolation(q: float) -> None:
    values = [0.5, 0.1, 0.9, 0.3, 0.7, 0.2, 1.5, 0.05]
    assert stats.percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_percentile_edge_cases() -> None:
    assert stats.percentile([4.0], 99) == 4.0
    assert math.isnan(stats.percentile([], 50))
    with pytest.raises(ValueError, match=r"0\.\.100"):
        stats.percentile([1.0], 101)


def test_latency_summary_is_in_milliseconds() -> None:
    summary = stats.latency_summary([0.010, 0.020, 0.030, 0.040, 0.100])
    assert summary["p50_ms"] == pytest.approx(30.0)
    assert summary["max_ms"] == pytest.approx(100.0)
    assert summary["mean_ms"] == pytest.approx(40.0)
    assert summary["p99_ms"] == pytest.approx(97.6)


def test_mean_batch_size_comes_from_the_metric_deltas() -> None:
    before, after = stats.parse_metrics(METRICS_BEFORE), stats.parse_metrics(METRICS_AFTER)
    # (830 - 30) images in (62 - 12) batches: the service coalesced 16 images per model call.
    assert stats.mean_batch_size(before, after) == pytest.approx(16.0)
    assert not any(name.endswith("_created") for name, _ in before)


def test_metric_delta_filters_on_labels() -> None:
    before, after = stats.parse_metrics(METRICS_BEFORE), stats.parse_metrics(METRICS_AFTER)
    route = "/v1/models/{model}/classify"
    ok = stats.metric_delta(before, after, "tagger_requests_total", route=route, status="200")
    assert ok == 800
    assert stats.metric_delta(before, after, "tagger_requests_total", route=route) == 807
    assert stats.metric_delta(before, after, "tagger_requests_total") == 808
    assert stats.metric_delta(before, after, "tagger_missing_total") == 0


def test_mean_batch_size_without_batches_is_nan() -> None:
    before = stats.parse_metrics(METRICS_BEFORE)
    assert math.isnan(stats.mean_batch_size(before, before))


def test_interpolate_is_linear_in_log2_batch_size_and_clamped() -> None:
    raw = {1: 100.0, 4: 300.0, 16: 900.0}
    assert stats.interpolate(raw, 2) == pytest.approx(200.0)
    assert stats.interpolate(raw, 8) == pytest.approx(600.0)
    assert stats.interpolate(raw, 0.5) == 100.0
    assert stats.interpolate(raw, 64) == 900.0
    assert math.isnan(stats.interpolate({}, 3))


def test_ratio_and_rate_guard_against_empty_denominators() -> None:
    assert stats.ratio(3.0, 4.0) == 0.75
    assert math.isnan(stats.ratio(3.0, 0.0))
    assert math.isnan(stats.ratio(3.0, math.nan))
    assert stats.rate(50, 2.0) == 25.0
    assert math.isnan(stats.rate(50, 0.0))


def test_load_result_summary_counts_statuses_and_uses_successes_for_latency() -> None:
    result = LoadResult(clients=4, images_per_request=8, seconds=2.0)
    result.latencies_s = [0.010, 0.020, 0.030, 0.001, 5.0]
    result.statuses = [200, 200, 200, 503, 0]
    result.failures = {"ReadTimeout": 1}
    summary = result.summary()
    assert summary["requests"] == 5 and summary["ok"] == 3 and summary["errors"] == 2
    assert summary["statuses"] == {"0": 1, "200": 3, "503": 1}
    assert summary["client_failures"] == {"ReadTimeout": 1}
    assert summary["requests_per_s"] == pytest.approx(1.5)
    assert summary["images_per_s"] == pytest.approx(12.0)
    assert summary["p50_ms"] == pytest.approx(20.0)
    assert summary["max_ms"] == pytest.approx(30.0)


def test_parse_hey_reads_rate_percentiles_and_status_codes() -> None:
    numbers = parse_hey(HEY_OUTPUT)
    assert numbers["requests_per_s"] == pytest.approx(1234.5678)
    assert numbers["p50_ms"] == pytest.approx(25.0)
    assert numbers["p99_ms"] == pytest.approx(120.0)
    assert numbers["ok"] == 6000 and numbers["errors"] == 170


def _row(clients: int, images: int, images_per_s: float, batch: float, p99: float) -> dict:
    return {
        "clients": clients,
        "images_per_request": images,
        "images_per_s": images_per_s,
        "requests_per_s": images_per_s / images,
        "mean_batch_size": batch,
        "errors": 0,
        "p50_ms": p99 / 3,
        "p95_ms": p99 / 1.5,
        "p99_ms": p99,
        "statuses": {"200": 10},
    }


RAW = {
    "model": [
        {"batch_size": 1, "images_per_s": 500.0, "ms_per_batch": 2.0},
        {"batch_size": 16, "images_per_s": 4000.0, "ms_per_batch": 4.0},
        {"batch_size": 64, "images_per_s": 8000.0, "ms_per_batch": 8.0},
    ],
    "preprocess": [{"image": "png 28x28", "bytes": 300, "ms_per_image": 0.1, "images_per_s": 1e4}],
}
SERVICE = [
    _row(1, 1, 250.0, 1.0, 6.0),
    _row(64, 1, 3000.0, 16.0, 40.0),
    _row(64, 8, 6000.0, 64, 90),
]
UNBATCHED = [_row(1, 1, 240.0, 1.0, 6.5), _row(64, 1, 600.0, 1.0, 200.0)]


def test_service_is_compared_with_raw_at_its_mean_batch_size() -> None:
    rows = report.service_vs_raw(SERVICE, RAW)
    assert [r["raw_images_per_s_at_batch"] for r in rows] == [500.0, 4000.0, 8000.0]
    assert [r["service_over_raw"] for r in rows] == pytest.approx([0.5, 0.75, 0.75])


def test_batched_vs_unbatched_at_64_clients() -> None:
    comparison = report.batched_vs_unbatched(SERVICE, UNBATCHED, clients=64)
    assert comparison["speedup"] == pytest.approx(5.0)
    assert comparison["batched_p99_ms"] == 40.0 and comparison["unbatched_p99_ms"] == 200.0
    assert report.batched_vs_unbatched(SERVICE, UNBATCHED, clients=16) == {}


def test_sustainable_rate_is_the_best_error_free_single_image_level() -> None:
    rows = [*SERVICE, {**_row(256, 1, 9000.0, 32, 900), "errors": 12}]
    assert report.sustainable_rate(rows) == pytest.approx(3000.0)
    hey = [{"clients": 16, "requests_per_s": 4500.0, "errors": 0.0}]
    assert report.sustainable_rate(rows, hey) == pytest.approx(4500.0)


OVERLOAD = {
    "target_per_s": 12000.0,
    "sustainable_per_s": 3000.0,
    "offered_per_s": 9000.0,
    "max_queue": 64,
    "requests": 100,
    "statuses": {"200": 60, "503": 40},
    "rejected_p99_ms": 12.5,
    "rejected_p50_ms": 3.0,
    "client_wait_p99_ms": 100.0,
    "rejected_p99_under_50ms": True,
    "every_request_answered": True,
    "healthy_after": True,
}


def test_report_files_hold_the_numbers(tmp_path: Path) -> None:
    results = {
        "plan": "quick",
        "plan_factor": 4.0,
        "started_at": "2025-01-01T00:00:00+00:00",
        "machine": {"cores": 2, "usable_cores": 2, "cpu_model": "Test CPU", "memory_gib": 8.0},
        "model": {"name": "fashion", "version": 3},
        "raw": RAW,
        "service": SERVICE,
        "unbatched": UNBATCHED,
        "service_vs_raw": report.service_vs_raw(SERVICE, RAW),
        "batched_vs_unbatched": report.batched_vs_unbatched(SERVICE, UNBATCHED),
        "overload": OVERLOAD,
    }
    json_path, md_path, png_path = report.write(results, tmp_path, "run")
    text = md_path.read_text()
    assert "| 64 | 1 | 16.0 | 3,000 | 4,000 | 0.75 |" in text
    assert "(x5.00)" in text and "Test CPU" in text and "rejected p50/p99 3.0/12.5 ms" in text
    saved = json.loads(json_path.read_text())
    assert saved["batched_vs_unbatched"]["speedup"] == pytest.approx(5.0)
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_json_safe_turns_nan_into_null() -> None:
    assert report.json_safe({"a": math.nan, "b": (1.0, math.inf)}) == {"a": None, "b": [1.0, None]}


def test_a_full_report_shows_the_raw_runtimes_side_by_side_once(tmp_path: Path) -> None:
    samples = [
        {"runtime": runtime, "batch_size": size, "round": 0, "ms": ms}
        for runtime, size, ms in [("tensorflow", 1, 2.0), ("onnxruntime", 1, 0.2),
                                  ("tensorflow", 64, 8.0), ("onnxruntime", 64, 4.0)]
    ]  # fmt: skip
    rows = runtimes.raw_rows(samples)
    raw = {**RAW, "runtimes": rows, "served_runtime": "onnxruntime",
           "model": runtimes.served_rows(rows, "onnxruntime")}  # fmt: skip
    results = {
        "plan": "quick",
        "plan_factor": 4.0,
        "started_at": "2026-01-01T00:00:00+00:00",
        "machine": {"cores": 2, "usable_cores": 2, "cpu_model": "Test CPU", "memory_gib": 8.0},
        "model": {"name": "fashion", "version": 3},
        "raw": raw,
        "service": SERVICE,
        "unbatched": UNBATCHED,
        "service_vs_raw": report.service_vs_raw(SERVICE, raw),
        "batched_vs_unbatched": report.batched_vs_unbatched(SERVICE, UNBATCHED),
        "runtimes": {"raw": rows, "verdicts": runtimes.verdicts(rows, [])},
    }
    text = report.markdown(results)
    assert text.count("| 1 | 2.000 | 500 | 0.200 | 5,000 | 10.0x |") == 1
    assert "the service (and service vs raw) uses ONNX Runtime" in text
    assert "| 64 | 1 | 16.0 | 3,000 | 12,333 | 0.24 |" in text  # ONNX Runtime, interpolated
    assert "## TensorFlow vs ONNX Runtime" in text and "**met** (0.200 vs 2.000" in text
