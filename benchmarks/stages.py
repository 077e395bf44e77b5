"""Where a request's CPU time goes: `python -m benchmarks.stages [--app-dir DIR] [--workers N]`.

Runs `python -m app` (from `--app-dir`, e.g. an older checkout, to compare before and after) on
the store's model, drives it with `hey` (64 clients, one 28x28 PNG per multipart request),
samples every thread of the server with py-spy meanwhile, and sorts each sampled stack into the
stage it belongs to (HTTP parsing, routing and middleware, dependencies, multipart, decoding,
batch hand-off, model, response, event loop). A stage's cost is its share of the busy samples
times the server's CPU ms per request over the same window (from /proc). Threads waiting for
work are not counted. Prints a Markdown table; needs `hey` and `py-spy` (the dev extra).
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from benchmarks import protocols, stats
from benchmarks.raw import sample_images
from benchmarks.service import Service, child_pids, process_cpu_seconds
from benchmarks.tables import fmt, table
from model_store import default_store_root

# (stage, functions that put a sample in it: a qualified name, or a class prefix ending in
# "."); the first stage with such a frame in the stack wins.
STAGES: tuple[tuple[str, frozenset[str]], ...] = (
    ("model", frozenset({"Session.run", "LoadedModel.predict", "Batcher._predict_all"})),
    ("decode + preprocess", frozenset({"decode_all", "preprocess_bytes", "preprocess_image"})),
    ("multipart", frozenset({"read_uploads", "file_parts", "ClassifyFastPath._uploads"})),
    ("response", frozenset({"_response", "Response.__call__", "RequestResponseCycle.send"})),
    (
        "batch hand-off",
        frozenset(
            {
                "Batcher.",
                "BaseEventLoop.run_in_executor",
                "_WorkItem.run",
                "BaseEventLoop.call_soon_threadsafe",
            }
        ),
    ),
    ("dependencies", frozenset({"solve_dependencies"})),
    ("routing + middleware", frozenset({"RequestResponseCycle.run_asgi"})),
    ("HTTP parsing", frozenset({"HttpToolsProtocol.", "TaggerHttpProtocol."})),
)
OTHER = "event loop + other"
# A thread-pool thread blocked on its queue is sampled as busy by py-spy; it is not work.
_IDLE = frozenset({"_worker", "Condition.wait", "Queue.get", "Event.wait"})


def _function(frame: str) -> str:
    """py-spy's "name (file:line)" -> name."""
    return frame.split(" (", 1)[0]


def _matches(name: str, markers: frozenset[str]) -> bool:
    return name in markers or any(m.endswith(".") and name.startswith(m) for m in markers)


def stage_of(frames: Sequence[str]) -> str | None:
    """The stage a stack (root first) belongs to; None for an idle thread."""
    names = [_function(frame) for frame in frames]
    if names and names[-1] in _IDLE:
        return None
    for stage, markers in STAGES:
        if any(_matches(name, markers) for name in names):
            return stage
    return OTHER


def stage_shares(raw_lines: Iterable[str]) -> dict[str, float]:
    """py-spy `--format raw` lines ("frame;frame;... count") -> each stage's share of busy
    samples (summing to 1)."""
    counts: collections.Counter[str] = collections.Counter()
    for line in raw_lines:
        line = line.rstrip()
        if not line:
            continue
        stack, _, count = line.rpartition(" ")
        stage = stage_of(stack.split(";"))
        if stage is not None:
            counts[stage] += int(count)
    total = sum(counts.values())
    return {stage: n / total for stage, n in counts.items()} if total else {}


def measure(app_dir: Path, store: Path, model: str, workers: int, seconds: float) -> dict:
    """Serve from `app_dir`, load it with hey while py-spy samples; shares and CPU ms/request."""
    request = protocols.upload_request(model, sample_images()["png 28x28"])
    with tempfile.TemporaryDirectory(prefix="tagger-stages-") as scratch:
        settings = {"TAGGER_WORKERS": str(workers)}
        log = Path(scratch) / "service.log"
        with Service(store, model, log, settings, app_dir=app_dir) as service:
            if workers > 1:  # the other workers listen once ready
                service.wait_for_workers(workers)
            body = Path(scratch) / "body.bin"
            body.write_bytes(request.body)
            hey = ["hey", "-c", "64", "-m", "POST", "-T", request.content_type, "-D", str(body)]
            url = service.base_url + request.path
            subprocess.run([*hey, "-z", "2s", url], capture_output=True, check=True)  # warm-up
            # The processes that serve: the workers, not their supervisor.
            pids = child_pids(service.pid) if workers > 1 else [service.pid]
            load = subprocess.Popen([*hey, "-z", f"{seconds + 2:g}s", url], stdout=subprocess.PIPE,
                                    text=True)  # fmt: skip
            time.sleep(1.0)
            cpu_before = sum(process_cpu_seconds(p) for p in pids)
            answered_before = _answered(service)
            spies = [
                subprocess.Popen(["py-spy", "record", "-p", str(p), "-d", f"{seconds:g}", "-r",
                                  "200", "--format", "raw", "-o", f"{scratch}/spy-{p}.txt"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                for p in pids
            ]  # fmt: skip
            for spy in spies:
                spy.wait()
            cpu_ms = 1000 * (sum(process_cpu_seconds(p) for p in pids) - cpu_before)
            answered = _answered(service) - answered_before
            load.communicate()
            lines: list[str] = []
            for p in pids:
                lines += Path(f"{scratch}/spy-{p}.txt").read_text().splitlines()
    return {"shares": stage_shares(lines), "cpu_ms_per_request": cpu_ms / max(1.0, answered),
            "requests": answered}  # fmt: skip


def _answered(service: Service) -> float:
    return stats.metric_total(service.metrics(), "tagger_requests_total", status="200")


def lines(results: dict[str, dict]) -> list[str]:
    """One column per measured tree: each stage's CPU ms per request, and the total."""
    names = list(results)
    stages = [stage for stage, _ in STAGES] + [OTHER]
    rows = [
        (stage, *(fmt(r["shares"].get(stage, 0.0) * r["cpu_ms_per_request"], 3)
                  for r in results.values()))
        for stage in stages
    ]  # fmt: skip
    rows.append(
        ("total CPU ms/request", *(fmt(r["cpu_ms_per_request"], 3) for r in results.values()))
    )
    return table(["stage", *names], rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stages", description=__doc__)
    parser.add_argument(
        "--app-dir",
        type=Path,
        action="append",
        default=None,
        help="a checkout to serve from (repeat to compare; default: this one)",
    )
    parser.add_argument("--store", type=Path, default=None, help="default: $TAGGER_MODEL_STORE")
    parser.add_argument("--model", default=os.environ.get("TAGGER_MODEL_NAME", "fashion"))
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3, help="runs per checkout, alternating")
    args = parser.parse_args(argv)
    store = (args.store or default_store_root()).resolve()
    dirs = args.app_dir or [Path.cwd()]
    runs: dict[str, list[dict]] = {str(d): [] for d in dirs}
    for round_index in range(args.rounds):  # checkouts take turns; who goes first alternates
        for d in dirs if round_index % 2 == 0 else dirs[::-1]:
            runs[str(d)].append(measure(d.resolve(), store, args.model, args.workers, args.seconds))
    print("\n".join(lines({name: median_run(each) for name, each in runs.items()})))
    return 0


def median_run(runs: Sequence[dict]) -> dict:
    """Per stage, the median of its CPU ms per request over the runs (as one run's shares)."""
    total = statistics.median(r["cpu_ms_per_request"] for r in runs)
    stages = {stage for r in runs for stage in r["shares"]}
    costs = {
        stage: statistics.median(
            r["shares"].get(stage, 0.0) * r["cpu_ms_per_request"] for r in runs
        )
        for stage in stages
    }
    return {"shares": {stage: cost / total for stage, cost in costs.items()},
            "cpu_ms_per_request": total}  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
