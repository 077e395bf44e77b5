"""Encoded image -> upright decoded image: header checks (pixel count, aspect ratio) before
any pixel is decoded, and the `ImageError`s an upload can earn."""

from __future__ import annotations

import io
import warnings

from PIL import Image, UnidentifiedImageError

from model_store.small_png import read_small_png

SUPPORTED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF")
DEFAULT_MAX_PIXELS = 40_000_000
# Longer side / shorter side above which an image is refused from its header: decoding costs
# per row (Pillow keeps a pointer per row), and letterboxed it is under a pixel thick.
DEFAULT_MAX_ASPECT_RATIO = 100.0

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
    """An upload that cannot become model pixels; `code` names why (the serving edge picks a
    status from the subclass)."""

    code = "bad_image"


class EmptyImage(ImageError):
    code = "empty_file"


class UnsupportedImage(ImageError):
    code = "unsupported_media_type"


class ImageTooLarge(ImageError):
    code = "image_too_large"


class CorruptImage(ImageError):
    code = "corrupt_image"


class ExtremeAspectRatio(ImageError):
    code = "extreme_aspect_ratio"


def open_image(
    data: bytes,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    draft_side: int = 0,
    max_aspect_ratio: float = DEFAULT_MAX_ASPECT_RATIO,
) -> Image.Image:
    """Read an encoded image's header, not its pixels: pixel count and aspect ratio are
    checked here. `draft_side` lets JPEG decode at a reduced scale that still covers that
    many pixels per side (the returned image's size is then the reduced one). A small plain
    PNG comes back decoded already (`read_small_png`: the same pixels, for less)."""
    if not data:
        raise EmptyImage("the file is empty")
    image = read_small_png(data)
    if image is None:
        image = _open(data, max_pixels)
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


def _open(data: bytes, max_pixels: int) -> Image.Image:
    """Pillow's `Image.open` of the bytes (header only), its failures as `ImageError`s."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS)
    except UnidentifiedImageError as exc:
        raise UnsupportedImage(
            f"not a supported image; send one of {', '.join(SUPPORTED_FORMATS)}"
        ) from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(f"image has too many pixels (limit {max_pixels})") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise CorruptImage(f"image header is corrupt: {exc}") from exc


def load_image(image: Image.Image) -> Image.Image:
    """Decode the first frame of an image from `open_image`, upright (EXIF orientation
    applied)."""
    try:
        image.seek(0)
        image.load()
        return _upright(image)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise CorruptImage(f"image data is corrupt or truncated: {exc}") from exc


def _upright(image: Image.Image) -> Image.Image:
    """The image turned as its EXIF orientation says; itself (no copy) when already upright."""
    orientation = image.getexif().get(_EXIF_ORIENTATION)
    transpose = _ORIENTATION.get(orientation) if isinstance(orientation, int) else None
    return image if transpose is None else image.transpose(transpose)
