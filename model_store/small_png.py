"""A small, plain PNG decoded without Pillow's chunk reader: the usual upload (a thumbnail near
the model's input size) costs less to decode.

Pillow reads a PNG's chunks, checksums and tile list in Python, a large part of decoding an
image as small as 28x28. `read_small_png` reads only the plainest files (8-bit grey, grey
and alpha, RGB or RGBA; not interlaced; no chunks but the header, the image data, the end and
a few that Pillow's pixels ignore) and hands the image data to Pillow's own PNG decoder, so the
pixels are Pillow's. Anything else, and anything it does not recognise exactly (a bad checksum,
an odd chunk, data that does not decode), is declined (None): the caller then opens the bytes
with Pillow as it always did, which gives the same image or the same error.
"""

from __future__ import annotations

import struct
import zlib

from PIL import Image

SMALL_PNG_MAX_PIXELS = 64 * 64
_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Colour type -> Pillow mode (its raw mode too) at 8 bits per sample.
_MODES = {0: "L", 2: "RGB", 4: "LA", 6: "RGBA"}
# Chunks that Pillow only copies into `info` (none changes a pixel or the orientation).
_IGNORED = frozenset({b"gAMA", b"cHRM", b"sRGB", b"pHYs", b"tIME"})
_HEADER = struct.Struct(">IIBBBBB")
_CHUNK = struct.Struct(">I4s")
_CRC = struct.Struct(">I")


def read_small_png(data: bytes, max_pixels: int = SMALL_PNG_MAX_PIXELS) -> Image.Image | None:
    """The decoded image of a plain PNG of at most `max_pixels`; None for anything else."""
    if not data.startswith(_SIGNATURE):
        return None
    header: tuple[int, ...] | None = None
    image_data: list[bytes] = []
    position, end = len(_SIGNATURE), len(data)
    while True:
        if position + 12 > end:
            return None
        length, kind = _CHUNK.unpack_from(data, position)
        stop = position + 8 + length
        if stop + 4 > end:
            return None
        if zlib.crc32(memoryview(data)[position + 4 : stop]) != _CRC.unpack_from(data, stop)[0]:
            return None
        if kind == b"IEND":
            break
        if kind == b"IHDR":
            if header is not None or length != _HEADER.size:
                return None
            header = _HEADER.unpack_from(data, position + 8)
        elif header is None:
            return None  # the header comes first
        elif kind == b"IDAT":
            image_data.append(data[position + 8 : stop])
        elif image_data or kind not in _IGNORED:
            return None  # the image data runs unbroken to the end
        position = stop + 4
    if header is None or not image_data:
        return None
    width, height, depth, colour, compression, filtering, interlace = header
    mode = _MODES.get(colour)
    if mode is None or depth != 8 or compression or filtering or interlace:
        return None
    if width < 1 or height < 1 or width * height > max_pixels:
        return None
    try:
        return Image.frombytes(mode, (width, height), b"".join(image_data), "zip", mode)
    except (ValueError, OSError):
        return None
