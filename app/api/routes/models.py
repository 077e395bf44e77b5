"""What the store holds and what this replica serves."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends

from app.api.deps import ModelsDep
from app.api.routes.params import ModelName, VersionNumber, reject_encoded_slash
from app.api.schemas import ModelList, ModelSummary, VersionDetail, error_responses
from app.api.tfserving.status import status_body
from app.core.errors import from_store_error
from app.core.models import ServedModels
from model_store.errors import ModelStoreError

router = APIRouter(
    prefix="/v1/models",
    tags=["models"],
    dependencies=[Depends(reject_encoded_slash)],
    responses=error_responses(431),
)


def _summary(models: ServedModels, name: str) -> ModelSummary:
    store = models.store
    manager = models.find(name)
    served = manager.served if manager is not None else None
    versions = store.versions(name)
    return ModelSummary(
        name=name,
        versions=versions,
        aliases=store.aliases(name),
        served_version=served.version if served is not None else None,
        served_alias=(manager.alias or None) if manager is not None else None,
        loaded_versions=manager.loaded_versions if manager is not None else [],
        runtime=served.model.runtime if served is not None else None,
        **status_body(manager, name, versions),
    )


def _detail(models: ServedModels, name: str, version: int) -> VersionDetail:
    store = models.store
    metadata = store.metadata(name, version)
    manager = models.find(name)
    served = manager.served if manager is not None else None
    return VersionDetail(
        name=name,
        version=version,
        served=served is not None and served.version == version,
        loaded=manager is not None and version in manager.loaded_versions,
        aliases=sorted(a for a, v in store.aliases(name).items() if v == version),
        created_at=metadata.created_at,
        labels=metadata.labels,
        input=metadata.input.model_dump(),
        preprocessing=metadata.preprocessing.model_dump(),
        test_metrics=metadata.metrics.test.model_dump(exclude={"per_class"}),
        training=metadata.training.model_dump(),
        dataset=metadata.dataset.model_dump(include={"name", "fingerprint", "splits"}),
        runtime=manager.runtime_of(version) if manager is not None else None,
        **status_body(manager, name, [version]),
    )


@router.get("", response_model=ModelList)
async def list_models(models: ModelsDep) -> ModelList:
    """Every model in the store, with versions, aliases and what is served and loaded."""

    def collect() -> ModelList:
        return ModelList(
            models=[_summary(models, name) for name in models.store.models()],
            served_models=models.names,
            loaded_versions_total=models.loaded_total,
            max_total_loaded_versions=models.settings.max_total_loaded_versions,
        )

    try:
        return await asyncio.to_thread(collect)
    except ModelStoreError as exc:
        raise from_store_error(exc) from exc


@router.get("/{model}", response_model=ModelSummary, responses=error_responses(404))
async def get_model(model: ModelName, models: ModelsDep) -> ModelSummary:
    """One model's versions and aliases; `model_version_status` is TF Serving's model status
    (`GET /v1/models/{m}` there)."""
    try:
        return await asyncio.to_thread(_summary, models, model)
    except ModelStoreError as exc:
        raise from_store_error(exc) from exc


@router.get(
    "/{model}/versions/{version}", response_model=VersionDetail, responses=error_responses(404)
)
async def get_version(model: ModelName, version: VersionNumber, models: ModelsDep) -> VersionDetail:
    """One version's labels, input, preprocessing, test metrics and training summary, and its
    TF Serving status (`model_version_status`)."""
    try:
        return await asyncio.to_thread(_detail, models, model, int(version))
    except ModelStoreError as exc:
        raise from_store_error(exc) from exc
