"""Batching, overload, deadlines, cancellation and shutdown, over real uvicorn with a held model."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import pytest
from app_helpers import POISON, Evaluated, ModelGate, Server, encode, make_settings, run_server

pytestmark = pytest.mark.asyncio(loop_scope="session")

URL = "/v1/models/fashion/classify"
DEPTH = "tagger_queue_depth"


def png_file(pixels: np.ndarray) -> dict:
    return {"file": ("x.png", encode(pixels), "image/png")}


async def hold_model(server: Server, http: httpx.AsyncClient, pixels: np.ndarray) -> asyncio.Task:
    """Hold the model and send one request that sits inside it until `gate.release()`."""
    server.gate.hold()
    blocker = asyncio.ensure_future(http.post(URL, files=png_file(pixels)))
    await server.until(server.gate.entered.is_set)
    return blocker


def send(http: httpx.AsyncClient, pixels: np.ndarray) -> asyncio.Task:
    return asyncio.ensure_future(http.post(URL, files=png_file(pixels)))


async def test_concurrent_requests_share_batches_and_get_their_own_answers(
    shared_root, evaluated: Evaluated, trained_store
) -> None:
    labels = trained_store.metadata.labels
    with run_server(make_settings(shared_root, max_batch_size=32)) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            blocker = await hold_model(server, http, evaluated.images[40])
            tasks = [send(http, evaluated.images[i]) for i in range(32)]
            await server.until(lambda: server.metric(DEPTH, model="fashion") == 32)
            server.gate.release()
            responses = await asyncio.gather(*tasks)
            assert (await blocker).status_code == 200
        for i, response in enumerate(responses):
            assert response.status_code == 200, response.text
            top = response.json()["predictions"][0]
            assert top["label"] == labels[int(np.argmax(evaluated.probabilities[i]))]
            assert abs(top["confidence"] - float(evaluated.probabilities[i].max())) < 1e-5
        assert server.metric("tagger_batch_size_sum", model="fashion") == 33
        assert server.metric("tagger_batch_size_count", model="fashion") < 32
        assert max(server.gate.batch_sizes) > 1


async def test_a_full_queue_answers_503_at_once_and_loses_nothing(
    shared_root, evaluated: Evaluated
) -> None:
    settings = make_settings(
        shared_root, max_batch_size=2, max_queue=4, max_images_per_request=4, retry_after_s=3
    )
    with run_server(settings) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            blocker = await hold_model(server, http, evaluated.images[0])
            queued = [send(http, evaluated.images[i]) for i in range(1, 5)]
            await server.until(lambda: server.metric(DEPTH, model="fashion") == 4)
            refused = await http.post(URL, files=png_file(evaluated.images[5]))
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "3"
            assert refused.json()["error"]["code"] == "overloaded"
            assert "queue is full" in refused.json()["error"]["message"]
            # Operations endpoints never wait on the model or its queue.
            scrape = await http.get("/metrics")
            assert scrape.status_code == 200
            assert 'tagger_queue_depth{model="fashion"} 4.0' in scrape.text
            assert (await http.get("/readyz")).status_code == 200
            server.gate.release()
            answered = await asyncio.gather(blocker, *queued)
        assert [r.status_code for r in answered] == [200] * 5


async def test_a_request_past_its_deadline_gets_504_and_is_not_run(
    shared_root, evaluated: Evaluated
) -> None:
    with run_server(make_settings(shared_root, request_timeout_ms=400)) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            blocker = await hold_model(server, http, evaluated.images[0])
            late = await http.post(URL, files=png_file(evaluated.images[1]))
            assert late.status_code == 504
            assert late.json()["error"]["code"] == "deadline_exceeded"
            assert "0.4 s" in late.json()["error"]["message"]
            assert (await blocker).status_code == 504  # held past its deadline too
            server.gate.release()
            after = await http.post(URL, files=png_file(evaluated.images[2]))
            assert after.status_code == 200
        assert server.gate.batch_sizes[-2:] == [1, 1]  # the held one and `after`, never `late`
        assert server.metric("tagger_batch_size_sum", model="fashion") == 2


async def test_a_client_that_hangs_up_is_not_run(shared_root, evaluated: Evaluated) -> None:
    gone_status = {"route": "/v1/models/{model}/classify", "method": "POST", "status": "499"}
    with run_server(make_settings(shared_root)) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            blocker = await hold_model(server, http, evaluated.images[0])
            gone = send(http, evaluated.images[1])
            await server.until(lambda: server.metric(DEPTH, model="fashion") == 1)
            gone.cancel()
            await server.until(lambda: server.metric("tagger_requests_total", **gone_status) == 1)
            server.gate.release()
            assert (await blocker).status_code == 200
        assert server.metric("tagger_batch_size_sum", model="fashion") == 1


async def test_a_server_fault_is_a_500_with_a_request_id_and_spares_its_batch_mates(
    shared_root, evaluated: Evaluated
) -> None:
    poisoned = np.zeros((28, 28), np.uint8)
    poisoned[0, 0] = POISON
    with run_server(make_settings(shared_root)) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            blocker = await hold_model(server, http, evaluated.images[0])
            bad = send(http, poisoned)
            good = [send(http, evaluated.images[i]) for i in range(1, 6)]
            await server.until(lambda: server.metric(DEPTH, model="fashion") == 6)
            server.gate.release()
            failed = await bad
            assert [r.status_code for r in await asyncio.gather(blocker, *good)] == [200] * 6
            assert failed.status_code == 500
            error = failed.json()["error"]
            assert error["code"] == "internal_error"
            assert error["request_id"] == failed.headers["x-request-id"]
            assert (await http.post(URL, files=png_file(evaluated.images[7]))).status_code == 200
        assert 6 in server.gate.batch_sizes  # they really did share the failing batch


async def test_shutdown_finishes_queued_and_in_flight_requests(
    shared_root, evaluated: Evaluated
) -> None:
    with run_server(make_settings(shared_root)) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            blocker = await hold_model(server, http, evaluated.images[0])
            queued = [send(http, evaluated.images[i]) for i in range(1, 4)]
            await server.until(lambda: server.metric(DEPTH, model="fashion") == 3)
            server.stop()
            await asyncio.sleep(0.2)
            server.gate.release()
            answered = await asyncio.gather(blocker, *queued)
        assert [r.status_code for r in answered] == [200] * 4


async def test_readyz_is_503_until_the_model_is_warm(shared_root, evaluated: Evaluated) -> None:
    gate = ModelGate()
    gate.hold()  # warm-up runs through the same hook, so it waits here
    with run_server(make_settings(shared_root), gate, wait_ready=False) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            await server.until(gate.entered.is_set)
            assert (await http.get("/healthz")).status_code == 200
            not_ready = await http.get("/readyz")
            assert not_ready.status_code == 503
            assert not_ready.json()["error"]["code"] == "not_ready"
            assert "retry-after" in not_ready.headers
            early = await http.post(URL, files=png_file(evaluated.images[0]))
            assert early.status_code == 503
            assert early.json()["error"]["code"] == "not_ready"
            gate.release()
            await server.until(lambda: server.manager.ready)
            ready = await http.get("/readyz")
            assert ready.status_code == 200
            assert ready.json()["model"] == "fashion"
