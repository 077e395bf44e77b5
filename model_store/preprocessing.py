"""The one implementation of a version's preprocessing spec: encoded image -> model pixels.

Training (image folders), evaluation and serving all call `preprocess_bytes`, so what is
served is what was evaluated. Fashion-MNIST-style models see light objects on black; an
ordinary product photo (dark object on a light background, any size) is inverted, cropped
to the object and letterboxed, the way Fashion-MNIST itself was made.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from model_store.schema import InputSpec, PreprocessingSpec

SUPPORTED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF")
DEFAULT_MAX_PIXELS = 40_000_000
# Pixels differing from the border colour by more than this count as the object when trimming.
TRIM_TOLERANCE = 32

_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "box": Image.Resampling.BOX,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}
_SIXTEEN_BIT_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I"}


class ImageError(ValueError):
    """An upload that cannot become model pixels; `status` is the HTTP status it deserves."""

    code = "bad_image"
    status = 400


class EmptyImage(ImageError):
    code = "empty_file"
    status = 400


class UnsupportedImage(ImageError):
    code = "unsupported_media_type"
    status = 415


class ImageTooLarge(ImageError):
    code = "image_too_large"
    status = 413


class CorruptImage(ImageError):
    code = "corrupt_image"
    status = 400


def decode_image(
    data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, draft_side: int = 0
) -> Image.Image:
    """Decode the first frame of an encoded image, upright (EXIF orientation applied).

    The pixel count is checked from the header, before any pixel is decoded. `draft_side`
    lets JPEG decode at a reduced scale that still covers that many pixels per side.
    """
    if not data:
        raise EmptyImage("the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS)
    except UnidentifiedImageError as exc:
        raise UnsupportedImage(
            f"not a supported image; send one of {', '.join(SUPPORTED_FORMATS)}"
        ) from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(f"image has too many pixels (limit {max_pixels})") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise CorruptImage(f"image header is corrupt: {exc}") from exc
    width, height = image.size
    if width < 1 or height < 1:
        raise CorruptImage("image has no pixels")
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"image is {width}x{height} = {width * height} pixels; the limit is {max_pixels}"
        )
    try:
        if draft_side and image.format == "JPEG":
            image.draft(
                image.mode if image.mode in ("L", "RGB") else None, (draft_side, draft_side)
            )
        image.seek(0)
        image.load()
        return ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise CorruptImage(f"image data is corrupt or truncated: {exc}") from exc


def _to_mode(image: Image.Image, mode: str, alpha_background: int) -> Image.Image:
    """Convert any Pillow mode (16-bit, palette, alpha, CMYK, ...) to "L" or "RGB"."""
    if image.mode in _SIXTEEN_BIT_MODES or image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        if image.mode != "F" and values.max(initial=0) > 255:
            values = values / 257.0
        image = Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), "L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (alpha_background,) * 3 + (255,))
        image = Image.alpha_composite(background, rgba)
    if image.mode != mode:
        image = (
            image.convert("RGB").convert(mode)
            if image.mode not in ("L", "RGB")
            else image.convert(mode)
        )
    return image


def _border(pixels: np.ndarray) -> np.ndarray:
    """The outermost ring of pixels, as rows of channel values."""
    channels = pixels.shape[2]
    return np.concatenate(
        [
            pixels[0].reshape(-1, channels),
            pixels[-1].reshape(-1, channels),
            pixels[:, 0].reshape(-1, channels),
            pixels[:, -1].reshape(-1, channels),
        ]
    )


def _trim(pixels: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Crop to the bounding box of pixels that differ from the background colour."""
    distance = np.abs(pixels.astype(np.int16) - background.astype(np.int16)).max(axis=2)
    mask = distance > TRIM_TOLERANCE
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return pixels
    return pixels[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _pad_to_aspect(pixels: np.ndarray, aspect: float, fill: np.ndarray) -> np.ndarray:
    """Centre the image on a canvas of the given width/height ratio, filled with `fill`."""
    height, width, channels = pixels.shape
    target_w = max(width, round(height * aspect))
    target_h = max(height, round(width / aspect))
    if (target_h, target_w) == (height, width):
        return pixels
    canvas = np.empty((target_h, target_w, channels), dtype=np.uint8)
    canvas[...] = fill
    top, left = (target_h - height) // 2, (target_w - width) // 2
    canvas[top : top + height, left : left + width] = pixels
    return canvas


def to_model_pixels(image: Image.Image, spec: PreprocessingSpec, shape: InputSpec) -> np.ndarray:
    """Apply the spec to a decoded image; returns uint8 `[height, width, channels]`."""
    image = _to_mode(image, spec.color_mode, spec.alpha_background)
    pixels = np.asarray(image, dtype=np.uint8)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    border_colour = np.rint(_border(pixels).mean(axis=0)).astype(np.uint8)
    if spec.invert == "always" or (
        spec.invert == "auto" and float(border_colour.mean()) > spec.invert_threshold
    ):
        pixels = 255 - pixels
        border_colour = 255 - border_colour
    larger = pixels.shape[0] > shape.height or pixels.shape[1] > shape.width
    if spec.trim and larger:
        pixels = _trim(pixels, border_colour)
    if spec.fit == "pad":
        pixels = _pad_to_aspect(pixels, shape.width / shape.height, border_colour)
    if pixels.shape[:2] != (shape.height, shape.width):
        mode = "L" if pixels.shape[2] == 1 else "RGB"
        resized = Image.fromarray(pixels[:, :, 0] if mode == "L" else pixels, mode).resize(
            (shape.width, shape.height), _RESAMPLE[spec.resample]
        )
        pixels = np.asarray(resized, dtype=np.uint8).reshape(shape.height, shape.width, -1)
    return np.ascontiguousarray(pixels)


def preprocess_bytes(
    data: bytes,
    spec: PreprocessingSpec,
    shape: InputSpec,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Encoded image bytes -> model pixels, raising an `ImageError` subclass on bad input."""
    draft_side = 8 * max(shape.height, shape.width)
    return to_model_pixels(decode_image(data, max_pixels, draft_side), spec, shape)


def preprocess_file(
    path: Path, spec: PreprocessingSpec, shape: InputSpec, max_pixels: int = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """Like `preprocess_bytes`, for a file on disk."""
    return preprocess_bytes(Path(path).read_bytes(), spec, shape, max_pixels)


def fashion_mnist_spec() -> PreprocessingSpec:
    """The spec for 28x28 greyscale models trained on Fashion-MNIST."""
    return PreprocessingSpec(color_mode="L", fit="pad", trim=True, invert="auto")
