"""One typed result per input image."""

from __future__ import annotations

from dataclasses import dataclass

from client.errors import ImageRejected


@dataclass(frozen=True, slots=True)
class Prediction:
    label: str
    confidence: float


@dataclass(frozen=True, slots=True)
class ImageResult:
    """The top-k labels of one image (most confident first) and the version that gave them;
    or, for an image the tagger refused, `error` and no predictions."""

    predictions: tuple[Prediction, ...]
    model: str
    version: int | None
    error: ImageRejected | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def label(self) -> str | None:
        """The most confident label (None for a refused image)."""
        return self.predictions[0].label if self.predictions else None

    def raise_for_error(self) -> ImageResult:
        if self.error is not None:
            raise self.error
        return self
