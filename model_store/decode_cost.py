"""How much memory decoding and preprocessing one image takes, estimated from its header.

The serving side admits decodes against a memory budget with these estimates, so the table
below is the one place that knows what Pillow spends per decoded pixel.
"""

from __future__ import annotations

from PIL import Image

from model_store.image_decoding import ImageTooLarge
from model_store.letterbox import TILE_PIXELS

MIB = 1 << 20

# Peak RSS growth of `preprocess_bytes` per decoded pixel, measured with Pillow 13.0 (libwebp
# 1.6, libjpeg-turbo 6.2 API, libtiff) by decoding 2000x2000 and 5000x5000 images of every
# supported format and mode in a fresh process each (VmHWM after the call minus VmRSS before)
# and taking the slope between the two sizes. Pillow holds a decoded image at its storage
# size (1 byte per pixel for "1"/"L"/"P", 2 for 16-bit, 4 for everything wider: RGB is kept
# as RGBX) and every format but two adds under 0.1 byte per pixel to that:
#   PNG, TIFF, BMP, GIF: 1.05 ("1", "L", "P"), 2.05 ("I;16"), 3.94-4.09 (RGB, RGBA, LA,
#     CMYK, F, 16-bit RGB/RGBA which Pillow reduces to 8 bits);
#   WebP: 16.1 (RGB) to 16.4 (RGBA), lossy or lossless: libwebp's animation decoder keeps two
#     RGBA canvases, Pillow copies the frame into a bytes object and then into the image;
#   JPEG: decoded at the reduced draft size; a progressive JPEG also holds every DCT
#     coefficient of the full image (2 bytes per sample: 3.10 for 4:2:0 RGB, 2.05 for L).
_BYTES_PER_PIXEL = {"1": 1.1, "L": 1.1, "P": 1.1, "I;16": 2.1, "I;16B": 2.1, "I;16L": 2.1}
_WIDE_BYTES_PER_PIXEL = 4.1  # any other mode: RGB, RGBA, LA, PA, CMYK, YCbCr, I, F, ...
_WEBP_BYTES_PER_PIXEL = 16.5
# Work space of the preprocessing beyond the decoded image, per pixel of the first
# `TILE_PIXELS` (it reads the image a tile at a time): measured 11-25 MiB at 1 Mpx tiles.
_WORK_BYTES_PER_TILE_PIXEL = 26
_JPEG_COEFFICIENT_BYTES = 2  # one int16 per sample
_EXIF_ORIENTATION = 0x0112
# What the estimate adds to the measurements above, for libraries and images not measured.
SAFETY_MARGIN = 1.2


def _stored_bytes_per_pixel(mode: str) -> float:
    return _BYTES_PER_PIXEL.get(mode, _WIDE_BYTES_PER_PIXEL)


def _progressive_jpeg_bytes(image: Image.Image) -> float:
    """The coefficient buffer of a progressive JPEG: every sample of the full-size image."""
    if image.format != "JPEG" or not image.info.get("progressive"):
        return 0.0
    components = getattr(image, "layer", None) or [("", 1, 1, 0)] * len(image.getbands())
    h_max = max(h for _id, h, _v, _q in components)
    v_max = max(v for _id, _h, v, _q in components)
    samples = sum(h * v for _id, h, v, _q in components) / (h_max * v_max)
    scale = (getattr(image, "decoderconfig", None) or (1,))[0] or 1
    return _JPEG_COEFFICIENT_BYTES * samples * image.width * image.height * scale * scale


def _turned(image: Image.Image) -> bool:
    """Whether the header's EXIF orientation makes `load_image` copy the image to turn it."""
    exif = image.info.get("exif")
    try:
        if isinstance(exif, bytes):
            orientation = Image.Exif()
            orientation.load(exif)
            return orientation.get(_EXIF_ORIENTATION, 1) not in (None, 1)
        tags = getattr(image, "tag_v2", None)
        return tags is not None and tags.get(_EXIF_ORIENTATION, 1) not in (None, 1)
    except Exception:  # an unreadable EXIF block: count the copy
        return True


def decode_cost_bytes(image: Image.Image) -> int:
    """Estimated peak memory of decoding and preprocessing `image` (from `open_image`: its
    header read, its pixels not yet), safety margin included."""
    pixels = image.width * image.height
    if image.format == "WEBP":
        per_pixel = _WEBP_BYTES_PER_PIXEL
    else:
        per_pixel = _stored_bytes_per_pixel(image.mode)
    if _turned(image):
        per_pixel += _stored_bytes_per_pixel(image.mode)
    work = min(pixels, TILE_PIXELS) * _WORK_BYTES_PER_TILE_PIXEL
    estimate = pixels * per_pixel + _progressive_jpeg_bytes(image) + work
    return int(estimate * SAFETY_MARGIN)


def check_decode_cost(image: Image.Image, budget_bytes: int) -> int:
    """`decode_cost_bytes(image)`, or `ImageTooLarge` when that alone exceeds the budget."""
    cost = decode_cost_bytes(image)
    if cost > budget_bytes:
        width, height = image.size
        raise ImageTooLarge(
            f"decoding this {width}x{height} {image.format} image ({image.mode}) would take an "
            f"estimated {cost / MIB:.0f} MiB; the decode memory budget is "
            f"{budget_bytes / MIB:.0f} MiB (TAGGER_MAX_DECODE_BYTES); send a smaller image "
            f"(about {_fitting_pixels(image, cost, budget_bytes):,} pixels or fewer)"
        )
    return cost


def _fitting_pixels(image: Image.Image, cost: int, budget_bytes: int) -> int:
    """Roughly the pixel count of the same kind of image that fits the budget."""
    pixels = image.width * image.height
    work = min(pixels, TILE_PIXELS) * _WORK_BYTES_PER_TILE_PIXEL * SAFETY_MARGIN
    per_pixel = max(1.0, (cost - work) / pixels)
    return max(0, int((budget_bytes - work) / per_pixel))
