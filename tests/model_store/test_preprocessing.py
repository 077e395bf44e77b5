"""The shared preprocessing spec: formats, colour modes, orientation, limits, product photos."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model_store.preprocessing import (
    CorruptImage,
    EmptyImage,
    ImageTooLarge,
    UnsupportedImage,
    fashion_mnist_spec,
    preprocess_bytes,
)
from model_store.schema import InputSpec, PreprocessingSpec
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
    predict = served.signatures["serving_default"]
    garments = fashion_test_images[:100]
    photos = np.stack(
        [
            preprocess_bytes(encode(product_photo(g, (60, 90)), "JPEG"), SPEC, SHAPE)
            for g in garments
        ]
    )
    original = predict(pixels=tf.constant(garments[..., None]))["probabilities"].numpy()
    from_photo = predict(pixels=tf.constant(photos))["probabilities"].numpy()
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
    assert caught.value.status == 413


@pytest.mark.parametrize(
    ("data", "error", "status"),
    [
        (b"", EmptyImage, 400),
        (b"%PDF-1.7 not an image", UnsupportedImage, 415),
        (encode(Image.new("L", (64, 64), 9), "PNG")[:60], CorruptImage, 400),
    ],
)
def test_bad_bytes_raise_a_client_error(data: bytes, error: type, status: int) -> None:
    with pytest.raises(error) as caught:
        model_pixels(data)
    assert caught.value.status == status and str(caught.value)


def test_rgb_spec_with_stretch_fills_the_whole_input() -> None:
    spec = PreprocessingSpec(color_mode="RGB", fit="stretch")
    shape = InputSpec(height=16, width=32, channels=3)
    image = Image.new("RGB", (10, 50), (255, 0, 0))
    pixels = preprocess_bytes(encode(image, "PNG"), spec, shape)
    assert pixels.shape == (16, 32, 3)
    assert (pixels[:, :, 0] == 255).all() and (pixels[:, :, 1:] == 0).all()
