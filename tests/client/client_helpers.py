"""Shared by the client tests (imported as `tests.client.client_helpers`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAX_IMAGES = 8
BULK_IMAGES = 2000  # the CLI end-to-end test's catalogue (issue 14)


@dataclass(frozen=True)
class Catalogue:
    """t10k images as PNG files in two sub-folders, with their labels and the evaluation's
    probabilities."""

    root: Path
    paths: list[str]  # in the order of `labels` / `probabilities`
    labels: np.ndarray
    probabilities: np.ndarray  # from evaluation/predictions.npz

    def evaluation_accuracy(self) -> float:
        return float(np.mean(self.probabilities.argmax(axis=1) == self.labels))
