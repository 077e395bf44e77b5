"""Settings for the page at `/`."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field


class PageSettings(BaseModel):
    """Where the page's sample images come from."""

    fashion_mnist_dir: Path | None = Field(
        default=Path("/usr/share/datasets/fashion-mnist"),
        description=(
            "Fashion-MNIST IDX files (Debian's dataset-fashion-mnist, the directory training "
            "reads): the page offers the first test image of each class as a sample to click. "
            "Unset or absent: the page offers no samples."
        ),
    )
