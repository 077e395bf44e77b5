"""The hostile-input corpus against a real server: no 5xx, no hang, every 4xx the JSON error.

All selected cases are sent once, concurrently, by a module fixture (so a case that hangs costs
its timeout once, not per test); each case is then its own test, asserting on its answer. The
last test checks the server came through: healthy, ready, classifying correctly, no 5xx counted.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
from app_helpers import Evaluated, Server, encode, make_settings, run_server
from hostile_cases import all_cases
from hostile_common import (
    API_KEY,
    CLASSIFY,
    MAX_IMAGES,
    MAX_PIXELS,
    MAX_UPLOAD_BYTES,
    VERSION,
    Case,
    Expect,
)
from hostile_http import Answer, exchange

CASES = all_cases()
CASE_BY_ID = {case.id: case for case in CASES}
CONCURRENCY = 8


@pytest.fixture(scope="module")
def corpus_server(shared_root: Path) -> Iterator[Server]:
    settings = make_settings(
        shared_root,
        max_images_per_request=MAX_IMAGES,
        max_upload_bytes=MAX_UPLOAD_BYTES,
        max_pixels=MAX_PIXELS,
        body_timeout_s=5,  # the two requests whose body never completes are answered 408
    )
    with run_server(settings) as handle:
        yield handle


@pytest.fixture(scope="module")
def keyed_server(shared_root: Path) -> Iterator[Server]:
    """The same service with `TAGGER_API_KEY` set, for the Authorization cases."""
    with run_server(make_settings(shared_root, api_key=API_KEY)) as handle:
        yield handle


@dataclass
class Outcome:
    """What the client got, and the statuses the server's access log recorded for it."""

    answer: Answer
    logged: list[int] = field(default_factory=list)


class _AccessLog(logging.Handler):
    """Statuses from `app.access` records, by request id (the id each case is sent with)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.statuses: dict[str, list[int]] = defaultdict(list)

    def emit(self, record: logging.LogRecord) -> None:
        self.statuses[getattr(record, "request_id", "")].append(getattr(record, "status", 0))


@pytest.fixture(scope="module")
def outcomes(
    corpus_server: Server, keyed_server: Server, request: pytest.FixtureRequest
) -> Iterator[dict[str, Outcome]]:
    """Every selected case's outcome, sent at most `CONCURRENCY` at a time.

    Each request carries its own X-Request-ID (unless the case sets one), so a 5xx the app
    counts for a request whose client saw something else (a parser's 400, a closed
    connection) is still pinned on that case.
    """
    selected = _selected_ids(request)
    plain, keyed = _address(corpus_server), _address(keyed_server)
    access = logging.getLogger("app.access")
    handler, level, propagate = _AccessLog(), access.level, access.propagate
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    access.propagate = False

    async def send_all() -> dict[str, Answer]:
        crowd, alone = asyncio.Semaphore(CONCURRENCY), asyncio.Semaphore(1)

        async def send(case: Case) -> tuple[str, Answer]:
            async with alone if case.alone else crowd:
                host, port = keyed if case.keyed else plain
                data = _with_request_id(case.data, _request_id(case))
                answer = await exchange(host, port, data, case.timeout_s, head=case.head)
                return case.id, answer

        results = await asyncio.gather(*(send(c) for c in CASES if c.id in selected))
        for server in (corpus_server, keyed_server):  # requests whose client gave up
            await server.until(lambda s=server: s.metric("tagger_requests_in_flight") == 0, 30)
        return dict(results)

    try:
        answers = asyncio.run(send_all())
        yield {
            case_id: Outcome(answer, handler.statuses.get(_request_id(CASE_BY_ID[case_id]), []))
            for case_id, answer in answers.items()
        }
    finally:
        access.removeHandler(handler)
        access.setLevel(level)
        access.propagate = propagate


def _request_id(case: Case) -> str:
    return f"corpus-{CASES.index(case)}"


def _with_request_id(data: bytes, request_id: str) -> bytes:
    """`data` with an X-Request-ID header after its request line (unless it has one)."""
    line_end = data.find(b"\r\n")
    if line_end < 0 or b"\r\nx-request-id:" in data.lower():
        return data
    header = b"\r\nX-Request-ID: " + request_id.encode()
    return data[:line_end] + header + data[line_end:]


def _address(server: Server) -> tuple[str, int]:
    url = urlsplit(server.url)
    return url.hostname or "127.0.0.1", url.port or 80


def _selected_ids(request: pytest.FixtureRequest) -> set[str]:
    ids = set()
    for item in request.session.items:
        callspec: Any = getattr(item, "callspec", None)
        if item.module is request.module and callspec is not None and "case" in callspec.params:
            ids.add(callspec.params["case"].id)
    return ids or {case.id for case in CASES}


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_hostile_request_is_answered_cleanly(case: Case, outcomes: dict[str, Outcome]) -> None:
    answer, logged = outcomes[case.id].answer, outcomes[case.id].logged
    server_errors = [status for status in logged if status >= 500]
    assert not server_errors, f"the app counted {server_errors}; the client got {answer.summary()}"
    assert not answer.failure, answer.failure
    assert answer.status < 500, answer.summary()
    if case.expect is Expect.OK:
        assert 200 <= answer.status < 300, answer.summary()
    elif case.expect is Expect.REFUSED:
        assert 400 <= answer.status < 500, answer.summary()
    if not 400 <= answer.status < 500:
        return
    # Requests HTTP's parser refuses (`before_app`) get the same JSON error shape from
    # app.server's protocol as those the application refuses.
    assert answer.headers.get("content-type", "").startswith("application/json"), answer.summary()
    if case.head:  # a HEAD answer has no body to check
        return
    error = answer.json()["error"]
    assert isinstance(error["code"], str) and error["code"], answer.summary()
    assert isinstance(error["message"], str) and error["message"], answer.summary()
    assert isinstance(error["request_id"], str) and error["request_id"], answer.summary()
    assert error["request_id"] == answer.headers.get("x-request-id"), answer.summary()


def test_server_is_healthy_and_correct_after_the_corpus(
    corpus_server: Server, keyed_server: Server, outcomes: dict[str, Outcome], evaluated: Evaluated
) -> None:
    assert outcomes  # the corpus ran first
    with httpx.Client(base_url=corpus_server.url, timeout=10) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200
        for index in range(3):
            expected = int(np.argmax(evaluated.probabilities[index]))
            files = {"file": ("t10k.png", encode(evaluated.images[index]), "image/png")}
            response = client.post(CLASSIFY, files=files)
            assert response.status_code == 200, response.text
            labels = client.get(f"/v1/models/fashion/versions/{VERSION}").json()["labels"]
            assert response.json()["predictions"][0]["label"] == labels[expected]
    for server in (corpus_server, keyed_server):
        server_errors = {
            tuple(sorted(sample.labels.items())): sample.value
            for family in server.registry.collect()
            if family.name == "tagger_requests"
            for sample in family.samples
            if sample.name == "tagger_requests_total" and sample.labels["status"].startswith("5")
        }
        assert not server_errors, f"5xx counted in tagger_requests_total: {server_errors}"
