"""The serving core's entry points, one per kind of input, shared by every protocol at the edge.

`Core.classify_encoded` takes encoded image files (decoded and preprocessed here, exactly as
for training), `Core.infer_pixels` takes pixels already at the model's input size. Both go
through the one batcher of the version that answers, so requests of every protocol share
batches, the queue bound and the metrics. Errors are the core's own (`app.core.errors`).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from app.config import Settings
from app.core.batcher import BatcherClosed, stack_rows
from app.core.decode_budget import DecodeBudget
from app.core.decoding import Upload, decode_all
from app.core.errors import DeadlineExceeded, InputProblem, InvalidInput
from app.core.models import ServedModels
from app.core.servable import Servable
from app.metrics import Metrics
from model_store.signature import INPUT_NAME

Rows = list[np.ndarray]
# Wraps the wait for the batcher's answer: the edge uses it to stop waiting (and cancel the
# images) when its client goes away. The default awaits as is.
Watch = Callable[[Awaitable[Rows]], Awaitable[Rows]]
_SWAP_RETRIES = 3


@dataclass(frozen=True, slots=True)
class Answer:
    """The version that answered and one probability row per input image, in order."""

    servable: Servable
    probabilities: np.ndarray  # float32 [N, K] over servable.model.labels


async def _as_is(work: Awaitable[Rows]) -> Rows:
    return await work


class Core:
    """What one service instance serves with: the served models (one manager each), the decode
    pool and its memory budget. Built by `create_app`; the protocols reach it through
    `app.api.deps`."""

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        models: ServedModels,
        decode_executor: ThreadPoolExecutor,
        decode_budget: DecodeBudget,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.models = models
        self.decode_executor = decode_executor
        self.decode_budget = decode_budget

    def deadline(self) -> float:
        """A request's deadline (`time.monotonic()`), TAGGER_REQUEST_TIMEOUT_MS from now."""
        return time.monotonic() + self.settings.request_timeout_s

    async def servable(self, model: str, ref: int | str | None) -> Servable:
        """The version that answers for `model` at `ref` (None: the served one; a version
        number; an alias). Raises NotFound (also for a model not served here), NotReady,
        Overloaded or ModelFailure."""
        return await self.models.manager(model).get(model, ref)

    async def classify_encoded(
        self,
        model: str,
        ref: int | str | None,
        uploads: Sequence[Upload],
        deadline: float,
        *,
        servable: Servable | None = None,
        watch: Watch = _as_is,
    ) -> Answer:
        """Decode and preprocess encoded images for the answering version, then run them.

        If that version is swapped out meanwhile, the images are decoded again for the next
        one when its preprocessing differs. Raises InvalidInput for the first bad image.
        """
        servable = servable or await self.servable(model, ref)
        servable.batcher.check_room(len(uploads))  # a full model refuses before decoding
        metadata, pixels = None, []
        for attempt in range(_SWAP_RETRIES):
            if servable.model.metadata != metadata:
                metadata = servable.model.metadata
                pixels = await decode_all(
                    list(uploads),
                    metadata,
                    self.settings,
                    self.metrics,
                    self.decode_executor,
                    self.decode_budget,
                    deadline,
                )
            try:
                return self._answer(servable, await self._run(servable, pixels, deadline, watch))
            except BatcherClosed:  # the version was swapped out between lookup and submit
                if attempt == _SWAP_RETRIES - 1:
                    raise
                servable = await self.servable(model, ref)
        raise AssertionError("unreachable")

    async def infer_pixels(
        self,
        model: str,
        ref: int | str | None,
        pixels: np.ndarray,
        deadline: float,
        *,
        servable: Servable | None = None,
        watch: Watch = _as_is,
    ) -> Answer:
        """Run uint8 pixels `[N, H, W, C]` already at the answering version's input size."""
        servable = servable or await self.servable(model, ref)
        for attempt in range(_SWAP_RETRIES):
            check_pixels(servable, pixels, self.settings.max_images_per_request)
            try:
                rows = await self._run(servable, list(pixels), deadline, watch)
                return self._answer(servable, rows)
            except BatcherClosed:
                if attempt == _SWAP_RETRIES - 1:
                    raise
                servable = await self.servable(model, ref)
        raise AssertionError("unreachable")

    async def _run(
        self, servable: Servable, pixels: list[np.ndarray], deadline: float, watch: Watch
    ) -> Rows:
        timeout_s = self.settings.request_timeout_s
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise DeadlineExceeded(timeout_s)
        done_now = servable.batcher.run_now(pixels)  # an idle model and a lone image
        if done_now is not None:
            return done_now
        return await watch(servable.batcher.submit(pixels, remaining, budget_s=timeout_s))

    def _answer(self, servable: Servable, rows: Rows) -> Answer:
        probabilities = stack_rows(rows)
        labels, name = servable.model.labels, servable.model.name
        for best in probabilities.argmax(axis=1).tolist():
            self.metrics.count_prediction(name, labels[best])
        return Answer(servable, probabilities)


def check_pixels(servable: Servable, pixels: np.ndarray, max_images: int) -> None:
    """Raise InvalidInput unless `pixels` is uint8 `[N, H, W, C]` for this version with
    1 <= N <= `max_images`."""
    expected = servable.model.input_shape
    wanted = f"[-1, {', '.join(str(d) for d in expected)}]"
    if pixels.dtype != np.uint8:
        raise InvalidInput(
            f"input {INPUT_NAME!r}: expected uint8 pixels, got {pixels.dtype}", "invalid_dtype"
        )
    if pixels.ndim != len(expected) + 1 or tuple(pixels.shape[1:]) != tuple(expected):
        raise InvalidInput(
            f"input {INPUT_NAME!r}: expected shape {wanted}, got {list(pixels.shape)}",
            "invalid_shape",
        )
    if len(pixels) == 0:
        raise InvalidInput(f"input {INPUT_NAME!r} holds no image", "missing_input")
    if len(pixels) > max_images:
        raise InvalidInput(
            f"input {INPUT_NAME!r}: {len(pixels)} images in one request; the limit is {max_images}",
            "too_many_images",
            InputProblem.TOO_LARGE,
        )
