"""The streaming benchmark's pure parts and its photo generator (the run itself is measured by
hand: python -m benchmarks --streaming-only)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from benchmarks.photo_folder import make_photo_folder
from benchmarks.streaming import decoded_bytes, fits_in_memory, markdown
from model_store.preprocessing import ImageError, open_image, preprocess_file
from model_store.schema import InputSpec, PreprocessingSpec


def test_projected_memory_of_the_in_memory_path() -> None:
    assert decoded_bytes(100_000, 128) == 100_000 * 128 * 128 * 3  # 4.9 GB, as the issue says
    assert decoded_bytes(10, 28, channels=1) == 7840
    gib = 2**30
    assert fits_in_memory(1_000, 128, 8 * gib)  # 2 x 49 MB in half of 8 GiB
    assert not fits_in_memory(100_000, 128, 16 * gib)  # 2 x 4.9 GB > 8 GiB


def test_markdown_lists_every_mode_and_why_one_was_skipped() -> None:
    results = {
        "images": 100_000,
        "size": 128,
        "decoded_mib": 4688.0,
        "rows": [
            {"mode": "streaming", "peak_over_baseline_mib": 110.4, "load_s": 30.0,
             "pass1_images_per_s": 350.0, "pass2_images_per_s": 360.0},
            {"mode": "streaming-cache", "peak_over_baseline_mib": 120.0, "load_s": 30.0,
             "pass1_images_per_s": 340.0, "pass2_images_per_s": 9000.0},
            {"mode": "in-memory", "skipped": "would not fit in half the free memory"},
        ],
    }  # fmt: skip
    text = markdown(results, "2 cores")
    assert "100,000 photos at 128x128 RGB (2 cores)" in text
    assert "| streaming | 110 | 30.0 | 350 | 360 |" in text
    assert "| streaming-cache | 120 | 30.0 | 340 | 9,000 |" in text
    assert "| in-memory | would not fit in half the free memory |" in text
    assert "4,688 MiB" in text


def test_photo_folder_mixes_sizes_formats_modes_and_broken_files(tmp_path: Path) -> None:
    folder = make_photo_folder(tmp_path / "photos", 12, sizes=(40, 64), broken=2)
    files = sorted(p for p in folder.root.rglob("*") if p.is_file())
    assert len(files) == 14 and {p.parent.name for p in files} == set(folder.classes)
    good = [p for p in files if not p.name.startswith("broken")]
    opened = [Image.open(p) for p in good]
    assert {image.format for image in opened} == {"JPEG", "PNG"}
    assert {image.mode for image in opened} == {"RGB", "L"}
    assert {image.size[0] for image in opened} == {40, 64}
    spec, shape = PreprocessingSpec(color_mode="RGB"), InputSpec(height=16, width=16, channels=3)
    refused = 0
    for path in files:
        try:
            preprocess_file(path, spec, shape)
        except ImageError:
            refused += 1
    assert refused == 2
    truncated = next(p for p in files if p.name.startswith("broken") and p.suffix == ".jpg")
    open_image(truncated.read_bytes())  # its header parses: found only when decoded
