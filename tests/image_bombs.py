"""Small files that decode to huge images: built row by row, without ever holding their pixels."""

from __future__ import annotations

from functools import cache

from benchmarks.bombs import png_of_rows as png

# The three images of issue 10: all under 90 KB, all within the default 40M-pixel limit.
WIDE = (40_000, 1_000)  # letterboxed to a 40000x40000 canvas by the old code
DEEP = (6_000, 6_000)  # 16-bit greyscale: float64 copies of 36M pixels
TALL = (1, 40_000_000)  # letterboxed to 40M x 40M: a 1.4 PiB allocation


@cache  # the same bytes every call; building one takes ~0.4 s
def wide_png() -> bytes:
    """40000x1000 greyscale, a light bar on black: 44 KB."""
    width, height = WIDE
    row = bytes(15_000) + b"\xc8" * 10_000 + bytes(15_000)
    return png(width, height, row)


@cache  # the same bytes every call; building one takes ~0.4 s
def deep_png() -> bytes:
    """6000x6000 16-bit greyscale: 84 KB."""
    width, height = DEEP
    return png(width, height, b"\x12\x34" * width, bit_depth=16)


@cache  # the same bytes every call; building one takes ~0.4 s
def tall_png() -> bytes:
    """1x40,000,000 greyscale: 78 KB."""
    width, height = TALL
    return png(width, height, b"\x80" * width)
