"""The shared preprocessing spec: formats, colour modes, orientation, limits, product photos."""

from __future__ import annotations

import gzip
import io
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from model_store.colour_modes import to_mode
from model_store.letterbox import TRIM_TOLERANCE
from model_store.preprocessing import (
    CorruptImage,
    DeadlinePassed,
    EmptyImage,
    ExtremeAspectRatio,
    ImageTooLarge,
    UnsupportedImage,
    fashion_mnist_spec,
    preprocess_bytes,
)
from model_store.schema import InputSpec, PreprocessingSpec
from model_store.signature import INPUT_NAME, OUTPUT_NAME, SIGNATURE_NAME
from training.config import default_fashion_dir

SHAPE = InputSpec(height=28, width=28, channels=1)
SPEC = fashion_mnist_spec()


@pytest.fixture(scope="module")
def fashion_test_images() -> np.ndarray:
    path = Path(default_fashion_dir()) / "t10k-images-idx3-ubyte.gz"
    if not path.exists():
        pytest.skip(f"Fashion-MNIST not installed at {path} (Debian package dataset-fashion-mnist)")
    with gzip.open(path) as f:
        return np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)[:300].copy()


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def model_pixels(data: bytes, spec: PreprocessingSpec = SPEC, **kw: int) -> np.ndarray:
    pixels = preprocess_bytes(data, spec, SHAPE, **kw)
    assert pixels.shape == (28, 28, 1) and pixels.dtype == np.uint8
    return pixels[:, :, 0].astype(np.int16)


def product_photo(garment: np.ndarray, offset: tuple[int, int]) -> Image.Image:
    """A Fashion-MNIST garment as a shop would photograph it: dark on white, large, off-centre."""
    dark = Image.fromarray(255 - garment).resize((336, 336), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (800, 600), (250, 250, 250))
    canvas.paste(dark.convert("RGB"), offset)
    return canvas


def test_lossless_uploads_of_model_sized_images_are_unchanged(fashion_test_images) -> None:
    for garment in fashion_test_images:
        for fmt in ("PNG", "BMP", "TIFF", "GIF"):
            assert np.array_equal(model_pixels(encode(Image.fromarray(garment), fmt)), garment)


@pytest.mark.parametrize(
    ("spec", "shape"),
    [
        (SPEC, SHAPE),
        (
            PreprocessingSpec(color_mode="RGB", fit="pad", trim=True, invert="auto"),
            InputSpec(height=32, width=32, channels=3),
        ),
    ],
    ids=["fashion", "rgb"],
)
def test_model_sized_images_take_the_letterbox_shortcut_to_the_same_pixels(spec, shape) -> None:
    """An image already the input's size skips the letterbox drawing: the pixels are what
    drawing it gives (light and dark backgrounds, so with and without inversion)."""
    from model_store.letterbox import TiledSource, letterbox, reduction_factor, render
    from model_store.preprocessing import to_model_pixels

    rng = np.random.default_rng(3)
    for i in range(300):
        size = (
            (shape.height, shape.width, 3) if shape.channels == 3 else (shape.height, shape.width)
        )
        pixels = rng.integers(0, 256, size, dtype=np.uint8)
        if i % 2:  # a dark object on a light background: inverted
            pixels[...] = 240
            pixels[4:20, 6:22] = rng.integers(0, 80)
        image = Image.fromarray(pixels)
        source = TiledSource(image, spec)
        border = source.border_colour()
        if float(border.mean()) > spec.invert_threshold:
            source.invert, border = True, 255 - border
        layout = letterbox((0, 0, *image.size), spec, shape)
        drawn = render(source, layout, border, reduction_factor(layout.canvas, shape), None)
        assert np.array_equal(to_model_pixels(image, spec, shape), drawn), i


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
def test_lossy_formats_stay_close(fashion_test_images, fmt: str) -> None:
    for garment in fashion_test_images[:50]:
        got = model_pixels(encode(Image.fromarray(garment), fmt, quality=95))
        assert np.abs(got - garment).mean() < 6


def test_a_product_photo_becomes_the_garment_the_model_was_trained_on(fashion_test_images):
    """Inverted, cropped to the object and letterboxed: close to the original 28x28 garment."""
    correlations, differences = [], []
    for i, garment in enumerate(fashion_test_images[:60]):
        got = model_pixels(encode(product_photo(garment, (40 + 5 * i, 30 + 3 * i)), "JPEG"))
        correlations.append(np.corrcoef(got.ravel(), garment.ravel())[0, 1])
        differences.append(np.abs(got - garment).mean())
    # Re-centring may move a garment by a pixel or two; the picture itself must survive.
    assert np.median(correlations) > 0.9 and np.median(differences) < 20


def test_the_model_tags_product_photos_like_the_originals(fashion_test_images, trained_store):
    import tensorflow as tf

    served = tf.saved_model.load(
        str(trained_store.store.version_dir("fashion", trained_store.version))
    )
    predict = served.signatures[SIGNATURE_NAME]
    garments = fashion_test_images[:100]
    photos = np.stack(
        [
            preprocess_bytes(encode(product_photo(g, (60, 90)), "JPEG"), SPEC, SHAPE)
            for g in garments
        ]
    )
    original = predict(**{INPUT_NAME: tf.constant(garments[..., None])})[OUTPUT_NAME].numpy()
    from_photo = predict(**{INPUT_NAME: tf.constant(photos)})[OUTPUT_NAME].numpy()
    agreement = (original.argmax(1) == from_photo.argmax(1)).mean()
    assert agreement >= 0.8, f"labels agree on only {agreement:.0%} of product photos"


def test_every_colour_mode_becomes_greyscale_correctly() -> None:
    grey = np.full((20, 20), 250, np.uint8)
    grey[5:15, 5:15] = 50  # a dark square on a light background
    rgb = Image.fromarray(np.stack([grey] * 3, axis=2))
    expected = model_pixels(encode(Image.fromarray(grey), "PNG"))
    assert expected.max() > 150 and expected[0, 0] < 20  # inverted: light object on black
    variants = {
        "RGBA": rgb.convert("RGBA"),
        "LA": Image.fromarray(grey).convert("LA"),
        "P": rgb.convert("P", palette=Image.Palette.ADAPTIVE),
        "CMYK": rgb.convert("CMYK"),
        "I;16": Image.fromarray(grey.astype(np.uint16) * 257),
    }
    for mode, image in variants.items():
        assert image.mode == mode
        got = model_pixels(encode(image, "TIFF" if mode in ("CMYK", "I;16") else "PNG"))
        assert np.abs(got - expected).max() <= 3, mode


def test_transparent_pixels_count_as_white_background() -> None:
    rgba = np.zeros((20, 20, 4), np.uint8)  # fully transparent ...
    rgba[5:15, 5:15] = (30, 30, 30, 255)  # ... around an opaque dark square
    got = model_pixels(encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert got[0, 0] < 10 and got[14, 14] > 200


def test_exif_orientation_is_applied() -> None:
    upright = np.zeros((28, 28), np.uint8)
    upright[2:8, :] = 255  # a bar along the top
    stored = Image.fromarray(np.rot90(upright, k=1))  # camera stored it rotated
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    got = model_pixels(encode(stored, "PNG", exif=exif))
    assert got[4].mean() > 200 and got[20].mean() < 20


def test_gif_uses_the_first_frame() -> None:
    first, second = np.zeros((28, 28), np.uint8), np.full((28, 28), 255, np.uint8)
    first[:, :14] = 255
    frames = [Image.fromarray(first), Image.fromarray(second)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert np.array_equal(model_pixels(data), first)


def test_pixel_limit_is_checked_before_decoding() -> None:
    data = encode(Image.new("L", (200, 100)), "PNG")
    with pytest.raises(ImageTooLarge, match="200x100") as caught:
        model_pixels(data, max_pixels=10_000)
    assert caught.value.code == "image_too_large"


@pytest.mark.parametrize(
    ("data", "error", "code"),
    [
        (b"", EmptyImage, "empty_file"),
        (b"%PDF-1.7 not an image", UnsupportedImage, "unsupported_media_type"),
        (encode(Image.new("L", (64, 64), 9), "PNG")[:60], CorruptImage, "corrupt_image"),
    ],
)
def test_bad_bytes_raise_a_client_error(data: bytes, error: type, code: str) -> None:
    with pytest.raises(error) as caught:
        model_pixels(data)
    assert caught.value.code == code and str(caught.value)


def test_rgb_spec_with_stretch_fills_the_whole_input() -> None:
    spec = PreprocessingSpec(color_mode="RGB", fit="stretch")
    shape = InputSpec(height=16, width=32, channels=3)
    image = Image.new("RGB", (10, 50), (255, 0, 0))
    pixels = preprocess_bytes(encode(image, "PNG"), spec, shape)
    assert pixels.shape == (16, 32, 3)
    assert (pixels[:, :, 0] == 255).all() and (pixels[:, :, 1:] == 0).all()


def full_resolution(data: bytes, spec: PreprocessingSpec, shape: InputSpec) -> np.ndarray:
    """The letterbox as it was first written: every step on a canvas at source resolution."""
    image = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    pixels = np.asarray(to_mode(image, spec.color_mode, spec.alpha_background), np.uint8)
    pixels = pixels.reshape(pixels.shape[0], pixels.shape[1], -1)
    ring = [pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]]
    border = np.concatenate([r.reshape(-1, pixels.shape[2]) for r in ring])
    fill = np.rint(border.mean(axis=0)).astype(np.uint8)
    if spec.invert == "always" or (spec.invert == "auto" and fill.mean() > spec.invert_threshold):
        pixels, fill = 255 - pixels, 255 - fill
    if spec.trim and (pixels.shape[0] > shape.height or pixels.shape[1] > shape.width):
        mask = np.abs(pixels.astype(np.int16) - fill).max(axis=2) > TRIM_TOLERANCE
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        if rows.size:
            pixels = pixels[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    if spec.fit == "pad":
        height, width = pixels.shape[:2]
        aspect = shape.width / shape.height
        target_w, target_h = max(width, round(height * aspect)), max(height, round(width / aspect))
        canvas = np.empty((target_h, target_w, pixels.shape[2]), np.uint8)
        canvas[...] = fill
        top, left = (target_h - height) // 2, (target_w - width) // 2
        canvas[top : top + height, left : left + width] = pixels
        pixels = canvas
    if pixels.shape[:2] != (shape.height, shape.width):
        image = Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)
        resized = image.resize((shape.width, shape.height), Image.Resampling[spec.resample.upper()])
        pixels = np.asarray(resized).reshape(shape.height, shape.width, -1)
    return pixels


RGB_SHAPE = InputSpec(height=32, width=32, channels=3)
GEOMETRIES = {
    "fashion": (SPEC, SHAPE),
    "rgb-pad": (PreprocessingSpec(color_mode="RGB", trim=True, invert="auto"), RGB_SHAPE),
    "rgb-stretch": (
        PreprocessingSpec(color_mode="RGB", fit="stretch", resample="bilinear"),
        RGB_SHAPE,
    ),
}


def photos(garments: np.ndarray, size: tuple[int, int], seed: int) -> list[bytes]:
    """Lossless product photos: garments of random size at random places on light backdrops."""
    rng = np.random.default_rng(seed)
    width, height = size
    shots = []
    for garment in garments:
        side = int(min(size) * rng.uniform(0.3, 0.9))
        dark = Image.fromarray(255 - garment).resize((side, side), Image.Resampling.LANCZOS)
        backdrop = tuple(int(v) for v in rng.integers(200, 256, 3))
        canvas = Image.new("RGB", size, backdrop)
        at = (int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1)))
        canvas.paste(dark.convert("RGB"), at)
        shots.append(encode(canvas, "PNG"))
    return shots


@pytest.mark.parametrize("size", [(28, 28), (60, 40), (300, 200), (447, 447), (300, 447)])
@pytest.mark.parametrize("geometry", sorted(GEOMETRIES))
def test_canvases_under_sixteen_times_the_input_match_full_resolution_exactly(
    fashion_test_images, size: tuple[int, int], geometry: str
) -> None:
    spec, shape = GEOMETRIES[geometry]
    for data in photos(fashion_test_images[:8], size, seed=size[0]):
        expected = full_resolution(data, spec, shape)
        assert np.array_equal(preprocess_bytes(data, spec, shape), expected)


@pytest.mark.parametrize(
    "size", [(448, 448), (640, 480), (800, 600), (1000, 750), (1600, 1200), (3000, 2000)]
)
@pytest.mark.parametrize("geometry", sorted(GEOMETRIES))
def test_larger_canvases_stay_within_a_few_grey_levels_of_full_resolution(
    fashion_test_images, size: tuple[int, int], geometry: str
) -> None:
    """Only the box reduction (8-16x the input) differs: no garment moves or changes scale.
    Measured: at most 4 levels, mean <= 0.2; JPEG at quality 95 moves pixels by ~6 on average."""
    spec, shape = GEOMETRIES[geometry]
    for data in photos(fashion_test_images[:4], size, seed=size[0]):
        got = preprocess_bytes(data, spec, shape).astype(np.int16)
        difference = np.abs(got - full_resolution(data, spec, shape))
        assert difference.max() <= 6 and difference.mean() <= 0.5, (
            difference.max(),
            difference.mean(),
        )


def test_wide_and_rotated_images_keep_their_letterbox(fashion_test_images) -> None:
    garment = Image.fromarray(255 - fashion_test_images[0]).resize((300, 300))
    strip = Image.new("L", (6000, 400), 245)
    strip.paste(garment, (4000, 50))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: turned upright before anything else
    for data in (encode(strip, "PNG"), encode(strip, "PNG", exif=exif)):
        got = model_pixels(data)
        expected = full_resolution(data, SPEC, SHAPE).astype(np.int16)[:, :, 0]
        assert np.abs(got - expected).max() <= 6


def test_sixteen_bit_values_scale_to_eight_bits_exactly() -> None:
    values = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    spec = PreprocessingSpec(color_mode="L", fit="stretch")
    shape = InputSpec(height=256, width=256, channels=1)
    got = preprocess_bytes(encode(Image.fromarray(values), "PNG"), spec, shape)[:, :, 0]
    assert np.array_equal(got, np.rint(values / 257.0).astype(np.uint8))


def test_extreme_aspect_ratios_are_refused_from_the_header() -> None:
    assert model_pixels(encode(Image.new("L", (1, 100)), "PNG")).shape == (28, 28)
    with pytest.raises(ExtremeAspectRatio, match="1x101") as caught:
        model_pixels(encode(Image.new("L", (1, 101)), "PNG"))
    assert caught.value.code == "extreme_aspect_ratio"
    wide = encode(Image.new("L", (500, 2)), "PNG")
    assert preprocess_bytes(wide, SPEC, SHAPE, max_aspect_ratio=250).shape == (28, 28, 1)
    with pytest.raises(ExtremeAspectRatio):
        preprocess_bytes(wide, SPEC, SHAPE, max_aspect_ratio=249)


def test_a_passed_deadline_stops_before_the_next_stage() -> None:
    data = encode(Image.new("L", (2000, 2000), 200), "PNG")
    with pytest.raises(DeadlinePassed):
        preprocess_bytes(data, SPEC, SHAPE, deadline=time.monotonic() - 1)
    assert preprocess_bytes(data, SPEC, SHAPE, deadline=time.monotonic() + 60).shape == (28, 28, 1)
