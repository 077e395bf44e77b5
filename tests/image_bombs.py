"""Small files that decode to huge images: built row by row, without ever holding their pixels."""

from __future__ import annotations

import struct
import zlib

# The three images of issue 10: all under 90 KB, all within the default 40M-pixel limit.
WIDE = (40_000, 1_000)  # letterboxed to a 40000x40000 canvas by the old code
DEEP = (6_000, 6_000)  # 16-bit greyscale: float64 copies of 36M pixels
TALL = (1, 40_000_000)  # letterboxed to 40M x 40M: a 1.4 PiB allocation


def png(width: int, height: int, row: bytes, bit_depth: int = 8, colour_type: int = 0) -> bytes:
    """A PNG of `height` copies of the raw (unfiltered) `row`, compressed as a stream."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    line = b"\x00" + row
    per_block = max(1, (1 << 20) // len(line))
    compressor = zlib.compressobj(9)
    parts, left = [], height
    while left:
        count = min(per_block, left)
        parts.append(compressor.compress(line * count))
        left -= count
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", b"".join(parts))
        + chunk(b"IEND", b"")
    )


def wide_png() -> bytes:
    """40000x1000 greyscale, a light bar on black: 44 KB."""
    width, height = WIDE
    row = bytes(15_000) + b"\xc8" * 10_000 + bytes(15_000)
    return png(width, height, row)


def deep_png() -> bytes:
    """6000x6000 16-bit greyscale: 84 KB."""
    width, height = DEEP
    return png(width, height, b"\x12\x34" * width, bit_depth=16)


def tall_png() -> bytes:
    """1x40,000,000 greyscale: 78 KB."""
    width, height = TALL
    return png(width, height, b"\x80" * width)
