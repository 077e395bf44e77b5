"""What one classify request may hold, so clients can size their requests from the server."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import SettingsDep
from app.api.schemas import Limits, error_responses

router = APIRouter(tags=["models"], responses=error_responses(431))


@router.get("/v1/limits", response_model=Limits)
async def limits(settings: SettingsDep) -> Limits:
    """The most images and body bytes one classify request may carry (TAGGER_MAX_IMAGES_PER_REQUEST,
    TAGGER_MAX_UPLOAD_BYTES); a client splits its work into requests within them."""
    return Limits(
        max_images_per_request=settings.max_images_per_request,
        max_upload_bytes=settings.max_upload_bytes,
    )
