"""Run in a subprocess by test_streaming.py: train a small model on an image folder through the
streaming path, publish it, and print one JSON line with the peak memory of loading + training.

`python streaming_child.py DATA WARMUP STORE SIZE` (the repository root on PYTHONPATH). A
first run on the small folder WARMUP pays TensorFlow's one-time costs (kernels, tracing, the
allocator's pools); the peak is then reset, so what it measures is what the data set adds.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def status_kib(field: str) -> int:
    """A `/proc/self/status` field (VmRSS: resident now, VmHWM: the peak so far) in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise KeyError(field)


def main(data: Path, warmup: Path, store_root: Path, size: int) -> None:
    import tensorflow  # noqa: F401  (its own memory is not the data's)

    from model_store import ModelStore
    from training.config import ModelConfig
    from training.datasets import load_dataset
    from training.pipeline import publish_trained
    from training.profiles import get_profile
    from training.train import fit

    tiny = get_profile("tiny")
    config = tiny.model_copy(
        update={
            "data_dir": data,
            "image_size": (size, size),
            "color_mode": "RGB",
            "batch_size": 16,
            "shuffle_buffer": 64,
            # tiny, narrowed: the test is about the input pipeline, not the network's compute
            "model": ModelConfig.model_validate(
                tiny.model.model_dump() | {"block_filters": (4,), "dense_units": 16}
            ),
        }
    )
    fit(
        config.model_copy(update={"data_dir": warmup}),
        load_dataset(config.model_copy(update={"data_dir": warmup})),
        verbose=0,
    )
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current VmRSS
    before = status_kib("VmRSS")
    data_set = load_dataset(config)
    result = fit(config, data_set, verbose=0)
    peak = status_kib("VmHWM")
    metadata = publish_trained(config, ModelStore(store_root), "catalogue", data_set, result)
    print(
        json.dumps(
            {
                "rss_before_kib": before,
                "peak_training_kib": peak,
                "labels": metadata.labels,
                "splits": metadata.dataset.splits,
                "version": metadata.version,
            }
        )
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]))
