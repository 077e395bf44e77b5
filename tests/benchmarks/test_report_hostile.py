"""The hostile section of the results markdown, from synthetic scenario results."""

from __future__ import annotations

from collections import Counter

from benchmarks import heyload, report, verdicts

MB = verdicts.MB


def _stream(ok: int, other: int = 0, seconds: float = 1.0) -> dict:
    answers = [heyload.Answer(0.004, 200, 0.0)] * ok + [heyload.Answer(0.001, 503, 0.0)] * other
    return verdicts.legit_stream(answers, seconds, ok + other)


def _slow() -> dict:
    baseline, attacked = _stream(400), _stream(0, other=3000)
    return {
        "connections": 1000, "interval_s": 1.0, "legit_clients": 2,
        "fd_limit": {"wanted": 2024, "soft_before": 1024, "soft_after": 2024, "hard": 4096},
        "baseline": baseline, "attacked": attacked, "attackers_open_at_start": 794,
        "attackers_open_min": 788, "attackers_open_mean": 793.6,
        "attackers": {"opened": 4877, "connect_failures": 0, "ends": {"503": 4089},
                      "bytes_sent": 1_004_842},
        "healthy_after": True, **verdicts.judge_slow_clients(baseline, attacked),
    }  # fmt: skip


def _worst() -> dict:
    probe = {"name": "png 40000x1000", "bytes": 40601, "pixels": 40_000_000, "status": 504,
             "error_code": "deadline_exceeded", "seconds": 23.3, "rss_after_mb": 747.5,
             "peak_rss_after_mb": 2421.9}  # fmt: skip
    baseline, attacked = _stream(250), _stream(90)
    return {
        "clients": 4, "light_clients": 1, "probes": [probe], "worst": probe["name"],
        "worst_accepted": True, "attack_statuses": {}, "baseline": baseline,
        "attacked": attacked, "rss_before_mb": 741.6, "rss_sampled_peak_mb": 2749.7,
        "peak_rss_mb": 2852.5,
        **verdicts.judge_worst_image(
            baseline["p99_ms"], attacked["p99_ms"], int(741.6 * MB), int(2852.5 * MB)
        ),
    }  # fmt: skip


def _sigterm() -> dict:
    clean = verdicts.judge_sigterm_run(Counter({"200": 900, "refused": 32}), {"200": 900}, -15)
    reset = verdicts.judge_sigterm_run(
        Counter({"200": 533, "refused": 32, "reset": 7}), {"200": 533}, -15
    )
    runs = [{**run, "drain_s": 0.3} for run in (clean, reset)]
    return {"clients": 32, "after_s": 1.0, "per_run": runs, **verdicts.judge_sigterm(runs)}


def _results(hostile: dict) -> dict:
    return {
        "plan": "quick", "started_at": "2026-11-26T15:47:00+00:00",
        "machine": {"cores": 2, "usable_cores": 2, "cpu_model": "AMD EPYC", "memory_gib": 23.5},
        "model": {"name": "fashion", "version": 1}, "hostile": hostile,
    }  # fmt: skip


def test_goal_table_has_one_row_per_scenario_with_its_verdict() -> None:
    text = report.markdown(
        _results({"slow_clients": _slow(), "worst_image": _worst(), "sigterm": _sigterm()})
    )
    assert "## Hostile clients" in text and "## Raw model" not in text
    assert (
        "| 1,000 slow connections, hey x2 | 0 vs 400 req/s (x0.00), 3000 non-200 | "
        "throughput >= 80% of baseline, 0 non-200 | FAIL |"
    ) in text
    assert (
        "| worst accepted image (png 40000x1000) x4 | p99 4.0 -> 4.0 ms (+0.0), RSS +2,111 MB "
        "| p99 +<= 50 ms, RSS +<= 300 MB | FAIL |"
    ) in text
    assert "1/2 runs clean; 200s client/log 1433/1433, 7 resets, 7 dropped" in text


def test_scenario_details_name_what_the_numbers_are() -> None:
    text = report.markdown(
        _results({"slow_clients": _slow(), "worst_image": _worst(), "sigterm": _sigterm()})
    )
    assert "soft limit 1024 -> 2024 (hard 4096, wanted 2024)" in text
    assert "their connections ended: 503: 4089" in text
    assert "| png 40000x1000 | 40601 | 40000000 | 504 | deadline_exceeded | 23.30 |" in text
    assert (
        "| 2 | 200: 533, refused: 32, reset: 7 | 200: 533 | 7 | 7 (0) | -15 | 0.3 | FAIL |" in text
    )


def test_a_passing_scenario_says_pass() -> None:
    sigterm = _sigterm()
    sigterm["per_run"] = sigterm["per_run"][:1]
    sigterm.update(verdicts.judge_sigterm(sigterm["per_run"]))
    text = report.markdown(_results({"sigterm": sigterm}))
    assert (
        "| SIGTERM under 32-client load | 1/1 runs clean; 200s client/log 900/900, 0 resets, "
        "0 dropped | clients' 200s = log's 200s, 0 resets, 0 dropped, every run | pass |" in text
    )
    assert "### Slow clients" not in text


def test_a_scenario_that_did_not_finish_fails_with_its_error() -> None:
    broken = {"error": "ServiceError: python -m app exited -9", "goal": "g", "passed": False}
    text = report.markdown(_results({"worst_image": broken, "sigterm": _sigterm()}))
    assert (
        "| worst accepted image | did not finish: ServiceError: python -m app exited -9 | g "
        "| FAIL |" in text
    )
    assert "### Worst accepted image" not in text and "### SIGTERM under load" in text


def test_skipped_hostile_scenarios_say_why() -> None:
    text = report.markdown(_results({"skipped": "hey is not on PATH"}))
    assert "## Hostile clients\n\nSkipped: hey is not on PATH." in text
