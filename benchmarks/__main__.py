"""`python -m benchmarks [--quick] [--soak] [--no-hostile | --hostile-only | --protocols-only |
--runtimes-only | --workers-only | --fairness-only | --client-only | --streaming-only]
[--out DIR] ...`.

Runs, in order: the raw model in process in TensorFlow and ONNX Runtime side by side, and
preprocessing; `python -m app` under a concurrency sweep (1 and 8 images per request); the same
with TAGGER_MAX_BATCH_SIZE=1; overload at 4x the sustainable rate against a small queue (driven
by `hey` when it is on PATH, else by the httpx generator); with --soak, 5 minutes at 64 clients;
one image per request in each protocol (needs `hey`); the service under each runtime at 1 and 64
clients (needs `hey`) and a verdict on each of issue 12's targets; the service with 1 and N
worker processes against a bare FastAPI endpoint with 1 and N (needs `hey`); bulk tagging of the
test PNGs by `python -m client tag` against `hey` with 8-image requests (needs `hey`); the
hostile-client scenarios (1,000 slow connections, the worst accepted image, SIGTERM under load;
about 3 minutes, needs `hey`). Writes `<out>/<date>-<host>[-quick][-<part>].{json,md,png}`,
<part> the `--<part>-only` given.
`--streaming-only` measures training input instead (benchmarks/streaming.py; no service, no
model): `<out>/<date>-<host>-streaming-<images>.{json,md}`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from benchmarks import (
    bulk,
    fairness,
    hostile,
    protocols,
    report,
    runtimes,
    scenarios,
    streaming,
    workers,
)
from benchmarks.load import hey_available
from benchmarks.raw import run_raw, sample_images
from benchmarks.service import Service
from model_store import ModelNotFound, ModelStore, default_store_root
from model_store.preprocessing import preprocess_bytes

logger = logging.getLogger("benchmarks")

SERVICE_IMAGE = "png 28x28"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="short levels (minutes, not a quarter hour)"
    )
    parser.add_argument("--soak", action="store_true", help="add the soak run (5 min, 64 clients)")
    parser.add_argument("--soak-seconds", type=float, default=None, help="soak length override")
    parser.add_argument(
        "--sigterm-runs",
        type=int,
        default=None,
        help="SIGTERM-under-load runs (default 5, quick 3)",
    )
    parser.add_argument("--hey", action="store_true", help="also drive the sweep with `hey`")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--no-hostile", action="store_true", help="skip the hostile scenarios")
    which.add_argument(
        "--hostile-only", action="store_true", help="only the hostile scenarios (no raw, sweeps)"
    )
    which.add_argument(
        "--protocols-only", action="store_true", help="only the one-image-per-protocol comparison"
    )
    which.add_argument(
        "--fairness-only", action="store_true", help="only the two-models-one-flooded scenario"
    )
    which.add_argument(
        "--workers-only",
        action="store_true",
        help="only the service with 1 and N worker processes against the bare-endpoint ceiling",
    )
    which.add_argument(
        "--client-only", action="store_true", help="only the bulk CLI against hey (issue 14)"
    )
    which.add_argument(
        "--streaming-only",
        action="store_true",
        help="only training input: streaming vs in-memory image folders (no service, no model)",
    )
    which.add_argument(
        "--runtimes-only",
        action="store_true",
        help="only TensorFlow vs ONNX Runtime: raw model, and the service at 1 and 64 clients",
    )
    parser.add_argument(
        "--worker-counts",
        type=lambda text: tuple(int(n) for n in text.split(",")),
        default=None,
        help="worker counts the workers scenario compares (default: 1 and the usable cores)",
    )
    parser.add_argument(
        "--server-cpus",
        type=lambda text: frozenset(int(n) for n in text.split(",")),
        default=None,
        help="workers scenario: run the servers on these cores (e.g. 0,1) and hey on the "
        "others, so the load generator takes none of the servers' CPU",
    )
    parser.add_argument(
        "--client-images", type=int, default=None, help="test PNGs the CLI tags (default 10000)"
    )
    parser.add_argument(
        "--streaming-images", type=int, default=100_000, help="photos generated (100,000)"
    )
    parser.add_argument("--streaming-size", type=int, default=128, help="model input side (128)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--store", type=Path, default=None, help="default: $TAGGER_MODEL_STORE")
    parser.add_argument("--model", default=os.environ.get("TAGGER_MODEL_NAME", "fashion"))
    return parser.parse_args(argv)


def ensure_model(store_root: Path, name: str) -> ModelStore:
    """The store to benchmark; an empty one first gets the quick profile trained into it."""
    store = ModelStore(store_root)
    try:
        store.versions(name)
    except ModelNotFound:
        logger.warning("no %r model in %s: training the quick profile first", name, store_root)
        command = [sys.executable, "-m", "training", "train", "--profile", "quick",
                   "--store", str(store_root), "--model", name]  # fmt: skip
        subprocess.run(command, check=True)
    return store


# The parts a `--<part>-only` flag runs alone.
ONLY_PARTS = ("protocols", "runtimes", "workers", "fairness", "client", "hostile")
CLIENT_IMAGES = 10_000  # the whole Fashion-MNIST test set


def run_fairness(
    store_root: Path, name: str, args: argparse.Namespace, scratch: Path
) -> dict[str, Any]:
    if not hey_available():
        logger.warning("hey not on PATH: skipping the two-model scenario (make bench-deps)")
        return {"skipped": "hey (the load generator) is not on PATH"}
    image = sample_images()[SERVICE_IMAGE]
    return fairness.run(store_root, name, image, scratch, seconds=6.0 if args.quick else 12.0)


def run_client(
    store_root: Path, name: str, args: argparse.Namespace, scratch: Path
) -> dict[str, Any]:
    if not hey_available():
        logger.warning("hey not on PATH: skipping the bulk CLI comparison (make bench-deps)")
        return {"skipped": "hey (the load generator) is not on PATH"}
    images = args.client_images or CLIENT_IMAGES
    return bulk.run(store_root, name, scratch, images=images, rounds=3 if args.quick else 5)


def run_protocols(
    store: ModelStore, name: str, version: int, args: argparse.Namespace, scratch: Path
) -> list[dict[str, Any]]:
    if not hey_available():
        logger.warning("hey not on PATH: skipping the protocol comparison (make bench-deps)")
        return []
    image = sample_images()[SERVICE_IMAGE]
    metadata = store.metadata(name, version)
    pixels = preprocess_bytes(image, metadata.preprocessing, metadata.input)
    seconds, rounds = (4.0, 2) if args.quick else (8.0, 3)
    with Service(store.root, name, scratch / "protocols.log") as service:
        return protocols.compare(service, image, pixels, scratch, seconds=seconds, rounds=rounds)


def run_runtimes(
    store: ModelStore, name: str, raw: dict[str, Any], args: argparse.Namespace, scratch: Path
) -> dict[str, Any]:
    """The service under each runtime, and the verdicts on this run's raw and service rows."""
    section: dict[str, Any] = {"raw": raw["runtimes"], "served_runtime": raw["served_runtime"]}
    if not hey_available():
        section["service_skipped"] = "hey (the load generator) is not on PATH (make bench-deps)"
    elif runtimes.ONNXRUNTIME not in {s["runtime"] for s in raw["runtime_samples"]}:
        section["service_skipped"] = "the version has no model.onnx or onnxruntime is missing"
    else:
        request = protocols.upload_request(name, sample_images()[SERVICE_IMAGE])
        seconds, rounds = (4.0, 2) if args.quick else (8.0, 3)
        with contextlib.ExitStack() as stack:
            services = {
                runtime: stack.enter_context(
                    Service(
                        store.root, name, scratch / f"{runtime}.log", {"TAGGER_RUNTIME": runtime}
                    )
                )
                for runtime in runtimes.RUNTIMES
            }
            section["service_runtimes"] = {
                runtime: httpx.get(f"{service.base_url}/v1/models/{name}", timeout=10).json()[
                    "runtime"
                ]
                for runtime, service in services.items()
            }
            section["service_samples"] = runtimes.service_samples(
                services, request, scratch, seconds=seconds, rounds=rounds
            )
        section["service"] = runtimes.service_rows(section["service_samples"])
    section["verdicts"] = runtimes.verdicts(section["raw"], section.get("service", []))
    for verdict in section["verdicts"]:
        logger.info("%s: %s (%s)", verdict["target"], "met" if verdict["met"] else "NOT met",
                    verdict["measured"])  # fmt: skip
    return section


def run_workers(store_root: Path, name: str, args: argparse.Namespace, scratch: Path) -> Any:
    if not hey_available():
        logger.warning("hey not on PATH: skipping the workers scenario (make bench-deps)")
        return {"skipped": "hey (the load generator) is not on PATH"}
    seconds, rounds = (4.0, 2) if args.quick else (8.0, 3)
    section = workers.run(
        store_root,
        name,
        sample_images()[SERVICE_IMAGE],
        scratch,
        seconds=seconds,
        rounds=rounds,
        counts=args.worker_counts,
        server_cpus=args.server_cpus,
    )
    for verdict in section["verdicts"]:
        logger.info("%s: %s (%s)", verdict["target"], "met" if verdict["met"] else "NOT met",
                    verdict["measured"])  # fmt: skip
    return section


def run_hostile(
    store_root: Path, name: str, args: argparse.Namespace, scratch: Path
) -> dict[str, Any]:
    if not hey_available():
        logger.warning("hey not on PATH: skipping the hostile scenarios (make bench-deps)")
        return {"skipped": "hey (the legitimate load's generator) is not on PATH"}
    plan = hostile.QUICK if args.quick else hostile.FULL
    if args.sigterm_runs is not None:
        plan = dataclasses.replace(plan, sigterm_runs=args.sigterm_runs)
    return hostile.run(store_root, name, sample_images()[SERVICE_IMAGE], plan, scratch)


async def run_service_parts(
    store_root: Path, name: str, plan: scenarios.Plan, args: argparse.Namespace, scratch: Path
) -> dict[str, Any]:
    image = sample_images()[SERVICE_IMAGE]
    results: dict[str, Any] = {}
    queue = {"TAGGER_MAX_QUEUE": str(plan.sweep_max_queue)}

    with Service(store_root, name, scratch / "batched.log", queue) as service:
        results["service_settings"] = service.settings
        results["service"] = await scenarios.sweep(
            service, image, plan.clients, plan.images_per_request, plan
        )
        if args.hey:
            results["hey"] = scenarios.hey_sweep(service, image, plan, scratch)

    unbatched = {**queue, "TAGGER_MAX_BATCH_SIZE": "1"}
    with Service(store_root, name, scratch / "unbatched.log", unbatched) as service:
        results["unbatched"] = await scenarios.sweep(
            service, image, plan.unbatched_clients, (1,), plan
        )

    sustainable = report.sustainable_rate(results["service"], results.get("hey", []))
    small_queue = {"TAGGER_MAX_QUEUE": str(plan.overload_max_queue)}
    with Service(store_root, name, scratch / "overload.log", small_queue) as service:
        results["overload"] = await scenarios.overload(service, image, sustainable, plan, scratch)

    if args.soak:
        with Service(store_root, name, scratch / "soak.log") as service:
            results["soak"] = await scenarios.soak(service, image, plan)
    return results


def run_streaming_only(args: argparse.Namespace) -> int:
    """`--streaming-only`: the training-input benchmark, written as its own result files."""
    machine = report.machine()
    started = datetime.now(UTC)
    results = streaming.run(args.streaming_images, args.streaming_size)
    results |= {"machine": machine, "started_at": started.isoformat(timespec="seconds")}
    described = (
        f"{machine['usable_cores']} cores of {machine['cpu_model']}, {machine['memory_gib']} GiB"
    )
    stem = f"{started:%Y-%m-%d}-{machine['host']}-streaming-{args.streaming_images}"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / f"{stem}.md").write_text(streaming.markdown(results, described))
    print(args.out / f"{stem}.md")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("httpx", "httpcore"):  # one line per request would slow the load generator
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if args.streaming_only:
        return run_streaming_only(args)
    plan = scenarios.QUICK if args.quick else scenarios.FULL
    if args.soak_seconds is not None:
        plan = dataclasses.replace(plan, soak_seconds=args.soak_seconds)
    store_root = (args.store or default_store_root()).resolve()
    store = ensure_model(store_root, args.model)
    version = store.latest(args.model)
    metadata = store.metadata(args.model, version)
    started = datetime.now(UTC)
    machine = report.machine()
    results: dict[str, Any] = {
        "plan": plan.name,
        "plan_factor": plan.overload_factor,
        "plan_settings": dataclasses.asdict(plan),
        "started_at": started.isoformat(timespec="seconds"),
        "machine": machine,
        "model": {"name": args.model, "version": version, "input": metadata.input.model_dump()},
        "service_image": SERVICE_IMAGE,
    }
    only = [part for part in ONLY_PARTS if getattr(args, f"{part}_only")]
    parts = set(only) if only else set(ONLY_PARTS) - ({"hostile"} if args.no_hostile else set())
    if not only:
        logger.info("raw model %s v%d, %s plan", args.model, version, plan.name)
        results["raw"] = run_raw(store, args.model, version, plan.raw_batch_sizes, plan.raw_seconds)
        with tempfile.TemporaryDirectory(prefix="tagger-bench-") as scratch:
            results |= asyncio.run(
                run_service_parts(store_root, args.model, plan, args, Path(scratch))
            )
        results["service_vs_raw"] = report.service_vs_raw(results["service"], results["raw"])
        results["batched_vs_unbatched"] = report.batched_vs_unbatched(
            results["service"], results["unbatched"]
        )
    if "protocols" in parts:
        with tempfile.TemporaryDirectory(prefix="tagger-bench-protocols-") as scratch:
            results["protocols"] = run_protocols(store, args.model, version, args, Path(scratch))
    if "runtimes" in parts:
        raw = results.get("raw")
        if raw is None:
            logger.info(
                "raw model %s v%d in both runtimes, %s plan", args.model, version, plan.name
            )
            raw = run_raw(
                store, args.model, version, plan.raw_batch_sizes, plan.raw_seconds, preprocess=False
            )
        with tempfile.TemporaryDirectory(prefix="tagger-bench-runtimes-") as scratch:
            results["runtimes"] = run_runtimes(store, args.model, raw, args, Path(scratch))
    if "workers" in parts:
        with tempfile.TemporaryDirectory(prefix="tagger-bench-workers-") as scratch:
            results["workers"] = run_workers(store_root, args.model, args, Path(scratch))
    if "fairness" in parts:
        with tempfile.TemporaryDirectory(prefix="tagger-bench-fairness-") as scratch:
            results["fairness"] = run_fairness(store_root, args.model, args, Path(scratch))
    if "client" in parts:
        with tempfile.TemporaryDirectory(prefix="tagger-bench-client-") as scratch:
            results["client"] = run_client(store_root, args.model, args, Path(scratch))
    if "hostile" in parts:
        with tempfile.TemporaryDirectory(prefix="tagger-bench-hostile-") as scratch:
            results["hostile"] = run_hostile(store_root, args.model, args, Path(scratch))
    results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    stem = f"{started:%Y-%m-%d}-{machine['host']}" + ("-quick" if args.quick else "")
    stem += "".join(f"-{part}" for part in only)
    for path in report.write(results, args.out, stem):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
