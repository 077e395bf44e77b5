"""A published version's evaluation/, read for serving: report.json and the files it lists.

Only the names in report.json's `figures` (and report.md) can be read, and only as regular
files inside evaluation/ itself: a name with a separator, `..`, an absolute path or a symlink
that leads elsewhere is refused like an unlisted name, whatever the report says.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from model_store.errors import EvaluationNotFound
from model_store.schema import EVALUATION_DIR
from model_store.store import ModelStore

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
# Read whole into memory for a response: a report far larger is not one training wrote.
MAX_REPORT_BYTES = 4 * 1024 * 1024


def read_report(store: ModelStore, name: str, version: int) -> dict[str, Any]:
    """The version's evaluation/report.json; `EvaluationNotFound` if it has none readable."""
    try:
        path = _inside(store, name, version, REPORT_JSON)
    except EvaluationNotFound as exc:
        raise EvaluationNotFound(
            f"{name} version {version} has no evaluation ({EVALUATION_DIR}/{REPORT_JSON})"
        ) from exc
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_REPORT_BYTES + 1)
        if len(raw) > MAX_REPORT_BYTES:
            raise ValueError(f"larger than {MAX_REPORT_BYTES} bytes")
        report = json.loads(raw)
    except (OSError, ValueError) as exc:
        raise EvaluationNotFound(
            f"{name} version {version} has no readable {EVALUATION_DIR}/{REPORT_JSON}: {exc}"
        ) from exc
    if not isinstance(report, dict):
        raise EvaluationNotFound(f"{name} version {version}: {REPORT_JSON} is not a JSON object")
    return report


def listed_files(report: dict[str, Any]) -> list[str]:
    """The files a report makes readable: its `figures` that are plain names, and report.md."""
    figures = report.get("figures")
    names = [f for f in figures if isinstance(f, str)] if isinstance(figures, list) else []
    return [n for n in [*names, REPORT_MD] if _plain_name(n)]


def evaluation_file(store: ModelStore, name: str, version: int, file: str) -> Path:
    """The path of `file` in the version's evaluation/, if report.json lists it and it is a
    regular file there; else `EvaluationNotFound` naming the file and the version."""
    listed = listed_files(read_report(store, name, version))
    if file not in listed:
        raise EvaluationNotFound(
            f"{name} version {version} has no evaluation file {file!r}; "
            f"its evaluation lists {', '.join(listed)}"
        )
    return _inside(store, name, version, file)


def _plain_name(file: str) -> bool:
    return (
        bool(file)
        and file not in (".", "..")
        and "/" not in file
        and "\\" not in file
        and "\x00" not in file
    )


def _inside(store: ModelStore, name: str, version: int, file: str) -> Path:
    """`evaluation/<file>` of the version, resolved; refused unless it is a regular file whose
    real path is directly in the version's real evaluation/ (no symlink out)."""
    directory = store.version_dir(name, version) / EVALUATION_DIR
    missing = EvaluationNotFound(f"{name} version {version} has no evaluation file {file!r}")
    if not _plain_name(file):
        raise missing
    try:
        real_dir = directory.resolve(strict=True)
        real = (directory / file).resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        raise missing from exc
    if real.parent != real_dir or not real.is_file() or os.path.islink(directory / file):
        raise missing
    return real
