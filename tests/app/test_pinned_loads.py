"""PinnedLoadBudget on a clock the test moves: one at a time, N a minute, no eviction in use."""

from __future__ import annotations

import pytest

from app.core.pinned_loads import LoadRefused, PinnedLoadBudget


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_one_load_at_a_time() -> None:
    budget = PinnedLoadBudget(loads_per_minute=10, slots=2, idle_after_s=10, clock=Clock())
    assert budget.admit(1, {}) is None
    with pytest.raises(LoadRefused, match="v1 is loading"):
        budget.admit(2, {})
    budget.finished()
    assert budget.admit(2, {1: 1000.0}) is None


def test_loads_per_minute_and_when_the_budget_frees() -> None:
    clock = Clock()
    budget = PinnedLoadBudget(loads_per_minute=2, slots=10, idle_after_s=10, clock=clock)
    for version in (1, 2):
        budget.admit(version, {})
        budget.finished()
        clock.now += 15
    with pytest.raises(LoadRefused, match="PINNED_LOADS_PER_MINUTE") as refused:
        budget.admit(3, {})
    assert refused.value.retry_after_s == pytest.approx(30)  # the first load was 30 s ago
    clock.now += 30
    assert budget.admit(3, {}) is None


def test_a_slot_is_freed_only_from_a_version_idle_for_a_request_timeout() -> None:
    clock = Clock()
    budget = PinnedLoadBudget(loads_per_minute=10, slots=2, idle_after_s=10, clock=clock)
    last_used = {1: clock.now - 4, 2: clock.now - 1}
    with pytest.raises(LoadRefused, match="MAX_LOADED_VERSIONS") as refused:
        budget.admit(3, last_used)
    assert refused.value.retry_after_s == pytest.approx(6)
    clock.now += 6
    assert budget.admit(3, last_used) == 1  # idle longest


def test_a_withdrawn_load_uses_no_budget() -> None:
    """A load admitted here but refused a slot over all models (TAGGER_MAX_TOTAL_LOADED_VERSIONS)
    never started: it neither blocks the next load nor counts against the minute."""
    budget = PinnedLoadBudget(loads_per_minute=1, slots=10, idle_after_s=10, clock=Clock())
    assert budget.admit(1, {}) is None
    budget.withdraw()
    assert budget.admit(2, {}) is None
