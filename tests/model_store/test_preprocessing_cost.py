"""Images that pass the header checks cost bounded time and memory (issue 10, failure 3).

Each image is preprocessed in a fresh subprocess, which reports its own wall time and peak
RSS growth, so one test's allocations cannot hide another's.
"""

from __future__ import annotations

import io
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import image_bombs
import pytest
from PIL import Image, ImageDraw

from model_store.decode_cost import decode_cost_bytes
from model_store.preprocessing import draft_side, open_image
from model_store.schema import InputSpec

REPO = Path(__file__).resolve().parents[2]
MIB = 1 << 20
SHAPE = InputSpec(height=28, width=28, channels=1)
_CHILD = r"""
import gc, io, sys, time
from PIL import Image
from model_store.preprocessing import fashion_mnist_spec, preprocess_bytes
from model_store.schema import InputSpec

def status(field):  # VmHWM, not ru_maxrss: ru_maxrss keeps the forking parent's peak
    with open("/proc/self/status") as lines:
        return next(int(l.split()[1]) * 1024 for l in lines if l.startswith(field + ":"))

data = open(sys.argv[1], "rb").read()
spec, shape = fashion_mnist_spec(), InputSpec(height=28, width=28, channels=1)
preprocess_bytes(open(sys.argv[2], "rb").read(), spec, shape)  # warm up the imports
gc.collect()
base, started = status("VmRSS"), time.perf_counter()
try:
    if sys.argv[3] == "decode":  # what Pillow alone needs to decode it, for comparison
        Image.MAX_IMAGE_PIXELS = None
        Image.open(io.BytesIO(data)).load()
    else:
        preprocess_bytes(data, spec, shape)
    outcome = "ok"
except Exception as exc:
    outcome = type(exc).__name__
seconds = time.perf_counter() - started
print(outcome, seconds, status("VmHWM") - base)
"""


@dataclass(frozen=True)
class Cost:
    outcome: str  # "ok" or the exception's class name
    seconds: float
    peak_bytes: int  # peak RSS above the RSS before the call


def cost_of(data: bytes, tmp_path: Path, stage: str = "preprocess") -> Cost:
    """What `preprocess_bytes` (or, with `stage="decode"`, Pillow's decode alone) costs."""
    image, warm_up = tmp_path / "image", tmp_path / "warm-up.png"
    image.write_bytes(data)
    Image.new("L", (28, 28)).save(warm_up)
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(image), str(warm_up), stage],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    outcome, seconds, peak = done.stdout.split()
    return Cost(outcome, float(seconds), int(peak))


def test_a_wide_png_is_not_letterboxed_at_source_resolution(tmp_path: Path) -> None:
    """40000x1000 used to become a 40000x40000 canvas: 7.8 s and +1.6 GB here."""
    cost = cost_of(image_bombs.wide_png(), tmp_path)
    assert cost.outcome == "ok"
    assert cost.peak_bytes < 200 * MIB, cost  # 40 MB of decoded pixels, a little work space
    assert cost.seconds < 3.0, cost


def test_a_16_bit_png_is_not_copied_as_float64(tmp_path: Path) -> None:
    """6000x6000 16-bit used to cost float64 copies of every pixel: +890 MB here."""
    cost = cost_of(image_bombs.deep_png(), tmp_path)
    assert cost.outcome == "ok"
    assert cost.peak_bytes < 250 * MIB, cost  # 72 MB of decoded pixels, a little work space
    assert cost.seconds < 3.0, cost


def test_a_one_pixel_wide_png_is_refused_from_its_header(tmp_path: Path) -> None:
    """1x40,000,000 used to decode (1.6 s, +345 MB of row pointers) and then fail (500)."""
    cost = cost_of(image_bombs.tall_png(), tmp_path)
    assert cost.outcome == "ExtremeAspectRatio", cost
    assert cost.peak_bytes < 20 * MIB, cost
    assert cost.seconds < 0.5, cost


def _scene(mode: str, size: tuple[int, int]) -> Image.Image:
    """A light page with a dark ellipse: compresses well, like a scan or a product shot."""
    image = Image.new("RGB", size, (240, 236, 230))
    width, height = size
    ImageDraw.Draw(image).ellipse(
        (width // 4, height // 5, 3 * width // 4, 4 * height // 5), fill=(30, 40, 50)
    )
    if mode == "P":
        return image.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    return image.convert(mode)


@pytest.mark.parametrize(
    ("fmt", "mode", "size"),
    [
        ("JPEG", "RGB", (8000, 5000)),  # drafted at 1/8 scale
        ("PNG", "RGBA", (8000, 5000)),
        ("GIF", "P", (8000, 5000)),
        ("WEBP", "RGB", (6000, 5000)),  # Pillow's WebP decode alone needs ~15 bytes a pixel
        ("TIFF", "RGB", (8000, 5000)),
        ("BMP", "1", (8000, 5000)),
    ],
)
def test_large_images_cost_what_decoding_them_costs_and_little_more(
    tmp_path: Path, fmt: str, mode: str, size: tuple[int, int]
) -> None:
    buffer = io.BytesIO()
    options = {"compression": "tiff_deflate"} if fmt == "TIFF" else {}
    _scene(mode, size).save(buffer, fmt, **options)
    decoding = cost_of(buffer.getvalue(), tmp_path, stage="decode")
    cost = cost_of(buffer.getvalue(), tmp_path)
    assert cost.outcome == "ok"
    assert cost.peak_bytes < decoding.peak_bytes + 64 * MIB, (cost, decoding)
    assert cost.seconds < decoding.seconds + 3.0, (cost, decoding)


@pytest.mark.parametrize(
    ("fmt", "mode", "options"),
    [
        ("PNG", "L", {}),
        ("PNG", "RGBA", {}),
        ("PNG", "I;16", {}),
        ("JPEG", "RGB", {"progressive": True}),  # every coefficient of the full image
        ("JPEG", "CMYK", {}),
        ("WEBP", "RGBA", {}),
        ("WEBP", "RGB", {"lossless": True}),
        ("TIFF", "F", {}),
        ("TIFF", "RGB", {"compression": "tiff_lzw"}),
        ("GIF", "P", {}),
        ("BMP", "RGB", {}),
    ],
)
def test_the_decode_cost_estimate_covers_the_measured_cost(
    tmp_path: Path, fmt: str, mode: str, options: dict[str, object]
) -> None:
    """What the decode budget charges an image is at least what it takes, and not far more."""
    size = (3000, 2000)
    if mode == "I;16":
        data = image_bombs.png(*size, b"\x12\x34" * size[0], bit_depth=16)
    else:
        buffer = io.BytesIO()
        scene = _scene("L", size).convert("F") if mode == "F" else _scene(mode, size)
        scene.save(buffer, fmt, **options)
        data = buffer.getvalue()
    estimate = decode_cost_bytes(open_image(data, draft_side=draft_side(SHAPE)))
    cost = cost_of(data, tmp_path)
    assert cost.outcome == "ok"
    assert cost.peak_bytes <= estimate, (cost, estimate)
    assert estimate <= 2 * cost.peak_bytes + 40 * MIB, (cost, estimate)
