"""`python -m client tag` through a real server and in process: same labels, the evaluation's
accuracy, broken files recorded, and a run killed with SIGKILL finished by --resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
import pytest

import client.http
from client.cli import main
from client.output import done_paths
from client.transport import StreamTransport
from tests.app.app_helpers import ModelGate, Server, make_settings, run_server
from tests.client.client_helpers import BULK_IMAGES, Catalogue

ROOT = Path(__file__).resolve().parents[2]
KILL_AFTER_ROWS = 40
CLI_TIMEOUT_S = 60


def rows_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_through_the_service_and_in_process_every_file_gets_the_same_label(
    server: Server, store_root: Path, bulk_catalogue: Catalogue, tmp_path: Path, capsys
) -> None:
    catalogue = bulk_catalogue
    via_http, in_process = tmp_path / "http.jsonl", tmp_path / "store.jsonl"
    common = ["tag", str(catalogue.root), "--top-k", "2"]
    assert main([*common, "--out", str(via_http), "--url", server.url, "--concurrency", "4"]) == 0
    assert f"tagged {BULK_IMAGES} images" in capsys.readouterr().out
    assert main([*common, "--out", str(in_process), "--store", str(store_root)]) == 0

    served = {r["path"]: r for r in rows_of(via_http)}
    local = {r["path"]: r for r in rows_of(in_process)}
    assert len(served) == len(local) == len(catalogue.paths) == len(rows_of(via_http))
    assert set(served) == set(local) == set(catalogue.paths)
    for path in catalogue.paths:
        a, b = served[path], local[path]
        assert (a["model"], a["version"], a["error"]) == ("fashion", 1, None)
        assert [x["label"] for x in a["labels"]] == [x["label"] for x in b["labels"]], path
        for x, y in zip(a["labels"], b["labels"], strict=True):
            assert x["confidence"] == pytest.approx(y["confidence"], abs=1e-5)

    labels = server.manager.served.model.labels
    predicted = np.array([labels.index(served[p]["labels"][0]["label"]) for p in catalogue.paths])
    assert np.mean(predicted == catalogue.labels) == catalogue.evaluation_accuracy()


def test_broken_files_are_recorded_and_the_rest_tagged(
    server: Server, store_root: Path, catalogue: Catalogue, tmp_path: Path, capsys
) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    for path in catalogue.paths[:3]:
        (folder / Path(path).name).write_bytes(Path(path).read_bytes())
    (folder / "cut.png").write_bytes(Path(catalogue.paths[3]).read_bytes()[:60])
    (folder / "empty.png").write_bytes(b"")
    (folder / "text.jpg").write_text("not a picture")
    (folder / "notes.txt").write_text("not an image file name: skipped")

    errors = {}
    for where in (["--url", server.url], ["--store", str(store_root)]):
        out = tmp_path / f"{where[0][2:]}.csv"
        assert main(["tag", str(folder), "--out", str(out), *where]) == 0
        lines = out.read_text().splitlines()
        assert lines[0] == "path,labels,model,version,error"
        rows = {line.split(",")[0]: line for line in lines[1:]}
        assert len(rows) == len(lines) - 1 == 6  # notes.txt is not an image name
        errors[where[0]] = {
            Path(p).name: line.rsplit(",", 1)[1].split(":")[0]
            for p, line in rows.items()
            if not line.endswith(",")
        }
        assert "3 errors" in capsys.readouterr().out
    assert errors["--url"] == errors["--store"]
    assert set(errors["--url"]) == {"cut.png", "empty.png", "text.jpg"}


class PeakTransport(StreamTransport):
    """The real transport, noting the most requests it ever had in flight at once."""

    def __init__(self) -> None:
        super().__init__()
        self.in_flight = self.peak = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            return await super().handle_async_request(request)
        finally:
            self.in_flight -= 1


def test_chunks_read_ahead_never_put_more_than_concurrency_requests_in_flight(
    server: Server, catalogue: Catalogue, tmp_path: Path, monkeypatch
) -> None:
    observed = PeakTransport()
    monkeypatch.setattr(client.http, "_lean_transport", lambda url: observed)
    out = tmp_path / "tags.jsonl"
    assert main(["tag", str(catalogue.root), "--out", str(out), "--url", server.url,
                 "--concurrency", "3"]) == 0  # fmt: skip
    assert len(rows_of(out)) == len(catalogue.paths)
    assert observed.peak == 3  # reached, never passed, with READY_PER_SLOT chunks per slot


class SlowModel(ModelGate):
    """Every model call takes a while, so a run can be killed part-way."""

    def __call__(self, batch: np.ndarray) -> None:
        time.sleep(0.05)
        super().__call__(batch)


def test_a_run_killed_with_sigkill_then_resumed_tags_every_file_exactly_once(
    store_root: Path, catalogue: Catalogue, tmp_path: Path
) -> None:
    out = tmp_path / "tags.jsonl"
    settings = make_settings(store_root, max_images_per_request=8, max_batch_size=8)
    with run_server(settings, gate=SlowModel()) as server:
        command = [sys.executable, "-m", "client", "tag", str(catalogue.root), "--out", str(out)]
        command += ["--url", server.url, "--concurrency", "2"]
        run = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + CLI_TIMEOUT_S
            while not out.exists() or out.read_bytes().count(b"\n") < KILL_AFTER_ROWS:
                assert run.poll() is None, run.stderr.read().decode()
                assert time.monotonic() < deadline, "the CLI wrote no rows in time"
                time.sleep(0.01)
            os.kill(run.pid, signal.SIGKILL)
        finally:
            run.wait(CLI_TIMEOUT_S)
            run.stderr.close()
        assert run.returncode == -signal.SIGKILL
        killed_rows = out.read_bytes()
        assert killed_rows.endswith(b"\n")  # whole rows only
        assert KILL_AFTER_ROWS <= killed_rows.count(b"\n") < len(catalogue.paths)

        resumed = subprocess.run(
            [*command, "--resume"], cwd=ROOT, capture_output=True, text=True, timeout=CLI_TIMEOUT_S
        )
        assert resumed.returncode == 0, resumed.stderr
        assert "resuming: " in resumed.stderr and "images/s" in resumed.stderr
    counts = Counter(row["path"] for row in rows_of(out))
    assert set(counts) == set(catalogue.paths)
    assert set(counts.values()) == {1}


@pytest.mark.parametrize("fmt", [".jsonl", ".csv"])
def test_resume_cuts_off_a_partial_last_row(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"tags{fmt}"
    if fmt == ".jsonl":
        out.write_text('{"path": "a.png"}\n{"path": "b.png"}\n{"path": "c.p')
    else:
        out.write_text("path,labels,model,version,error\na.png,,,,\nb.png,,,,\nc.p")
    assert done_paths(out, fmt) == {"a.png", "b.png"}
    assert out.read_text().endswith("b.png,,,,\n" if fmt == ".csv" else '"b.png"}\n')


def test_an_existing_output_is_not_overwritten_without_resume(tmp_path: Path, capsys) -> None:
    out = tmp_path / "tags.jsonl"
    out.write_text('{"path": "a.png"}\n')
    assert main(["tag", str(tmp_path), "--out", str(out), "--url", "http://127.0.0.1:9"]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["tag", str(tmp_path), "--out", str(tmp_path / "tags.txt")]) == 2
