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


# The OIP v2 inference body: a schema cannot say that a tensor's `data` holds prod(`shape`)
# elements, nor that a BYTES element sent as JSON text is an image. Positive cases get one
# consistent UINT8 tensor at the test model's input size (28x28x1) in place of the generated
# one, so "schema-valid data is accepted" is checked past the parser; everything else in them
# (id, parameters, outputs, classification) is left as drawn, and negative cases untouched.
_OIP_PIXELS = {"name": "pixels", "datatype": "UINT8", "shape": [1, 28, 28, 1], "data": [0] * 784}


@schemathesis.hook("map_case").apply_to(path_regex=r"^/v2/models/.*/infer$")
def oip_consistent_tensor(
    context: schemathesis.HookContext, case: schemathesis.Case
) -> schemathesis.Case:
    meta = case.meta
    body = case.body
    if meta is None or not meta.generation.mode.is_positive or not isinstance(body, dict):
        return case
    inputs = body.get("inputs")
    if isinstance(inputs, list) and inputs and isinstance(inputs[0], dict):
        parameters = inputs[0].get("parameters")
        tensor = dict(_OIP_PIXELS)
        if isinstance(parameters, dict):
            tensor["parameters"] = {k: v for k, v in parameters.items() if k != "binary_data_size"}
        case.body = {**body, "inputs": [tensor]}
    return case
