"""Encoded images for the hostile corpus, built in code: valid, forged, truncated and bombs.

Forged headers are written byte by byte (PNG chunks with their CRCs, TIFF IFDs, BMP RLE) or
patched into an image Pillow wrote, so a file can declare what its pixels are not.
"""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

import numpy as np
from PIL import Image

# format -> (Pillow format, file extension, Content-Type)
FORMATS: dict[str, tuple[str, str, str]] = {
    "jpeg": ("JPEG", "jpg", "image/jpeg"),
    "png": ("PNG", "png", "image/png"),
    "webp": ("WEBP", "webp", "image/webp"),
    "bmp": ("BMP", "bmp", "image/bmp"),
    "gif": ("GIF", "gif", "image/gif"),
    "tiff": ("TIFF", "tif", "image/tiff"),
}
_SAVE_OPTIONS: dict[str, dict[str, Any]] = {"webp": {"lossless": True}}


def pillow(image: Image.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=FORMATS[fmt][0], **{**_SAVE_OPTIONS.get(fmt, {}), **options})
    return buffer.getvalue()


def noise(width: int = 32, height: int = 32, seed: int = 7) -> Image.Image:
    """A small noisy greyscale image (no long runs, so truncations hit real pixel data)."""
    pixels = np.random.default_rng(seed).integers(0, 255, (height, width), np.uint8)
    return Image.fromarray(pixels, "L")


def valid(fmt: str) -> bytes:
    return pillow(noise(), fmt)


def header_length(fmt: str) -> int:
    """Bytes of `valid(fmt)` that hold its header (everything before the pixel data)."""
    data = valid(fmt)
    if fmt == "png":
        return data.index(b"IDAT") - 4
    if fmt == "jpeg":
        return data.index(b"\xff\xda") + 2
    if fmt == "bmp":
        return struct.unpack_from("<I", data, 10)[0]
    if fmt == "gif":
        return data.index(b"\x2c\x00\x00\x00\x00") + 11
    if fmt == "webp":
        return 30
    return struct.unpack_from("<I", data, 4)[0] if data.startswith(b"II") else 8


# PNG: written chunk by chunk.


def png_chunk(kind: bytes, data: bytes, crc: int | None = None) -> bytes:
    checksum = zlib.crc32(kind + data) if crc is None else crc
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", checksum)


def png(
    width: int,
    height: int,
    *,
    bit_depth: int = 8,
    colour_type: int = 0,
    idat: bytes | None = None,
    ihdr_crc: int | None = None,
    idat_crc: int | None = None,
    before_idat: bytes = b"",
    iend: bool = True,
) -> bytes:
    """A PNG whose IHDR says `width`x`height`; IDAT holds zero rows of that size unless given."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    if idat is None:
        channels = {2: 3, 4: 2, 6: 4}.get(colour_type, 1)
        row = 1 + (width * channels * bit_depth + 7) // 8
        idat = zlib.compress(b"\0" * (row * height), 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr, ihdr_crc)
        + before_idat
        + png_chunk(b"IDAT", idat, idat_crc)
        + (png_chunk(b"IEND", b"") if iend else b"")
    )


def png_text_bomb(decompressed: int) -> bytes:
    """A 4x4 PNG with a zTXt chunk that inflates to `decompressed` bytes."""
    text = b"Comment\0\0" + zlib.compress(b"A" * decompressed, 9)
    return png(4, 4, before_idat=png_chunk(b"zTXt", text))


def png_idat_bomb(width: int, height: int, inflated: int) -> bytes:
    """IDAT that inflates to far more bytes than `width`x`height` needs."""
    return png(width, height, idat=zlib.compress(b"\0" * inflated, 9))


# TIFF: one IFD, written by hand.

_SHORT, _LONG = 3, 4


def tiff(
    width: int,
    height: int,
    *,
    bits: int = 8,
    sample_format: int = 1,
    data: bytes | None = None,
    strip_bytes: int | None = None,
) -> bytes:
    """A little-endian greyscale TIFF, one uncompressed strip, declaring `width`x`height`."""
    if data is None:
        data = b"\0" * (width * height * bits // 8)
    tags = [
        (256, _LONG, width),
        (257, _LONG, height),
        (258, _SHORT, bits),
        (259, _SHORT, 1),
        (262, _SHORT, 1),
        (273, _LONG, 0),  # strip offset, set below
        (277, _SHORT, 1),
        (278, _LONG, max(height, 1)),
        (279, _LONG, len(data) if strip_bytes is None else strip_bytes),
        (339, _SHORT, sample_format),
    ]
    ifd_size = 2 + 12 * len(tags) + 4
    offset = 8 + ifd_size
    tags = [(t, k, offset if t == 273 else v) for t, k, v in tags]
    ifd = struct.pack("<H", len(tags))
    for tag, kind, value in tags:
        packed = struct.pack("<H", value) + b"\0\0" if kind == _SHORT else struct.pack("<I", value)
        ifd += struct.pack("<HHI", tag, kind, 1) + packed
    return b"II*\0" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + data


# Patching the dimensions in a file Pillow wrote.


def with_size(fmt: str, width: int, height: int) -> bytes:
    """`valid(fmt)` with its header claiming `width`x`height` (pixel data unchanged)."""
    data = bytearray(valid(fmt))
    if fmt == "png":
        return png(width, height, idat=_png_idat(bytes(data)))
    if fmt == "jpeg":
        sof = data.index(b"\xff\xc0")
        struct.pack_into(">HH", data, sof + 5, height, width)
    elif fmt == "bmp":
        struct.pack_into("<ii", data, 18, width, height)
    elif fmt == "gif":
        struct.pack_into("<HH", data, 6, width, height)
        descriptor = data.index(b"\x2c\x00\x00\x00\x00")
        struct.pack_into("<HH", data, descriptor + 5, width, height)
    elif fmt == "webp":
        vp8l = data.index(b"VP8L") + 9  # chunk id, size, signature byte
        bits = struct.unpack_from("<I", data, vp8l)[0] & ~((1 << 28) - 1)
        struct.pack_into("<I", data, vp8l, bits | (width - 1) | ((height - 1) << 14))
    elif fmt == "tiff":
        return tiff(width, height, data=b"\0" * 1024)
    return bytes(data)


def _png_idat(data: bytes) -> bytes:
    start = data.index(b"IDAT")
    length = struct.unpack_from(">I", data, start - 4)[0]
    return data[start + 4 : start + 4 + length]


def bmp_rle8(width: int, height: int) -> bytes:
    """An 8-bit RLE BMP of zeros: a few bytes per row, whatever the width."""
    rows = []
    for _ in range(height):
        left, row = width, b""
        while left:
            run = min(left, 255)
            row += bytes((run, 0))
            left -= run
        rows.append(row + b"\0\0")
    pixels = b"".join(rows) + b"\0\1"
    palette = b"".join(bytes((i, i, i, 0)) for i in range(256))
    offset = 14 + 40 + len(palette)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 8, 1, len(pixels), 0, 0, 256, 0)
    return (
        b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset) + info + palette + pixels
    )


def gif_frames(count: int, side: int) -> bytes:
    frames = [noise(side, side, seed) for seed in range(count)]
    return pillow(frames[0], "gif", save_all=True, append_images=frames[1:])


def blank(mode: str, width: int, height: int, fmt: str, **options: Any) -> bytes:
    return pillow(Image.new(mode, (width, height)), fmt, **options)
