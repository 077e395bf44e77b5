"""TensorFlow vs ONNX Runtime: rows, verdicts and report on canned numbers (no server)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from benchmarks import raw, report, runtimes

TF, ORT = runtimes.TENSORFLOW, runtimes.ONNXRUNTIME


def raw_sample(runtime: str, batch_size: int, ms: float, round_index: int = 0) -> dict:
    return {"runtime": runtime, "batch_size": batch_size, "round": round_index, "ms": ms}


def service_sample(
    runtime: str, clients: int, rate: float, p50: float, errors: float = 0.0
) -> dict:
    return {"runtime": runtime, "clients": clients, "requests_per_s": rate, "p50_ms": p50,
            "p99_ms": 2 * p50, "server_cpu_ms_per_request": 1.5, "errors": errors}  # fmt: skip


RAW_SAMPLES = [
    *(raw_sample(TF, 1, ms, i) for i, ms in enumerate((1.0, 0.9, 5.0))),
    *(raw_sample(ORT, 1, ms, i) for i, ms in enumerate((0.1, 0.15, 0.12))),
    *(raw_sample(TF, 64, ms, i) for i, ms in enumerate((6.0, 5.6, 5.8))),
    *(raw_sample(ORT, 64, ms, i) for i, ms in enumerate((3.2, 3.3, 3.4))),
]
SERVICE_SAMPLES = [
    service_sample(TF, 1, 400.0, 2.4),
    service_sample(TF, 1, 420.0, 2.3),
    service_sample(ORT, 1, 1100.0, 0.8),
    service_sample(ORT, 1, 1000.0, 0.9),
    service_sample(TF, 64, 800.0, 80.0),
    service_sample(TF, 64, 820.0, 79.0, errors=1.0),
    service_sample(ORT, 64, 1500.0, 40.0),
    service_sample(ORT, 64, 1400.0, 45.0),
]


def test_raw_rows_put_both_runtimes_side_by_side_with_median_of_rounds() -> None:
    rows = runtimes.raw_rows(RAW_SAMPLES)
    assert [r["batch_size"] for r in rows] == [1, 64]
    batch_1 = rows[0]
    assert batch_1[f"{TF}_ms"] == pytest.approx(1.0)  # the 5.0 ms outlier round is not the median
    assert batch_1[f"{ORT}_ms"] == pytest.approx(0.12)
    assert batch_1[f"{ORT}_images_per_s"] == pytest.approx(1000 / 0.12)
    assert batch_1["speedup"] == pytest.approx(1.0 / 0.12)
    assert rows[1][f"{TF}_images_per_s"] == pytest.approx(64_000 / 5.8)


def test_raw_rows_without_onnx_runtime_leave_its_columns_empty() -> None:
    rows = runtimes.raw_rows([raw_sample(TF, 1, 1.0)])
    assert math.isnan(rows[0][f"{ORT}_ms"]) and math.isnan(rows[0]["speedup"])


def test_served_rows_feed_the_service_vs_raw_comparison() -> None:
    served = runtimes.served_rows(runtimes.raw_rows(RAW_SAMPLES), ORT)
    assert report.raw_by_batch({"model": served}) == {
        1: pytest.approx(1000 / 0.12),
        64: pytest.approx(64_000 / 3.3),
    }


def test_raw_samples_alternate_which_runtime_goes_first() -> None:
    calls: list[tuple[str, int]] = []

    def fake(name: str):
        def predict(pixels: np.ndarray) -> np.ndarray:
            calls.append((name, len(pixels)))
            return np.zeros((len(pixels), 10), np.float32)

        return predict

    samples = raw.raw_samples({TF: fake(TF), ORT: fake(ORT)}, (28, 28, 1), (1, 4), 0.0, rounds=2)
    order = [(s["round"], s["batch_size"], s["runtime"]) for s in samples]
    assert order == [(0, 1, TF), (0, 1, ORT), (0, 4, TF), (0, 4, ORT),
                     (1, 1, ORT), (1, 1, TF), (1, 4, ORT), (1, 4, TF)]  # fmt: skip
    assert all(s["ms"] >= 0 for s in samples)
    assert calls[:4] == [(TF, 1), (TF, 4), (ORT, 1), (ORT, 4)]  # warm-up before any timing


def test_service_rows_are_medians_per_runtime_and_clients() -> None:
    rows = runtimes.service_rows(SERVICE_SAMPLES)
    assert [(r["clients"], r["runtime"]) for r in rows] == [(1, TF), (1, ORT), (64, TF), (64, ORT)]
    tf_64 = rows[2]
    assert tf_64["requests_per_s"] == pytest.approx(810.0)
    assert tf_64["p50_ms"] == pytest.approx(79.5)
    assert tf_64["errors"] == 1.0 and tf_64["rounds"] == 2


def test_verdicts_hold_the_run_to_each_target() -> None:
    verdicts = runtimes.verdicts(
        runtimes.raw_rows(RAW_SAMPLES), runtimes.service_rows(SERVICE_SAMPLES)
    )
    assert [v["met"] for v in verdicts] == [True, True, True]
    assert verdicts[0]["value"] == pytest.approx(1.0 / 0.12)
    assert "0.120 vs 1.000 ms per call: 8.3x" in verdicts[0]["measured"]
    assert verdicts[1]["value"] == pytest.approx(0.85)
    assert "0.85 ms; TensorFlow 2.35 ms" in verdicts[1]["measured"]
    assert verdicts[2]["value"] == pytest.approx(1450.0 / 810.0)


def test_verdicts_say_not_met_when_a_target_is_missed() -> None:
    slow = [{**s, "ms": s["ms"] * 3} if s["runtime"] == ORT else s for s in RAW_SAMPLES]
    behind = [
        {**s, "p50_ms": 1.2, "requests_per_s": 700.0} if s["runtime"] == ORT else s
        for s in SERVICE_SAMPLES
    ]
    verdicts = runtimes.verdicts(runtimes.raw_rows(slow), runtimes.service_rows(behind))
    assert [v["met"] for v in verdicts] == [False, False, False]
    assert "1.20 ms" in verdicts[1]["measured"] and "700 vs 810 images/s" in verdicts[2]["measured"]


def test_verdicts_without_numbers_are_not_met() -> None:
    verdicts = runtimes.verdicts(runtimes.raw_rows([raw_sample(TF, 1, 1.0)]), [])
    assert [v["met"] for v in verdicts] == [False, False, False]
    assert all(math.isnan(v["value"]) for v in verdicts)


def test_section_has_both_tables_and_a_verdict_line_per_target() -> None:
    raw_rows = runtimes.raw_rows(RAW_SAMPLES)
    service_rows = runtimes.service_rows(SERVICE_SAMPLES)
    section = {"raw": raw_rows, "service": service_rows,
               "verdicts": runtimes.verdicts(raw_rows, service_rows)}  # fmt: skip
    text = "\n".join(runtimes.lines(section))
    assert "| 1 | 1.000 | 1,000 | 0.120 | 8,333 | 8.3x |" in text
    assert "| ONNX Runtime | 64 | 1,450 | 42.5 | 85.0 | 1.50 | 0 |" in text
    assert text.count("**met**") == 3
    without_raw = "\n".join(runtimes.lines(section, with_raw=False))
    assert "| 1 | 1.000 |" not in without_raw and "| TensorFlow | 1 |" in without_raw
    assert runtimes.lines({}) == []


def test_section_says_why_the_service_part_was_skipped() -> None:
    raw_rows = runtimes.raw_rows(RAW_SAMPLES)
    section = {"raw": raw_rows, "service_skipped": "hey is not on PATH",
               "verdicts": runtimes.verdicts(raw_rows, [])}  # fmt: skip
    text = "\n".join(runtimes.lines(section))
    assert "Service part skipped: hey is not on PATH." in text
    assert text.count("**NOT met**") == 2 and text.count("**met**") == 1


def test_a_runtimes_only_report_has_the_section_and_no_sweep(tmp_path: Path) -> None:
    raw_rows = runtimes.raw_rows(RAW_SAMPLES)
    service_rows = runtimes.service_rows(SERVICE_SAMPLES)
    results = {
        "plan": "full",
        "started_at": "2026-01-01T00:00:00+00:00",
        "machine": {"cores": 2, "usable_cores": 2, "cpu_model": "Test CPU", "memory_gib": 8.0},
        "model": {"name": "fashion", "version": 1},
        "runtimes": {
            "raw": raw_rows,
            "service": service_rows,
            "verdicts": runtimes.verdicts(raw_rows, service_rows),
        },
    }
    paths = report.write(results, tmp_path, "run-runtimes")
    assert [p.suffix for p in paths] == [".json", ".md"]
    text = paths[1].read_text()
    assert "runtimes: hey" in text and "## TensorFlow vs ONNX Runtime" in text
    assert "| 64 | 5.800 |" in text and "Latency per concurrency" not in text
