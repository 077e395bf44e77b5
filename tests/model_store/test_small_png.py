"""`model_store.small_png` decodes exactly what Pillow decodes, or declines.

Every file it accepts is also opened and loaded by Pillow, and the two must give the same mode,
size and pixels; the files real clients send (Pillow's, a browser canvas's few extra chunks)
must be accepted, else it never saves anything; everything unusual is declined, so that Pillow
reads it (and names its problem) as before.
"""

from __future__ import annotations

import io
import random
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from model_store.image_decoding import load_image, open_image
from model_store.small_png import SMALL_PNG_MAX_PIXELS, read_small_png

_SHAPES = {"L": (28, 28), "LA": (9, 13, 2), "RGB": (28, 28, 3), "RGBA": (17, 5, 4)}


def _png(mode: str = "L", seed: int = 0, **save: object) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, _SHAPES[mode], dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels, mode).save(out, "PNG", **save)
    return out.getvalue()


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload)
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def _with_chunk(png: bytes, chunk: bytes) -> bytes:
    """`png` with `chunk` inserted right after the header (before the image data)."""
    return png[:33] + chunk + png[33:]


def _pillow(data: bytes) -> Image.Image | None:
    """What Pillow reads; None where it fails."""
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except Exception:
        return None
    return image


def _same(ours: Image.Image, theirs: Image.Image | None) -> bool:
    return (
        theirs is not None
        and (ours.mode, ours.size) == (theirs.mode, theirs.size)
        and np.array_equal(np.asarray(ours), np.asarray(theirs))
    )


@pytest.mark.parametrize("mode", sorted(_SHAPES))
def test_plain_pngs_decode_as_pillow_decodes_them(mode: str) -> None:
    for seed in range(3):
        data = _png(mode, seed)
        ours = read_small_png(data)
        assert ours is not None
        assert _same(ours, _pillow(data))


def test_what_browsers_and_editors_add_is_accepted() -> None:
    # Canvas exports and editors add colour-space and density chunks; Pillow ignores them.
    data = _png("RGB", dpi=(72, 72))
    extras = [
        _chunk(b"sRGB", b"\x00"),
        _chunk(b"gAMA", struct.pack(">I", 45455)),
        _chunk(b"tIME", bytes(7)),
    ]
    for extra in extras:
        data = _with_chunk(data, extra)
    ours = read_small_png(data)
    assert ours is not None
    assert _same(ours, _pillow(data))


def test_open_image_takes_the_small_path_and_pixels_match() -> None:
    data = _png("L")
    opened = open_image(data)
    assert opened.format is None  # built by read_small_png, not by Pillow's PNG reader
    assert _same(load_image(opened), _pillow(data))


@pytest.mark.parametrize(
    "case",
    [
        "palette",
        "sixteen_bit",
        "interlaced",
        "transparency",
        "exif",
        "text",
        "too_large",
        "bad_crc",
        "truncated",
        "jpeg",
        "chunk_between_image_data",
    ],
)
def test_unusual_files_are_declined(case: str) -> None:
    plain = _png("L")
    if case == "palette":
        data = _encode(Image.new("P", (8, 8), 3))
    elif case == "sixteen_bit":
        data = _encode(Image.fromarray(np.full((8, 8), 4000, dtype=np.uint16)))
    elif case == "interlaced":
        data = _set_ihdr(plain, 12, 1)  # Pillow writes no interlaced PNG; Adam7 declared
    elif case == "transparency":
        data = _with_chunk(plain, _chunk(b"tRNS", b"\x00\x07"))
    elif case == "exif":
        exif = Image.Exif()
        exif[0x0112] = 6  # rotated: Pillow's loader turns it upright
        data = _png("L", exif=exif.tobytes())
    elif case == "text":
        info = PngImagePlugin.PngInfo()
        info.add_text("XML:com.adobe.xmp", "<x/>")
        data = _png("L", pnginfo=info)
    elif case == "too_large":
        side = int(SMALL_PNG_MAX_PIXELS**0.5) + 1
        data = _encode(Image.new("L", (side, side), 9))
    elif case == "bad_crc":
        data = plain[:29] + bytes([plain[29] ^ 1]) + plain[30:]
    elif case == "truncated":
        data = plain[:-20]
    elif case == "jpeg":
        data = _encode(Image.new("L", (8, 8), 9), "JPEG")
    else:  # the image data in two chunks with another between them
        start = plain.index(b"IDAT") - 4  # Pillow writes one IDAT chunk, then IEND (12 bytes)
        compressed = plain[start + 8 : -16]
        half = len(compressed) // 2
        split = [_chunk(b"IDAT", compressed[:half]), _chunk(b"gAMA", bytes(4))]
        split.append(_chunk(b"IDAT", compressed[half:]))
        data = plain[:start] + b"".join(split) + plain[-12:]
        assert _pillow(plain[:start] + _chunk(b"IDAT", compressed) + plain[-12:]) is not None
    assert read_small_png(data) is None


def test_mutated_files_are_declined_or_read_as_pillow_reads_them() -> None:
    """Random edits of real files, half of them with every checksum made valid again (so the
    edit reaches the header and image-data checks, not just the checksum): whatever is
    accepted, Pillow reads the same."""
    rng = random.Random(1)
    sources = [_png(mode, seed) for mode in sorted(_SHAPES) for seed in range(2)]
    sources.append(_with_chunk(_png("RGB"), _chunk(b"sRGB", b"\x00")))
    accepted = 0
    for trial in range(20_000):
        data = bytearray(rng.choice(sources))
        for _ in range(rng.randint(1, 3)):
            _mutate(data, rng)
        mutated = _fix_crcs(bytes(data)) if trial % 2 else bytes(data)
        ours = read_small_png(mutated)
        if ours is not None:
            accepted += 1
            assert _same(ours, _pillow(mutated)), f"trial {trial}: {mutated!r}"
    # Enough edits leave a readable file (a changed pixel, a changed dimension) to mean
    # something; the rest are declined.
    assert accepted > 150


def _mutate(data: bytearray, rng: random.Random) -> None:
    position = rng.randrange(len(data))
    action = rng.randrange(4)
    if action == 0:
        data[position] = rng.randrange(256)
    elif action == 1:
        del data[position : position + rng.randint(1, 8)]
    elif action == 2:
        data[position:position] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
    else:  # past the signature: widths, heights, depths, types, lengths
        field = rng.randrange(8, min(len(data), 40))
        data[field] = rng.choice([0, 1, 2, 3, 4, 6, 8, 16, 255])


def _fix_crcs(data: bytes) -> bytes:
    """Every chunk's checksum recomputed, as far as the chunk lengths still make sense."""
    out = bytearray(data)
    position = 8
    while position + 12 <= len(out):
        length = struct.unpack_from(">I", out, position)[0]
        stop = position + 8 + length
        if stop + 4 > len(out):
            break
        struct.pack_into(">I", out, stop, zlib.crc32(out[position + 4 : stop]))
        position = stop + 4
    return bytes(out)


def _set_ihdr(data: bytes, offset: int, value: int) -> bytes:
    """`data` with byte `offset` of its header's fields set to `value`."""
    out = bytearray(data)
    out[16 + offset] = value
    return _fix_crcs(bytes(out))


def _encode(image: Image.Image, kind: str = "PNG") -> bytes:
    out = io.BytesIO()
    image.save(out, kind)
    return out.getvalue()
