"""The letterbox drawn a tile at a time: cost is bounded by the decoded image, never by the
canvas. The source is read in tiles in the spec's mode; the object's box is found on source
pixels; the letterbox is laid out in source pixels but drawn box-reduced to `WORKING_SCALE`
to `2 * WORKING_SCALE` times the input."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from model_store.colour_modes import deep_scale, to_mode
from model_store.deadline import check_deadline
from model_store.schema import InputSpec, PreprocessingSpec

# The working image keeps at least this many pixels per input pixel (JPEG drafts use it too).
WORKING_SCALE = 8
# Source pixels converted at once while reducing: the work space beyond the decoded image.
TILE_PIXELS = 1 << 20
# Pixels differing from the border colour by more than this count as the object when trimming.
TRIM_TOLERANCE = 32


def reduction_factor(canvas: tuple[int, int], shape: InputSpec) -> int:
    """The box-reduction factor that brings a canvas (width, height) down to between
    `WORKING_SCALE` and `2 * WORKING_SCALE` times the input along its tighter axis (1: none)."""
    width, height = canvas
    scale = max(width / shape.width, height / shape.height)
    return max(1, math.floor(scale / WORKING_SCALE))


class TiledSource:
    """An upright decoded image, read a box at a time in the spec's mode (and inverted once
    `invert` is set): conversion never needs a full-size copy."""

    def __init__(self, image: Image.Image, spec: PreprocessingSpec) -> None:
        self.image = image
        self.mode = spec.color_mode
        self.alpha_background = spec.alpha_background
        self.channels = 1 if spec.color_mode == "L" else 3
        self.scale_deep = deep_scale(image)
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
        converted = to_mode(part, self.mode, self.alpha_background, self.scale_deep)
        return np.asarray(converted, dtype=np.uint8).reshape(box[3] - box[1], box[2] - box[0], -1)

    def border_colour(self) -> np.ndarray:
        """The mean colour of the outermost ring of pixels, rounded (corners count twice)."""
        whole = self._whole
        if whole is not None:  # the same pixels in the same order as the boxes below
            if self.invert:
                whole = 255 - whole
            sides = [whole[0], whole[-1], whole[:, 0], whole[:, -1]]
        else:
            width, height = self.image.size
            ring = [(0, 0, width, 1), (0, height - 1, width, height), (0, 0, 1, height)]
            ring.append((width - 1, 0, width, height))
            sides = [self.pixels(box) for box in ring]
        pixels = np.concatenate([side.reshape(-1, self.channels) for side in sides])
        # Integer sums, then one division: exactly numpy's float mean, without its float pass
        # over a ring this small.
        return np.rint(pixels.sum(axis=0, dtype=np.int64) / len(pixels)).astype(np.uint8)


def _tiles(box: tuple[int, int, int, int], side: int) -> list[tuple[int, int, int, int]]:
    left, top, right, bottom = box
    return [
        (x, y, min(x + side, right), min(y + side, bottom))
        for y in range(top, bottom, side)
        for x in range(left, right, side)
    ]


def object_box(
    source: TiledSource, background: np.ndarray, deadline: float | None
) -> tuple[int, int, int, int]:
    """The bounding box of pixels that differ from the background colour (all: none do)."""
    width, height = source.image.size
    rows, cols = np.zeros(height, dtype=bool), np.zeros(width, dtype=bool)
    for box in _tiles((0, 0, width, height), math.isqrt(TILE_PIXELS)):
        check_deadline(deadline)
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


def render(
    source: TiledSource, layout: Layout, fill: np.ndarray, factor: int, deadline: float | None
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
        check_deadline(deadline)
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


def as_image(pixels: np.ndarray) -> Image.Image:
    """uint8 `[h, w, 1 or 3]` pixels as an "L" or "RGB" image."""
    return (
        Image.fromarray(pixels[:, :, 0], "L")
        if pixels.shape[2] == 1
        else Image.fromarray(pixels, "RGB")
    )


def _reduce(pixels: np.ndarray, factor: int) -> np.ndarray:
    """Mean of each `factor` x `factor` block (partial blocks at the far edges)."""
    reduced = np.asarray(as_image(pixels).reduce(factor), dtype=np.uint8)
    return reduced.reshape(reduced.shape[0], reduced.shape[1], pixels.shape[2])
