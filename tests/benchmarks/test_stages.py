"""benchmarks.stages: py-spy stacks sorted into request stages."""

from __future__ import annotations

import pytest

from benchmarks.stages import OTHER, stage_of, stage_shares

LOOP = "Runner.run (asyncio/runners.py:118)"
ASGI = "RequestResponseCycle.run_asgi (uvicorn/protocols/http/httptools_impl.py:401)"


@pytest.mark.parametrize(
    ("leaves", "stage"),
    [
        (["_classify (app/api/routes/classify.py:120)", "decode_all (app/core/decoding.py:90)"],
         "decode + preprocess"),
        (["_classify (app/api/routes/classify.py:118)", "read_uploads (app/api/uploads.py:40)"],
         "multipart"),
        (["request_response.<locals>.app (fastapi/routing.py:300)",
          "solve_dependencies (fastapi/dependencies/utils.py:600)"], "dependencies"),
        (["_response (app/api/routes/classify.py:140)"], "response"),
        (["Starlette.__call__ (starlette/applications.py:113)"], "routing + middleware"),
    ],
)  # fmt: skip
def test_a_stack_belongs_to_the_first_stage_whose_function_it_holds(leaves, stage) -> None:
    assert stage_of([LOOP, ASGI, *leaves]) == stage


def test_class_prefixes_idle_threads_and_the_rest() -> None:
    thread = "Thread.run (threading.py:982)"
    model = [thread, "_WorkItem.run (concurrent/futures/thread.py:58)", "Session.run (ort.py:220)"]
    assert stage_of(model) == "model"
    assert stage_of([thread, "_WorkItem.run (concurrent/futures/thread.py:58)"]) == (
        "batch hand-off"
    )
    assert stage_of([LOOP, "TaggerHttpProtocol.data_received (app/server/protocol.py:110)"]) == (
        "HTTP parsing"
    )
    assert stage_of([thread, "_worker (concurrent/futures/thread.py:81)"]) is None
    assert stage_of([LOOP]) == OTHER
    # a substring is not a match: request_response is routing, not the response stage
    assert stage_of([LOOP, ASGI, "request_response.<locals>.app (fastapi/routing.py:1)"]) == (
        "routing + middleware"
    )


def test_shares_are_sample_weighted_and_leave_idle_threads_out() -> None:
    raw = [
        f"{LOOP};{ASGI};decode_all (app/core/decoding.py:90) 30",
        f"{LOOP};{ASGI} 10",
        "Thread.run (threading.py:982);_worker (concurrent/futures/thread.py:81) 500",
        "",
    ]
    assert stage_shares(raw) == {"decode + preprocess": 0.75, "routing + middleware": 0.25}
