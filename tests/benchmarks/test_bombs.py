"""The hostile PNGs are what they claim: valid, small, and within the default pixel limit."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from benchmarks import bombs
from model_store.preprocessing import DEFAULT_MAX_PIXELS


@pytest.mark.parametrize(("width", "height", "depth", "mode"), [(3, 2, 8, "L"), (5, 4, 16, "I;16")])
def test_flat_png_decodes_to_its_size_depth_and_level(
    width: int, height: int, depth: int, mode: str
) -> None:
    image = Image.open(io.BytesIO(bombs.flat_png(width, height, depth, level=7)))
    image.load()
    assert image.size == (width, height) and image.mode == mode
    expected = 7 if depth == 8 else 7 * 257
    assert np.all(np.asarray(image) == expected)


def test_flat_png_refuses_what_png_cannot_hold() -> None:
    with pytest.raises(ValueError, match="at least one pixel"):
        bombs.flat_png(0, 5)
    with pytest.raises(ValueError, match="bit depth"):
        bombs.flat_png(5, 5, bit_depth=4)


def test_the_bombs_pass_the_pixel_limit_and_are_small_on_the_wire() -> None:
    for bomb in bombs.BOMBS:
        data = bombs.encode(bomb)
        header = Image.open(io.BytesIO(data))  # reads the header only
        assert header.size == (bomb.width, bomb.height)
        assert bomb.pixels <= DEFAULT_MAX_PIXELS
        assert len(data) < 200_000, bomb.name
