"""A version's evaluation, for its model card: report.json and the files it lists (figures)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse

from app.api.deps import ModelsDep
from app.api.routes.params import ModelName, VersionNumber, reject_encoded_slash
from app.api.schemas import error_responses
from app.core.errors import from_store_error
from model_store.errors import ModelStoreError
from model_store.evaluation import evaluation_file, read_report

router = APIRouter(
    prefix="/v1/models/{model}/versions/{version}/evaluation",
    tags=["models"],
    dependencies=[Depends(reject_encoded_slash)],
    responses=error_responses(404, 431),
)
_FILE_TYPES = {".png": "image/png", ".md": "text/markdown; charset=utf-8"}


@router.get("", response_model=dict[str, Any])
async def get_evaluation(model: ModelName, version: VersionNumber, models: ModelsDep) -> Any:
    """The version's evaluation/report.json: test metrics, per-class scores, confusion matrix,
    calibration (ECE before and after, reliability bins), history, and the `figures` that
    `.../evaluation/{file}` serves."""
    try:
        return await asyncio.to_thread(read_report, models.store, model, int(version))
    except ModelStoreError as exc:
        raise from_store_error(exc) from exc


@router.get(
    "/{file}",
    response_class=FileResponse,
    responses={200: {"content": {"image/png": {}, "text/markdown": {}}}},
)
async def get_evaluation_file(
    model: ModelName, version: VersionNumber, file: str, models: ModelsDep
) -> FileResponse:
    """One file the version's report.json lists in `figures` (PNG plots), or report.md."""
    try:
        path: Path = await asyncio.to_thread(
            evaluation_file, models.store, model, int(version), file
        )
    except ModelStoreError as exc:
        raise from_store_error(exc) from exc
    media_type = _FILE_TYPES.get(path.suffix.lower(), "application/octet-stream")
    return FileResponse(path, media_type=media_type, headers={"X-Content-Type-Options": "nosniff"})
