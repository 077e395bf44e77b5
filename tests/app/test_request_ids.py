"""Request ids stay unpredictable when other code seeds the module-level `random`."""

from __future__ import annotations

import random

from app.api.request_context import new_request_id


def test_request_ids_do_not_repeat_after_random_seed() -> None:
    random.seed(1337)  # what training does with its seed
    first = new_request_id()
    random.seed(1337)
    second = new_request_id()
    assert first != second
    assert len(first) == 32 and int(first, 16) >= 0
