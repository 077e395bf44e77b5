"""Settings for dynamic batching, the queue, admission and request deadlines."""

from __future__ import annotations

from pydantic import BaseModel, Field


class BatchingSettings(BaseModel):
    """Batch size and wait, queue bound, requests admitted at once, deadlines and shutdown."""

    max_batch_size: int = Field(default=32, ge=1, le=4096)
    max_batch_delay_ms: float = Field(
        default=0.0,
        ge=0,
        le=10_000,
        description=(
            "Longest wait to fill a batch after its first image. 0: run as soon as the model "
            "is free; batches then form from what arrived during the previous call, so they "
            "grow with load and a lone request never waits."
        ),
    )
    inline_model_max_ms: float = Field(
        default=0.5,
        ge=0,
        le=1_000,
        description=(
            "A batch of one image whose model call has been taking less than this runs on the "
            "event loop instead of the model thread: handing it over and back costs about as "
            "much. 0: every batch runs on the model thread."
        ),
    )
    max_queue: int = Field(default=256, ge=1)
    max_in_flight_requests: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Classify requests admitted at once, counted once their body has arrived (before "
            "it is parsed or decoded; a body still arriving holds no slot); one more is refused "
            "with 503 `overloaded` + Retry-After, on arrival if the service is already full. "
            "Unset: TAGGER_MAX_QUEUE + TAGGER_MAX_BATCH_SIZE, one single-image request per "
            "queue slot plus a batch in the model, so every admitted request can queue."
        ),
    )
    request_timeout_ms: float = Field(default=10_000, gt=0)
    retry_after_s: int = Field(default=1, ge=0)
    shutdown_timeout_s: float = Field(default=30.0, ge=0)

    @property
    def max_batch_delay_s(self) -> float:
        return self.max_batch_delay_ms / 1000.0

    @property
    def inline_model_max_s(self) -> float:
        return self.inline_model_max_ms / 1000.0

    @property
    def in_flight_limit(self) -> int:
        """TAGGER_MAX_IN_FLIGHT_REQUESTS, or the default derived from the queue and batch."""
        if self.max_in_flight_requests is not None:
            return self.max_in_flight_requests
        return self.max_queue + self.max_batch_size

    @property
    def request_timeout_s(self) -> float:
        return self.request_timeout_ms / 1000.0
