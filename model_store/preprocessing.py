"""The one implementation of a version's preprocessing spec: encoded image -> model pixels.

Training (image folders), evaluation and serving all call `preprocess_bytes`, so what is
served is what was evaluated. Fashion-MNIST-style models see light objects on black; an
ordinary product photo (dark object on a light background, any size) is inverted, cropped
to the object and letterboxed, the way Fashion-MNIST itself was made.

Decoding and its limits live in `image_decoding`, colour modes in `colour_modes`, the tiled
letterbox in `letterbox`; this module applies a spec with them and is what callers import.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from model_store.deadline import DeadlinePassed, check_deadline
from model_store.image_decoding import (
    DEFAULT_MAX_ASPECT_RATIO,
    DEFAULT_MAX_PIXELS,
    CorruptImage,
    EmptyImage,
    ExtremeAspectRatio,
    ImageError,
    ImageTooLarge,
    UnsupportedImage,
    load_image,
    open_image,
)
from model_store.letterbox import (
    WORKING_SCALE,
    TiledSource,
    as_image,
    letterbox,
    object_box,
    reduction_factor,
    render,
)
from model_store.schema import InputSpec, PreprocessingSpec

__all__ = [
    "DEFAULT_MAX_ASPECT_RATIO",
    "DEFAULT_MAX_PIXELS",
    "CorruptImage",
    "DeadlinePassed",
    "EmptyImage",
    "ExtremeAspectRatio",
    "ImageError",
    "ImageTooLarge",
    "UnsupportedImage",
    "draft_side",
    "fashion_mnist_spec",
    "open_image",
    "preprocess_bytes",
    "preprocess_file",
    "preprocess_image",
    "to_model_pixels",
]

_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "box": Image.Resampling.BOX,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}


def to_model_pixels(
    image: Image.Image, spec: PreprocessingSpec, shape: InputSpec, deadline: float | None = None
) -> np.ndarray:
    """Apply the spec to a decoded upright image; returns uint8 `[height, width, channels]`.

    The border colour, the inversion and the crop to the object are decided on the source
    pixels, read a tile at a time; the letterbox is laid out in source pixels but drawn
    box-reduced, at most `2 * WORKING_SCALE` times the input, and only then resized. A canvas
    that small already (every Fashion-MNIST-sized image) is drawn and resized as it is.
    """
    source = TiledSource(image, spec)
    border_colour = source.border_colour()
    if spec.invert == "always" or (
        spec.invert == "auto" and _mean(border_colour) > spec.invert_threshold
    ):
        source.invert = True
        border_colour = 255 - border_colour
    width, height = image.size
    crop = (0, 0, width, height)
    if spec.trim and (height > shape.height or width > shape.width):
        crop = object_box(source, border_colour, deadline)
    layout = letterbox(crop, spec, shape)
    if layout.canvas == (width, height) == (shape.width, shape.height):
        # Already the input's size, nothing to pad or crop: the canvas is the source itself.
        return np.ascontiguousarray(source.pixels(crop))
    factor = reduction_factor(layout.canvas, shape)
    working = render(source, layout, border_colour, factor, deadline)
    check_deadline(deadline)
    if factor == 1 and working.shape[:2] == (shape.height, shape.width):
        return np.ascontiguousarray(working)
    canvas_w, canvas_h = layout.canvas
    resized = as_image(working).resize(
        (shape.width, shape.height),
        _RESAMPLE[spec.resample],
        box=(0, 0, canvas_w / factor, canvas_h / factor),
    )
    return np.asarray(resized, dtype=np.uint8).reshape(shape.height, shape.width, -1)


def _mean(colour: np.ndarray) -> float:
    """`float(colour.mean())` of a few uint8 values, without numpy's per-call overhead."""
    values = colour.tolist()
    return sum(values) / len(values)


def preprocess_bytes(
    data: bytes,
    spec: PreprocessingSpec,
    shape: InputSpec,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_aspect_ratio: float = DEFAULT_MAX_ASPECT_RATIO,
    deadline: float | None = None,
) -> np.ndarray:
    """Encoded image bytes -> model pixels, raising an `ImageError` subclass on bad input.

    `deadline` (a `time.monotonic()` value) is checked between stages; once it has passed,
    `DeadlinePassed` is raised instead of doing the next one.
    """
    check_deadline(deadline)
    image = open_image(data, max_pixels, draft_side(shape), max_aspect_ratio)
    return preprocess_image(image, spec, shape, deadline)


def draft_side(shape: InputSpec) -> int:
    """The side a JPEG may be draft-decoded down to (`open_image`'s `draft_side`)."""
    return WORKING_SCALE * max(shape.height, shape.width)


def preprocess_image(
    image: Image.Image, spec: PreprocessingSpec, shape: InputSpec, deadline: float | None = None
) -> np.ndarray:
    """An image from `open_image` (header read, pixels not yet) -> model pixels."""
    check_deadline(deadline)
    decoded = load_image(image)
    check_deadline(deadline)
    return to_model_pixels(decoded, spec, shape, deadline)


def preprocess_file(
    path: Path,
    spec: PreprocessingSpec,
    shape: InputSpec,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_aspect_ratio: float = DEFAULT_MAX_ASPECT_RATIO,
) -> np.ndarray:
    """Like `preprocess_bytes`, for a file on disk."""
    return preprocess_bytes(Path(path).read_bytes(), spec, shape, max_pixels, max_aspect_ratio)


def fashion_mnist_spec() -> PreprocessingSpec:
    """The spec for 28x28 greyscale models trained on Fashion-MNIST."""
    return PreprocessingSpec(color_mode="L", fit="pad", trim=True, invert="auto")
