"""Generate an image folder that looks like a product catalogue: one sub-folder per class,
photos of several sizes, JPEG and PNG, RGB and greyscale, and optionally some broken files."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ("bag", "boot", "shirt")


@dataclass(frozen=True)
class PhotoFolder:
    root: Path
    classes: tuple[str, ...]
    images: int  # files that are images
    broken: int  # files that are not (or are truncated)


def photo(shape: str, rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """A dark object on a light gradient background: a bag (ellipse), boot (L) or shirt (T)."""
    ramp = np.linspace(200, 250, width, dtype=np.float32)[None, :, None]
    tint = rng.integers(-5, 6, 3).astype(np.float32)
    background = np.broadcast_to(ramp + tint, (height, width, 3)).clip(0, 255).astype(np.uint8)
    image = Image.fromarray(background, "RGB")
    pen = ImageDraw.Draw(image)
    colour = tuple(int(v) for v in rng.integers(20, 110, 3))
    left, top = int(rng.integers(0, width // 4)), int(rng.integers(0, height // 4))
    right, bottom = left + width // 2, top + height // 2
    if shape == CLASSES[0]:
        pen.ellipse((left, top, right, bottom), fill=colour)
    elif shape == CLASSES[1]:
        pen.rectangle((left, top, left + width // 6, bottom), fill=colour)
        pen.rectangle((left, bottom - height // 8, right, bottom), fill=colour)
    else:
        pen.rectangle((left, top, right, top + height // 8), fill=colour)
        pen.rectangle((left + width // 6, top, right - width // 6, bottom), fill=colour)
    return image


def encode(image: Image.Image, number: int) -> bytes:
    """Alternate JPEG/PNG, and every third image greyscale."""
    if number % 3 == 2:
        image = image.convert("L")
    out = io.BytesIO()
    if number % 2:
        image.save(out, "PNG", compress_level=1)
    else:
        image.save(out, "JPEG", quality=85)
    return out.getvalue()


def make_photo_folder(
    root: Path,
    count: int,
    *,
    sizes: tuple[int, ...] = (96, 128, 160),
    classes: tuple[str, ...] = CLASSES,
    broken: int = 0,
    seed: int = 0,
) -> PhotoFolder:
    """`count` photos spread evenly over `classes`, plus `broken` bad files (every other one
    garbage with an image extension, the rest truncated JPEGs whose header still parses)."""
    rng = np.random.default_rng(seed)
    for number in range(count):
        name = classes[number % len(classes)]
        side = sizes[number % len(sizes)]
        width, height = side, int(side * (0.75 + 0.5 * rng.random()))
        data = encode(photo(name, rng, width, height), number)
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{number:07d}.{'png' if number % 2 else 'jpg'}").write_bytes(data)
    for number in range(broken):
        folder = root / classes[number % len(classes)]
        folder.mkdir(parents=True, exist_ok=True)
        if number % 2:
            (folder / f"broken-{number}.png").write_bytes(b"\x89PNG\r\n\x1a\n not a png at all")
        else:
            whole = encode(photo(classes[0], rng, 200, 200), 0)
            (folder / f"broken-{number}.jpg").write_bytes(whole[: len(whole) // 3])
    return PhotoFolder(root, classes, count, broken)
