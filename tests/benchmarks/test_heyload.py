"""hey's csv -> overload numbers, and their place in the report, on canned rows (no timings)."""

from __future__ import annotations

import math

import pytest

from benchmarks import heyload, report

# 4 accepted (200), 5 refused (503), 1 rate-limited (429), 1 deadline (504), as hey -o csv writes;
# one 503 waited 1 s to connect (DNS+dialup) and was answered 8 ms after that.
HEY_CSV = """\
response-time,DNS+dialup,DNS,Request-write,Response-delay,Response-read,status-code,offset
0.0400,0.0000,0.0000,0.0000,0.0390,0.0001,200,0.0002
0.0600,0.0000,0.0000,0.0001,0.0590,0.0001,200,0.0100
0.0800,0.0000,0.0000,0.0000,0.0790,0.0000,200,0.1000
0.1000,0.0000,0.0000,0.0000,0.0990,0.0001,200,0.2000
0.0020,0.0000,0.0000,0.0000,0.0018,0.0001,503,0.3000
0.0040,0.0000,0.0000,0.0000,0.0038,0.0001,503,0.4000
0.0060,0.0000,0.0000,0.0000,0.0058,0.0001,503,0.5000
1.0080,1.0000,0.0000,0.0000,0.0078,0.0001,503,0.6000
0.0100,0.0000,0.0000,0.0000,0.0098,0.0001,503,0.7000
0.0030,0.0000,0.0000,0.0000,0.0028,0.0001,429,0.8000
1.9998,0.0000,0.0000,0.0000,1.9990,0.0001,504,0.0002
"""


def test_parse_csv_reads_latency_status_and_offset() -> None:
    answers = heyload.parse_csv(HEY_CSV)
    assert len(answers) == 11
    assert answers[0] == heyload.Answer(latency_s=0.04, status=200, offset_s=0.0002)
    assert answers[7].connect_s == 1.0 and answers[7].wire_s == pytest.approx(0.008)
    assert [a.status for a in answers].count(503) == 5


def test_parse_csv_of_a_run_where_nothing_was_answered_is_empty() -> None:
    # hey leaves connection errors out of its csv: only the header remains.
    assert heyload.parse_csv(HEY_CSV.splitlines()[0] + "\n") == []


def test_parse_csv_refuses_hey_text_summary() -> None:
    with pytest.raises(ValueError, match="missing columns"):
        heyload.parse_csv("Summary:\n  Total:\t5.0021 secs\n")


def test_summary_counts_statuses_and_splits_latency_by_accepted_and_rejected() -> None:
    summary = heyload.summarise(heyload.parse_csv(HEY_CSV), seconds=2.0, server_answered=11)
    assert summary["statuses"] == {"200": 4, "429": 1, "503": 5, "504": 1}
    assert summary["ok"] == 4 and summary["rejected"] == 6
    assert summary["rejected_503"] == 5 and summary["rejected_429"] == 1
    assert summary["other_statuses"] == 1 and summary["unexpected_statuses"] == 1
    # On the wire: accepted 40/60/80/100 ms; rejected 2,3,4,6,8,10 ms (linear interpolation).
    assert summary["accepted_p50_ms"] == pytest.approx(70.0)
    assert summary["accepted_p99_ms"] == pytest.approx(99.4)
    assert summary["p50_ms"] == pytest.approx(70.0)
    assert summary["rejected_p50_ms"] == pytest.approx(5.0)
    assert summary["rejected_p99_ms"] == pytest.approx(9.9)
    assert summary["rejected_p99_under_50ms"] is True
    # With connection setup: the 1 s dial dominates the rejected tail.
    assert summary["rejected_total_p99_ms"] == pytest.approx(10 + 0.95 * 998)
    assert summary["accepted_total_p99_ms"] == pytest.approx(99.4)
    assert summary["connect_max_ms"] == pytest.approx(1000.0)
    assert summary["connect_p99_ms"] == pytest.approx(900.0)
    assert summary["offered_per_s"] == pytest.approx(5.5)
    assert summary["accepted_per_s"] == pytest.approx(2.0)
    assert summary["rejected_per_s"] == pytest.approx(3.0)
    assert summary["lost"] == 0 and summary["sent"] == 11 and summary["answered"] == 11
    # The 504 is an answer, but not one an overloaded service should give.
    assert summary["every_request_answered"] is False


def test_requests_the_service_answered_without_a_csv_row_are_lost() -> None:
    only_fast = [a for a in heyload.parse_csv(HEY_CSV) if a.status != 504]
    summary = heyload.summarise(only_fast, seconds=2.0, server_answered=13)
    assert summary["lost"] == 3 and summary["sent"] == 13 and summary["answered"] == 10
    assert summary["offered_per_s"] == pytest.approx(6.5)
    assert summary["every_request_answered"] is False
    clean = heyload.summarise(only_fast, seconds=2.0, server_answered=10)
    assert clean["lost"] == 0 and clean["every_request_answered"] is True


def test_latency_leaves_out_the_starting_burst_but_counts_keep_it() -> None:
    summary = heyload.summarise(heyload.parse_csv(HEY_CSV), 2.0, 11, settle_s=0.35)
    assert summary["statuses"] == {"200": 4, "429": 1, "503": 5, "504": 1}
    assert summary["ok"] == 4 and summary["rejected"] == 6 and summary["lost"] == 0
    # From 0.35 s on: rejections of 3, 4, 6, 8, 10 ms; every 200 was sent before it.
    assert summary["rejected_p50_ms"] == pytest.approx(6.0)
    assert math.isnan(summary["accepted_p50_ms"])
    assert summary["rejected_all_p99_ms"] == pytest.approx(9.9)
    assert summary["accepted_all_p99_ms"] == pytest.approx(99.4)
    assert summary["accepted_per_s"] == pytest.approx(2.0)


def test_summary_without_rejections_has_no_rejection_latency() -> None:
    accepted = [a for a in heyload.parse_csv(HEY_CSV) if a.status == 200]
    summary = heyload.summarise(accepted, seconds=1.0, server_answered=4)
    assert math.isnan(summary["rejected_p99_ms"]) and summary["rejected_p99_under_50ms"] is False


def test_closed_loop_rate_counts_200s_over_the_span_of_the_run() -> None:
    answers = heyload.parse_csv(HEY_CSV)
    # First request at 0.0002 s, last answer at 0.0002 + 1.9998 = 2.0 s.
    assert heyload.span_s(answers) == pytest.approx(1.9998)
    assert heyload.closed_loop_rate(answers) == pytest.approx(4 / 1.9998)
    assert math.isnan(heyload.closed_loop_rate([]))


def test_workers_times_per_worker_rate_is_the_target() -> None:
    assert heyload.workers_for(6000.0) == (600, pytest.approx(10.0))
    workers, per_worker = heyload.workers_for(1885.0)
    assert workers == 189 and workers * per_worker == pytest.approx(1885.0)
    workers, per_worker = heyload.workers_for(50_000.0)
    assert workers == heyload.MAX_WORKERS and workers * per_worker == pytest.approx(50_000.0)
    assert heyload.workers_for(3.0) == (1, pytest.approx(3.0))
    with pytest.raises(ValueError, match="positive"):
        heyload.workers_for(math.nan)


def _overload(**extra: object) -> dict:
    summary = heyload.summarise(heyload.parse_csv(HEY_CSV), seconds=2.0, server_answered=11)
    summary.update(target_per_s=8.0, sustainable_per_s=2.0, max_queue=64, healthy_after=True)
    return {**summary, **extra}


def test_report_names_hey_and_shows_the_status_table() -> None:
    text = "\n".join(
        report.overload_lines(
            _overload(
                generator="hey",
                clients=2,
                per_client_qps=4.0,
                sustainable_source="hey closed loop, 64 clients",
            ),
            4.0,
        )
    )
    assert "## Overload (hey)" in text
    assert "hey, 2 rate-limited workers x 4.00/s" in text
    assert "| 4 | 5 | 1 | 1 | 0 | 70.0/99.4 | 5.0/9.9 |" in text
    assert "answered 11 of 11 sent (service's count: 11)" in text
    assert "connection setup p99/max 900.0/1,000.0 ms" in text


def test_report_carries_the_note_when_httpx_drove_the_overload() -> None:
    note = "hey not on PATH: overload driven by the httpx generator"
    overload = _overload(generator="httpx", generator_note=note)
    del overload["connect_p99_ms"]
    text = "\n".join(report.overload_lines(overload, 4.0))
    assert "## Overload (httpx)" in text and note in text
    assert "client-side wait for a connection p99 - ms" in text
