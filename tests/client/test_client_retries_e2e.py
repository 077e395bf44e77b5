"""Retries against a server that is really full: the client waits the server's Retry-After,
then succeeds."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx

from client import AsyncTaggerClient, ServiceUnavailable
from client.protocol import RetryPolicy
from tests.app.app_helpers import make_settings, run_server
from tests.client.client_helpers import Catalogue

CLASSIFY = {"route": "/v1/models/{model}/classify", "method": "POST"}
RETRY_AFTER_S = 1


async def test_a_503_is_retried_no_sooner_than_retry_after_then_succeeds(
    store_root: Path, catalogue: Catalogue
) -> None:
    settings = make_settings(
        store_root,
        max_batch_size=1,
        max_queue=1,
        max_images_per_request=1,
        max_in_flight_requests=1,
        retry_after_s=RETRY_AFTER_S,
    )
    image = Path(catalogue.paths[0]).read_bytes()

    def refused() -> float:
        return server.metric("tagger_requests_total", **CLASSIFY, status="503")

    with run_server(settings) as server:
        server.gate.hold()
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            holder = asyncio.ensure_future(
                http.post("/v1/models/fashion/classify", files={"file": ("a.png", image)})
            )
            await server.until(server.gate.entered.is_set)  # the one slot is taken

            async with AsyncTaggerClient(server.url, retries=2) as client:
                started = time.monotonic()
                tagging = asyncio.ensure_future(client.classify([image]))
                await server.until(lambda: refused() == 1)
                server.gate.release()
                (result,) = await tagging
                elapsed = time.monotonic() - started

                assert result.ok and result.version == 1
                assert elapsed >= RETRY_AFTER_S
                assert refused() == 1  # one refusal, then one success
                assert (await holder).status_code == 200

                # Held again for longer than the retries last: a typed error, not a hang.
                server.gate.hold()
                holder = asyncio.ensure_future(
                    http.post("/v1/models/fashion/classify", files={"file": ("a.png", image)})
                )
                await server.until(server.gate.entered.is_set)
                client.retry = RetryPolicy(attempts=2, backoff_s=0.01)
                try:
                    await client.classify([image])
                except ServiceUnavailable as exc:
                    assert exc.code == "overloaded" and exc.status == 503 and exc.request_id
                    assert "after 2 attempts" in str(exc)
                else:
                    raise AssertionError("a server full through every retry must raise")
                finally:
                    server.gate.release()
                assert (await holder).status_code == 200
