"""TF Serving's model status from the model manager's view of each version (no model needed)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry

from app.api.tfserving.status import VersionState, VersionStatus, model_status, status_body
from app.config import Settings
from app.core.model_manager import ModelManager, VersionLoad
from app.metrics import Metrics


def manager(tmp_path: Path) -> ModelManager:
    settings = Settings(model_store=tmp_path, model_name="fashion", poll_interval_s=0)
    return ModelManager(settings, store=None, metrics=Metrics(CollectorRegistry()))


@pytest.mark.asyncio(loop_scope="session")
async def test_version_load_follows_loads_failures_and_what_is_served(tmp_path: Path) -> None:
    models = manager(tmp_path)
    assert models.version_load(1) is VersionLoad.UNLOADED
    models.served = SimpleNamespace(version=1)  # type: ignore[assignment]
    assert models.version_load(1) is VersionLoad.LOADED
    lock = models._lock(2)
    async with lock:
        assert models.version_load(2) is VersionLoad.LOADING
    assert models.version_load(2) is VersionLoad.UNLOADED
    models._failures.record(3, "corrupt variables")
    assert models.version_load(3) is VersionLoad.FAILED


@pytest.mark.asyncio(loop_scope="session")
async def test_status_maps_each_load_state_to_tf_servings_and_hides_the_failure_reason(
    tmp_path: Path,
) -> None:
    models = manager(tmp_path)
    models.served = SimpleNamespace(version=2)  # type: ignore[assignment]
    models._failures.record(3, "/secret/path/variables.data: corrupt")
    async with models._lock(4):
        body = status_body(models, "fashion", [1, 2, 3, 4])
    ok = {"error_code": "OK", "error_message": ""}
    assert body == {
        "model_version_status": [
            {"version": "4", "state": "LOADING", "status": ok},
            {
                "version": "3",
                "state": "END",
                "status": {
                    "error_code": "UNKNOWN",
                    "error_message": "fashion v3 could not be loaded; see the server log",
                },
            },
            {"version": "2", "state": "AVAILABLE", "status": ok},
            {"version": "1", "state": "START", "status": ok},
        ]
    }


@pytest.mark.asyncio(loop_scope="session")
async def test_versions_of_a_model_not_served_here_are_end(tmp_path: Path) -> None:
    body = status_body(manager(tmp_path), "shoes", [1])
    assert body["model_version_status"][0]["state"] == "END"


def test_model_status_of_the_docs_example() -> None:
    # api_rest.md: curl http://localhost:8501/v1/models/half_plus_three
    assert model_status([VersionStatus(123, VersionState.AVAILABLE)]) == {
        "model_version_status": [
            {
                "version": "123",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }


def test_model_status_lists_versions_newest_first_with_failed_loads_as_end() -> None:
    answer = model_status(
        [
            VersionStatus(1, VersionState.END, "UNKNOWN", "could not load"),
            VersionStatus(3, VersionState.LOADING),
            VersionStatus(2, VersionState.AVAILABLE),
        ]
    )
    statuses = answer["model_version_status"]
    assert [status["version"] for status in statuses] == ["3", "2", "1"]
    assert [status["state"] for status in statuses] == ["LOADING", "AVAILABLE", "END"]
    assert statuses[2]["status"] == {"error_code": "UNKNOWN", "error_message": "could not load"}
    assert {state.value for state in VersionState} == {
        "START",
        "LOADING",
        "AVAILABLE",
        "UNLOADING",
        "END",
    }
