"""The page at `/`: one static HTML file, its scripts and styles, and sample images.

Plain Starlette routes, outside the API: no API key (the page must load to ask for one; it
holds no data and calls the API with the key the user gives it), not in /openapi.json. Every
answer carries a strict Content-Security-Policy: scripts, styles and images from this origin
only (images also from `blob:`, the page's own thumbnails and plots), nothing inline.
"""

from __future__ import annotations

import asyncio
from importlib import resources
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from app.api.deps import samples_of

STATIC_DIR = Path(str(resources.files("app") / "static"))
INDEX_FILE = "index.html"
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
_MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


def _static_files() -> dict[str, Path]:
    """The files shipped in app/static, by name (the only names /static/ serves)."""
    return {
        path.name: path
        for path in STATIC_DIR.iterdir()
        if path.is_file() and path.suffix in _MEDIA_TYPES
    }


_FILES = _static_files()


def _file(name: str) -> FileResponse:
    path = _FILES[name]
    return FileResponse(path, media_type=_MEDIA_TYPES[path.suffix], headers=SECURITY_HEADERS)


async def index(request: Request) -> Response:
    return _file(INDEX_FILE)


async def static_file(request: Request) -> Response:
    name = request.path_params["file"]
    if name not in _FILES or name == INDEX_FILE:
        raise HTTPException(404, f"no static file {name!r}; the page's files are at /")
    return _file(name)


async def sample_list(request: Request) -> Response:
    """The sample images the page offers: `{"samples": [{index, label, url}]}` (empty when
    the server has no Fashion-MNIST)."""
    samples = await asyncio.to_thread(samples_of(request.app).all)
    body = [{"index": s.index, "label": s.label, "url": f"/samples/{s.index}.png"} for s in samples]
    return JSONResponse({"samples": body}, headers=SECURITY_HEADERS)


async def sample_image(request: Request) -> Response:
    index = request.path_params["index"]
    sample = await asyncio.to_thread(samples_of(request.app).find, index)
    if sample is None:
        raise HTTPException(404, f"no sample image {index}; see /samples")
    return Response(sample.png, media_type="image/png", headers=SECURITY_HEADERS)


routes: list[BaseRoute] = [
    Route("/", index, methods=["GET"]),
    Route("/static/{file}", static_file, methods=["GET"]),
    Route("/samples", sample_list, methods=["GET"]),
    Route("/samples/{index:int}.png", sample_image, methods=["GET"]),
]
