"""Integrity checks of one published version: metadata, checksums and (optionally) real loads
of its SavedModel and model.onnx."""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from model_store.checksums import is_safe_relative, servable_files, sha256_file
from model_store.onnx_model import (
    PARITY_TOLERANCE,
    compare,
    load_onnx,
    onnxruntime_available,
    run_onnx,
)
from model_store.schema import METADATA_FILE, ModelMetadata
from model_store.signature import INPUT_NAME, ONNX_FILE, OUTPUT_NAME

logger = logging.getLogger(__name__)

REQUIRED_FILE = "saved_model.pb"
REQUIRED_DIR = "variables"
_SUM_TOLERANCE = 1e-3
_PROBES = 8  # images model.onnx and the SavedModel are compared on


def describe_error(exc: Exception) -> str:
    """A one-line description of a read or validation failure."""
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "document"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        return f"{where}: {first['msg']}{more}"
    return f"{type(exc).__name__}: {exc}" if isinstance(exc, OSError) else str(exc)


def read_metadata(version_dir: Path) -> ModelMetadata:
    """Parse `<version_dir>/metadata.json` (raises OSError or pydantic's ValidationError)."""
    return ModelMetadata.model_validate_json((version_dir / METADATA_FILE).read_bytes())


def check_files(
    version_dir: Path, metadata: ModelMetadata, exclude: Collection[str] = ()
) -> list[str]:
    """Checksummed files present and matching, nothing servable missing or unaccounted for.

    Files in `exclude` are not looked at (a server checks model.onnx on its own, with
    `check_file`, so that a damaged one costs only the ONNX Runtime path).
    """
    problems = []
    if not (version_dir / REQUIRED_FILE).is_file():
        problems.append(f"{REQUIRED_FILE} is missing")
    if not (version_dir / REQUIRED_DIR).is_dir():
        problems.append(f"{REQUIRED_DIR}/ is missing")
    if not metadata.files:
        problems.append("metadata.json lists no file checksums")
    for relative, expected in sorted(metadata.files.items()):
        if relative in exclude:
            continue
        if not is_safe_relative(relative):
            problems.append(f"checksum entry {relative!r} points outside the version")
            continue
        if relative == REQUIRED_FILE and not (version_dir / relative).is_file():
            continue  # reported above
        problem = check_file(version_dir, relative, expected)
        if problem is not None:
            problems.append(problem)
    for relative in servable_files(version_dir):
        if relative not in metadata.files and relative not in exclude:
            problems.append(f"{relative} is not covered by the checksums in metadata.json")
    if metadata.onnx is not None and ONNX_FILE not in metadata.files and ONNX_FILE not in exclude:
        problems.append(f"metadata.json records an ONNX export but no {ONNX_FILE} checksum")
    return problems


def check_file(version_dir: Path, relative: str, expected: str) -> str | None:
    """The problem with one checksummed file (missing, or not matching `expected`), if any."""
    path = version_dir / relative
    if not path.is_file():
        return f"{relative} is missing"
    if sha256_file(path) != expected:
        return f"{relative} does not match its checksum (modified or corrupt)"
    return None


def check_load(version_dir: Path, metadata: ModelMetadata) -> list[str]:
    """Load and call every artifact of the version with the runtimes installed here: the
    SavedModel with TensorFlow; model.onnx with ONNX Runtime, and against the SavedModel when
    both are installed."""
    problems: list[str] = []
    signature = None
    if _installed("tensorflow"):
        signature, problems = _check_saved_model(version_dir, metadata)
    else:
        logger.warning("TensorFlow is not installed: %s was not loaded", REQUIRED_FILE)
    if (version_dir / ONNX_FILE).is_file() and onnxruntime_available():
        problems += _check_onnx(version_dir, metadata, signature)
    return problems


def loads_checked(version_dir: Path) -> list[str]:
    """What `check_load` runs for this version here (it depends on what is installed)."""
    tensorflow = _installed("tensorflow")
    checked = ["SavedModel load"] if tensorflow else []
    if (version_dir / ONNX_FILE).is_file() and onnxruntime_available():
        checked.append(f"{ONNX_FILE} load")
        if tensorflow:
            checked.append(f"{ONNX_FILE} agreement with the SavedModel")
    return checked


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _check_saved_model(version_dir: Path, metadata: ModelMetadata) -> tuple[Any, list[str]]:
    """Load the SavedModel and call its signature on zeros of the metadata's input shape;
    returns the signature when it answers soundly."""
    import tensorflow as tf  # lazily: the rest of model_store stays light

    try:
        loaded = tf.saved_model.load(str(version_dir))
    except Exception as exc:
        return None, [f"SavedModel does not load: {type(exc).__name__}: {exc}"]
    if metadata.signature not in loaded.signatures:
        found = ", ".join(sorted(loaded.signatures)) or "none"
        return None, [f"SavedModel has no signature {metadata.signature!r} (found: {found})"]
    signature = loaded.signatures[metadata.signature]
    signature._loaded_module = loaded  # keep the variables alive as long as the function
    spec = metadata.input
    pixels = tf.zeros([2, spec.height, spec.width, spec.channels], dtype=tf.uint8)
    try:
        outputs = signature(**{INPUT_NAME: pixels})
    except Exception as exc:
        return None, [
            f"signature {metadata.signature!r} fails on uint8 pixels "
            f"[2, {spec.height}, {spec.width}, {spec.channels}]: {type(exc).__name__}: {exc}"
        ]
    if metadata.output not in outputs:
        return None, [f"signature output has no {metadata.output!r} (found: {', '.join(outputs)})"]
    probabilities = outputs[metadata.output].numpy()
    problems = _check_probabilities(metadata.output, probabilities, len(pixels), metadata)
    return (None if problems else signature), problems


def _check_onnx(version_dir: Path, metadata: ModelMetadata, signature: Any) -> list[str]:
    """Load model.onnx, call it on a few images and, given the SavedModel's `signature`,
    require the agreement publishing required."""
    spec = metadata.input
    images = _probe_images(spec.height, spec.width, spec.channels)
    try:
        probabilities = run_onnx(load_onnx(version_dir / ONNX_FILE, intra_op_threads=1), images)
    except Exception as exc:  # onnxruntime's errors share no public base class
        return [f"{ONNX_FILE} does not load or run in ONNX Runtime: {' '.join(str(exc).split())}"]
    problems = _check_probabilities(
        f"{ONNX_FILE} {OUTPUT_NAME}", probabilities, len(images), metadata
    )
    if problems or signature is None:
        return problems
    import tensorflow as tf

    expected = signature(**{INPUT_NAME: tf.constant(images)})[metadata.output].numpy()
    tolerance = metadata.onnx.tolerance if metadata.onnx else PARITY_TOLERANCE
    parity = compare(expected, probabilities)
    if not parity.holds(tolerance):
        return [f"{ONNX_FILE} disagrees with the SavedModel: {parity.describe(tolerance)}"]
    return []


def _probe_images(height: int, width: int, channels: int) -> np.ndarray:
    """Black, white and seeded noise images: the same few every time."""
    noise = np.random.default_rng(0).integers(0, 256, (_PROBES - 2, height, width, channels))
    plain = np.stack([np.zeros((height, width, channels)), np.full((height, width, channels), 255)])
    return np.concatenate([plain, noise]).astype(np.uint8)


def _check_probabilities(
    name: str, probabilities: np.ndarray, rows: int, metadata: ModelMetadata
) -> list[str]:
    """One row per image over the metadata's labels, each a probability distribution."""
    probabilities = np.asarray(probabilities)
    classes = len(metadata.labels)
    if probabilities.shape != (rows, classes):
        return [
            f"{name} has shape {list(probabilities.shape)}, expected "
            f"[batch, {classes}] for {classes} labels"
        ]
    if not np.all(np.isfinite(probabilities)) or np.any(probabilities < 0):
        return [f"{name} contains negative or non-finite values"]
    if np.any(np.abs(probabilities.sum(axis=-1) - 1.0) > _SUM_TOLERANCE):
        return [f"{name} rows do not sum to 1"]
    return []


def verify_version(
    version_dir: Path, name: str, version: int, load: bool, exclude: Collection[str] = ()
) -> list[str]:
    """Every problem found with a version directory (but the files in `exclude`, which
    `check_files` skips); an empty list means it is sound."""
    try:
        metadata = read_metadata(version_dir)
    except (OSError, ValueError) as exc:
        return [f"metadata.json is missing or unreadable: {describe_error(exc)}"]
    problems = []
    if metadata.name != name:
        problems.append(f"metadata.json names model {metadata.name!r}, not {name!r}")
    if metadata.version != version:
        problems.append(f"metadata.json says version {metadata.version}, not {version}")
    problems += check_files(version_dir, metadata, exclude)
    if load and not problems:
        problems += check_load(version_dir, metadata)
    logger.debug("verified %s: %d problem(s)", version_dir, len(problems))
    return problems
