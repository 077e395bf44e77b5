"""The CLI's output file: one whole line per image (JSON Lines or CSV), appended and flushed a
chunk at a time, so a killed run leaves only whole rows; `--resume` reads back what is done."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from client.results import ImageResult

FORMATS = (".jsonl", ".csv")
CSV_COLUMNS = ["path", "labels", "model", "version", "error"]


def format_of(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"--out {path}: name it *.jsonl or *.csv (the format follows the name)")
    return suffix


def row(path: str, result: ImageResult) -> dict[str, Any]:
    error = result.error
    return {
        "path": path,
        "labels": [{"label": p.label, "confidence": p.confidence} for p in result.predictions],
        "model": result.model,
        "version": result.version,
        "error": None if error is None else {"code": error.code, "message": error.message},
    }


def _one_line(text: str) -> str:
    return text.replace("\r", " ").replace("\n", " ")


def encode_rows(rows: list[dict[str, Any]], fmt: str) -> bytes:
    """Whole lines, each ending in a newline, in the file's format."""
    if fmt == ".jsonl":
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for r in rows:
        labels = ";".join(f"{x['label']}:{x['confidence']:.6f}" for x in r["labels"])
        error = r["error"]
        error_text = "" if error is None else f"{error['code']}: {error['message']}"
        version = "" if r["version"] is None else r["version"]
        writer.writerow([_one_line(r["path"]), labels, r["model"], version, _one_line(error_text)])
    return buffer.getvalue().encode()


class RowWriter:
    """Appends rows to `path` with one `write` per chunk of whole lines (O_APPEND)."""

    def __init__(self, path: Path, fmt: str) -> None:
        self.fmt = fmt
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if fmt == ".csv" and os.fstat(self._fd).st_size == 0:
            self._write(",".join(CSV_COLUMNS).encode() + b"\n")

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    def write(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            self._write(encode_rows(rows, self.fmt))

    def close(self) -> None:
        os.close(self._fd)


def done_paths(path: Path, fmt: str) -> set[str]:
    """The paths already in an output file, after cutting off a partial last line (a run killed
    mid-write); a missing file has none."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return set()
    end = data.rfind(b"\n") + 1
    if end < len(data):
        with open(path, "r+b") as f:
            f.truncate(end)
        data = data[:end]
    text = data.decode()
    if fmt == ".jsonl":
        return {json.loads(line)["path"] for line in text.splitlines() if line.strip()}
    rows = list(csv.reader(io.StringIO(text)))
    return {r[0] for r in rows[1:] if r}
