"""Schemathesis hooks (SCHEMATHESIS_HOOKS) for test_schemathesis.py: image bodies that decode.

The schema says `format: byte` / `format: binary` / `image/*`; it cannot say "a decodable
image". Drawing real images (random size, mode, format and pixels) for those lets positive
cases reach the model instead of stopping at 415, so "schema-valid data is accepted" is
checked for real; negative cases still get whatever Schemathesis makes invalid.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import schemathesis
from hypothesis import strategies as st
from PIL import Image

_MODES = {
    "PNG": ("L", "RGB", "RGBA", "P", "1", "I;16"),
    "JPEG": ("L", "RGB", "CMYK"),
    "BMP": ("L", "RGB", "1"),
    "GIF": ("L", "P"),
    "WEBP": ("RGB", "RGBA"),
    "TIFF": ("L", "RGB", "RGBA", "CMYK"),
}


@st.composite
def images(draw: st.DrawFn) -> bytes:
    fmt = draw(st.sampled_from(sorted(_MODES)))
    mode = draw(st.sampled_from(_MODES[fmt]))
    width, height = draw(st.integers(1, 64)), draw(st.integers(1, 64))
    seed = draw(st.integers(0, 2**32 - 1))
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").convert(mode).save(buffer, format=fmt)
    return buffer.getvalue()


schemathesis.openapi.format("byte", images().map(lambda data: base64.b64encode(data).decode()))
schemathesis.openapi.format("binary", images())
schemathesis.openapi.media_type("image/*", images())
