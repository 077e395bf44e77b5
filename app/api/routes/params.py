"""Path parameters, checked at the edge with the store's own name rules.

A name the store could never hold (too long for a file name, upper case, a `/`) and a version
that is not a plain decimal number are refused here with 404 `invalid_name` /
`invalid_version`, before any file-system access; the patterns are also what /openapi.json
tells clients. `app.api.errors` turns a failed path parameter into that 404.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import HTTPException, Path, Request

from model_store.names import VERSION_PATTERN
from model_store.schema import NAME_PATTERN

# File names may be 255 bytes; a name is also a Prometheus label and a log field.
MAX_NAME_LENGTH = 128
# Versions fit in a signed 64-bit integer.
MAX_VERSION_DIGITS = 18
_NAME_RULE = (
    f"lower-case letters, digits, '_' and '-', starting with a letter or digit, "
    f"at most {MAX_NAME_LENGTH} characters"
)

ModelName = Annotated[
    str,
    Path(
        pattern=NAME_PATTERN.pattern,
        max_length=MAX_NAME_LENGTH,
        description=f"model name: {_NAME_RULE}",
    ),
]
AliasName = Annotated[
    str,
    Path(
        pattern=NAME_PATTERN.pattern,
        max_length=MAX_NAME_LENGTH,
        description=f"alias (e.g. `stable`, `canary`, `latest`): {_NAME_RULE}",
    ),
]
VersionNumber = Annotated[
    str,
    Path(
        pattern=VERSION_PATTERN.pattern,
        max_length=MAX_VERSION_DIGITS,
        description="version number: decimal digits without sign, point or leading zeros",
        examples=["1"],
    ),
]

# What a failed path parameter is answered with: (code, what a valid value looks like).
PATH_PARAMETER_ERRORS: dict[str, tuple[str, str]] = {
    "model": ("invalid_name", f"model names use {_NAME_RULE}"),
    "alias": ("invalid_name", f"aliases use {_NAME_RULE}"),
    "version": (
        "invalid_version",
        f"versions are decimal numbers of at most {MAX_VERSION_DIGITS} digits, "
        "without sign, point, spaces or leading zeros",
    ),
}


async def reject_encoded_slash(request: Request) -> None:
    """404 for a path with an encoded `/` (`%2F`): routing matched its decoded form, which
    names other segments than the client sent (`fashion%2Fversions%2F1` is one segment).
    Async so that FastAPI runs it on the event loop, not on its thread pool per request."""
    raw = (request.scope.get("raw_path") or b"").split(b"?", 1)[0]  # some servers keep the query
    if b"%2f" in raw.lower():
        raise HTTPException(
            404,
            f"no route for {request.method} {raw.decode('latin-1')}: an encoded '/' (%2F) "
            "cannot be part of a name",
        )
