"""The one implementation of a version's preprocessing spec: encoded image -> model pixels.

Training (image folders), evaluation and serving all call `preprocess_bytes`, so what is
served is what was evaluated. Fashion-MNIST-style models see light objects on black; an
ordinary product photo (dark object on a light background, any size) is inverted, cropped
to the object and letterboxed, the way Fashion-MNIST itself was made.

Cost is bounded by the decoded image, never by the letterbox: the border colour, the
inversion and the crop to the object are decided on the source pixels, read a tile at a
time; the letterbox is laid out in source pixels but drawn box-reduced to `WORKING_SCALE`
to `2 * WORKING_SCALE` times the input, then resized. A canvas under `2 * WORKING_SCALE`
times the input (every Fashion-MNIST-sized image) is drawn and resized as it always was.
"""

from __future__ import annotations

import io
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from model_store.schema import InputSpec, PreprocessingSpec

SUPPORTED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF")
DEFAULT_MAX_PIXELS = 40_000_000
# Longer side / shorter side above which an image is refused from its header: decoding costs
# per row (Pillow keeps a pointer per row), and letterboxed it is under a pixel thick.
DEFAULT_MAX_ASPECT_RATIO = 100.0
# The working image keeps at least this many pixels per input pixel (JPEG drafts use it too).
WORKING_SCALE = 8
# Source pixels converted at once while reducing: the work space beyond the decoded image.
TILE_PIXELS = 1 << 20
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
# EXIF orientation -> the transpose that makes it upright (as in `ImageOps.exif_transpose`).
_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_EXIF_ORIENTATION = 0x0112


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


class ExtremeAspectRatio(ImageError):
    code = "extreme_aspect_ratio"
    status = 422


class DeadlinePassed(Exception):
    """The caller's deadline passed between two stages; the rest of the work was skipped."""


def _check(deadline: float | None) -> None:
    if deadline is not None and time.monotonic() >= deadline:
        raise DeadlinePassed("the deadline passed while preprocessing")


def open_image(
    data: bytes,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    draft_side: int = 0,
    max_aspect_ratio: float = DEFAULT_MAX_ASPECT_RATIO,
) -> Image.Image:
    """Read an encoded image's header, not its pixels: pixel count and aspect ratio are
    checked here. `draft_side` lets JPEG decode at a reduced scale that still covers that
    many pixels per side (the returned image's size is then the reduced one)."""
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
    if max(width, height) > max_aspect_ratio * min(width, height):
        raise ExtremeAspectRatio(
            f"image is {width}x{height}; its longer side may be at most {max_aspect_ratio:g} "
            "times its shorter side"
        )
    if draft_side and image.format == "JPEG":
        try:
            image.draft(
                image.mode if image.mode in ("L", "RGB") else None, (draft_side, draft_side)
            )
        except (OSError, ValueError) as exc:
            raise CorruptImage(f"image header is corrupt: {exc}") from exc
    return image


def load_image(image: Image.Image) -> Image.Image:
    """Decode the first frame of an image from `open_image`, upright (EXIF orientation
    applied)."""
    try:
        image.seek(0)
        image.load()
        return _upright(image)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise CorruptImage(f"image data is corrupt or truncated: {exc}") from exc


def decode_image(
    data: bytes,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    draft_side: int = 0,
    max_aspect_ratio: float = DEFAULT_MAX_ASPECT_RATIO,
) -> Image.Image:
    """Decode the first frame of an encoded image, upright (EXIF orientation applied).

    Pixel count and aspect ratio are checked from the header, before any pixel is decoded.
    `draft_side` lets JPEG decode at a reduced scale that still covers that many pixels per
    side.
    """
    return load_image(open_image(data, max_pixels, draft_side, max_aspect_ratio))


def _to_mode(
    image: Image.Image, mode: str, alpha_background: int, scale_deep: bool | None = None
) -> Image.Image:
    """Convert any Pillow mode (16-bit, palette, alpha, CMYK, ...) to "L" or "RGB".

    `scale_deep` says whether 16/32-bit values span 0-65535 (else 0-255); None: this image's
    own maximum decides, as it does for a whole image.
    """
    if image.mode in _SIXTEEN_BIT_MODES or image.mode == "F":
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


def _upright(image: Image.Image) -> Image.Image:
    """The image turned as its EXIF orientation says; itself (no copy) when already upright."""
    orientation = image.getexif().get(_EXIF_ORIENTATION)
    transpose = _ORIENTATION.get(orientation) if isinstance(orientation, int) else None
    return image if transpose is None else image.transpose(transpose)


def reduction_factor(canvas: tuple[int, int], shape: InputSpec) -> int:
    """The box-reduction factor that brings a canvas (width, height) down to between
    `WORKING_SCALE` and `2 * WORKING_SCALE` times the input along its tighter axis (1: none)."""
    width, height = canvas
    scale = max(width / shape.width, height / shape.height)
    return max(1, math.floor(scale / WORKING_SCALE))


class _Source:
    """An upright decoded image, read a box at a time in the spec's mode (and inverted once
    `invert` is set): conversion never needs a full-size copy."""

    def __init__(self, image: Image.Image, spec: PreprocessingSpec) -> None:
        self.image = image
        self.mode = spec.color_mode
        self.alpha_background = spec.alpha_background
        self.channels = 1 if spec.color_mode == "L" else 3
        deep = image.mode in _SIXTEEN_BIT_MODES or image.mode == "F"
        self.scale_deep = _deep_values_scaled(image) if deep else None
        self.invert = False
        # An image of at most a tile is converted once, whole, and read by slicing: the same
        # pixels (conversion is per pixel), without a crop and a conversion per box.
        self._whole: np.ndarray | None = None
        if image.width * image.height <= TILE_PIXELS:
            self._whole = self._convert((0, 0, *image.size))

    def pixels(self, box: tuple[int, int, int, int]) -> np.ndarray:
        """uint8 `[h, w, channels]` of the box (left, top, right, bottom)."""
        if self._whole is not None:
            pixels = self._whole[box[1] : box[3], box[0] : box[2]]
        else:
            pixels = self._convert(box)
        return 255 - pixels if self.invert else pixels

    def _convert(self, box: tuple[int, int, int, int]) -> np.ndarray:
        part = self.image.crop(box) if box != (0, 0, *self.image.size) else self.image
        converted = _to_mode(part, self.mode, self.alpha_background, self.scale_deep)
        return np.asarray(converted, dtype=np.uint8).reshape(box[3] - box[1], box[2] - box[0], -1)

    def border_colour(self) -> np.ndarray:
        """The mean colour of the outermost ring of pixels, rounded (corners count twice)."""
        width, height = self.image.size
        ring = [(0, 0, width, 1), (0, height - 1, width, height), (0, 0, 1, height)]
        ring.append((width - 1, 0, width, height))
        pixels = np.concatenate([self.pixels(box).reshape(-1, self.channels) for box in ring])
        return np.rint(pixels.mean(axis=0)).astype(np.uint8)


def _tiles(box: tuple[int, int, int, int], side: int) -> list[tuple[int, int, int, int]]:
    left, top, right, bottom = box
    return [
        (x, y, min(x + side, right), min(y + side, bottom))
        for y in range(top, bottom, side)
        for x in range(left, right, side)
    ]


def _object_box(
    source: _Source, background: np.ndarray, deadline: float | None
) -> tuple[int, int, int, int]:
    """The bounding box of pixels that differ from the background colour (all: none do)."""
    width, height = source.image.size
    rows, cols = np.zeros(height, dtype=bool), np.zeros(width, dtype=bool)
    for box in _tiles((0, 0, width, height), math.isqrt(TILE_PIXELS)):
        _check(deadline)
        pixels = source.pixels(box).astype(np.int16)
        mask = np.abs(pixels - background.astype(np.int16)).max(axis=2) > TRIM_TOLERANCE
        rows[box[1] : box[3]] |= mask.any(axis=1)
        cols[box[0] : box[2]] |= mask.any(axis=0)
    found_rows, found_cols = np.flatnonzero(rows), np.flatnonzero(cols)
    if found_rows.size == 0:
        return (0, 0, width, height)
    return (
        int(found_cols[0]),
        int(found_rows[0]),
        int(found_cols[-1]) + 1,
        int(found_rows[-1]) + 1,
    )


@dataclass(frozen=True, slots=True)
class Layout:
    """Where the source lands, in source pixels: its `crop` (left, top, right, bottom) sits on
    a `canvas` (width, height) at `offset` (left, top); the rest is the fill colour."""

    crop: tuple[int, int, int, int]
    canvas: tuple[int, int]
    offset: tuple[int, int]


def letterbox(crop: tuple[int, int, int, int], spec: PreprocessingSpec, shape: InputSpec) -> Layout:
    """The letterbox (`fit="pad"`: centred on a canvas of the input's aspect) or the crop
    itself (`fit="stretch"`)."""
    width, height = crop[2] - crop[0], crop[3] - crop[1]
    if spec.fit != "pad":
        return Layout(crop, (width, height), (0, 0))
    aspect = shape.width / shape.height
    target_w = max(width, round(height * aspect))
    target_h = max(height, round(width / aspect))
    return Layout(crop, (target_w, target_h), ((target_w - width) // 2, (target_h - height) // 2))


def _render(
    source: _Source, layout: Layout, fill: np.ndarray, factor: int, deadline: float | None
) -> np.ndarray:
    """The canvas box-reduced by `factor` (blocks aligned to its corner), built a tile at a
    time: only the tiles that hold part of the crop are read from the source."""
    canvas_w, canvas_h = layout.canvas
    channels = source.channels
    working = np.empty((-(-canvas_h // factor), -(-canvas_w // factor), channels), np.uint8)
    working[...] = fill
    left, top = layout.offset
    crop_left, crop_top, crop_right, crop_bottom = layout.crop
    right, bottom = left + crop_right - crop_left, top + crop_bottom - crop_top
    # Content on the canvas, widened to whole blocks.
    blocks = (
        left - left % factor,
        top - top % factor,
        min(canvas_w, -(-right // factor) * factor),
        min(canvas_h, -(-bottom // factor) * factor),
    )
    side = max(1, math.isqrt(TILE_PIXELS) // factor) * factor
    for x0, y0, x1, y1 in _tiles(blocks, side):
        _check(deadline)
        tile = np.empty((y1 - y0, x1 - x0, channels), np.uint8)
        tile[...] = fill
        cx0, cy0, cx1, cy1 = max(x0, left), max(y0, top), min(x1, right), min(y1, bottom)
        tile[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0] = source.pixels(
            (
                crop_left + cx0 - left,
                crop_top + cy0 - top,
                crop_left + cx1 - left,
                crop_top + cy1 - top,
            )
        )
        if factor > 1:
            tile = _reduce(tile, factor)
        rows, cols = tile.shape[:2]
        working[y0 // factor : y0 // factor + rows, x0 // factor : x0 // factor + cols] = tile
    return working


def _image(pixels: np.ndarray) -> Image.Image:
    return (
        Image.fromarray(pixels[:, :, 0], "L")
        if pixels.shape[2] == 1
        else Image.fromarray(pixels, "RGB")
    )


def _reduce(pixels: np.ndarray, factor: int) -> np.ndarray:
    """Mean of each `factor` x `factor` block (partial blocks at the far edges)."""
    reduced = np.asarray(_image(pixels).reduce(factor), dtype=np.uint8)
    return reduced.reshape(reduced.shape[0], reduced.shape[1], pixels.shape[2])


def to_model_pixels(
    image: Image.Image, spec: PreprocessingSpec, shape: InputSpec, deadline: float | None = None
) -> np.ndarray:
    """Apply the spec to a decoded upright image; returns uint8 `[height, width, channels]`.

    The border colour, the inversion and the crop to the object are decided on the source
    pixels, read a tile at a time; the letterbox is laid out in source pixels but drawn
    box-reduced, at most `2 * WORKING_SCALE` times the input, and only then resized. A canvas
    that small already (every Fashion-MNIST-sized image) is drawn and resized as it is.
    """
    source = _Source(image, spec)
    border_colour = source.border_colour()
    if spec.invert == "always" or (
        spec.invert == "auto" and float(border_colour.mean()) > spec.invert_threshold
    ):
        source.invert = True
        border_colour = 255 - border_colour
    width, height = image.size
    crop = (0, 0, width, height)
    if spec.trim and (height > shape.height or width > shape.width):
        crop = _object_box(source, border_colour, deadline)
    layout = letterbox(crop, spec, shape)
    factor = reduction_factor(layout.canvas, shape)
    working = _render(source, layout, border_colour, factor, deadline)
    _check(deadline)
    if factor == 1 and working.shape[:2] == (shape.height, shape.width):
        return np.ascontiguousarray(working)
    canvas_w, canvas_h = layout.canvas
    resized = _image(working).resize(
        (shape.width, shape.height),
        _RESAMPLE[spec.resample],
        box=(0, 0, canvas_w / factor, canvas_h / factor),
    )
    return np.asarray(resized, dtype=np.uint8).reshape(shape.height, shape.width, -1)


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
    _check(deadline)
    image = open_image(data, max_pixels, draft_side(shape), max_aspect_ratio)
    return preprocess_image(image, spec, shape, deadline)


def draft_side(shape: InputSpec) -> int:
    """The side a JPEG may be draft-decoded down to (`open_image`'s `draft_side`)."""
    return WORKING_SCALE * max(shape.height, shape.width)


def preprocess_image(
    image: Image.Image, spec: PreprocessingSpec, shape: InputSpec, deadline: float | None = None
) -> np.ndarray:
    """An image from `open_image` (header read, pixels not yet) -> model pixels."""
    _check(deadline)
    decoded = load_image(image)
    _check(deadline)
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
