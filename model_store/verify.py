"""Integrity checks of one published version: metadata, checksums and (optionally) a real load."""

from __future__ import annotations

import logging
from pathlib import Path

from pydantic import ValidationError

from model_store.checksums import is_safe_relative, servable_files, sha256_file
from model_store.schema import METADATA_FILE, ModelMetadata
from model_store.signature import INPUT_NAME

logger = logging.getLogger(__name__)

REQUIRED_FILE = "saved_model.pb"
REQUIRED_DIR = "variables"
_SUM_TOLERANCE = 1e-3


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


def check_files(version_dir: Path, metadata: ModelMetadata) -> list[str]:
    """Checksummed files present and matching, nothing servable missing or unaccounted for."""
    problems = []
    if not (version_dir / REQUIRED_FILE).is_file():
        problems.append(f"{REQUIRED_FILE} is missing")
    if not (version_dir / REQUIRED_DIR).is_dir():
        problems.append(f"{REQUIRED_DIR}/ is missing")
    if not metadata.files:
        problems.append("metadata.json lists no file checksums")
    for relative, expected in sorted(metadata.files.items()):
        if not is_safe_relative(relative):
            problems.append(f"checksum entry {relative!r} points outside the version")
            continue
        path = version_dir / relative
        if not path.is_file():
            if relative != REQUIRED_FILE:  # already reported above
                problems.append(f"{relative} is missing")
        elif sha256_file(path) != expected:
            problems.append(f"{relative} does not match its checksum (modified or corrupt)")
    for relative in servable_files(version_dir):
        if relative not in metadata.files:
            problems.append(f"{relative} is not covered by the checksums in metadata.json")
    return problems


def check_load(version_dir: Path, metadata: ModelMetadata) -> list[str]:
    """Load the SavedModel and call its signature on zeros of the metadata's input shape."""
    import numpy as np
    import tensorflow as tf  # lazily: the rest of model_store stays light

    try:
        loaded = tf.saved_model.load(str(version_dir))
    except Exception as exc:
        return [f"SavedModel does not load: {type(exc).__name__}: {exc}"]
    if metadata.signature not in loaded.signatures:
        found = ", ".join(sorted(loaded.signatures)) or "none"
        return [f"SavedModel has no signature {metadata.signature!r} (found: {found})"]
    spec = metadata.input
    pixels = tf.zeros([2, spec.height, spec.width, spec.channels], dtype=tf.uint8)
    try:
        outputs = loaded.signatures[metadata.signature](**{INPUT_NAME: pixels})
    except Exception as exc:
        return [
            f"signature {metadata.signature!r} fails on uint8 pixels "
            f"[2, {spec.height}, {spec.width}, {spec.channels}]: {type(exc).__name__}: {exc}"
        ]
    if metadata.output not in outputs:
        return [f"signature output has no {metadata.output!r} (found: {', '.join(outputs)})"]
    probabilities = np.asarray(outputs[metadata.output].numpy())
    expected = (2, len(metadata.labels))
    if probabilities.shape != expected:
        return [
            f"{metadata.output} has shape {list(probabilities.shape)}, expected "
            f"[batch, {len(metadata.labels)}] for {len(metadata.labels)} labels"
        ]
    if not np.all(np.isfinite(probabilities)) or np.any(probabilities < 0):
        return [f"{metadata.output} contains negative or non-finite values"]
    if np.any(np.abs(probabilities.sum(axis=-1) - 1.0) > _SUM_TOLERANCE):
        return [f"{metadata.output} rows do not sum to 1"]
    return []


def verify_version(version_dir: Path, name: str, version: int, load: bool) -> list[str]:
    """Every problem found with a version directory; an empty list means it is sound."""
    try:
        metadata = read_metadata(version_dir)
    except (OSError, ValueError) as exc:
        return [f"metadata.json is missing or unreadable: {describe_error(exc)}"]
    problems = []
    if metadata.name != name:
        problems.append(f"metadata.json names model {metadata.name!r}, not {name!r}")
    if metadata.version != version:
        problems.append(f"metadata.json says version {metadata.version}, not {version}")
    problems += check_files(version_dir, metadata)
    if load and not problems:
        problems += check_load(version_dir, metadata)
    logger.debug("verified %s: %d problem(s)", version_dir, len(problems))
    return problems
