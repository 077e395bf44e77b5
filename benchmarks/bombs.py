"""Small PNGs that pass the service's header checks but are costly to decode, built in code.

Each is one flat grey level, so it compresses about a thousandfold: tens of KB on the wire for
tens of millions of pixels. Rows are written straight into a zlib stream (no Pillow, no image in
memory), so building even the 1x40,000,000 one takes about a second.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_GREY = 0  # PNG colour type 0: greyscale
_CHUNK_BYTES = 4 * 2**20  # raw bytes handed to zlib at a time


@dataclass(frozen=True)
class Bomb:
    """One hostile image: a name for the report, its size and bit depth."""

    name: str
    width: int
    height: int
    bit_depth: int = 8

    @property
    def pixels(self) -> int:
        return self.width * self.height


# The three the issue names; each is within the default TAGGER_MAX_PIXELS (40,000,000).
BOMBS: tuple[Bomb, ...] = (
    Bomb("png 40000x1000", 40_000, 1_000),
    Bomb("png 16-bit 6000x6000", 6_000, 6_000, bit_depth=16),
    Bomb("png 1x40000000", 1, 40_000_000),
)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def flat_png(width: int, height: int, bit_depth: int = 8, level: int = 255) -> bytes:
    """A greyscale PNG of one grey `level` (0..255; 16-bit repeats the byte), filter 0 rows."""
    if width < 1 or height < 1:
        raise ValueError(f"a PNG needs at least one pixel, not {width}x{height}")
    if bit_depth not in (8, 16):
        raise ValueError(f"bit depth must be 8 or 16, not {bit_depth}")
    row = b"\x00" + bytes([level]) * (width * bit_depth // 8)
    rows_per_chunk = max(1, _CHUNK_BYTES // len(row))
    compressor = zlib.compressobj(9)
    parts = []
    remaining = height
    while remaining:
        rows = min(rows_per_chunk, remaining)
        parts.append(compressor.compress(row * rows))
        remaining -= rows
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, bit_depth, _GREY, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", b"".join(parts))
        + _chunk(b"IEND", b"")
    )


def encode(bomb: Bomb) -> bytes:
    return flat_png(bomb.width, bomb.height, bomb.bit_depth)
