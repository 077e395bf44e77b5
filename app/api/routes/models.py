"""What the store holds and what this replica serves."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends

from app.api.deps import ManagerDep
from app.api.routes.params import ModelName, VersionNumber, reject_encoded_slash
from app.api.schemas import ModelList, ModelSummary, VersionDetail, error_responses
from app.api.tfserving.status import status_body
from app.core.errors import from_store_error
from app.core.model_manager import ModelManager
from model_store.errors import ModelStoreError

router = APIRouter(
    prefix="/v1/models",
    tags=["models"],
    dependencies=[Depends(reject_encoded_slash)],
    responses=error_responses(431),
)


def _summary(manager: ModelManager, name: str) -> ModelSummary:
    store = manager.store
    here = name == manager.name
    versions = store.versions(name)
    return ModelSummary(
        name=name,
        versions=versions,
        aliases=store.aliases(name),
        served_version=manager.served.version if here and manager.served else None,
        served_alias=(manager.settings.model_alias or None) if here else None,
        loaded_versions=manager.loaded_versions if here else [],
        runtime=manager.runtime_of(manager.served.version) if here and manager.served else None,
        **status_body(manager, name, versions),
    )


def _detail(manager: ModelManager, name: str, version: int) -> VersionDetail:
    store = manager.store
    metadata = store.metadata(name, version)
    here = name == manager.name
    return VersionDetail(
        name=name,
        version=version,
        served=here and manager.served is not None and manager.served.version == version,
        loaded=here and version in manager.loaded_versions,
        aliases=sorted(a for a, v in store.aliases(name).items() if v == version),
        created_at=metadata.created_at,
        labels=metadata.labels,
        input=metadata.input.model_dump(),
        preprocessing=metadata.preprocessing.model_dump(),
        test_metrics=metadata.metrics.test.model_dump(exclude={"per_class"}),
        training=metadata.training.model_dump(),
        runtime=manager.runtime_of(version) if here else None,
        **status_body(manager, name, [version]),
    )


@router.get("", response_model=ModelList)
async def list_models(manager: ManagerDep) -> ModelList:
    """Every model in the store, with versions, aliases and what is served."""

    def collect() -> ModelList:
        return ModelList(models=[_summary(manager, name) for name in manager.store.models()])

    try:
        return await asyncio.to_thread(collect)
    except ModelStoreError as exc:
        raise from_store_error(exc) from exc


@router.get("/{model}", response_model=ModelSummary, responses=error_responses(404))
async def get_model(model: ModelName, manager: ManagerDep) -> ModelSummary:
    """One model's versions and aliases; `model_version_status` is TF Serving's model status
    (`GET /v1/models/{m}` there)."""
    try:
        return await asyncio.to_thread(_summary, manager, model)
    except ModelStoreError as exc:
        raise from_store_error(exc) from exc


@router.get(
    "/{model}/versions/{version}", response_model=VersionDetail, responses=error_responses(404)
)
async def get_version(
    model: ModelName, version: VersionNumber, manager: ManagerDep
) -> VersionDetail:
    """One version's labels, input, preprocessing, test metrics and training summary, and its
    TF Serving status (`model_version_status`)."""
    try:
        return await asyncio.to_thread(_detail, manager, model, int(version))
    except ModelStoreError as exc:
        raise from_store_error(exc) from exc
