"""sha256 checksums of a version's servable files (everything but metadata.json and evaluation/)."""

from __future__ import annotations

import hashlib
from pathlib import Path, PurePosixPath

from model_store.schema import EVALUATION_DIR, METADATA_FILE

_CHUNK = 1 << 20
# Scratch entries replace_evaluation may leave in a version directory; never servable.
SCRATCH_PREFIX = ".evaluation-"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def is_checksummed(relative: str) -> bool:
    """Whether a path (relative to the version directory, '/'-separated) is covered by `files`."""
    top = relative.split("/", 1)[0]
    return not (
        relative == METADATA_FILE or top == EVALUATION_DIR or top.startswith(SCRATCH_PREFIX)
    )


def servable_files(version_dir: Path) -> list[str]:
    """Relative paths of every regular file under `version_dir` that checksums cover, sorted."""
    found = []
    for path in version_dir.rglob("*"):
        relative = path.relative_to(version_dir).as_posix()
        if path.is_file() and not path.is_symlink() and is_checksummed(relative):
            found.append(relative)
    return sorted(found)


def compute_checksums(version_dir: Path) -> dict[str, str]:
    """`{relative path: sha256}` for every servable file under `version_dir`."""
    return {path: sha256_file(version_dir / path) for path in servable_files(version_dir)}


def is_safe_relative(relative: str) -> bool:
    """A checksum entry must name a path inside the version directory."""
    pure = PurePosixPath(relative)
    if not relative or "\\" in relative:
        return False
    return not pure.is_absolute() and ".." not in pure.parts
