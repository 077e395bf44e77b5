"""Whatever a caller holds (a path, bytes, a file object, a PIL image) -> encoded bytes + a name."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import IO, Any

# Any: a PIL image, recognised by its methods so that PIL is not imported here.
ImageInput = str | os.PathLike | bytes | bytearray | memoryview | IO[bytes] | Any


@dataclass(frozen=True, slots=True)
class Encoded:
    """One image's encoded bytes and how to name it (its path, or `image-<index>`)."""

    data: bytes
    name: str


class UnreadableInput(Exception):
    """An input that is not an image this client can send (a missing file, a wrong type)."""


def encode(image: ImageInput, index: int) -> Encoded:
    """The bytes to upload for one input. PIL images are sent as PNG (lossless)."""
    if isinstance(image, Encoded):  # already read (the CLI reads a chunk ahead of its request)
        return image
    if isinstance(image, (str, os.PathLike)):
        try:
            with open(image, "rb") as file:  # not Path(): its parsing costs more than the read
                return Encoded(file.read(), str(image))
        except OSError as exc:
            raise UnreadableInput(f"{image}: {exc.strerror or exc}") from exc
    if isinstance(image, (bytes, bytearray, memoryview)):
        return Encoded(bytes(image), f"image-{index}")
    if hasattr(image, "read"):
        data = image.read()
        if not isinstance(data, bytes):
            raise UnreadableInput(f"image-{index}: file object must be opened in binary mode")
        return Encoded(data, str(getattr(image, "name", f"image-{index}")))
    if hasattr(image, "save") and hasattr(image, "mode"):  # a PIL image, without importing PIL
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return Encoded(buffer.getvalue(), f"image-{index}")
    raise UnreadableInput(
        f"image-{index}: expected a path, bytes, a binary file object or a PIL image, "
        f"got {type(image).__name__}"
    )
