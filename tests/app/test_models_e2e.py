"""Several models served at once (TAGGER_MODELS=*), over real uvicorn with two real models of
different inputs and labels: `fashion` (28x28x1, 10 clothing labels) and `colours` (32x32x3,
blue/green/red, trained on generated images)."""

from __future__ import annotations

import asyncio
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from app_helpers import Evaluated, ModelGate, Server, encode, run_server
from conftest import COLOURS
from prometheus_client import generate_latest

from app.config import Settings
from model_store import ModelStore

pytestmark = pytest.mark.asyncio(loop_scope="session")

FASHION_SHAPE = (28, 28, 1)
COLOURS_SHAPE = (32, 32, 3)
FAILURES = "tagger_model_reload_failures_total"


@dataclass
class ShapeGate(ModelGate):
    """A ModelGate that holds only the model whose input has `shape` (the others run freely)."""

    shape: tuple[int, ...] = FASHION_SHAPE

    def __call__(self, batch: np.ndarray) -> None:
        if tuple(batch.shape[1:]) == self.shape:
            super().__call__(batch)


@pytest.fixture
def two_models(trained_store: Any, colours_store: ModelStore, tmp_path: Path) -> Path:
    """A store holding `fashion` and `colours`."""
    root = tmp_path / "models"
    shutil.copytree(trained_store.root, root)
    shutil.copytree(colours_store.root / "colours", root / "colours")
    return root


def every_model(root: Path, **overrides: Any) -> Settings:
    """TAGGER_MODELS=* (the default): every model in the store, polled every 0.2 s."""
    values: dict[str, Any] = {"model_store": root, "poll_interval_s": 0.2, "max_batch_delay_ms": 5}
    values.update(overrides)
    return Settings(**values)


def a_red_square() -> bytes:
    pixels = np.zeros((40, 40, 3), np.uint8)
    pixels[10:30, 10:30, 0] = 230
    return encode(pixels)


async def classify(http: httpx.AsyncClient, model: str, image: bytes, top_k: int) -> httpx.Response:
    return await http.post(
        f"/v1/models/{model}/classify",
        params={"top_k": top_k},
        files={"file": ("x.png", image, "image/png")},
    )


def labels_of(response: httpx.Response) -> set[str]:
    assert response.status_code == 200, response.text
    return {p["label"] for p in response.json()["predictions"]}


async def test_two_models_answer_side_by_side_and_a_third_is_served_once_published(
    two_models: Path, colours_store: ModelStore, trained_store: Any, evaluated: Evaluated
) -> None:
    fashion_labels = set(trained_store.metadata.labels)
    with run_server(every_model(two_models)) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            shoe = encode(evaluated.images[0])
            fashion, colours = await asyncio.gather(
                classify(http, "fashion", shoe, 10), classify(http, "colours", a_red_square(), 3)
            )
            assert labels_of(fashion) == fashion_labels
            assert labels_of(colours) == set(COLOURS)
            assert (fashion.json()["model"], colours.json()["model"]) == ("fashion", "colours")

            # Each protocol sees each model with its own input.
            for model, shape in (("fashion", FASHION_SHAPE), ("colours", COLOURS_SHAPE)):
                meta = (await http.get(f"/v2/models/{model}")).json()
                assert meta["inputs"][0]["shape"] == [-1, *shape]
                pixels = np.zeros((1, *shape), np.uint8)
                tf = await http.post(
                    f"/v1/models/{model}:predict", json={"instances": pixels.tolist()}
                )
                assert tf.status_code == 200, tf.text
                width = len(fashion_labels) if model == "fashion" else len(COLOURS)
                assert len(tf.json()["predictions"][0]) == width
            wrong = await http.post(
                "/v1/models/colours:predict",
                json={"instances": np.zeros((1, *FASHION_SHAPE), np.uint8).tolist()},
            )
            assert wrong.status_code == 400, wrong.text

            ready = await http.get("/readyz")
            assert ready.status_code == 200
            assert [m["model"] for m in ready.json()["models"]] == ["colours", "fashion"]
            listed = (await http.get("/v1/models")).json()
            assert listed["served_models"] == ["colours", "fashion"]
            assert listed["loaded_versions_total"] == 2
            assert (await http.get("/v2/health/ready")).status_code == 200
            missing = await classify(http, "patterns", a_red_square(), 1)
            assert missing.status_code == 404
            assert missing.json()["error"]["code"] == "model_not_found"

            # A third model is published while the server runs: served without a restart.
            metadata = colours_store.metadata("colours", 1)
            ModelStore(two_models).publish(
                "patterns",
                colours_store.version_dir("colours", 1),
                metadata.model_copy(update={"name": "patterns"}),
            )
            await server.until(lambda: _serves(server, "patterns"), 60)
            assert labels_of(await classify(http, "patterns", a_red_square(), 3)) == set(COLOURS)
            listed = (await http.get("/v1/models")).json()
            assert listed["served_models"] == ["colours", "fashion", "patterns"]
            assert listed["loaded_versions_total"] == 3
            assert 'tagger_model_info{model="patterns"' in _scrape(server)


async def test_a_model_whose_folder_is_removed_is_drained_and_unloaded_while_the_other_answers(
    two_models: Path, evaluated: Evaluated, tmp_path: Path
) -> None:
    gate = ShapeGate(shape=COLOURS_SHAPE)
    with run_server(every_model(two_models), gate) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            gate.hold()
            held = asyncio.ensure_future(classify(http, "colours", a_red_square(), 1))
            await server.until(gate.entered.is_set)  # a colours request is in its model

            statuses: list[int] = []
            stop = asyncio.Event()

            async def fashion_stream() -> None:
                shoe = encode(evaluated.images[1])
                while not stop.is_set():
                    statuses.append((await classify(http, "fashion", shoe, 1)).status_code)

            streams = [asyncio.ensure_future(fashion_stream()) for _ in range(2)]
            (two_models / "colours").rename(tmp_path / "colours-removed")
            await server.until(lambda: server.manager_of("colours") is None, 30)
            gone = await classify(http, "colours", a_red_square(), 1)
            assert gone.status_code == 404 and gone.json()["error"]["code"] == "model_not_found"

            gate.release()  # the request already in colours' model is answered: drained
            answered = await held
            assert answered.status_code == 200, answered.text
            await server.until(lambda: 'tagger_model_info{model="colours"' not in _scrape(server))
            stop.set()
            await asyncio.gather(*streams)
            assert statuses and set(statuses) == {200}
            ready = (await http.get("/readyz")).json()
            assert [m["model"] for m in ready["models"]] == ["fashion"]


async def test_a_flooded_model_refuses_while_the_other_answers_every_request(
    two_models: Path, evaluated: Evaluated
) -> None:
    """fashion's model is held and its queue full: its flood gets 503 at once, while colours
    answers every request of a light stream without waiting for fashion."""
    settings = every_model(two_models, max_batch_size=2, max_queue=4, max_images_per_request=2)
    gate = ShapeGate(shape=FASHION_SHAPE)
    with run_server(settings, gate) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            shoe = encode(evaluated.images[2])
            gate.hold()
            held = [asyncio.ensure_future(classify(http, "fashion", shoe, 1))]
            await server.until(gate.entered.is_set)
            held += [asyncio.ensure_future(classify(http, "fashion", shoe, 1)) for _ in range(4)]
            await server.until(lambda: server.metric("tagger_queue_depth", model="fashion") == 4)

            latencies: list[float] = []

            async def colours_stream() -> list[int]:
                codes = []
                for _ in range(8):
                    start = time.monotonic()
                    codes.append((await classify(http, "colours", a_red_square(), 1)).status_code)
                    latencies.append(time.monotonic() - start)
                return codes

            flood = [classify(http, "fashion", shoe, 1) for _ in range(60)]
            results = await asyncio.gather(*flood, *(colours_stream() for _ in range(3)))
            flooded, streams = results[: len(flood)], results[len(flood) :]
            assert {r.status_code for r in flooded} == {503}
            assert {r.json()["error"]["code"] for r in flooded} == {"overloaded"}
            assert [code for codes in streams for code in codes] == [200] * 24
            assert max(latencies) < 5.0  # never waited for fashion's held model
            assert not any(task.done() for task in held)  # fashion really was held throughout

            gate.release()
            assert [r.status_code for r in await asyncio.gather(*held)] == [200] * 5


def _serves(server: Server, model: str) -> bool:
    manager = server.manager_of(model)
    return manager is not None and manager.ready


def _scrape(server: Server) -> str:
    return generate_latest(server.registry).decode()


async def test_the_total_version_bound_unloads_the_pinned_version_idle_longest_of_any_model(
    two_models: Path, colours_store: ModelStore, trained_store: Any, evaluated: Evaluated
) -> None:
    store = ModelStore(two_models)
    for model, source in (("fashion", trained_store.store), ("colours", colours_store)):
        store.publish(model, source.version_dir(model, 1), source.metadata(model, 1))
    settings = every_model(two_models, max_total_loaded_versions=3, request_timeout_ms=3000)
    with run_server(settings) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            shoe = encode(evaluated.images[3])
            pinned = await classify(http, "fashion/versions/1", shoe, 1)
            assert pinned.status_code == 200, pinned.text
            listed = (await http.get("/v1/models")).json()
            assert (listed["loaded_versions_total"], listed["max_total_loaded_versions"]) == (3, 3)

            # Every slot is taken and fashion v1 was just used: refused, nothing unloaded.
            refused = await classify(http, "colours/versions/1", a_red_square(), 1)
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"]["code"] == "version_load_budget"
            assert "TAGGER_MAX_TOTAL_LOADED_VERSIONS" in refused.json()["error"]["message"]

            await asyncio.sleep(3.2)  # fashion v1 idle for a request timeout: its slot is free
            loaded = await classify(http, "colours/versions/1", a_red_square(), 1)
            assert loaded.status_code == 200, loaded.text
            summaries = {m["name"]: m for m in (await http.get("/v1/models")).json()["models"]}
            assert summaries["fashion"]["loaded_versions"] == [2]
            assert summaries["colours"]["loaded_versions"] == [1, 2]


async def test_a_model_that_fails_to_load_is_reported_and_the_others_are_served(
    two_models: Path, evaluated: Evaluated
) -> None:
    # A version whose metadata names another model: it can never load.
    shutil.copytree(two_models / "colours", two_models / "broken")
    with run_server(every_model(two_models), wait_ready=False) as server:
        await server.until(lambda: _serves(server, "fashion") and _serves(server, "colours"), 60)
        await server.until(lambda: server.metric(FAILURES, model="broken") >= 1, 30)
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            assert labels_of(await classify(http, "colours", a_red_square(), 3)) == set(COLOURS)
            shoe = encode(evaluated.images[4])
            assert (await classify(http, "fashion", shoe, 1)).status_code == 200

            ready = await http.get("/readyz")
            assert ready.status_code == 503
            message = ready.json()["error"]["message"]
            assert message.startswith("not ready: broken:"), message
            assert "fashion" not in message and "colours" not in message
            broken = await classify(http, "broken", a_red_square(), 1)
            assert broken.status_code == 503 and broken.json()["error"]["code"] == "not_ready"
            summary = (await http.get("/v1/models/broken")).json()
            assert summary["model_version_status"][0]["state"] == "END"
