"""Service settings: one pydantic-settings object read from `TAGGER_*` environment variables.

The fields live by concern in `app.settings`; `Settings` combines them and keeps the checks
and derived values that span concerns."""

from __future__ import annotations

from functools import lru_cache

from pydantic import field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.settings.auth import AuthLoggingSettings
from app.settings.batching import BatchingSettings
from app.settings.http import HttpSettings, ListenSettings
from app.settings.images import ImageSettings
from app.settings.models import ModelStoreSettings
from app.settings.page import PageSettings
from app.settings.runtime import RUNTIME_SETTINGS, Runtime, RuntimeSettings

__all__ = ["RUNTIME_SETTINGS", "Runtime", "Settings", "get_settings"]

_DEFAULT_BUFFERED_BODY_BYTES = 256 * 1024 * 1024


# pydantic orders fields from the last base to the first, so the groups are listed in reverse:
# the fields (and so dumps and validation errors) keep the order listen, models,
# batching, HTTP, images, runtime, auth, page.
class Settings(
    PageSettings,
    AuthLoggingSettings,
    RuntimeSettings,
    ImageSettings,
    HttpSettings,
    BatchingSettings,
    ModelStoreSettings,
    ListenSettings,
    BaseSettings,
):
    """Everything the service can be told; names carry their units."""

    model_config = SettingsConfigDict(
        env_prefix="TAGGER_", protected_namespaces=(), extra="ignore", frozen=True
    )

    @field_validator(
        "api_key",
        "max_in_flight_requests",
        "max_buffered_body_bytes",
        "max_total_loaded_versions",
        "intra_op_threads",
        "inter_op_threads",
        "workers",
        "fashion_mnist_dir",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return value

    @model_validator(mode="after")
    def _queue_holds_a_batch_and_a_request(self) -> Settings:
        if self.max_queue < self.max_batch_size:
            raise ValueError(
                f"TAGGER_MAX_QUEUE ({self.max_queue}) must be at least "
                f"TAGGER_MAX_BATCH_SIZE ({self.max_batch_size}) so a full batch can queue"
            )
        if self.max_queue < self.max_images_per_request:
            raise ValueError(
                f"TAGGER_MAX_QUEUE ({self.max_queue}) must be at least "
                f"TAGGER_MAX_IMAGES_PER_REQUEST ({self.max_images_per_request}) so the largest "
                "request can queue"
            )
        self._forms_not_combined()
        if (
            self.max_buffered_body_bytes is not None
            and self.max_buffered_body_bytes < self.max_upload_bytes
        ):
            raise ValueError(
                f"TAGGER_MAX_BUFFERED_BODY_BYTES ({self.max_buffered_body_bytes}) must be at "
                f"least TAGGER_MAX_UPLOAD_BYTES ({self.max_upload_bytes}) so the largest upload "
                "can be received"
            )
        return self

    @property
    def buffered_body_limit_bytes(self) -> int:
        """TAGGER_MAX_BUFFERED_BODY_BYTES, or 256 MiB (twice the upload limit if that is more)."""
        if self.max_buffered_body_bytes is not None:
            return self.max_buffered_body_bytes
        return max(_DEFAULT_BUFFERED_BODY_BYTES, 2 * self.max_upload_bytes)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once (tests build `Settings`)."""
    return Settings()
