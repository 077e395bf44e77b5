"""The classify routes' usual request, answered without FastAPI's routing and injection.

A well-formed classify request (POST, valid names, at most a plain `top_k`, the API key when one
is set, a raw image body or a plain multipart body of `file` parts) costs the service about as
much in FastAPI's layers (exception wrappers, routing, dependency solving, parameter
validation) as in decoding and running its image. `ClassifyFastPath` sits inside admission
(app.api.admission, which has matched the route and buffered the body) and answers such a
request through the same `answer_classify` and error responses as the route itself. Anything
else, and any request it does not recognise exactly, goes on to FastAPI unchanged, body
included, and is answered (or refused, naming the problem) there.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from starlette.requests import Request
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.admission import BODY_SCOPE_KEY
from app.api.auth import presents_api_key
from app.api.errors import ApiError, api_error_response
from app.api.plain_multipart import boundary_of, file_parts
from app.api.routes.classify import answer_classify
from app.api.routes.params import MAX_NAME_LENGTH, MAX_VERSION_DIGITS
from app.api.uploads import FILE_FIELD, RAW_TYPES
from app.core.decoding import Upload
from app.core.errors import ServingError
from app.core.inference import Core
from model_store.names import VERSION_PATTERN
from model_store.schema import NAME_PATTERN

_DEFAULT_TOP_K = 5
_TOP_K_QUERY = re.compile(rb"top_k=([1-9][0-9]{0,5})")
_RAW_TYPES = tuple(prefix.encode() for prefix in RAW_TYPES)


class ClassifyFastPath:
    """Answers the usual request to one of `routes` (the classify routes) itself; passes every
    other request to `app`."""

    def __init__(self, app: ASGIApp, core: Core, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.core = core
        self.routes = frozenset(id(route) for route in routes)
        api_key = core.settings.api_key
        self.api_key = api_key.get_secret_value().encode() if api_key is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = scope.get(BODY_SCOPE_KEY)
        ours = id(scope.get("route")) in self.routes and body is not None
        request = self._usual(scope) if ours else None
        uploads = self._uploads(scope, body) if request is not None else None
        if request is None or uploads is None:
            await self.app(scope, receive, send)
            return
        model, ref, top_k = request
        http_request = Request(scope, receive)
        try:
            response = await answer_classify(http_request, self.core, model, ref, top_k, uploads)
        except (ApiError, ServingError) as exc:
            response = api_error_response(http_request, exc)
        await response(scope, receive, send)

    def _usual(self, scope: Scope) -> tuple[str, int | str | None, int] | None:
        """(model, version or alias, top_k) of a request FastAPI would accept as it is; None
        for anything else. The path parameters are admission's match of the route."""
        if b"%" in scope.get("raw_path", b"%") or scope["method"] != "POST":
            return None
        params = scope["path_params"]
        model = params["model"]
        if not _is_name(model):
            return None
        ref: int | str | None = None
        if "version" in params:
            version = params["version"]
            if len(version) > MAX_VERSION_DIGITS or not VERSION_PATTERN.match(version):
                return None
            ref = int(version)
        elif "alias" in params:
            ref = params["alias"]
            if not _is_name(ref):
                return None
        query = scope.get("query_string", b"")
        top_k = _DEFAULT_TOP_K
        if query:
            top_k_match = _TOP_K_QUERY.fullmatch(query)
            if top_k_match is None:
                return None
            top_k = int(top_k_match.group(1))
        if self.api_key is not None and not presents_api_key(scope["headers"], self.api_key):
            return None
        return model, ref, top_k

    def _uploads(self, scope: Scope, body: bytes) -> list[Upload] | None:
        """The images of a raw or plain multipart body; None for any other body."""
        content_type = b""
        for name, value in scope["headers"]:
            if name == b"content-type":
                if content_type:
                    return None
                content_type = value
        limit = self.core.settings.max_images_per_request
        boundary = boundary_of(content_type)
        if boundary is not None:
            return file_parts(body, boundary, FILE_FIELD, limit)
        media_type = content_type.split(b";", 1)[0].strip().lower()
        # `+json` types are JSON bodies to the general path, whatever their prefix.
        if media_type.startswith(_RAW_TYPES) and not media_type.endswith(b"+json"):
            return [Upload(body, "body")]
        return None


def _is_name(name: str) -> bool:
    return len(name) <= MAX_NAME_LENGTH and NAME_PATTERN.match(name) is not None
