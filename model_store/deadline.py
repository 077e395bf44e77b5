"""The caller's deadline, checked between the stages of preprocessing one image."""

from __future__ import annotations

import time


class DeadlinePassed(Exception):
    """The caller's deadline passed between two stages; the rest of the work was skipped."""


def check_deadline(deadline: float | None) -> None:
    """Raise `DeadlinePassed` once `deadline` (a `time.monotonic()` value) has passed."""
    if deadline is not None and time.monotonic() >= deadline:
        raise DeadlinePassed("the deadline passed while preprocessing")
