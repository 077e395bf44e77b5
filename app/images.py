"""Uploads -> model pixels: size and count limits, then decode + preprocess (small images
inline, others on a thread pool)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np
from fastapi import Request
from PIL import Image
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from app.config import Settings
from app.core_errors import DeadlineExceeded, InputProblem, InvalidInput
from app.decode_budget import DecodeBudget
from app.errors import ApiError
from app.json_body import JsonBodyError, JsonLimits, parse_json_body
from app.metrics import Metrics
from model_store.decode_cost import check_decode_cost
from model_store.preprocessing import (
    DeadlinePassed,
    ExtremeAspectRatio,
    ImageError,
    ImageTooLarge,
    UnsupportedImage,
    draft_side,
    open_image,
    preprocess_bytes,
    preprocess_image,
)
from model_store.schema import ModelMetadata

FILE_FIELD = "file"
# Images up to this size are decoded on the event loop (~0.2 ms for 64x64); larger on a thread.
INLINE_DECODE_MAX_PIXELS = 64 * 64
INLINE_DECODE_MAX_BYTES = 16 * 1024
# JSON bodies up to this size are parsed on the event loop (well under a millisecond).
INLINE_JSON_MAX_BYTES = 64 * 1024
_RAW_TYPES = ("image/", "application/octet-stream")
_IMAGE_PROBLEMS: dict[type[ImageError], InputProblem] = {
    ImageTooLarge: InputProblem.TOO_LARGE,
    UnsupportedImage: InputProblem.UNSUPPORTED,
    ExtremeAspectRatio: InputProblem.OUT_OF_RANGE,
}


@dataclass(frozen=True, slots=True)
class Upload:
    """One encoded image and how to name it in an error message."""

    data: bytes
    name: str


def _reject(metrics: Metrics, status: int, code: str, message: str) -> ApiError:
    metrics.images_rejected.labels(code).inc()
    return ApiError(status, code, message)


async def read_uploads(request: Request, settings: Settings, metrics: Metrics) -> list[Upload]:
    """The request's images: multipart field `file` (repeated), JSON `instances`, or a raw body.

    The body arrives already bounded by `TAGGER_MAX_UPLOAD_BYTES` (app.admission reads it before
    the request takes a slot), so it is not measured again here.
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        uploads = await _read_multipart(request, settings, metrics)
    elif content_type == "application/json" or content_type.endswith("+json"):
        uploads = await _parse_json(await request.body(), settings, metrics)
    elif content_type.startswith(_RAW_TYPES):
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


async def decode_all(
    uploads: list[Upload],
    metadata: ModelMetadata,
    settings: Settings,
    metrics: Metrics,
    executor: Executor,
    budget: DecodeBudget,
    deadline: float | None = None,
) -> list[np.ndarray]:
    """Decode the uploads; the first bad image (in order) is the error.

    Small images (the usual case: a thumbnail near the model's input size) are decoded right
    here: that costs less than handing them to a thread and back, and keeps the decode threads
    from competing with the event loop for the GIL. Larger ones go to `executor` in parallel,
    each once its estimated decode memory fits `budget` (first come, first served); one whose
    estimate alone exceeds the budget is refused from its header (`image_too_large`).
    A bad image raises `InvalidInput` (counted by its code in the rejection metric). Past
    `deadline` (`time.monotonic()`; default: TAGGER_REQUEST_TIMEOUT_MS from now) this raises
    `DeadlineExceeded` at once, and the decodes still running stop at their next stage.
    """
    if deadline is None:
        deadline = time.monotonic() + settings.request_timeout_s
    spec, shape, max_pixels = metadata.preprocessing, metadata.input, settings.max_pixels
    inline_pixels = min(max_pixels, INLINE_DECODE_MAX_PIXELS)

    def preprocess(data: bytes, pixel_limit: int) -> np.ndarray:
        return preprocess_bytes(data, spec, shape, pixel_limit, settings.max_aspect_ratio, deadline)

    def decode(image: Image.Image) -> np.ndarray:
        started = time.perf_counter()
        try:
            return preprocess_image(image, spec, shape, deadline)
        finally:
            metrics.decode_seconds.observe(time.perf_counter() - started)

    loop = asyncio.get_running_loop()

    def read_header(data: bytes) -> tuple[Image.Image, int]:
        image = open_image(data, max_pixels, draft_side(shape), settings.max_aspect_ratio)
        return image, check_decode_cost(image, budget.capacity)

    async def offload(data: bytes) -> np.ndarray:
        image, cost = await asyncio.wrap_future(executor.submit(read_header, data))
        try:
            await budget.acquire(cost, deadline - time.monotonic())
        except TimeoutError:
            raise DeadlinePassed("the deadline passed while waiting for decode memory") from None
        job = executor.submit(decode, image)
        # The bytes stay taken until the thread is done, even if this request gave up on it.
        job.add_done_callback(lambda _job: _on_loop(loop, budget.release, cost))
        return await asyncio.wrap_future(job)

    results: list[np.ndarray | BaseException | None] = []
    offloaded: dict[int, asyncio.Future[np.ndarray]] = {}
    for index, upload in enumerate(uploads):
        result: np.ndarray | BaseException | None = None
        if len(upload.data) <= INLINE_DECODE_MAX_BYTES:
            started = time.perf_counter()
            try:
                # The header is checked before any pixel is decoded, so a small file that
                # declares a large image costs next to nothing here and goes to the pool.
                result = preprocess(upload.data, inline_pixels)
            except ImageTooLarge as exc:
                result = exc if inline_pixels == max_pixels else None
            except (ImageError, DeadlinePassed) as exc:
                result = exc
            if result is not None:
                metrics.decode_seconds.observe(time.perf_counter() - started)
        if result is None:
            offloaded[index] = asyncio.ensure_future(offload(upload.data))
        results.append(result)
    if offloaded:
        await _all_done(list(offloaded.values()), deadline, settings.request_timeout_s)
        for index, future in offloaded.items():
            results[index] = future.exception() or future.result()
    for upload, result in zip(uploads, results, strict=True):
        if isinstance(result, DeadlinePassed):
            raise DeadlineExceeded(settings.request_timeout_s) from result
        if isinstance(result, ImageError):
            message = f"{upload.name}: {result}" if len(uploads) > 1 else str(result)
            metrics.images_rejected.labels(result.code).inc()
            raise InvalidInput(message, result.code, _image_problem(result)) from result
        if isinstance(result, BaseException):
            raise result
    return [r for r in results if isinstance(r, np.ndarray)]


def _image_problem(error: ImageError) -> InputProblem:
    for kind, problem in _IMAGE_PROBLEMS.items():
        if isinstance(error, kind):
            return problem
    return InputProblem.MALFORMED


async def _all_done(
    futures: list[asyncio.Future[np.ndarray]], deadline: float, timeout_s: float
) -> None:
    """Wait for every future until `deadline`; past it, cancel the ones not started (running
    ones see the deadline themselves) and raise `DeadlineExceeded`."""
    _done, pending = await asyncio.wait(futures, timeout=max(0.0, deadline - time.monotonic()))
    if pending:
        for future in futures:
            if future in pending:
                future.cancel()
            elif not future.cancelled():
                future.exception()  # retrieved: a late failure is not logged as unhandled
        raise DeadlineExceeded(timeout_s)


def _on_loop(loop: asyncio.AbstractEventLoop, release: Callable[[int], None], cost: int) -> None:
    with contextlib.suppress(RuntimeError):  # a closed loop has nothing left to admit
        loop.call_soon_threadsafe(release, cost)


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
