"""The bulk-tagging comparison's pure parts: hey's request body, the CLI's summary line read
back, medians and the verdict against issue 14's 0.8, and the report section."""

from __future__ import annotations

import time
from collections import Counter
from email.parser import BytesParser
from pathlib import Path

import pytest

from benchmarks import bulk
from benchmarks.__main__ import ONLY_PARTS, parse_args
from client.cli import Progress, _summary


def test_the_hey_body_carries_every_image_as_a_file_part() -> None:
    images = [f"png {index}".encode() * (index + 1) for index in range(bulk.IMAGES_PER_REQUEST)]
    body = bulk.multipart_body(images)
    header = f"Content-Type: multipart/form-data; boundary={bulk.BOUNDARY}\r\n\r\n".encode()
    message = BytesParser().parsebytes(header + body)
    parts = message.get_payload()
    assert [part.get_payload(decode=True) for part in parts] == images
    assert {part.get_param("name", header="content-disposition") for part in parts} == {"file"}


def test_the_summary_line_the_cli_prints_is_read_back(capsys, tmp_path: Path) -> None:
    progress = Progress(2000, open(tmp_path / "progress", "w"))  # noqa: SIM115
    progress.started = time.monotonic() - 2.0
    progress.add(1997, 3)
    _summary(progress, Counter({"Bag": 1997}), Counter({"undecodable_image": 3}), tmp_path)
    progress.stream.close()
    parsed = bulk.parse_summary(capsys.readouterr().out)
    assert parsed["images"] == 1997 and parsed["errors"] == 3
    assert parsed["seconds"] == pytest.approx(2.0, abs=0.2)
    assert parsed["rate"] == pytest.approx(1997 / 2.0, rel=0.1)
    with pytest.raises(ValueError, match="tagged N images"):
        bulk.parse_summary("error: could not reach the service")


def _sample(images_per_s: float) -> dict[str, float]:
    return {"images_per_s": images_per_s, "images_per_s_wall": images_per_s * 0.9,
            "wall_s": 10.0, "client_cpu_ms_per_image": 0.1, "server_cpu_ms_per_image": 0.5,
            "mean_batch": 24.0, "errors": 0.0}  # fmt: skip


def test_the_verdict_is_on_the_median_of_the_rounds_paired_ratios() -> None:
    hey = [_sample(1000.0), _sample(2000.0), _sample(900.0)]
    # Each round's CLI ran beside its hey: 0.8, 0.5 (a loaded moment for both), 0.9.
    met = bulk.summarise(
        {"hey": hey, "cli": [_sample(800.0), _sample(1000.0), _sample(810.0)]},
        images=10_000,
        concurrency=4,
    )
    assert met["hey"]["images_per_s"] == 1000.0 and met["cli"]["images_per_s"] == 810.0
    assert met["round_ratios"] == pytest.approx([0.8, 0.5, 0.9])
    assert met["ratio"] == pytest.approx(0.8) and met["met"] and met["rounds"] == 3
    missed = bulk.summarise(
        {"hey": hey, "cli": [_sample(790.0), _sample(1580.0), _sample(711.0)]},
        images=10_000,
        concurrency=4,
    )
    assert not missed["met"] and missed["ratio"] == pytest.approx(0.79)
    text = "\n".join(bulk.lines(missed))
    assert "10,000 test PNGs, 8-image requests, concurrency 4, medians of 3" in text
    assert "| python -m client tag | 790 | 711 | 0.100 | 0.500 | 24.0 | 0 |" in text
    assert "at 0.79x hey's images/s (median of the rounds' ratios" in text
    assert "0.79, 0.79, 0.79; target >= 0.8): NOT met." in text


def test_skipped_and_absent_sections() -> None:
    assert bulk.lines({}) == []
    assert "Skipped: hey" in "\n".join(bulk.lines({"skipped": "hey is not on PATH"}))


def test_client_only_is_a_part_of_its_own() -> None:
    assert "client" in ONLY_PARTS
    args = parse_args(["--client-only", "--client-images", "2000"])
    assert args.client_only and args.client_images == 2000 and not args.protocols_only
