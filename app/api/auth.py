"""Optional API-key auth: `Authorization: Bearer <key>` or `X-API-Key: <key>`; off when unset."""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from typing import Annotated

from fastapi import Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from app.api.deps import SettingsDep
from app.api.errors import ApiError

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)
_bearer = HTTPBearer(auto_error=False)
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


async def require_api_key(
    request: Request,
    settings: SettingsDep,
    api_key: Annotated[str | None, Security(_api_key_header)] = None,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None,
) -> None:
    """Refuse (401) unless the request presents the configured key; exempt paths always pass.

    Every credential presented must be right: a request sending a good bearer token and a
    wrong (or empty) X-API-Key is refused, not served on whichever header is read first.
    Async so that FastAPI runs it on the event loop, not on its thread pool per request."""
    if settings.api_key is None or request.url.path in settings.auth_exempt_paths:
        return
    # Each credential header sent counts, even empty or of another scheme (then it is wrong).
    presented = []
    if "authorization" in request.headers:
        presented.append(bearer.credentials if bearer is not None else "")
    if "x-api-key" in request.headers:
        presented.append(api_key or "")
    if not presented:
        raise ApiError(
            401,
            "unauthorized",
            "missing API key; send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
            _CHALLENGE,
        )
    expected = settings.api_key.get_secret_value().encode()
    if not all(hmac.compare_digest(key.encode(), expected) for key in presented):
        raise ApiError(401, "unauthorized", "invalid API key", _CHALLENGE)


def presents_api_key(headers: Iterable[tuple[bytes, bytes]], key: bytes) -> bool:
    """True when raw ASGI `headers` send `key` in every credential header they hold (`Bearer`
    or `X-API-Key`, each once) and hold at least one: the usual case, checked without FastAPI's
    security classes. False leaves the request to `require_api_key`, which names the problem."""
    seen: set[bytes] = set()
    for name, value in headers:
        if name == b"authorization":
            scheme, _, credentials = value.partition(b" ")
            if scheme.lower() != b"bearer":
                return False
        elif name == b"x-api-key":
            credentials = value
        else:
            continue
        if name in seen or not hmac.compare_digest(credentials, key):
            return False
        seen.add(name)
    return bool(seen)
