"""Small images that pass the service's header checks but are costly to decode, built in code.

Each is one flat grey level, so it compresses about a thousandfold: tens of KB on the wire for
tens of millions of pixels. Rows are written straight into a zlib stream (no Pillow, no image in
memory), so building even the 1x40,000,000 one takes about a second. The WebP, whose decoder
costs the most per pixel, is encoded by Pillow.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass

from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_GREY = 0  # PNG colour type 0: greyscale
_RGBA = 6  # PNG colour type 6: RGB with alpha, 4 bytes a pixel at 8 bits
_CHUNK_BYTES = 4 * 2**20  # raw bytes handed to zlib at a time


@dataclass(frozen=True)
class Bomb:
    """One hostile image: a name for the report, its size and bit depth."""

    name: str
    width: int
    height: int
    bit_depth: int = 8
    colour_type: int = _GREY
    webp: bool = False

    @property
    def pixels(self) -> int:
        return self.width * self.height


# The three the issue names, each within the default TAGGER_MAX_PIXELS (40,000,000), then the
# costliest per pixel to decode at about the largest size the default TAGGER_MAX_DECODE_BYTES
# admits (and one just over it, which is refused from its header).
BOMBS: tuple[Bomb, ...] = (
    Bomb("png 40000x1000", 40_000, 1_000),
    Bomb("png 16-bit 6000x6000", 6_000, 6_000, bit_depth=16),
    Bomb("png 1x40000000", 1, 40_000_000),
    Bomb("png RGBA 5800x5800", 5_800, 5_800, colour_type=_RGBA),
    Bomb("png RGBA 6000x6000", 6_000, 6_000, colour_type=_RGBA),
    Bomb("webp 2900x2900", 2_900, 2_900, webp=True),
)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_of_rows(
    width: int, height: int, row: bytes, bit_depth: int = 8, colour_type: int = _GREY
) -> bytes:
    """A PNG of `height` copies of the raw (unfiltered) `row`, compressed as a stream."""
    if width < 1 or height < 1:
        raise ValueError(f"a PNG needs at least one pixel, not {width}x{height}")
    line = b"\x00" + row
    rows_per_chunk = max(1, _CHUNK_BYTES // len(line))
    compressor = zlib.compressobj(9)
    parts = []
    remaining = height
    while remaining:
        rows = min(rows_per_chunk, remaining)
        parts.append(compressor.compress(line * rows))
        remaining -= rows
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", b"".join(parts))
        + _chunk(b"IEND", b"")
    )


def flat_png(
    width: int, height: int, bit_depth: int = 8, level: int = 255, colour_type: int = _GREY
) -> bytes:
    """A PNG of one `level` (0..255; 16-bit repeats the byte) in every sample, filter 0 rows:
    greyscale, or RGBA (opaque when `level` is 255)."""
    if bit_depth not in (8, 16):
        raise ValueError(f"bit depth must be 8 or 16, not {bit_depth}")
    samples = 4 if colour_type == _RGBA else 1
    row = bytes([level]) * (width * samples * bit_depth // 8)
    return png_of_rows(width, height, row, bit_depth, colour_type)


def flat_webp(width: int, height: int, level: int = 200) -> bytes:
    """A lossless WebP of one grey level in RGB (Pillow holds the pixels while encoding)."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (level,) * 3).save(buffer, "WEBP", lossless=True)
    return buffer.getvalue()


def encode(bomb: Bomb) -> bytes:
    if bomb.webp:
        return flat_webp(bomb.width, bomb.height)
    return flat_png(bomb.width, bomb.height, bomb.bit_depth, colour_type=bomb.colour_type)
