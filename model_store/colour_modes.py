"""Any Pillow mode (16/32-bit, palette, alpha, CMYK, ...) -> the spec's "L" or "RGB"."""

from __future__ import annotations

import numpy as np
from PIL import Image

_DEEP_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I", "F"}


def to_mode(
    image: Image.Image, mode: str, alpha_background: int, scale_deep: bool | None = None
) -> Image.Image:
    """Convert any Pillow mode (16-bit, palette, alpha, CMYK, ...) to "L" or "RGB".

    `scale_deep` says whether 16/32-bit values span 0-65535 (else 0-255); None: this image's
    own maximum decides, as it does for a whole image.
    """
    if image.mode in _DEEP_MODES:
        if scale_deep is None:
            scale_deep = _deep_values_scaled(image)
        image = Image.fromarray(_deep_to_eight_bit(np.asarray(image), scale_deep), "L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        image = image if image.mode == "RGBA" else image.convert("RGBA")
        if image.getchannel("A").getextrema()[0] < 255:  # opaque pixels stay as they are
            background = Image.new("RGBA", image.size, (alpha_background,) * 3 + (255,))
            image = Image.alpha_composite(background, image)
    if image.mode != mode:
        image = (
            image.convert("RGB").convert(mode)
            if image.mode not in ("L", "RGB")
            else image.convert(mode)
        )
    return image


def _deep_values_scaled(image: Image.Image) -> bool:
    """Whether a 16/32-bit image's values run past 255 (and are scaled by 1/257)."""
    if image.mode == "F":
        return False
    _low, high = image.getextrema()
    return max(0, high) > 255


def _deep_to_eight_bit(values: np.ndarray, scaled: bool) -> np.ndarray:
    """16/32-bit integer or float pixels -> uint8: round(v / 257) if `scaled`, else round(v),
    clipped to 0-255; never a float64 copy."""
    if values.dtype.kind == "f":
        return np.clip(np.rint(values), 0, 255).astype(np.uint8)
    if not scaled:
        return np.clip(values, 0, 255).astype(np.uint8)
    # round(v / 257) == (v + 128) // 257 (v / 257 is never a half) == ((v + 128) * 65281) >> 24
    # (257 * 65281 == 2**24 + 1, too little to carry); the product stays under 2**32.
    if values.dtype.kind != "u" or values.dtype.itemsize > 2:
        values = np.clip(values, 0, 65535)
    shifted = values.astype(np.uint32) + 128
    shifted *= 65281
    shifted >>= 24
    return shifted.astype(np.uint8)


def deep_scale(image: Image.Image) -> bool | None:
    """The `scale_deep` that `to_mode` picks for the whole `image` (None: not 16/32-bit), so
    that its parts convert alike."""
    return _deep_values_scaled(image) if image.mode in _DEEP_MODES else None
