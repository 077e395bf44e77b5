"""The batcher's concurrency logic, with a fake model the test controls through events."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from app.core.batcher import Batcher, BatcherClosed
from app.core.errors import DeadlineExceeded, Overloaded
from app.metrics import Metrics

pytestmark = pytest.mark.asyncio(loop_scope="session")

SHAPE = (2, 2, 1)


class FakeModel:
    """Returns each image's first pixel as its 'probability'; can be held, or fail on a pixel."""

    def __init__(self, poison: int | None = None, extra_row: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.gate.set()
        self.poison = poison
        self.extra_row = extra_row

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        ids = [int(image[0, 0, 0]) for image in batch]
        self.batches.append(ids)
        self.entered.set()
        assert self.gate.wait(10)
        if self.poison is not None and self.poison in ids:
            raise ValueError(f"cannot classify image {self.poison}")
        rows = np.array(ids, dtype=np.float32)[:, None]
        return np.vstack([rows, rows[:1]]) if self.extra_row else rows


def image(value: int) -> np.ndarray:
    return np.full(SHAPE, value, dtype=np.uint8)


def make_batcher(model: FakeModel, **options: object) -> Batcher:
    settings: dict[str, object] = {
        "max_batch_size": 8,
        "max_batch_delay_s": 0.05,
        "max_queue": 16,
        "metrics": Metrics(),
        "input_shape": SHAPE,
        "retry_after_s": 2,
    }
    settings.update(options)
    batcher = Batcher("test", model, **settings)  # type: ignore[arg-type]
    batcher.start()
    return batcher


async def wait_until(condition, timeout_s: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.001)


async def hold_first_batch(batcher: Batcher, model: FakeModel) -> asyncio.Task:
    """Submit image 100 and keep it inside the model until `model.gate` is set."""
    model.gate.clear()
    blocker = asyncio.ensure_future(batcher.submit([image(100)], 10))
    await asyncio.to_thread(model.entered.wait, 5)
    return blocker


async def test_concurrent_items_share_a_batch_and_results_reach_their_callers() -> None:
    model = FakeModel()
    batcher = make_batcher(model)
    blocker = await hold_first_batch(batcher, model)
    callers = [asyncio.ensure_future(batcher.submit([image(i)], 10)) for i in range(6)]
    await wait_until(lambda: batcher.depth == 6)
    model.gate.set()
    results = await asyncio.gather(*callers)
    assert [float(r[0][0]) for r in results] == [float(i) for i in range(6)]
    assert await blocker
    assert model.batches == [[100], list(range(6))]
    await batcher.close(5)


async def test_batches_never_exceed_the_size_limit_and_a_request_can_hold_many_images() -> None:
    model = FakeModel()
    batcher = make_batcher(model, max_batch_size=4)
    blocker = await hold_first_batch(batcher, model)
    many = asyncio.ensure_future(batcher.submit([image(i) for i in range(10)], 10))
    await wait_until(lambda: batcher.depth == 10)
    model.gate.set()
    rows = await many
    await blocker
    assert [float(r[0]) for r in rows] == [float(i) for i in range(10)]
    assert [len(b) for b in model.batches] == [1, 4, 4, 2]
    await batcher.close(5)


async def test_a_full_queue_refuses_at_once_with_retry_after() -> None:
    model = FakeModel()
    batcher = make_batcher(model, max_queue=3)
    blocker = await hold_first_batch(batcher, model)
    queued = [asyncio.ensure_future(batcher.submit([image(i)], 10)) for i in range(3)]
    await wait_until(lambda: batcher.depth == 3)
    with pytest.raises(Overloaded) as refused:
        await batcher.submit([image(9)], 10)
    assert refused.value.code == "overloaded"
    assert refused.value.retry_after_s == 2
    model.gate.set()
    assert len(await asyncio.gather(*queued)) == 3  # nothing queued was lost
    await blocker
    await batcher.close(5)


async def test_a_late_item_gets_deadline_exceeded_and_is_never_run() -> None:
    model = FakeModel()
    batcher = make_batcher(model)
    blocker = await hold_first_batch(batcher, model)
    with pytest.raises(DeadlineExceeded):
        await batcher.submit([image(7)], 0.05)
    model.gate.set()
    await blocker
    assert await batcher.submit([image(8)], 10)
    assert model.batches == [[100], [8]]
    await batcher.close(5)


async def test_a_cancelled_caller_is_dropped_before_inference() -> None:
    model = FakeModel()
    batcher = make_batcher(model)
    blocker = await hold_first_batch(batcher, model)
    gone = asyncio.ensure_future(batcher.submit([image(5)], 10))
    kept = asyncio.ensure_future(batcher.submit([image(6)], 10))
    await wait_until(lambda: batcher.depth == 2)
    gone.cancel()
    model.gate.set()
    await blocker
    assert float((await kept)[0][0]) == 6.0
    assert model.batches == [[100], [6]]
    await batcher.close(5)


async def test_one_bad_image_fails_alone_and_its_error_travels_as_an_exception() -> None:
    model = FakeModel(poison=3)
    batcher = make_batcher(model)
    blocker = await hold_first_batch(batcher, model)
    callers = [asyncio.ensure_future(batcher.submit([image(i)], 10)) for i in range(5)]
    await wait_until(lambda: batcher.depth == 5)
    model.gate.set()
    outcomes = await asyncio.gather(*callers, return_exceptions=True)
    await blocker
    assert isinstance(outcomes[3], ValueError)
    assert "cannot classify image 3" in str(outcomes[3])
    assert [float(o[0][0]) for i, o in enumerate(outcomes) if i != 3] == [0.0, 1.0, 2.0, 4.0]
    await batcher.close(5)


async def test_a_model_returning_the_wrong_count_is_an_error_not_a_shuffle() -> None:
    batcher = make_batcher(FakeModel(extra_row=True))
    with pytest.raises(RuntimeError, match="2 outputs for 1 inputs"):
        await batcher.submit([image(1)], 10)
    await batcher.close(5)


async def test_close_finishes_queued_work_then_refuses_new_work() -> None:
    model = FakeModel()
    batcher = make_batcher(model, max_batch_size=2)
    blocker = await hold_first_batch(batcher, model)
    queued = [asyncio.ensure_future(batcher.submit([image(i)], 10)) for i in range(5)]
    await wait_until(lambda: batcher.depth == 5)
    closing = asyncio.ensure_future(batcher.close(10))
    await asyncio.sleep(0.01)
    with pytest.raises(BatcherClosed):
        await batcher.submit([image(9)], 10)
    model.gate.set()
    await closing
    assert [float(r[0][0]) for r in await asyncio.gather(*queued)] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert await blocker


async def test_metrics_record_queue_depth_and_batch_sizes() -> None:
    model = FakeModel()
    metrics = Metrics()
    batcher = make_batcher(model, metrics=metrics)
    blocker = await hold_first_batch(batcher, model)
    queued = [asyncio.ensure_future(batcher.submit([image(i)], 10)) for i in range(3)]
    await wait_until(lambda: batcher.depth == 3)
    assert metrics.registry.get_sample_value("tagger_queue_depth", {"model": "test"}) == 3
    model.gate.set()
    await asyncio.gather(blocker, *queued)
    sample = metrics.registry.get_sample_value
    assert sample("tagger_queue_depth", {"model": "test"}) == 0
    assert sample("tagger_batch_size_count", {"model": "test"}) == 2
    assert sample("tagger_batch_size_sum", {"model": "test"}) == 4
    assert sample("tagger_batch_wait_seconds_count", {"model": "test"}) == 4
    assert sample("tagger_inference_seconds_count", {"model": "test"}) == 2
    await batcher.close(5)


async def test_an_image_of_the_wrong_shape_is_refused_before_queueing() -> None:
    batcher = make_batcher(FakeModel())
    with pytest.raises(ValueError, match="shape"):
        await batcher.submit([np.zeros((3, 3, 1), np.uint8)], 10)
    assert batcher.depth == 0
    await batcher.close(5)


class ThreadRecorder:
    """Records the thread of each call and its batch size; sleeps `delay_s` per call."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.calls: list[tuple[int, int]] = []  # (batch size, thread ident)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.calls.append((len(batch), threading.get_ident()))
        if self.delay_s:
            threading.Event().wait(self.delay_s)
        return batch[:, 0, 0, :].astype(np.float32)


async def test_a_lone_image_of_a_fast_model_runs_on_the_event_loop() -> None:
    """Once one-image calls are known to be quick, a lone image runs on the loop's thread (no
    hand-off to the model thread and back); batches of several still go to the model thread."""
    model = ThreadRecorder()
    batcher = make_batcher(model, max_batch_delay_s=0.0, inline_max_s=0.01)
    loop_thread = threading.get_ident()
    try:
        for value in range(3):
            assert (await batcher.submit([image(value)], 5))[0][0] == value
        assert [size for size, _ in model.calls] == [1, 1, 1]
        first, *rest = (thread for _, thread in model.calls)
        assert first != loop_thread  # not measured yet: the model thread, which measures it
        assert rest == [loop_thread, loop_thread]
        rows = await batcher.submit([image(7), image(8)], 5)
        assert [row[0] for row in rows] == [7, 8]
        assert model.calls[-1][0] == 2 and model.calls[-1][1] != loop_thread
    finally:
        await batcher.close(5)


@pytest.mark.parametrize(("delay_s", "inline_max_s"), [(0.02, 0.01), (0.0, 0.0)])
async def test_a_slow_model_or_no_inline_limit_keeps_every_call_on_the_model_thread(
    delay_s: float, inline_max_s: float
) -> None:
    model = ThreadRecorder(delay_s)
    batcher = make_batcher(model, max_batch_delay_s=0.0, inline_max_s=inline_max_s)
    try:
        for value in range(3):
            await batcher.submit([image(value)], 5)
        assert threading.get_ident() not in {thread for _, thread in model.calls}
        assert len(model.calls) == 3
    finally:
        await batcher.close(5)


async def test_run_now_takes_a_lone_image_only_while_the_model_is_idle() -> None:
    """`run_now` answers a lone image on the loop's thread once one-image calls are known to be
    quick, and declines (None: queue it) before that, for several images, and while a batch
    holds the model thread: the model is never called twice at once."""
    model = ThreadRecorder()
    gate, entered, active, overlaps = threading.Event(), threading.Event(), [0], []

    def held(batch: np.ndarray) -> np.ndarray:
        active[0] += 1
        overlaps.append(active[0] > 1)
        try:
            if len(batch) > 1:
                entered.set()
                assert gate.wait(10)
            return model(batch)
        finally:
            active[0] -= 1

    batcher = make_batcher(held, max_batch_delay_s=0.0, inline_max_s=0.01)  # type: ignore[arg-type]
    try:
        assert batcher.run_now([image(1)]) is None  # one-image calls not measured yet
        await batcher.submit([image(1)], 5)
        assert batcher.run_now([image(2), image(3)]) is None
        rows = batcher.run_now([image(4)])
        assert rows is not None and rows[0][0] == 4
        assert model.calls[-1] == (1, threading.get_ident())
        pair = asyncio.ensure_future(batcher.submit([image(5), image(6)], 5))
        while not entered.is_set():
            await asyncio.sleep(0.001)  # the pair is in the model, its thread held
        assert batcher.run_now([image(7)]) is None
        gate.set()
        assert [row[0] for row in await pair] == [5, 6]
        assert batcher.run_now([image(8)]) is not None
        assert not any(overlaps)
    finally:
        gate.set()
        await batcher.close(5)


async def test_lone_images_read_in_one_step_of_the_loop_go_as_one_batch() -> None:
    """Under load many requests are read in one step of the event loop. Only the first runs at
    once; the others queue and go to the model together, not as one-image calls each."""
    model = ThreadRecorder()
    batcher = make_batcher(model, max_batch_delay_s=0.0, inline_max_s=0.01)

    async def request(value: int) -> float:
        rows = batcher.run_now([image(value)])
        if rows is None:
            rows = await batcher.submit([image(value)], 5)
        return float(rows[0][0])

    try:
        await batcher.submit([image(0)], 5)  # one-image calls measured: run_now may answer
        burst = [asyncio.ensure_future(request(value)) for value in range(1, 9)]
        assert await asyncio.gather(*burst) == [float(value) for value in range(1, 9)]
        assert [size for size, _ in model.calls] == [1, 1, 7]
        assert batcher.run_now([image(9)]) is not None  # a later step: at once again
    finally:
        await batcher.close(5)
