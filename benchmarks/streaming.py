"""Streaming vs in-memory input for image folders: peak memory and images/s.

`python -m benchmarks --streaming-only [--streaming-images N] [--streaming-size S]` generates a
folder of N photos (several sizes around S, JPEG/PNG, RGB/greyscale), then measures, each in its
own process so that peak resident memory (VmHWM) is the pipeline's own:
- streaming: the training stream (survey, validation/test decoded to disk, train files decoded
  in parallel) for two passes without a cache, and two passes with `--cache` (the second reads
  decoded pixels back from disk);
- in memory: every file decoded into one array first (what `--data` did before streaming), then
  one pass; skipped with its projected memory when that would not fit in half the machine's.
No model is trained: this is the input pipeline, what bounds memory and feeds the model.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MODES = ("streaming", "streaming-cache", "in-memory")


def decoded_bytes(images: int, size: int, channels: int = 3) -> int:
    """Pixels of `images` decoded to `size`x`size`x`channels` uint8."""
    return images * size * size * channels


def fits_in_memory(images: int, size: int, available_bytes: int) -> bool:
    """Whether the in-memory path's array (plus its copy of the readable ones) fits in half of
    `available_bytes`."""
    return 2 * decoded_bytes(images, size) <= available_bytes // 2


def available_memory_bytes() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def _child(mode: str, folder: Path, size: int, scratch: Path) -> dict[str, Any]:
    """One measurement, in this (fresh) process."""
    import numpy as np

    from training.config import TrainConfig
    from training.datasets import Split, to_tf_dataset

    config = TrainConfig(
        data_dir=folder,
        image_size=(size, size),
        color_mode="RGB",
        cache_dir=scratch / "cache" if mode == "streaming-cache" else None,
    )
    import tensorflow as tf  # noqa: F401  (its own memory is the baseline)

    baseline = _status_kib("VmRSS")
    result: dict[str, Any] = {"mode": mode, "rss_baseline_mib": baseline / 1024}
    started = time.monotonic()
    batch = 128
    if mode == "in-memory":
        from training import image_folder
        from training.datasets import stratified_split

        _, paths, labels = image_folder.scan(folder)
        shape_spec = _spec(config)
        pixels = np.zeros((len(paths), size, size, 3), dtype=np.uint8)

        from concurrent.futures import ThreadPoolExecutor

        decoder = image_folder.SkipLog()

        def one(i: int) -> bool:
            array, ok = image_folder.decode_one(str(paths[i]), *shape_spec, decoder)
            pixels[i] = array
            return ok

        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
            ok = np.fromiter(pool.map(one, range(len(paths))), dtype=bool)
        rng = np.random.default_rng(config.seed)  # the same split as load_dataset's
        rest, _ = stratified_split(labels, config.test_fraction, rng)
        train_pos, _ = stratified_split(labels[rest], config.validation_fraction, rng)
        train = rest[train_pos]
        readable = train[ok[train]]
        split = Split(pixels[readable], labels[readable], readable)
        result["load_s"] = time.monotonic() - started
        result["train_images"] = len(split)
        stream = to_tf_dataset(split, batch, shuffle=True, seed=1, repeat=True)
        passes = 1
    else:
        from training.datasets import load_dataset
        from training.streaming import train_stream

        data = load_dataset(config)
        assert data.streaming is not None
        result["load_s"] = time.monotonic() - started
        result["train_images"] = len(data.train)
        stream = train_stream(data.train, data.streaming.decoder, data.streaming.options, batch, 1)
        passes = 2
    steps = -(-result["train_images"] // batch)
    iterator = iter(stream)
    for number in range(1, passes + 1):
        began = time.monotonic()
        seen = 0
        for _ in range(steps):
            seen += len(next(iterator)[1])
        result[f"pass{number}_images_per_s"] = seen / (time.monotonic() - began)
    result["peak_rss_mib"] = _status_kib("VmHWM") / 1024
    result["peak_over_baseline_mib"] = result["peak_rss_mib"] - result["rss_baseline_mib"]
    result["maxrss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def _spec(config: Any) -> tuple[Any, Any]:
    from model_store.schema import InputSpec, PreprocessingSpec

    height, width = config.image_size
    return PreprocessingSpec(color_mode="RGB"), InputSpec(height=height, width=width, channels=3)


def measure(mode: str, folder: Path, size: int, scratch: Path) -> dict[str, Any]:
    """Run `mode` in a fresh process (so its peak memory is its own) and return its numbers."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [
        sys.executable,
        "-m",
        "benchmarks.streaming",
        mode,
        str(folder),
        str(size),
        str(scratch),
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        return {"mode": mode, "error": done.stderr.strip().splitlines()[-1:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(images: int, size: int, scratch_root: Path | None = None) -> dict[str, Any]:
    """Generate the folder, measure every mode, return the results (JSON-ready)."""
    from benchmarks.photo_folder import make_photo_folder

    with tempfile.TemporaryDirectory(prefix="tagger-streaming-", dir=scratch_root) as scratch:
        root = Path(scratch)
        started = time.monotonic()
        sizes = (size * 3 // 4, size, size * 5 // 4)
        folder = make_photo_folder(root / "photos", images, sizes=sizes, broken=images // 1000)
        generated_s = time.monotonic() - started
        available = available_memory_bytes()
        rows = []
        for mode in MODES:
            if mode == "in-memory" and not fits_in_memory(images, size, available):
                rows.append({"mode": mode, "skipped": "would not fit in half the free memory"})
                continue
            rows.append(measure(mode, folder.root, size, root / mode))
    return {
        "images": images,
        "broken": folder.broken,
        "size": size,
        "source_sizes": list(sizes),
        "generate_s": round(generated_s, 1),
        "decoded_mib": decoded_bytes(images, size) / 2**20,
        "available_mib": available / 2**20,
        "rows": rows,
    }


def markdown(results: dict[str, Any], machine: str) -> str:
    """The results as a table, with the in-memory path's projected memory."""
    lines = [
        f"# Streaming input: {results['images']:,} photos at {results['size']}x"
        f"{results['size']} RGB ({machine})",
        "",
        f"Decoded pixels of the whole folder: {results['decoded_mib']:,.0f} MiB "
        f"(the in-memory path holds them, plus a copy of the readable ones while splitting).",
        "",
        "| input | peak RSS over TF baseline (MiB) | load (s) | pass 1 (images/s) | "
        "pass 2 (images/s) |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in results["rows"]:
        if "skipped" in row or "error" in row:
            why = row.get("skipped") or row.get("error")
            lines.append(f"| {row['mode']} | {why} | | | |")
            continue
        second = row.get("pass2_images_per_s")
        lines.append(
            f"| {row['mode']} | {row['peak_over_baseline_mib']:,.0f} | {row['load_s']:.1f} | "
            f"{row['pass1_images_per_s']:,.0f} | {'' if second is None else f'{second:,.0f}'} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    mode, folder, size, scratch = sys.argv[1:5]
    Path(scratch).mkdir(parents=True, exist_ok=True)
    print(json.dumps(_child(mode, Path(folder), int(size), Path(scratch))))
