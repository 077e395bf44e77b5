"""Pinned-version loads are budgeted: cycling versions cannot starve the served version."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from app_helpers import Evaluated, Server, encode, make_settings, run_server
from test_reload_e2e import republish

from benchmarks.heyload import run_csv
from model_store import ModelStore

pytestmark = pytest.mark.asyncio(loop_scope="session")

REPO_ROOT = Path(__file__).resolve().parents[2]
SECONDS = 2.0
ROUNDS = 3
ATTACK_RATE = 20.0
CLIENTS = 8

# Cycles /versions/{1,2,3}/classify from its own process at ATTACK_RATE requests a second
# (a flood of requests the service answers is the admission limit's business, not this one's),
# until the file named by its third argument exists.
CYCLE_VERSIONS = """
import json, os, sys, time, httpx
url, body, stop = sys.argv[1], open(sys.argv[2], "rb").read(), sys.argv[3]
interval = 1 / float(sys.argv[4])
statuses, codes, retry_after = {}, {}, set()
end = time.monotonic() + 120
with httpx.Client(base_url=url, timeout=60) as http:
    n = 0
    next_at = time.monotonic()
    while time.monotonic() < end and not os.path.exists(stop):
        time.sleep(max(0.0, next_at - time.monotonic()))
        next_at += interval
        version = n % 3 + 1
        n += 1
        r = http.post(f"/v1/models/fashion/versions/{version}/classify", content=body,
                      headers={"Content-Type": "image/png"})
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        if r.status_code != 200:
            code = r.json()["error"]["code"]
            codes[code] = codes.get(code, 0) + 1
            retry_after.add(r.headers.get("retry-after"))
report = {"statuses": statuses, "codes": codes, "retry_after": sorted(map(str, retry_after))}
print(json.dumps(report))
"""


def served_rate(url: str, body: Path) -> float:
    """Successful classify answers per second of the served version, from `hey`."""
    answers = run_csv(f"{url}/v1/models/fashion/classify", body, CLIENTS, SECONDS)
    assert {a.status for a in answers} == {200}
    return len(answers) / SECONDS


async def until_refused_or(server: Server, timeout_s: float) -> None:
    started = time.monotonic()
    await server.until(
        lambda: (
            server.metric("tagger_pinned_loads_refused_total", model="fashion") > 0
            or time.monotonic() - started > timeout_s
        ),
        timeout_s + 30,
    )


def start_attacker(url: str, body: Path, stop: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", CYCLE_VERSIONS, url, str(body), str(stop), str(ATTACK_RATE)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


async def test_cycling_pinned_versions_leaves_the_served_version_its_throughput(
    store_root: Path, evaluated: Evaluated, trained_store, tmp_path: Path
) -> None:
    store = ModelStore(store_root)
    for _ in range(3):
        republish(store, trained_store.version)
    served = store.latest("fashion")
    body = tmp_path / "a.png"
    body.write_bytes(encode(evaluated.images[0]))
    settings = make_settings(store_root, max_loaded_versions=2, max_batch_delay_ms=0)
    with run_server(settings) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            warm = await http.post(
                f"/v1/models/fashion/versions/{served}/classify",
                content=body.read_bytes(),
                headers={"Content-Type": "image/png"},
            )
            assert warm.status_code == 200
        # Rounds alternate so that load from other processes on the machine hits both alike.
        ratios, reports = [], []
        for round_ in range(ROUNDS):
            alone = served_rate(server.url, body)
            stop = tmp_path / f"stop-{round_}"
            attacker = start_attacker(server.url, body, stop)
            if round_ == 0:
                # Measured once the attack is under way: from the first refusal (the budget
                # engaged, after the loads it allows at once), or after 10 s of it (the old
                # code never refuses).
                await until_refused_or(server, 10.0)
            attacked = served_rate(server.url, body)
            stop.touch()
            out, _ = attacker.communicate(timeout=60)
            reports.append(json.loads(out))
            ratios.append(attacked / alone)
            print(f"served version alone {alone:.0f} req/s, while versions cycle {attacked:.0f}")
    print(f"ratios {[round(r, 2) for r in ratios]}; attacker {reports}")
    # The old code gave medians of 0.17-0.46 here; the budgeted one 0.72-1.0 on a loaded 2-core
    # machine (0.93 quiet). The bound sits between, so machine noise does not fail it.
    assert statistics.median(ratios) >= 0.6, (ratios, reports)
    for report in reports:
        assert report["codes"].keys() <= {"version_load_budget"}


async def test_pinned_loads_are_refused_beyond_the_budget_without_evicting(
    store_root: Path, evaluated: Evaluated, trained_store
) -> None:
    store = ModelStore(store_root)
    for _ in range(3):
        republish(store, trained_store.version)
    png = {"content": encode(evaluated.images[0]), "headers": {"Content-Type": "image/png"}}
    settings = make_settings(
        store_root, max_loaded_versions=1, pinned_loads_per_minute=2, request_timeout_ms=4000
    )

    def pinned(version: int) -> str:
        return f"/v1/models/fashion/versions/{version}/classify"

    def refusal(response: httpx.Response, names: str) -> int:
        assert response.status_code == 503, response.text
        error = response.json()["error"]
        assert error["code"] == "version_load_budget"
        assert names in error["message"], error["message"]
        return int(response.headers["retry-after"])

    with run_server(settings) as server:
        manager = server.manager
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            server.gate.hold()  # v1's warm-up waits in the gate: v1 is loading meanwhile
            loading = asyncio.ensure_future(http.post(pinned(1), **png))
            await server.until(server.gate.entered.is_set)
            second = await http.post(pinned(2), **png)
            server.gate.release()
            first = await loading
            assert first.status_code == 200 and first.json()["version"] == 1
            refusal(second, "v1 is loading")
            assert manager.loaded_versions == [1, 4]
            # The slot's version was used less than a request timeout ago: not evicted.
            assert 1 <= refusal(await http.post(pinned(2), **png), "MAX_LOADED_VERSIONS") <= 4
            assert (await http.post(pinned(1), **png)).status_code == 200
            await asyncio.sleep(4.1)  # v1 idle for a request timeout: its slot may go
            loaded = await http.post(pinned(2), **png)
            assert loaded.status_code == 200 and loaded.json()["version"] == 2
            assert manager.loaded_versions == [2, 4]
            await asyncio.sleep(4.1)
            wait = refusal(await http.post(pinned(3), **png), "PINNED_LOADS_PER_MINUTE")
            assert 30 <= wait <= 60  # when the first of the two loads leaves the minute
            assert manager.loaded_versions == [2, 4]
            assert (await http.post("/v1/models/fashion/classify", **png)).status_code == 200
        assert server.metric("tagger_pinned_loads_refused_total", model="fashion") == 3
