"""Encoded images -> model pixels: decode + preprocess (small images inline, others on a
thread pool within a decode-memory budget), for any protocol."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np
from PIL import Image

from app.config import Settings
from app.core.decode_budget import DecodeBudget
from app.core.errors import DeadlineExceeded, InputProblem, InvalidInput
from app.metrics import Metrics
from model_store.decode_cost import check_decode_cost
from model_store.preprocessing import (
    DeadlinePassed,
    ExtremeAspectRatio,
    ImageError,
    ImageTooLarge,
    UnsupportedImage,
    draft_side,
    open_image,
    preprocess_bytes,
    preprocess_image,
)
from model_store.schema import ModelMetadata

# Images up to this size are decoded on the event loop (~0.2 ms for 64x64); larger on a thread.
INLINE_DECODE_MAX_PIXELS = 64 * 64
INLINE_DECODE_MAX_BYTES = 16 * 1024
_IMAGE_PROBLEMS: dict[type[ImageError], InputProblem] = {
    ImageTooLarge: InputProblem.TOO_LARGE,
    UnsupportedImage: InputProblem.UNSUPPORTED,
    ExtremeAspectRatio: InputProblem.OUT_OF_RANGE,
}


@dataclass(frozen=True, slots=True)
class Upload:
    """One encoded image and how to name it in an error message."""

    data: bytes
    name: str


async def decode_all(
    uploads: list[Upload],
    metadata: ModelMetadata,
    settings: Settings,
    metrics: Metrics,
    executor: Executor,
    budget: DecodeBudget,
    deadline: float | None = None,
) -> list[np.ndarray]:
    """Decode the uploads; the first bad image (in order) is the error.

    Small images (the usual case: a thumbnail near the model's input size) are decoded right
    here: that costs less than handing them to a thread and back, and keeps the decode threads
    from competing with the event loop for the GIL. Larger ones go to `executor` in parallel,
    each once its estimated decode memory fits `budget` (first come, first served); one whose
    estimate alone exceeds the budget is refused from its header (`image_too_large`).
    A bad image raises `InvalidInput` (counted by its code in the rejection metric). Past
    `deadline` (`time.monotonic()`; default: TAGGER_REQUEST_TIMEOUT_MS from now) this raises
    `DeadlineExceeded` at once, and the decodes still running stop at their next stage.
    """
    if deadline is None:
        deadline = time.monotonic() + settings.request_timeout_s
    spec, shape, max_pixels = metadata.preprocessing, metadata.input, settings.max_pixels
    inline_pixels = min(max_pixels, INLINE_DECODE_MAX_PIXELS)

    def preprocess(data: bytes, pixel_limit: int) -> np.ndarray:
        return preprocess_bytes(data, spec, shape, pixel_limit, settings.max_aspect_ratio, deadline)

    def decode(image: Image.Image) -> np.ndarray:
        started = time.perf_counter()
        try:
            return preprocess_image(image, spec, shape, deadline)
        finally:
            metrics.decode_seconds.observe(time.perf_counter() - started)

    loop = asyncio.get_running_loop()

    def read_header(data: bytes) -> tuple[Image.Image, int]:
        image = open_image(data, max_pixels, draft_side(shape), settings.max_aspect_ratio)
        return image, check_decode_cost(image, budget.capacity)

    async def offload(data: bytes) -> np.ndarray:
        image, cost = await asyncio.wrap_future(executor.submit(read_header, data))
        try:
            await budget.acquire(cost, deadline - time.monotonic())
        except TimeoutError:
            raise DeadlinePassed("the deadline passed while waiting for decode memory") from None
        job = executor.submit(decode, image)
        # The bytes stay taken until the thread is done, even if this request gave up on it.
        job.add_done_callback(lambda _job: _on_loop(loop, budget.release, cost))
        return await asyncio.wrap_future(job)

    results: list[np.ndarray | BaseException | None] = []
    offloaded: dict[int, asyncio.Future[np.ndarray]] = {}
    for index, upload in enumerate(uploads):
        result: np.ndarray | BaseException | None = None
        if len(upload.data) <= INLINE_DECODE_MAX_BYTES:
            started = time.perf_counter()
            try:
                # The header is checked before any pixel is decoded, so a small file that
                # declares a large image costs next to nothing here and goes to the pool.
                result = preprocess(upload.data, inline_pixels)
            except ImageTooLarge as exc:
                result = exc if inline_pixels == max_pixels else None
            except (ImageError, DeadlinePassed) as exc:
                result = exc
            if result is not None:
                metrics.decode_seconds.observe(time.perf_counter() - started)
        if result is None:
            offloaded[index] = asyncio.ensure_future(offload(upload.data))
        results.append(result)
    if offloaded:
        await _all_done(list(offloaded.values()), deadline, settings.request_timeout_s)
        for index, future in offloaded.items():
            results[index] = future.exception() or future.result()
    for upload, result in zip(uploads, results, strict=True):
        if isinstance(result, DeadlinePassed):
            raise DeadlineExceeded(settings.request_timeout_s) from result
        if isinstance(result, ImageError):
            message = f"{upload.name}: {result}" if len(uploads) > 1 else str(result)
            metrics.images_rejected.labels(result.code).inc()
            raise InvalidInput(message, result.code, _image_problem(result)) from result
        if isinstance(result, BaseException):
            raise result
    return [r for r in results if isinstance(r, np.ndarray)]


def _image_problem(error: ImageError) -> InputProblem:
    for kind, problem in _IMAGE_PROBLEMS.items():
        if isinstance(error, kind):
            return problem
    return InputProblem.MALFORMED


async def _all_done(
    futures: list[asyncio.Future[np.ndarray]], deadline: float, timeout_s: float
) -> None:
    """Wait for every future until `deadline`; past it, cancel the ones not started (running
    ones see the deadline themselves) and raise `DeadlineExceeded`."""
    _done, pending = await asyncio.wait(futures, timeout=max(0.0, deadline - time.monotonic()))
    if pending:
        for future in futures:
            if future in pending:
                future.cancel()
            elif not future.cancelled():
                future.exception()  # retrieved: a late failure is not logged as unhandled
        raise DeadlineExceeded(timeout_s)


def _on_loop(loop: asyncio.AbstractEventLoop, release: Callable[[int], None], cost: int) -> None:
    with contextlib.suppress(RuntimeError):  # a closed loop has nothing left to admit
        loop.call_soon_threadsafe(release, cost)
