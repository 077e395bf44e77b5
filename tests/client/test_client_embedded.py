"""`Tagger.from_store`: the service's answers, in process."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from client import RequestRejected, Tagger
from model_store import ModelStore
from tests.app.app_helpers import Server
from tests.client.client_helpers import Catalogue


def test_the_tagger_answers_as_the_service_does(
    server: Server, store_root: Path, catalogue: Catalogue
) -> None:
    paths = catalogue.paths[:8]
    files = [("file", (Path(p).name, Path(p).read_bytes())) for p in paths]
    served = httpx.post(
        f"{server.url}/v1/models/fashion/classify", params={"top_k": 10}, files=files
    ).json()["results"]
    ModelStore(store_root).promote("fashion", 1, "stable")
    with Tagger.from_store(store_root, "fashion", ref="stable", batch_size=3) as tagger:
        assert (tagger.name, tagger.version) == ("fashion", 1)
        results = tagger.classify(paths, top_k=10)
        with pytest.raises(RequestRejected) as raised:
            tagger.classify(paths, top_k=11)
        assert raised.value.code == "invalid_top_k"
    for answer, result in zip(served, results, strict=True):
        assert [p["label"] for p in answer["predictions"]] == [p.label for p in result.predictions]
        for p, q in zip(answer["predictions"], result.predictions, strict=True):
            assert p["confidence"] == pytest.approx(q.confidence, abs=1e-6)


def test_an_unknown_model_or_version_is_a_typed_error(store_root: Path) -> None:
    with pytest.raises(RequestRejected) as raised:
        Tagger.from_store(store_root, "fashion", ref=99)
    assert raised.value.code == "version_not_found"
    with pytest.raises(RequestRejected):
        Tagger.from_store(store_root, "nothing-here")
