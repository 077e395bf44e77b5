"""Settings for uploads, JSON bodies and image decoding limits."""

from __future__ import annotations

from pydantic import BaseModel, Field

from model_store.preprocessing import DEFAULT_MAX_ASPECT_RATIO, DEFAULT_MAX_PIXELS


class ImageSettings(BaseModel):
    """How large an upload, a JSON body and an image may be, and the decode budget."""

    max_upload_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    max_images_per_request: int = Field(default=32, ge=1)
    max_json_depth: int = Field(
        default=32,
        ge=3,
        le=1000,
        description=(
            "Deepest nesting of arrays and objects in a JSON body (the instances format needs "
            "3); deeper is refused while parsing with 400 `json_too_deep`."
        ),
    )
    max_json_values: int = Field(
        default=4096,
        ge=8,
        description=(
            "Values (objects, arrays, strings, numbers, literals) in one JSON body; more is "
            "refused while parsing with 413 `json_too_large`. Keep it above 2 x "
            "TAGGER_MAX_IMAGES_PER_REQUEST + 2, what the largest instances body holds."
        ),
    )
    max_pixels: int = Field(default=DEFAULT_MAX_PIXELS, ge=1)
    max_aspect_ratio: float = Field(
        default=DEFAULT_MAX_ASPECT_RATIO,
        ge=1,
        description=(
            "Longest ratio of an image's longer side to its shorter side; a longer one is "
            "refused from its header with 422 `extreme_aspect_ratio` before any pixel is "
            "decoded (decoding costs per row, and letterboxed such an image is a line under a "
            "pixel thick)."
        ),
    )
    max_decode_bytes: int = Field(
        default=192 * 1024 * 1024,
        ge=1,
        description=(
            "Memory the image decodes running at once may take, estimated per image from its "
            "header (format, mode, size; Pillow needs from ~1 byte per pixel for greyscale PNG "
            "to ~16 for WebP). A decode waits (first come, first served, within the request "
            "deadline) until its estimate fits; an image whose estimate alone exceeds this is "
            "refused from its header with 413 `image_too_large`."
        ),
    )
    decode_threads: int = Field(default=2, ge=1, le=256)
