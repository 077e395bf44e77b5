"""Two models in one service: a flood on one must not cost the other its answers or latency.

Model A (the benchmark's model) and model B (the same version published again under another
name, so both cost the same per image) are served by one `python -m app` with a small queue.
B gets a light stream (`hey -q`, a fixed rate) twice: alone, then while 64 clients flood A.
Reported: B's p50/p99 and non-200 count in both, and how A's flood was answered (200 / 503).
"""

from __future__ import annotations

import logging
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.load import parse_hey
from benchmarks.protocols import Request, upload_request
from benchmarks.service import Service
from benchmarks.tables import fmt, table
from model_store.store import ModelStore

logger = logging.getLogger(__name__)

LIGHT_CLIENTS = 2
LIGHT_RATE_PER_CLIENT = 10  # hey -q: requests/s per client, so B gets 20 requests/s
FLOOD_CLIENTS = 64
# Well below the flood's 64 clients, so A's queue and in-flight bound fill and A answers 503.
QUEUE = 16
BATCH = 8


def second_model(store: ModelStore, name: str) -> str:
    """`<name>-b`: the latest version of `name` published again under that name (once)."""
    twin = f"{name}-b"
    if twin in store.models():
        return twin
    version = store.latest(name)
    metadata = store.metadata(name, version).model_copy(update={"name": twin})
    store.publish(twin, store.version_dir(name, version), metadata)
    return twin


def _hey_command(
    service: Service, request: Request, body: Path, seconds: float, clients: int, rate: int = 0
) -> list[str]:
    command = ["hey", "-z", f"{seconds:g}s", "-c", str(clients), "-m", "POST",
               "-T", request.content_type, "-D", str(body)]  # fmt: skip
    if rate:
        command += ["-q", str(rate)]
    return [*command, service.base_url + request.path]


def run(store_root: Path, name: str, image: bytes, scratch: Path, seconds: float) -> dict[str, Any]:
    """B alone, then B under a flood on A; each for `seconds`."""
    store = ModelStore(store_root)
    twin = second_model(store, name)
    flooded, light = upload_request(name, image), upload_request(twin, image)
    body = scratch / "fairness-body.bin"
    body.write_bytes(light.body)  # the same image and multipart body for both models
    settings = {
        "TAGGER_MODELS": f"{name},{twin}",
        "TAGGER_MAX_QUEUE": str(QUEUE),
        "TAGGER_MAX_BATCH_SIZE": str(BATCH),
        "TAGGER_MAX_IMAGES_PER_REQUEST": str(BATCH),
    }
    with Service(store_root, name, scratch / "fairness.log", settings, one_model=False) as service:
        light_command = _hey_command(
            service, light, body, seconds, LIGHT_CLIENTS, LIGHT_RATE_PER_CLIENT
        )
        subprocess.run(light_command, capture_output=True, text=True, check=True)  # warm-up
        alone = parse_hey(
            subprocess.run(light_command, capture_output=True, text=True, check=True).stdout
        )
        flood_command = _hey_command(service, flooded, body, seconds + 2, FLOOD_CLIENTS)
        with tempfile.TemporaryFile("w+") as flood_out:
            flood = subprocess.Popen(flood_command, stdout=flood_out, stderr=subprocess.STDOUT)
            try:
                subprocess.run(["sleep", "1"], check=True)  # the flood fills A's queue first
                during = parse_hey(
                    subprocess.run(light_command, capture_output=True, text=True, check=True).stdout
                )
            finally:
                flood.wait(timeout=seconds + 60)
            flood_out.seek(0)
            flood_report = flood_out.read()
    a = parse_hey(flood_report)
    a["overloaded"] = float(sum(int(n) for n in _status_counts(flood_report, "503")))
    logger.info("fairness: B alone %s, B under flood %s, A %s", alone, during, a)
    return {"models": [name, twin], "b_alone": alone, "b_during_flood": during, "a_flood": a}


def _status_counts(report: str, status: str) -> list[str]:
    return re.findall(rf"\[{status}\]\s+(\d+) responses", report)


def lines(section: dict[str, Any]) -> list[str]:
    """The report's section."""
    if not section:
        return []
    if "skipped" in section:
        return ["## Two models, one flooded", "", f"Skipped: {section['skipped']}.", ""]
    alone, during, a = section["b_alone"], section["b_during_flood"], section["a_flood"]
    rows = [
        ["B alone", fmt(alone.get("ok")), fmt(alone.get("errors")),
         fmt(alone.get("p50_ms"), 1), fmt(alone.get("p99_ms"), 1)],
        ["B while A is flooded", fmt(during.get("ok")), fmt(during.get("errors")),
         fmt(during.get("p50_ms"), 1), fmt(during.get("p99_ms"), 1)],
    ]  # fmt: skip
    verdict = "met" if during.get("errors", 1) == 0 and during.get("ok", 0) > 0 else "NOT met"
    a_line = (
        f"A's flood ({FLOOD_CLIENTS} clients, queue {QUEUE}, batches of {BATCH}): "
        f"{fmt(a.get('ok'))} answered 200, "
        f"{fmt(a.get('overloaded'))} answered 503, {fmt(a.get('requests_per_s'))} requests/s."
    )
    return [
        "## Two models, one flooded (hey; B at a fixed "
        f"{LIGHT_CLIENTS * LIGHT_RATE_PER_CLIENT} requests/s)",
        "",
        *table(["model B's stream", "200", "non-200", "p50 ms", "p99 ms"], rows),
        a_line,
        f"B answers every request while A is flooded: {verdict}.",
        "",
    ]
