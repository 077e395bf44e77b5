"""Bulk tagging: `python -m client tag` against `hey`, same service, same run (issue 14's target).

The Fashion-MNIST test images are written as PNG files to a folder. One `python -m app` takes at
most `IMAGES_PER_REQUEST` images per request, so the CLI (which asks the server its limit) sends
requests of that size; `hey` posts one multipart body of as many of those PNGs, with the same
concurrency as the CLI's `--concurrency`, as many requests as the CLI needs for the folder. The
two run back to back in each of a few rounds (which goes first alternates), so machine noise
falls on both; the verdict is on the median of the rounds' ratios. Each side is also reported by
its median round, with the CPU the client and the server spent per image (client and server
share the machine, so every client CPU-ms is taken from the server).
"""

from __future__ import annotations

import io
import logging
import math
import re
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks import stats
from benchmarks.load import parse_hey
from benchmarks.service import Service
from benchmarks.tables import fmt, table

logger = logging.getLogger(__name__)

IMAGES_PER_REQUEST = 8
CONCURRENCY = 4  # the CLI's default --concurrency
MIN_RATIO = 0.8
BOUNDARY = "tagger-bench-bulk-boundary"
WARM_UP_REQUESTS = 200
_SUMMARY = re.compile(
    r"tagged (?P<images>\d+) images in (?P<seconds>[\d.]+) s \((?P<rate>[\d.]+) images/s\), "
    r"(?P<errors>\d+) errors"
)


def write_pngs(folder: Path, count: int) -> list[Path]:
    """The first `count` Fashion-MNIST test images as `t10k-NNNNN.png` files in `folder`."""
    from PIL import Image

    from training import fashion
    from training.config import default_fashion_dir

    images, _ = fashion.load_part(default_fashion_dir(), "t10k")
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, pixels in enumerate(images[:count]):
        buffer = io.BytesIO()
        Image.fromarray(pixels[..., 0]).save(buffer, format="PNG")
        path = folder / f"t10k-{index:05d}.png"
        path.write_bytes(buffer.getvalue())
        paths.append(path)
    return paths


def multipart_body(images: Sequence[bytes]) -> bytes:
    """One classify request carrying every image of `images` (field `file`, repeated)."""
    parts = [
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{index}.png"\r\nContent-Type: image/png\r\n\r\n'
        ).encode()
        + image
        + b"\r\n"
        for index, image in enumerate(images)
    ]
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def parse_summary(output: str) -> dict[str, float]:
    """Images, seconds, images/s and errors from the CLI's summary line."""
    match = _SUMMARY.search(output)
    if match is None:
        raise ValueError(f"no `tagged N images in S s (R images/s), E errors` line in {output!r}")
    return {key: float(value) for key, value in match.groupdict().items()}


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _measured(command: list[str], service: Service, images: int) -> tuple[str, dict[str, float]]:
    """Run `command` to its end: its output, wall seconds, client and server CPU ms/image, and
    the server's mean batch (requests arriving together make bigger batches)."""
    metrics_before = service.metrics()
    client_before, server_before = _children_cpu_s(), service.cpu_seconds()
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall_s = time.monotonic() - started
    server_cpu_s = service.cpu_seconds() - server_before
    if done.returncode != 0:
        raise RuntimeError(f"{command[0]} exited {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout, {
        "wall_s": wall_s,
        "client_cpu_ms_per_image": 1000.0 * (_children_cpu_s() - client_before) / images,
        "server_cpu_ms_per_image": 1000.0 * server_cpu_s / images,
        "mean_batch": stats.mean_batch_size(metrics_before, service.metrics()),
    }


def hey_round(service: Service, body: Path, requests: int, concurrency: int) -> dict[str, float]:
    command = ["hey", "-n", str(requests), "-c", str(concurrency), "-m", "POST",
               "-T", f"multipart/form-data; boundary={BOUNDARY}", "-D", str(body),
               service.classify_url]  # fmt: skip
    output, measured = _measured(command, service, requests * IMAGES_PER_REQUEST)
    result = parse_hey(output)
    return {
        **measured,
        "images_per_s": IMAGES_PER_REQUEST * result.get("requests_per_s", math.nan),
        "errors": result.get("errors", math.nan),
    }


def cli_round(
    service: Service, folder: Path, images: int, concurrency: int, out: Path
) -> dict[str, float]:
    out.unlink(missing_ok=True)
    command = [sys.executable, "-m", "client", "tag", str(folder), "--out", str(out),
               "--url", service.base_url, "--model", service.model,
               "--concurrency", str(concurrency)]  # fmt: skip
    output, measured = _measured(command, service, images)
    summary = parse_summary(output)
    if summary["images"] != images:
        raise RuntimeError(f"the CLI tagged {summary['images']:.0f} of {images} images")
    return {
        **measured,
        "images_per_s": summary["rate"],
        "images_per_s_wall": stats.rate(images, measured["wall_s"]),
        "errors": summary["errors"],
    }


def run(
    store_root: Path,
    name: str,
    scratch: Path,
    *,
    images: int,
    concurrency: int = CONCURRENCY,
    rounds: int = 3,
) -> dict[str, Any]:
    """`rounds` turns of hey then the CLI on `images` test PNGs; samples and the verdict."""
    folder = scratch / "catalogue"
    paths = write_pngs(folder, images)
    body = scratch / "bulk-body.bin"
    body.write_bytes(multipart_body([p.read_bytes() for p in paths[:IMAGES_PER_REQUEST]]))
    requests = math.ceil(images / IMAGES_PER_REQUEST)
    settings = {"TAGGER_MAX_IMAGES_PER_REQUEST": str(IMAGES_PER_REQUEST)}
    samples: dict[str, list[dict[str, float]]] = {"hey": [], "cli": []}
    with Service(store_root, name, scratch / "bulk.log", settings) as service:
        hey_round(service, body, WARM_UP_REQUESTS, concurrency)
        for index in range(rounds):
            for side in ("hey", "cli") if index % 2 == 0 else ("cli", "hey"):  # drift falls on both
                if side == "hey":
                    samples["hey"].append(hey_round(service, body, requests, concurrency))
                else:
                    out = scratch / "tags.jsonl"
                    samples["cli"].append(cli_round(service, folder, images, concurrency, out))
            logger.info(
                "bulk round %d: hey %s, CLI %s", index + 1, samples["hey"][-1], samples["cli"][-1]
            )
    return summarise(samples, images=images, concurrency=concurrency)


def summarise(
    samples: Mapping[str, Sequence[Mapping[str, float]]], *, images: int, concurrency: int
) -> dict[str, Any]:
    """Medians per side over the rounds; the CLI/hey ratio of each round (the two ran back to
    back, so the machine's load weighs on both alike), their median, and whether it meets
    MIN_RATIO."""
    medians = {
        side: {key: statistics.median(s[key] for s in runs) for key in runs[0]}
        for side, runs in samples.items()
    }
    ratios = [
        stats.ratio(cli["images_per_s"], hey["images_per_s"])
        for hey, cli in zip(samples["hey"], samples["cli"], strict=True)
    ]
    ratio = statistics.median(ratios)
    return {
        "images": images,
        "images_per_request": IMAGES_PER_REQUEST,
        "concurrency": concurrency,
        "rounds": len(samples["cli"]),
        "samples": {side: list(runs) for side, runs in samples.items()},
        "hey": medians["hey"],
        "cli": medians["cli"],
        "round_ratios": ratios,
        "ratio": ratio,
        "min_ratio": MIN_RATIO,
        "met": bool(ratio >= MIN_RATIO),
    }


def lines(section: Mapping[str, Any]) -> list[str]:
    """The report's section: hey and the CLI side by side, and the verdict."""
    if not section:
        return []
    if "skipped" in section:
        return ["## Bulk tagging: the CLI against hey", "", f"Skipped: {section['skipped']}.", ""]
    hey, cli = section["hey"], section["cli"]
    rows = [
        ["hey", fmt(hey["images_per_s"]), "-", fmt(hey["client_cpu_ms_per_image"], 3),
         fmt(hey["server_cpu_ms_per_image"], 3), fmt(hey.get("mean_batch"), 1),
         fmt(hey["errors"])],
        ["python -m client tag", fmt(cli["images_per_s"]), fmt(cli["images_per_s_wall"]),
         fmt(cli["client_cpu_ms_per_image"], 3), fmt(cli["server_cpu_ms_per_image"], 3),
         fmt(cli.get("mean_batch"), 1), fmt(cli["errors"])],
    ]  # fmt: skip
    headers = ["client", "images/s", "images/s (process wall)", "client CPU ms/image",
               "server CPU ms/image", "server mean batch", "errors"]  # fmt: skip
    verdict = "met" if section["met"] else "NOT met"
    return [
        f"## Bulk tagging: the CLI against hey ({section['images']:,} test PNGs, "
        f"{section['images_per_request']}-image requests, concurrency {section['concurrency']}, "
        f"medians of {section['rounds']} interleaved rounds)",
        "",
        *table(headers, rows),
        f"The CLI through the service tags at {fmt(section['ratio'], 2)}x hey's images/s "
        f"(median of the rounds' ratios, each round's two runs back to back: "
        f"{', '.join(fmt(r, 2) for r in section.get('round_ratios', []))}; "
        f"target >= {section['min_ratio']}): {verdict}.",
        "",
    ]
