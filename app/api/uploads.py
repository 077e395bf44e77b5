"""Request bodies -> encoded images: multipart field `file`, JSON `instances`, or a raw body,
with the count limit; each protocol's own body formats live in its package."""

from __future__ import annotations

import asyncio
import base64
import binascii

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from app.api.errors import ApiError
from app.api.json_body import JsonBodyError, JsonLimits, parse_json_body
from app.config import Settings
from app.core.decoding import Upload
from app.metrics import Metrics

FILE_FIELD = "file"
# JSON bodies up to this size are parsed on the event loop (well under a millisecond).
INLINE_JSON_MAX_BYTES = 64 * 1024
RAW_TYPES = ("image/", "application/octet-stream")


def _reject(metrics: Metrics, status: int, code: str, message: str) -> ApiError:
    metrics.images_rejected.labels(code).inc()
    return ApiError(status, code, message)


async def read_uploads(request: Request, settings: Settings, metrics: Metrics) -> list[Upload]:
    """The request's images: multipart field `file` (repeated), JSON `instances`, or a raw body.

    The body arrives already bounded by `TAGGER_MAX_UPLOAD_BYTES` (app.api.admission reads it before
    the request takes a slot), so it is not measured again here.
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        uploads = await _read_multipart(request, settings, metrics)
    elif content_type == "application/json" or content_type.endswith("+json"):
        uploads = await _parse_json(await request.body(), settings, metrics)
    elif content_type.startswith(RAW_TYPES):
        uploads = [Upload(await request.body(), "body")]
    else:
        raise _reject(
            metrics,
            415,
            "unsupported_media_type",
            f"unsupported Content-Type {content_type or '(none)'!r}; send multipart/form-data "
            f"with field {FILE_FIELD!r}, application/json with "
            '{"instances": [{"b64": ...}]}, or a raw image/* body',
        )
    if not uploads:
        raise _reject(metrics, 400, "missing_file", "the request holds no image")
    if len(uploads) > settings.max_images_per_request:
        raise _reject(
            metrics,
            413,
            "too_many_images",
            f"{len(uploads)} images in one request; the limit is {settings.max_images_per_request}",
        )
    return uploads


async def _read_multipart(request: Request, settings: Settings, metrics: Metrics) -> list[Upload]:
    parser = MultiPartParser(
        request.headers,
        request.stream(),
        max_files=settings.max_images_per_request,
        max_fields=100,
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        if str(exc).startswith("Too many files"):
            raise _reject(
                metrics,
                413,
                "too_many_images",
                f"too many images in one request; the limit is {settings.max_images_per_request}",
            ) from exc
        raise _reject(
            metrics, 400, "malformed_multipart", f"malformed multipart body: {exc}"
        ) from exc
    try:
        uploads = []
        for index, value in enumerate(form.getlist(FILE_FIELD)):
            if not isinstance(value, UploadFile):
                raise _reject(
                    metrics,
                    400,
                    "missing_file",
                    f"field {FILE_FIELD!r} must be a file upload (curl -F {FILE_FIELD}=@image.png)",
                )
            uploads.append(Upload(await value.read(), value.filename or f"{FILE_FIELD}[{index}]"))
    finally:
        await form.close()
    if not uploads:
        names = ", ".join(sorted(set(form.keys()))) or "none"
        raise _reject(
            metrics,
            400,
            "missing_file",
            f"send the image as multipart field {FILE_FIELD!r} (fields received: {names})",
        )
    return uploads


async def _parse_json(body: bytes, settings: Settings, metrics: Metrics) -> list[Upload]:
    """`{"instances": [{"b64": "..."}, ...]}` (TensorFlow Serving's binary convention).

    Nesting depth, number of values and number of instances are checked while the body is
    scanned, before any value is built; large bodies are parsed and decoded on a thread.
    """
    limits = JsonLimits(
        max_depth=settings.max_json_depth,
        max_values=settings.max_json_values,
        max_instances=settings.max_images_per_request,
    )
    if len(body) <= INLINE_JSON_MAX_BYTES:
        return _uploads_from_json(body, limits, metrics)
    return await asyncio.to_thread(_uploads_from_json, body, limits, metrics)


def _uploads_from_json(body: bytes, limits: JsonLimits, metrics: Metrics) -> list[Upload]:
    try:
        document = parse_json_body(body, limits)
    except JsonBodyError as exc:
        raise _reject(metrics, exc.status, exc.code, exc.message) from None
    instances = document.get("instances") if isinstance(document, dict) else None
    if not isinstance(instances, list):
        raise _reject(
            metrics, 400, "invalid_body", 'expected {"instances": [{"b64": "<base64 image>"}]}'
        )
    uploads = []
    for index, instance in enumerate(instances):
        encoded = instance.get("b64") if isinstance(instance, dict) else None
        if not isinstance(encoded, str):
            raise _reject(
                metrics,
                400,
                "invalid_body",
                f'instances[{index}] must be an object {{"b64": "<base64 image>"}}',
            )
        try:
            data = base64.b64decode("".join(encoded.split()), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise _reject(
                metrics, 400, "bad_base64", f"instances[{index}].b64 is not valid base64: {exc}"
            ) from exc
        uploads.append(Upload(data, f"instances[{index}]"))
    return uploads
