"""Hot reload: new versions are swapped in under load; broken ones never disturb serving."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest
from app_helpers import Evaluated, Server, encode, make_settings, run_server

from model_store import ModelStore
from model_store.schema import METADATA_FILE
from model_store.signature import ONNX_FILE

pytestmark = pytest.mark.asyncio(loop_scope="session")

URL = "/v1/models/fashion/classify"


def republish(store: ModelStore, version: int, corrupt: bool = False) -> int:
    """Publish a copy of `version` as a new version (optionally with a garbage SavedModel and
    model.onnx, checksummed as they are)."""
    source = store.version_dir("fashion", version)
    metadata = store.metadata("fashion", version)
    with store.staging("fashion") as staged:
        shutil.copytree(source, staged, dirs_exist_ok=True)
        (staged / METADATA_FILE).unlink()
        if corrupt:
            (staged / "saved_model.pb").write_bytes(b"this is not a SavedModel")
            (staged / ONNX_FILE).write_bytes(b"this is not an ONNX model")
        published = store.publish("fashion", staged, metadata.model_copy(update={"files": {}}))
    return published.version


async def traffic(
    server: Server, pixels: np.ndarray, stop: asyncio.Event, seen: list[tuple] | None = None
) -> list[tuple]:
    """Send requests back to back until `stop`; returns (status, version, body) for each."""
    seen = [] if seen is None else seen
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        while not stop.is_set():
            response = await http.post(URL, files={"file": ("a.png", encode(pixels), "image/png")})
            body = response.json()
            seen.append((response.status_code, body.get("version"), body))
    return seen


async def test_a_new_version_is_swapped_in_without_failing_a_request(
    store_root: Path, evaluated: Evaluated, trained_store
) -> None:
    old = trained_store.version
    settings = make_settings(store_root, poll_interval_s=0.1)
    with run_server(settings) as server:
        stop = asyncio.Event()
        seen: list[list[tuple]] = [[], [], []]
        clients = [
            asyncio.ensure_future(traffic(server, evaluated.images[i], stop, seen[i]))
            for i in range(3)
        ]
        await server.until(lambda: server.metric("tagger_batch_size_count", model="fashion") > 5)
        new = await asyncio.to_thread(republish, server.store, old)
        await server.until(lambda: server.manager.served.version == new, 120)
        # Every client has had answers from the new version.
        await server.until(lambda: all(len([s for s in c if s[1] == new]) > 2 for c in seen))
        stop.set()
        runs = await asyncio.gather(*clients)
        info = {"model": "fashion", "runtime": "onnxruntime"}
        assert server.metric("tagger_model_info", **info, version=str(new)) == 1
        assert (
            server.registry.get_sample_value("tagger_model_info", {**info, "version": str(old)})
            is None
        )
    for seen in runs:
        assert all(status == 200 for status, _, _ in seen), [b for s, _, b in seen if s != 200]
        versions = [version for _, version, _ in seen]
        assert versions == sorted(versions)  # never back to the old one after the swap
        assert versions[0] == old
        assert versions[-1] == new


async def test_a_corrupt_version_is_counted_and_the_old_one_keeps_serving(
    store_root: Path, evaluated: Evaluated, trained_store
) -> None:
    good = trained_store.version
    png = {"file": ("a.png", encode(evaluated.images[0]), "image/png")}
    with run_server(make_settings(store_root, poll_interval_s=0.1)) as server:
        failures = "tagger_model_reload_failures_total"
        assert server.metric(failures, model="fashion") == 0
        bad = await asyncio.to_thread(republish, server.store, good, True)
        await server.until(lambda: server.metric(failures, model="fashion") == 1, 120)
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            response = await http.post(URL, files=png)
            assert response.status_code == 200
            assert response.json()["version"] == good
            pinned = await http.post(f"/v1/models/fashion/versions/{bad}/classify", files=png)
            assert pinned.status_code == 500
            assert pinned.json()["error"]["code"] == "model_load_failed"
            assert (await http.get("/readyz")).json()["version"] == good
            await asyncio.sleep(0.5)  # several more polls: the bad version is not retried
        assert server.metric(failures, model="fashion") == 1
        assert server.manager.served.version == good


async def test_the_configured_alias_is_served_and_pinned_versions_load_on_demand(
    store_root: Path, evaluated: Evaluated, trained_store
) -> None:
    store = ModelStore(store_root)
    first = trained_store.version
    second = republish(store, first)
    store.promote("fashion", first, "stable")
    png = {"file": ("a.png", encode(evaluated.images[0]), "image/png")}
    settings = make_settings(store_root, model_alias="stable", poll_interval_s=0.1)
    with run_server(settings) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            assert (await http.post(URL, files=png)).json()["version"] == first
            pinned = await http.post(f"/v1/models/fashion/versions/{second}/classify", files=png)
            assert pinned.json()["version"] == second
            assert server.manager.loaded_versions == [first, second]
            store.promote("fashion", second, "stable")  # the pinned copy becomes the served one
            await server.until(lambda: server.manager.served.version == second, 120)
            assert (await http.post(URL, files=png)).json()["version"] == second
            canary = await http.post("/v1/models/fashion/labels/stable/classify", files=png)
            assert canary.json()["version"] == second


def truncate_variables(store: ModelStore, version: int) -> None:
    """Damage a published version as a disk or a copy would: its weights cut in half."""
    data = next((store.version_dir("fashion", version) / "variables").glob("variables.data-*"))
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])


async def test_a_restarted_replica_serves_the_newest_good_version_when_the_latest_is_damaged(
    store_root: Path, evaluated: Evaluated, trained_store
) -> None:
    store = ModelStore(store_root)
    first = trained_store.version
    good = republish(store, first)
    bad = republish(store, first)
    truncate_variables(store, bad)
    png = {"file": ("a.png", encode(evaluated.images[0]), "image/png")}
    settings = make_settings(store_root, poll_interval_s=0.1)
    with run_server(settings, wait_ready=False) as server:
        manager = server.manager
        await server.until(lambda: manager.ready, 60)
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            ready = await http.get("/readyz")
            assert ready.status_code == 200
            body = ready.json()
            assert body["version"] == good
            assert body["fallback"] is True
            assert body["target_version"] == bad
            assert f"v{bad}" in body["fallback_reason"]
            assert "checksum" in body["fallback_reason"] or "size" in body["fallback_reason"]
            classified = await http.post(URL, files=png)
            assert classified.status_code == 200
            assert classified.json()["version"] == good
            assert server.metric("tagger_model_reload_failures_total", model="fashion") >= 1
            assert server.metric("tagger_model_fallback", model="fashion") == 1
            newer = await asyncio.to_thread(republish, store, first)  # a fixed publish
            await server.until(lambda: manager.served.version == newer, 120)
            body = (await http.get("/readyz")).json()
            assert body["version"] == newer and body["fallback"] is False
            assert body["target_version"] == newer and body["fallback_reason"] is None
            assert server.metric("tagger_model_fallback", model="fashion") == 0


async def test_a_restarted_replica_falls_back_to_the_alias_previous_target(
    store_root: Path, evaluated: Evaluated, trained_store
) -> None:
    store = ModelStore(store_root)
    first = trained_store.version
    unpromoted = republish(store, first)  # newer than `first`, but never stable
    bad = republish(store, first)
    truncate_variables(store, bad)
    store.promote("fashion", first, "stable")
    store.promote("fashion", bad, "stable")
    settings = make_settings(store_root, model_alias="stable", poll_interval_s=0.1)
    with run_server(settings, wait_ready=False) as server:
        manager = server.manager
        await server.until(lambda: manager.ready, 60)
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            body = (await http.get("/readyz")).json()
        assert (body["version"], body["target_version"], body["fallback"]) == (first, bad, True)
        assert unpromoted not in manager.loaded_versions
