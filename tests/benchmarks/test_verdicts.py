"""The hostile scenarios' pass/fail decisions, on synthetic counts (no service, no timings)."""

from __future__ import annotations

import json
import math
from collections import Counter

import pytest

from benchmarks import heyload, verdicts


def _access(status: int, route: str = "/v1/models/{model}/classify", rid: str = "r") -> str:
    entry = {"ts": "2026-11-26T10:00:00.000+00:00", "level": "INFO", "logger": "app.access",
             "message": f"POST /v1/models/fashion/classify {status}", "request_id": rid,
             "route": route, "status": status}  # fmt: skip
    return json.dumps(entry)


LOG = [
    _access(200, rid="bench-legit"),
    _access(200, rid="bench-legit"),
    _access(503, rid="bench-legit"),
    _access(200, rid="other"),
    _access(200, route="/readyz"),
    _access(499, route="/v1/models/{model}/versions/{version}/classify"),
    json.dumps({"logger": "app.main", "message": "serving fashion", "status": 200}),
    "Traceback (most recent call last):",
    '{"logger": "app.access", "status": 200',  # cut off mid-line by a kill
]


def test_access_log_counts_classify_lines_by_status() -> None:
    assert verdicts.access_log_statuses(LOG) == Counter({"200": 3, "503": 1, "499": 1})


def test_access_log_counts_only_the_tagged_requests() -> None:
    assert verdicts.access_log_statuses(LOG, "bench-legit") == Counter({"200": 2, "503": 1})
    assert verdicts.access_log_statuses(LOG, "nobody") == Counter()


def _answers(*statuses: int) -> list[heyload.Answer]:
    return [heyload.Answer(0.010, status, 0.1 * i) for i, status in enumerate(statuses)]


def test_legit_stream_counts_lost_requests_as_non_200() -> None:
    stream = verdicts.legit_stream(_answers(200, 200, 200, 503), seconds=2.0, server_count=6)
    assert stream["ok"] == 3 and stream["lost"] == 2 and stream["non_200"] == 3
    assert stream["ok_per_s"] == pytest.approx(1.5)
    assert stream["p99_ms"] == pytest.approx(10.0)


def test_slow_clients_pass_at_80_percent_with_no_errors() -> None:
    baseline = verdicts.legit_stream(_answers(*[200] * 10), 1.0, 10)
    kept = verdicts.legit_stream(_answers(*[200] * 8), 1.0, 8)
    assert verdicts.judge_slow_clients(baseline, kept)["passed"] is True
    slower = verdicts.legit_stream(_answers(*[200] * 7), 1.0, 7)
    verdict = verdicts.judge_slow_clients(baseline, slower)
    assert verdict["passed"] is False and verdict["throughput_ratio"] == pytest.approx(0.7)


def test_slow_clients_fail_on_a_single_non_200_or_lost_request() -> None:
    baseline = verdicts.legit_stream(_answers(*[200] * 10), 1.0, 10)
    one_503 = verdicts.legit_stream(_answers(*[200] * 10, 503), 1.0, 11)
    one_lost = verdicts.legit_stream(_answers(*[200] * 10), 1.0, 11)
    for attacked in (one_503, one_lost):
        verdict = verdicts.judge_slow_clients(baseline, attacked)
        assert verdict["passed"] is False and verdict["non_200"] == 1


def test_slow_clients_fail_when_the_attack_starves_everyone() -> None:
    baseline = verdicts.legit_stream(_answers(*[200] * 10), 1.0, 10)
    starved = verdicts.legit_stream(_answers(*[503] * 50), 1.0, 50)
    verdict = verdicts.judge_slow_clients(baseline, starved)
    assert verdict["throughput_ratio"] == 0.0 and verdict["non_200"] == 50
    assert verdict["passed"] is False
    no_baseline = verdicts.legit_stream([], 1.0, 0)
    assert verdicts.judge_slow_clients(no_baseline, baseline)["passed"] is False


def test_worst_is_the_slowest_image_the_service_took_past_its_header_checks() -> None:
    probes = [
        {"name": "refused fast", "status": 413, "seconds": 9.0},
        {"name": "decoded", "status": 200, "seconds": 1.7},
        {"name": "timed out", "status": 504, "seconds": 20.0},
        {"name": "crashed", "status": 500, "seconds": 0.3},
    ]
    assert verdicts.pick_worst(probes)["name"] == "timed out"
    assert verdicts.pick_worst(probes[:2])["name"] == "decoded"
    assert (
        verdicts.pick_worst([{"name": "no answer", "status": 0, "seconds": 60.0}, probes[1]])[
            "name"
        ]
        == "no answer"
    )
    # Every image refused at the header: the slowest refusal is still the one to send.
    refused = [{"name": "a", "status": 413, "seconds": 0.01}, {"name": "b", "status": 400,
               "seconds": 0.02}]  # fmt: skip
    assert verdicts.pick_worst(refused)["name"] == "b"
    with pytest.raises(ValueError):
        verdicts.pick_worst([])


def test_worst_image_goal_bounds_p99_rise_and_rss_rise() -> None:
    mb = verdicts.MB
    ok = verdicts.judge_worst_image(10.0, 60.0, 700 * mb, 1000 * mb)
    assert ok["passed"] is True and ok["p99_rise_ms"] == 50.0 and ok["rss_rise_mb"] == 300.0
    assert verdicts.judge_worst_image(10.0, 60.1, 700 * mb, 800 * mb)["passed"] is False
    assert verdicts.judge_worst_image(10.0, 11.0, 700 * mb, 1001 * mb)["passed"] is False
    assert verdicts.judge_worst_image(10.0, math.nan, 700 * mb, 700 * mb)["passed"] is False


def test_sigterm_run_passes_when_every_reached_request_was_answered() -> None:
    client = Counter({"200": 500, "503": 3, "refused": 32, "idle_closed": 2})
    run = verdicts.judge_sigterm_run(client, Counter({"200": 500, "503": 3}), exit_code=0)
    assert run["passed"] is True and run["resets"] == 0 and run["dropped"] == 0
    assert run["client_answered"] == 503 and run["log_answered"] == 503


@pytest.mark.parametrize("dropped", ["reset", "closed_without_answer", "truncated_answer",
                                     "timeout", "bad_answer"])  # fmt: skip
def test_sigterm_run_fails_on_any_request_dropped_without_an_answer(dropped: str) -> None:
    client = Counter({"200": 500, "refused": 31, dropped: 1})
    run = verdicts.judge_sigterm_run(client, Counter({"200": 500}), exit_code=0)
    assert run["passed"] is False and run["dropped"] == 1
    assert run["dropped_by_kind"] == {dropped: 1}
    assert run["resets"] == (1 if dropped == "reset" else 0)


def test_sigterm_run_fails_when_the_log_has_200s_the_clients_never_got() -> None:
    run = verdicts.judge_sigterm_run(Counter({"200": 498}), Counter({"200": 500}), exit_code=0)
    assert run["passed"] is False and run["log_200"] - run["client_200"] == 2


def test_sigterm_run_fails_when_the_service_did_not_exit() -> None:
    assert verdicts.judge_sigterm_run(Counter({"200": 5}), Counter({"200": 5}), None)["passed"] is (
        False
    )


def test_sigterm_needs_every_run_clean() -> None:
    clean = verdicts.judge_sigterm_run(Counter({"200": 5}), Counter({"200": 5}), -15)
    reset = verdicts.judge_sigterm_run(Counter({"200": 5, "reset": 2}), Counter({"200": 5}), -15)
    summary = verdicts.judge_sigterm([clean, clean, reset, clean, clean])
    assert summary["passed"] is False and summary["runs_passed"] == 4 and summary["resets"] == 2
    assert verdicts.judge_sigterm([clean] * 5)["passed"] is True
    assert verdicts.judge_sigterm([])["passed"] is False
