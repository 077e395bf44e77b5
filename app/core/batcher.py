"""Dynamic batching: many concurrent single images become one model call.

Modelled on Ray Serve's `serve/batching.py`: a queue of small items, each with its own future
and monotonic enqueue time. The worker blocks for the first item, then fills the batch up to
`max_batch_size` or until `max_batch_delay` has passed since that item arrived, and runs the
model on a dedicated thread so the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from app.core.errors import DeadlineExceeded, Overloaded
from app.metrics import Metrics

logger = logging.getLogger(__name__)

PredictFn = Callable[[np.ndarray], np.ndarray]


class BatcherClosed(Exception):
    """The batcher stopped taking work (its version is being replaced); resolve again."""


@dataclass(eq=False, slots=True)
class _Item:
    pixels: np.ndarray
    future: asyncio.Future[np.ndarray]
    enqueued_at: float
    deadline: float
    budget_s: float  # the request's whole time limit, named in DeadlineExceeded


class Batcher:
    """One per loaded version. `submit` from the event loop; the model runs on one worker thread."""

    def __init__(
        self,
        label: str,
        predict: PredictFn,
        *,
        max_batch_size: int,
        max_batch_delay_s: float,
        max_queue: int,
        metrics: Metrics | None = None,
        retry_after_s: int = 1,
        input_shape: tuple[int, ...] | None = None,
        inline_max_s: float = 0.0,
    ) -> None:
        self.label = label
        self.max_batch_size = max_batch_size
        self.max_batch_delay_s = max_batch_delay_s
        self.max_queue = max_queue
        self._predict = predict
        self._metrics = metrics
        self._depth_gauge = metrics.queue_depth.labels(label) if metrics is not None else None
        # Looked up once: every batch observes them.
        self._size_histogram = metrics.batch_size.labels(label) if metrics is not None else None
        self._wait_histogram = metrics.batch_wait.labels(label) if metrics is not None else None
        self._call_histogram = (
            metrics.inference_seconds.labels(label) if metrics is not None else None
        )
        self._retry_after_s = retry_after_s
        self._input_shape = input_shape
        # A lone image runs on the event loop while its calls take under this (0: never).
        self.inline_max_s = inline_max_s
        self._single_call_s = math.inf  # smoothed duration of one-image calls; none yet
        self._pending: deque[_Item] = deque()
        self._wakeup = asyncio.Event()
        self._closing = False
        self._running = False  # a batch is in the model (on either thread)
        # `run_now` answered a lone image in this step of the event loop (see there).
        self._ran_now_this_step = False
        self._task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"model-{label}")

    @property
    def depth(self) -> int:
        return len(self._pending)

    def start(self) -> None:
        """Start the worker task on the running loop (a reference is kept and failures logged)."""
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"batcher-{self.label}"
        )
        self._task.add_done_callback(self._log_worker_exit)

    async def submit(
        self, images: Sequence[np.ndarray], timeout_s: float, *, budget_s: float | None = None
    ) -> list[np.ndarray]:
        """Queue each image as its own item; return one probability row per image, in order.

        Raises Overloaded (queue full, or shutting down; counted in the refusal metric),
        DeadlineExceeded (not done within `timeout_s`; its message names `budget_s`, the
        request's whole time limit, default `timeout_s`), BatcherClosed, or whatever the model
        raised for one of these images.
        """
        try:
            return await self._submit(images, timeout_s, budget_s or timeout_s)
        except Overloaded:
            if self._metrics is not None:
                self._metrics.rejected_overloaded.inc()
            raise

    def check_room(self, count: int) -> None:
        """Raise Overloaded (counted) now if `count` more images would not fit in the queue:
        callers check before decoding, so a flooded model refuses without spending the decode
        threads every model shares."""
        try:
            self._check_room(count)
        except Overloaded:
            if self._metrics is not None:
                self._metrics.rejected_overloaded.inc()
            raise

    def _check_room(self, count: int) -> None:
        if len(self._pending) + count > self.max_queue:
            self._purge_done()
            if len(self._pending) + count > self.max_queue:
                raise Overloaded(
                    f"the batch queue is full ({self.max_queue} images waiting); retry shortly",
                    self._retry_after_s,
                )

    async def _submit(
        self, images: Sequence[np.ndarray], timeout_s: float, budget_s: float
    ) -> list[np.ndarray]:
        if self._closing:
            raise BatcherClosed(self.label)
        for pixels in images:
            if self._input_shape is not None and pixels.shape != self._input_shape:
                raise ValueError(f"pixels of shape {pixels.shape}, expected {self._input_shape}")
        self._check_room(len(images))
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        items = [_Item(p, loop.create_future(), now, now + timeout_s, budget_s) for p in images]
        was_empty = not self._pending
        self._pending.extend(items)
        self._gauge(len(items))
        # Wake the worker only when it can act: a first item to wait for, or a full batch.
        if was_empty or len(self._pending) >= self.max_batch_size:
            self._wakeup.set()
        try:
            async with asyncio.timeout(timeout_s) as scope:
                return [await item.future for item in items]
        except TimeoutError:
            if scope.expired():
                raise DeadlineExceeded(budget_s) from None
            raise
        finally:
            # A timeout, a model error or the client going away: the rest are not run.
            for item in items:
                item.future.cancel()

    async def close(self, timeout_s: float) -> None:
        """Stop taking work, finish queued and in-flight items, then stop the worker thread."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout_s)
            except TimeoutError:
                logger.warning("batcher %s did not drain within %.1f s", self.label, timeout_s)
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
        while self._pending:
            item = self._pending.popleft()
            self._gauge(-1)
            if not item.future.done():
                item.future.set_exception(Overloaded("the service is shutting down", 1))
        self._executor.shutdown(wait=False)

    # -- worker -------------------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while (batch := await self._next_batch()) is not None:
            now = time.monotonic()
            live = []
            for item in batch:
                if item.future.done():  # cancelled: the caller timed out or went away
                    continue
                if now > item.deadline:
                    item.future.set_exception(DeadlineExceeded(item.budget_s))
                    continue
                live.append(item)
            if not live:
                continue
            self._count_batch([now - item.enqueued_at for item in live])
            self._running = True
            try:
                if len(live) == 1 and self._single_call_s < self.inline_max_s:
                    # Cheaper than the thread hand-off both ways; the loop waits no longer
                    # than the hand-off would have taken.
                    outputs = self._predict_all([live[0].pixels])
                else:
                    outputs = await loop.run_in_executor(
                        self._executor, self._predict_all, [item.pixels for item in live]
                    )
            except BaseException as exc:  # the worker itself was cancelled or broke
                for item in live:
                    if not item.future.done():
                        item.future.set_exception(
                            exc if isinstance(exc, Exception) else BatcherClosed(self.label)
                        )
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            finally:
                self._running = False
            for item, output in zip(live, outputs, strict=True):
                if item.future.done():
                    continue
                if isinstance(output, BaseException):
                    item.future.set_exception(output)
                else:
                    item.future.set_result(output)

    def run_now(self, images: Sequence[np.ndarray]) -> list[np.ndarray] | None:
        """Run a lone image at once, on the event loop, when nothing is queued or in the model,
        no other lone image ran at once in this step of the loop, and one-image calls are known
        to be quicker than the hand-off to the model thread: no queue, future, task switch or
        watcher for one client's request. None when the images must go through `submit`
        instead. Counted as a batch of one that did not wait; raises what the model raised."""
        if (
            len(images) != 1
            or self._closing
            or self._pending
            or self._running
            or self._ran_now_this_step
            or not self._single_call_s < self.inline_max_s
            or (self._input_shape is not None and images[0].shape != self._input_shape)
        ):
            return None
        # Under load many requests are read in one step of the loop; run one at a time, their
        # images would each cost a one-image call, dearer per image than a batch (the raw
        # table of `make bench`). So only the first of a step runs now; the rest queue and go
        # as one batch after it.
        self._ran_now_this_step = True
        asyncio.get_running_loop().call_soon(self._next_step)
        self._count_batch([0.0])
        self._running = True
        try:
            output = self._predict_all([images[0]])[0]
        finally:
            self._running = False
        if isinstance(output, BaseException):
            raise output
        return [output]

    def _next_step(self) -> None:
        self._ran_now_this_step = False

    def _count_batch(self, waits: Sequence[float]) -> None:
        """A batch of `len(waits)` images, each having waited so long since it was queued."""
        if self._size_histogram is not None and self._wait_histogram is not None:
            self._size_histogram.observe(len(waits))
            for wait in waits:
                self._wait_histogram.observe(wait)

    async def _next_batch(self) -> list[_Item] | None:
        """Block for the first item, then fill up to the size or delay limit; None once drained."""
        while not self._pending:
            if self._closing:
                return None
            self._wakeup.clear()
            await self._wakeup.wait()
        fill_until = self._pending[0].enqueued_at + self.max_batch_delay_s
        while len(self._pending) < self.max_batch_size and not self._closing:
            remaining = fill_until - time.monotonic()
            if remaining <= 0:
                break
            self._wakeup.clear()
            try:
                async with asyncio.timeout(remaining):
                    await self._wakeup.wait()
            except TimeoutError:
                break
        batch = []
        while self._pending and len(batch) < self.max_batch_size:
            item = self._pending.popleft()
            self._gauge(-1)
            if not item.future.done():
                batch.append(item)
        return batch

    def _predict_all(self, images: list[np.ndarray]) -> list[np.ndarray | Exception]:
        """Worker thread: one model call; if it fails, retry image by image so one bad image
        fails alone."""
        try:
            return list(self._predict_checked(stack_rows(images)))
        except Exception as exc:
            if len(images) == 1:
                return [exc]
            logger.warning("batch of %d failed (%r); retrying one by one", len(images), exc)
        outputs: list[np.ndarray | Exception] = []
        for pixels in images:
            try:
                outputs.append(self._predict_checked(pixels[None])[0])
            except Exception as exc:
                outputs.append(exc)
        return outputs

    def _predict_checked(self, batch: np.ndarray) -> np.ndarray:
        started = time.perf_counter()
        outputs = self._predict(batch)
        elapsed = time.perf_counter() - started
        if len(batch) == 1:
            last = self._single_call_s
            self._single_call_s = elapsed if last == math.inf else 0.8 * last + 0.2 * elapsed
        if self._call_histogram is not None:
            self._call_histogram.observe(elapsed)
        if len(outputs) != len(batch):
            raise RuntimeError(f"model returned {len(outputs)} outputs for {len(batch)} inputs")
        return outputs

    def _purge_done(self) -> None:
        kept = deque(item for item in self._pending if not item.future.done())
        self._gauge(len(kept) - len(self._pending))
        self._pending = kept

    def _gauge(self, delta: int) -> None:
        if self._depth_gauge is not None and delta:
            self._depth_gauge.inc(delta)

    def _log_worker_exit(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.error("batcher %s worker failed", self.label, exc_info=task.exception())


def stack_rows(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """`np.stack(arrays)`; for one array, a view of it instead of a copy."""
    return arrays[0][None] if len(arrays) == 1 else np.stack(arrays)
