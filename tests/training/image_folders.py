"""Generate small image-folder data sets (one sub-folder per class) for the training tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "stripes")


def draw(shape: str, rng: np.random.Generator, size: int = 40) -> Image.Image:
    """A light shape on a dark, noisy background, at a random position."""
    noise = rng.integers(0, 40, (size, size, 3), dtype=np.uint8)
    image = Image.fromarray(noise, "RGB")
    pen = ImageDraw.Draw(image)
    left, top = (int(v) for v in rng.integers(2, size // 3, 2))
    box = (left, top, left + size // 2, top + size // 2)
    colour = tuple(int(v) for v in rng.integers(180, 256, 3))
    if shape == "circle":
        pen.ellipse(box, fill=colour)
    elif shape == "square":
        pen.rectangle(box, fill=colour)
    else:
        for x in range(0, size, 8):
            pen.rectangle((x, 0, x + 3, size), fill=colour)
    return image


def make_image_folder(
    root: Path, per_class: int = 12, classes: tuple[str, ...] = SHAPES, seed: int = 0
) -> Path:
    """`root/<class>/<n>.png|jpg`: alternating PNG and JPEG files per class."""
    rng = np.random.default_rng(seed)
    for name in classes:
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            suffix = "png" if i % 2 == 0 else "jpg"
            draw(name, rng).save(folder / f"{i:03d}.{suffix}")
    return root


def write_corrupt(path: Path) -> Path:
    """A file with an image extension whose content is not a decodable image."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    return path
