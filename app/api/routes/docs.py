"""The OpenAPI schema and its two viewers, as ordinary routes: the API key guards them like
any other path (list them in TAGGER_AUTH_EXEMPT_PATHS to open them)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

from app.api.routes.params import reject_encoded_slash

OPENAPI_URL = "/openapi.json"
router = APIRouter(include_in_schema=False, dependencies=[Depends(reject_encoded_slash)])


@router.get(OPENAPI_URL)
async def openapi(request: Request) -> dict[str, Any]:
    return request.app.openapi()


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(openapi_url=OPENAPI_URL, title=f"{request.app.title} - docs")


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    return get_redoc_html(openapi_url=OPENAPI_URL, title=f"{request.app.title} - ReDoc")
