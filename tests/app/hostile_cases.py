"""The hostile-input corpus: each case is the exact bytes of one request and what may answer it.

The cases live in one module per concern (images and bombs, bodies, headers, routes); the case
type, the expectations and the corpus server's limits are in `hostile_common`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from hostile_body_cases import json_cases, multipart_cases
from hostile_common import Case
from hostile_header_cases import auth_cases, header_cases
from hostile_image_cases import bomb_cases, image_cases
from hostile_route_cases import method_cases, path_cases, query_cases


def _alone(cases: Iterator[Case]) -> Iterator[Case]:
    for case in cases:
        yield replace(case, alone=True)


def all_cases() -> list[Case]:
    cases = [
        *image_cases(),
        *_alone(bomb_cases()),
        *multipart_cases(),
        *json_cases(),
        *header_cases(),
        *path_cases(),
        *method_cases(),
        *query_cases(),
        *auth_cases(),
    ]
    ids = [case.id for case in cases]
    duplicates = {i for i in ids if ids.count(i) > 1}
    assert not duplicates, f"duplicate case ids: {sorted(duplicates)}"
    return cases
