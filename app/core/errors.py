"""Errors of the serving core (model manager, batcher, runtime, decoding), free of any protocol.

Each carries a stable machine-readable `code` and a message for the client; the protocols at
the edge map each class to their own status codes and error body (see `app.api.errors`).
"""

from __future__ import annotations

from enum import Enum


class ServingError(Exception):
    """Base class: a request the serving core cannot answer, and why (`code`, `message`)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class NotFound(ServingError):
    """No such model, version or alias (or a name that cannot exist)."""


class NotReady(ServingError):
    """Nothing is loaded to answer yet; it may be after `retry_after_s`."""

    def __init__(self, message: str, retry_after_s: int, code: str = "not_ready") -> None:
        super().__init__(message, code)
        self.retry_after_s = retry_after_s


class Overloaded(ServingError):
    """No room for the work now (a full queue, shutting down, a load budget spent): retry after
    `retry_after_s` whole seconds."""

    def __init__(self, message: str, retry_after_s: int = 1, code: str = "overloaded") -> None:
        super().__init__(message, code)
        self.retry_after_s = retry_after_s


class DeadlineExceeded(ServingError):
    """The request did not finish within its time limit, `timeout_s`."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__(f"the request did not finish within {timeout_s:g} s", "deadline_exceeded")
        self.timeout_s = timeout_s


class InputProblem(Enum):
    """What is wrong with a refused input, for the edge to pick its status."""

    MALFORMED = "malformed"  # cannot be read: empty, corrupt, not what was declared
    TOO_LARGE = "too_large"  # readable, but past a size limit
    UNSUPPORTED = "unsupported"  # a format this server does not read
    OUT_OF_RANGE = "out_of_range"  # readable, but a property outside what is accepted


class InvalidInput(ServingError):
    """An input the core refuses (`code` e.g. `image_too_large`, `corrupt_image`)."""

    def __init__(
        self, message: str, code: str, problem: InputProblem = InputProblem.MALFORMED
    ) -> None:
        super().__init__(message, code)
        self.problem = problem


class ModelFailure(ServingError):
    """A model (version) that cannot be loaded or run, or a damaged model store: not the
    client's fault."""


def from_store_error(exc: Exception) -> ServingError:
    """A model_store error as a serving error: unknown names are NotFound, the rest failures."""
    code = getattr(exc, "code", "model_store_error")
    if code.endswith("_not_found") or code == "invalid_name":
        return NotFound(str(exc), code)
    return ModelFailure(str(exc), code)
