"""Settings for API-key authentication and logging."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, SecretStr, field_validator
from pydantic_settings import NoDecode

_LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")


class AuthLoggingSettings(BaseModel):
    """The API key, the paths that need none, and the log level."""

    api_key: SecretStr | None = None
    auth_exempt_paths: Annotated[tuple[str, ...], NoDecode] = (
        "/healthz",
        "/readyz",
        "/metrics",
        "/v2/health/live",
        "/v2/health/ready",
    )
    log_level: str = "INFO"

    @field_validator("auth_exempt_paths", mode="before")
    @classmethod
    def _split_paths(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        for path in value or ():
            if not str(path).startswith("/"):
                raise ValueError(f"TAGGER_AUTH_EXEMPT_PATHS entry {path!r} must start with '/'")
        return tuple(value or ())

    @field_validator("log_level")
    @classmethod
    def _log_level_known(cls, value: str) -> str:
        value = value.strip().upper()
        if value not in _LOG_LEVELS:
            raise ValueError(f"TAGGER_LOG_LEVEL {value!r} must be one of {', '.join(_LOG_LEVELS)}")
        return value
