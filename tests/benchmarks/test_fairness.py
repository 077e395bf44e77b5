"""The two-models report: B's stream alone and under A's flood, and the verdict."""

from __future__ import annotations

from benchmarks import fairness
from benchmarks.__main__ import parse_args


def _section(errors_during: float) -> dict:
    b = {"ok": 240.0, "errors": 0.0, "p50_ms": 2.0, "p99_ms": 5.0}
    return {
        "models": ["fashion", "fashion-b"],
        "b_alone": b,
        "b_during_flood": {**b, "errors": errors_during, "p99_ms": 40.0},
        "a_flood": {"ok": 9000.0, "errors": 5000.0, "overloaded": 5000.0, "requests_per_s": 1100},
    }


def test_every_b_answer_200_meets_the_target() -> None:
    text = "\n".join(fairness.lines(_section(0.0)))
    assert "| B while A is flooded | 240 | 0 | 2.0 | 40.0 |" in text
    assert "5,000 answered 503" in text
    assert text.rstrip().endswith("while A is flooded: met.")


def test_a_failed_b_request_misses_it() -> None:
    assert "while A is flooded: NOT met." in "\n".join(fairness.lines(_section(3.0)))


def test_skipped_and_absent_sections() -> None:
    assert fairness.lines({}) == []
    assert "Skipped: hey" in "\n".join(fairness.lines({"skipped": "hey is not on PATH"}))


def test_fairness_only_is_a_part_of_its_own() -> None:
    args = parse_args(["--fairness-only"])
    assert args.fairness_only and not args.protocols_only
