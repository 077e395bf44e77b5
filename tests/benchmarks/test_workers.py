"""benchmarks.workers: rows and verdicts from hey samples of the ceiling and the service."""

from __future__ import annotations

import os
import subprocess
import sys

from benchmarks.service import confined_to
from benchmarks.workers import CEILING, SERVICE, lines, summarise, verdicts


def _sample(kind: str, workers: int, rate: float, p99: float = 20.0) -> dict:
    return {"kind": kind, "workers": workers, "requests_per_s": rate, "p50_ms": 5.0,
            "p99_ms": p99, "server_cpu_ms_per_request": 0.5, "errors": 0.0}  # fmt: skip


def test_rows_are_medians_with_the_fraction_of_the_ceiling() -> None:
    samples = [_sample(SERVICE, 2, r) for r in (2400, 2600, 3000)]
    samples += [_sample(CEILING, 2, r) for r in (5000, 5200, 5400)]
    samples += [_sample(SERVICE, 1, 1300), _sample(CEILING, 1, 3500)]
    rows = summarise(samples)
    assert [r["workers"] for r in rows] == [1, 2]
    assert rows[1]["service_requests_per_s"] == 2600
    assert rows[1]["ceiling_requests_per_s"] == 5200
    assert rows[1]["fraction_of_ceiling"] == 0.5


def test_verdicts_for_two_cores_hold_all_three_targets() -> None:
    rows = summarise([_sample(SERVICE, 2, 2600, p99=40.0), _sample(CEILING, 2, 5000)])
    assert [v["met"] for v in verdicts(rows, cores=2)] == [True, True, True]
    slow = summarise([_sample(SERVICE, 2, 1000, p99=300.0), _sample(CEILING, 2, 5000)])
    assert [v["met"] for v in verdicts(slow, cores=2)] == [False, False, False]


def test_the_images_per_second_target_is_for_two_cores_and_a_missing_row_fails() -> None:
    rows = summarise([_sample(SERVICE, 4, 2600), _sample(CEILING, 4, 5000)])
    assert len(verdicts(rows, cores=4)) == 2
    assert not any(v["met"] for v in verdicts(rows, cores=8))


def test_confined_children_run_on_the_chosen_cores_only() -> None:
    one = min(os.sched_getaffinity(0))
    probe = [sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"]
    confined = subprocess.run(
        probe, capture_output=True, text=True, check=True, preexec_fn=confined_to(frozenset({one}))
    )
    assert confined.stdout.strip() == f"[{one}]"
    assert confined_to(None) is None


def test_the_report_says_where_the_servers_and_hey_ran() -> None:
    rows = summarise([_sample(SERVICE, 2, 2600), _sample(CEILING, 2, 5000)])
    section = {"cores": 2, "clients": 64, "rows": rows, "verdicts": verdicts(rows, cores=2)}
    shared = "\n".join(lines({**section, "server_cpus": None, "client_cpus": None}))
    assert "2 usable cores, hey on the same cores" in shared
    split = "\n".join(lines({**section, "server_cpus": [0, 1], "client_cpus": [2, 3]}))
    assert "servers on cores 0,1, hey on cores 2,3" in split
