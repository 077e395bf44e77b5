"""Service settings: one pydantic-settings object read from `TAGGER_*` environment variables."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from model_store.preprocessing import DEFAULT_MAX_ASPECT_RATIO, DEFAULT_MAX_PIXELS
from model_store.schema import NAME_PATTERN

_LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
Runtime = Literal["auto", "onnxruntime", "tensorflow"]
RUNTIME_SETTINGS: tuple[str, ...] = get_args(Runtime)
_DEFAULT_BUFFERED_BODY_BYTES = 256 * 1024 * 1024


class Settings(BaseSettings):
    """Everything the service can be told; names carry their units."""

    model_config = SettingsConfigDict(
        env_prefix="TAGGER_", protected_namespaces=(), extra="ignore", frozen=True
    )

    host: str = "0.0.0.0"
    port: int = Field(default=8000, ge=1, le=65535)
    model_store: Path = Path("models")
    # Which models to serve: "*" (every model in the store, followed as models come and go) or
    # a comma list. TAGGER_MODEL_NAME / TAGGER_MODEL_ALIAS are the one-model form (see
    # `served_models`); the two forms are not combined.
    models: str = "*"
    # Per-model alias to serve, "fashion=stable,colours=canary"; a model not named serves latest.
    model_aliases: str = ""
    # The one-model form: set explicitly, only this model is served (at TAGGER_MODEL_ALIAS).
    model_name: str = "fashion"
    # Alias to serve ("stable", "canary", ...); empty serves the latest version.
    model_alias: str = ""
    poll_interval_s: float = Field(default=5.0, ge=0)  # 0 disables watching the store
    max_loaded_versions: int = Field(default=2, ge=1)  # pinned versions kept besides the served one
    max_total_loaded_versions: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Versions loaded at once over all served models, served plus pinned. A pinned load "
            "past it first unloads the pinned version idle longest (of any model), or is refused "
            "with 503 `version_load_budget`; a model that needs a slot for its served version "
            "unloads the least recently used pinned version, or waits (reported in /readyz). "
            "Unset: no bound beyond TAGGER_MAX_LOADED_VERSIONS per model."
        ),
    )
    pinned_loads_per_minute: int = Field(
        default=6,
        ge=1,
        description=(
            "Loads of pinned versions (/versions/{v}, /labels/{alias}) per minute, one at a "
            "time. A request that needs a load while another pinned load runs, beyond this "
            "budget, or when every pinned slot holds a version used within "
            "TAGGER_REQUEST_TIMEOUT_MS, is refused at once with 503 `version_load_budget` and "
            "a Retry-After saying when the budget frees; nothing is evicted for it."
        ),
    )

    max_batch_size: int = Field(default=32, ge=1, le=4096)
    max_batch_delay_ms: float = Field(
        default=0.0,
        ge=0,
        le=10_000,
        description=(
            "Longest wait to fill a batch after its first image. 0: run as soon as the model "
            "is free; batches then form from what arrived during the previous call, so they "
            "grow with load and a lone request never waits."
        ),
    )
    max_queue: int = Field(default=256, ge=1)
    max_in_flight_requests: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Classify requests admitted at once, counted once their body has arrived (before "
            "it is parsed or decoded; a body still arriving holds no slot); one more is refused "
            "with 503 `overloaded` + Retry-After, on arrival if the service is already full. "
            "Unset: TAGGER_MAX_QUEUE + TAGGER_MAX_BATCH_SIZE, one single-image request per "
            "queue slot plus a batch in the model, so every admitted request can queue."
        ),
    )
    request_timeout_ms: float = Field(default=10_000, gt=0)
    retry_after_s: int = Field(default=1, ge=0)
    shutdown_timeout_s: float = Field(default=30.0, ge=0)
    header_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description=(
            "Longest wait for a request's line and headers, from connection open (or the end "
            "of the previous response on a keep-alive connection); then 408 `header_timeout`."
        ),
    )
    body_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description=(
            "Longest wait for a request's whole body once its headers are in; then 408 "
            "`body_timeout` (if no answer has started) and the connection is closed."
        ),
    )
    max_header_bytes: int = Field(
        default=32 * 1024,
        ge=1024,
        description=(
            "Largest request line + headers, in bytes; past it 431 `headers_too_large` at once."
        ),
    )
    max_headers: int = Field(
        default=100,
        ge=1,
        description="Most header fields in one request; past it 431 `headers_too_large`.",
    )
    max_buffered_body_bytes: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Classify request body bytes held in memory at once, received so far by requests "
            "not yet answered. A body that no longer fits gets 503 `overloaded` + Retry-After "
            "before more of it is read; one whose declared Content-Length cannot fit in what "
            "is left, on arrival. At least TAGGER_MAX_UPLOAD_BYTES. Unset: 256 MiB, or twice "
            "TAGGER_MAX_UPLOAD_BYTES if that is more."
        ),
    )

    max_upload_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    max_images_per_request: int = Field(default=32, ge=1)
    max_json_depth: int = Field(
        default=32,
        ge=3,
        le=1000,
        description=(
            "Deepest nesting of arrays and objects in a JSON body (the instances format needs "
            "3); deeper is refused while parsing with 400 `json_too_deep`."
        ),
    )
    max_json_values: int = Field(
        default=4096,
        ge=8,
        description=(
            "Values (objects, arrays, strings, numbers, literals) in one JSON body; more is "
            "refused while parsing with 413 `json_too_large`. Keep it above 2 x "
            "TAGGER_MAX_IMAGES_PER_REQUEST + 2, what the largest instances body holds."
        ),
    )
    max_pixels: int = Field(default=DEFAULT_MAX_PIXELS, ge=1)
    max_aspect_ratio: float = Field(
        default=DEFAULT_MAX_ASPECT_RATIO,
        ge=1,
        description=(
            "Longest ratio of an image's longer side to its shorter side; a longer one is "
            "refused from its header with 422 `extreme_aspect_ratio` before any pixel is "
            "decoded (decoding costs per row, and letterboxed such an image is a line under a "
            "pixel thick)."
        ),
    )
    max_decode_bytes: int = Field(
        default=192 * 1024 * 1024,
        ge=1,
        description=(
            "Memory the image decodes running at once may take, estimated per image from its "
            "header (format, mode, size; Pillow needs from ~1 byte per pixel for greyscale PNG "
            "to ~16 for WebP). A decode waits (first come, first served, within the request "
            "deadline) until its estimate fits; an image whose estimate alone exceeds this is "
            "refused from its header with 413 `image_too_large`."
        ),
    )
    decode_threads: int = Field(default=2, ge=1, le=256)

    runtime: Runtime = Field(
        default="auto",
        description=(
            "What runs each loaded version: `onnxruntime` its model.onnx, `tensorflow` its "
            "SavedModel; `auto` ONNX Runtime for versions published with model.onnx (falling "
            "back to TensorFlow, with a warning and a counted reload failure, if it is damaged) "
            "and TensorFlow for older ones. With `onnxruntime`, a version without a sound "
            "model.onnx fails to load."
        ),
    )
    # Model CPU threads, for both runtimes; TensorFlow takes them only on CPU and before it
    # first runs.
    intra_op_threads: int | None = Field(
        default=None,
        ge=0,
        le=1024,
        description=(
            "Threads one model op may use (ONNX Runtime counts the calling thread). Unset: one "
            "fewer than the CPU cores this process may run on (at least 1), leaving a core to "
            "the event loop that parses requests and decodes images; 0 lets the runtime choose "
            "(all cores)."
        ),
    )
    inter_op_threads: int | None = Field(
        default=None,
        ge=0,
        le=1024,
        description=(
            "TensorFlow model ops run side by side. Unset: 1 (the batcher makes one model call "
            "at a time and the CNN is a chain of ops); 0 lets TensorFlow choose. ONNX Runtime "
            "always runs the ops one after another."
        ),
    )

    api_key: SecretStr | None = None
    auth_exempt_paths: Annotated[tuple[str, ...], NoDecode] = (
        "/healthz",
        "/readyz",
        "/metrics",
        "/v2/health/live",
        "/v2/health/ready",
    )
    log_level: str = "INFO"

    @field_validator("model_name")
    @classmethod
    def _model_name_valid(cls, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise ValueError(f"TAGGER_MODEL_NAME {value!r} must match {NAME_PATTERN.pattern}")
        return value

    @field_validator("model_alias")
    @classmethod
    def _alias_valid(cls, value: str) -> str:
        return _alias("TAGGER_MODEL_ALIAS", value)

    @field_validator("models")
    @classmethod
    def _models_valid(cls, value: str) -> str:
        names = [part.strip() for part in value.split(",") if part.strip()]
        if names == ["*"]:
            return "*"
        if not names or "*" in names:
            raise ValueError(
                f"TAGGER_MODELS {value!r} must be * (every model in the store) or a comma list "
                "of model names"
            )
        for name in names:
            if not NAME_PATTERN.match(name):
                raise ValueError(f"TAGGER_MODELS entry {name!r} must match {NAME_PATTERN.pattern}")
        if len(set(names)) != len(names):
            raise ValueError(f"TAGGER_MODELS {value!r} names a model twice")
        return ",".join(names)

    @field_validator("model_aliases")
    @classmethod
    def _aliases_valid(cls, value: str) -> str:
        pairs = []
        seen = set()
        for part in (p.strip() for p in value.split(",")):
            if not part:
                continue
            name, sep, alias = (s.strip() for s in part.partition("="))
            if not sep or not NAME_PATTERN.match(name):
                raise ValueError(
                    f"TAGGER_MODEL_ALIASES entry {part!r} must be model=alias "
                    f"(e.g. fashion=stable), the model matching {NAME_PATTERN.pattern}"
                )
            if name in seen:
                raise ValueError(f"TAGGER_MODEL_ALIASES names model {name!r} twice")
            seen.add(name)
            alias = _alias(f"TAGGER_MODEL_ALIASES alias of {name}", alias)
            pairs.append(f"{name}={alias}" if alias else name + "=")
        return ",".join(pairs)

    @field_validator(
        "api_key",
        "max_in_flight_requests",
        "max_buffered_body_bytes",
        "max_total_loaded_versions",
        "intra_op_threads",
        "inter_op_threads",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return value

    @field_validator("auth_exempt_paths", mode="before")
    @classmethod
    def _split_paths(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        for path in value or ():
            if not str(path).startswith("/"):
                raise ValueError(f"TAGGER_AUTH_EXEMPT_PATHS entry {path!r} must start with '/'")
        return tuple(value or ())

    @field_validator("runtime", mode="before")
    @classmethod
    def _runtime_known(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip().lower()
            if value not in RUNTIME_SETTINGS:
                raise ValueError(
                    f"TAGGER_RUNTIME {value!r} must be one of {', '.join(RUNTIME_SETTINGS)}"
                )
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level_known(cls, value: str) -> str:
        value = value.strip().upper()
        if value not in _LOG_LEVELS:
            raise ValueError(f"TAGGER_LOG_LEVEL {value!r} must be one of {', '.join(_LOG_LEVELS)}")
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

    def _forms_not_combined(self) -> None:
        """The one-model form (TAGGER_MODEL_NAME / TAGGER_MODEL_ALIAS) and the several-model
        form (TAGGER_MODELS / TAGGER_MODEL_ALIASES) each say what to serve; both is ambiguous."""
        one = sorted(
            f"TAGGER_{f.upper()}"
            for f in ("model_name", "model_alias")
            if f in self.model_fields_set
        )
        several = sorted(
            f"TAGGER_{f.upper()}" for f in ("models", "model_aliases") if f in self.model_fields_set
        )
        if one and several:
            raise ValueError(
                f"{' and '.join(one)} (serve one model) cannot be combined with "
                f"{' and '.join(several)} (serve several): set TAGGER_MODELS=fashion,colours "
                "and TAGGER_MODEL_ALIASES=fashion=stable instead, or only the one-model settings"
            )
        listed = self.served_models
        if listed is not None:
            unlisted = sorted(set(self.alias_map) - set(listed))
            if unlisted:
                raise ValueError(
                    f"TAGGER_MODEL_ALIASES names {', '.join(unlisted)}, which TAGGER_MODELS "
                    f"({self.models}) does not serve"
                )
            bound = self.max_total_loaded_versions
            if bound is not None and bound < len(listed):
                raise ValueError(
                    f"TAGGER_MAX_TOTAL_LOADED_VERSIONS ({bound}) must be at least the number "
                    f"of models in TAGGER_MODELS ({len(listed)}): each needs its served version"
                )

    @property
    def one_model_form(self) -> bool:
        """TAGGER_MODEL_NAME or TAGGER_MODEL_ALIAS was set: serve that one model, as before
        several models could be served."""
        return bool({"model_name", "model_alias"} & self.model_fields_set)

    @property
    def served_models(self) -> tuple[str, ...] | None:
        """The models to serve, or None for every model in the store (TAGGER_MODELS=*)."""
        if self.one_model_form:
            return (self.model_name,)
        if self.models == "*":
            return None
        return tuple(self.models.split(","))

    @property
    def alias_map(self) -> dict[str, str]:
        """Model -> alias it serves (TAGGER_MODEL_ALIASES; "" = latest)."""
        if not self.model_aliases:
            return {}
        return dict(pair.split("=", 1) for pair in self.model_aliases.split(","))

    def alias_for(self, model: str) -> str:
        """The alias `model` serves ("" = its latest version)."""
        if self.one_model_form:
            return self.model_alias if model == self.model_name else ""
        return self.alias_map.get(model, "")

    @property
    def max_batch_delay_s(self) -> float:
        return self.max_batch_delay_ms / 1000.0

    @property
    def in_flight_limit(self) -> int:
        """TAGGER_MAX_IN_FLIGHT_REQUESTS, or the default derived from the queue and batch."""
        if self.max_in_flight_requests is not None:
            return self.max_in_flight_requests
        return self.max_queue + self.max_batch_size

    @property
    def buffered_body_limit_bytes(self) -> int:
        """TAGGER_MAX_BUFFERED_BODY_BYTES, or 256 MiB (twice the upload limit if that is more)."""
        if self.max_buffered_body_bytes is not None:
            return self.max_buffered_body_bytes
        return max(_DEFAULT_BUFFERED_BODY_BYTES, 2 * self.max_upload_bytes)

    @property
    def tf_intra_op_threads(self) -> int:
        """TAGGER_INTRA_OP_THREADS, or the cores less the one the event loop keeps (both
        runtimes use it)."""
        if self.intra_op_threads is not None:
            return self.intra_op_threads
        return max(1, _usable_cpus() - 1)

    @property
    def tf_inter_op_threads(self) -> int:
        return 1 if self.inter_op_threads is None else self.inter_op_threads

    @property
    def request_timeout_s(self) -> float:
        return self.request_timeout_ms / 1000.0


def _alias(setting: str, value: str) -> str:
    """An alias to serve, "" for the latest version (also spelled `latest`)."""
    value = value.strip()
    if value and (not NAME_PATTERN.match(value) or value.isdigit()):
        raise ValueError(
            f"{setting} {value!r} must be empty (latest) or an alias name "
            f"matching {NAME_PATTERN.pattern} that is not all digits"
        )
    return "" if value == "latest" else value


def _usable_cpus() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once (tests build `Settings`)."""
    return Settings()
