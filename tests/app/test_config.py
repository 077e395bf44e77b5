"""Settings: read from TAGGER_* variables, validated with messages that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from app.config import Settings, get_settings


def test_defaults_and_env_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAGGER_MODEL_STORE", "/srv/models")
    monkeypatch.setenv("TAGGER_MAX_BATCH_DELAY_MS", "2.5")
    monkeypatch.setenv("TAGGER_AUTH_EXEMPT_PATHS", "/healthz, /metrics")
    monkeypatch.setenv("TAGGER_API_KEY", "")
    monkeypatch.setenv("TAGGER_LOG_LEVEL", "debug")
    settings = Settings()
    assert settings.model_store == Path("/srv/models")
    assert settings.max_batch_delay_s == 0.0025
    assert settings.auth_exempt_paths == ("/healthz", "/metrics")
    assert settings.api_key is None  # empty means auth off
    assert settings.log_level == "DEBUG"
    assert (settings.port, settings.model_name, settings.model_alias) == (8000, "fashion", "")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TAGGER_MAX_QUEUE": "4", "TAGGER_MAX_BATCH_SIZE": "8"}, "TAGGER_MAX_QUEUE (4)"),
        ({"TAGGER_MAX_QUEUE": "40", "TAGGER_MAX_IMAGES_PER_REQUEST": "64"}, "largest request"),
        ({"TAGGER_MODEL_NAME": "Bad Name"}, "TAGGER_MODEL_NAME 'Bad Name'"),
        ({"TAGGER_MODEL_ALIAS": "123"}, "TAGGER_MODEL_ALIAS '123'"),
        ({"TAGGER_LOG_LEVEL": "loud"}, "TAGGER_LOG_LEVEL 'LOUD'"),
        ({"TAGGER_AUTH_EXEMPT_PATHS": "healthz"}, "must start with '/'"),
        ({"TAGGER_MAX_BATCH_SIZE": "0"}, "max_batch_size"),
        ({"TAGGER_REQUEST_TIMEOUT_MS": "-1"}, "request_timeout_ms"),
        ({"TAGGER_MAX_IN_FLIGHT_REQUESTS": "0"}, "max_in_flight_requests"),
        (
            {"TAGGER_MAX_BUFFERED_BODY_BYTES": "1000", "TAGGER_MAX_UPLOAD_BYTES": "1001"},
            "TAGGER_MAX_BUFFERED_BODY_BYTES (1000)",
        ),
    ],
)
def test_bad_values_are_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Settings()


def test_get_settings_is_cached() -> None:
    get_settings.cache_clear()
    try:
        assert get_settings() is get_settings()
    finally:
        get_settings.cache_clear()


def test_latest_alias_means_latest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAGGER_MODEL_ALIAS", "latest")
    assert Settings().model_alias == ""


def test_in_flight_limit_defaults_to_a_full_queue_plus_a_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TAGGER_MAX_QUEUE", "24")
    monkeypatch.setenv("TAGGER_MAX_BATCH_SIZE", "8")
    monkeypatch.setenv("TAGGER_MAX_IMAGES_PER_REQUEST", "8")
    monkeypatch.setenv("TAGGER_MAX_IN_FLIGHT_REQUESTS", "")
    assert Settings().in_flight_limit == 32
    monkeypatch.setenv("TAGGER_MAX_IN_FLIGHT_REQUESTS", "5")
    assert Settings().in_flight_limit == 5


def test_the_body_budget_defaults_to_256_mib_and_always_holds_two_of_the_largest_uploads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().buffered_body_limit_bytes == 256 * 1024 * 1024
    monkeypatch.setenv("TAGGER_MAX_UPLOAD_BYTES", str(200 * 1024 * 1024))
    assert Settings().buffered_body_limit_bytes == 400 * 1024 * 1024
    monkeypatch.setenv("TAGGER_MAX_BUFFERED_BODY_BYTES", str(300 * 1024 * 1024))
    assert Settings().buffered_body_limit_bytes == 300 * 1024 * 1024


def test_every_model_in_the_store_is_served_by_default() -> None:
    settings = Settings()
    assert settings.served_models is None and not settings.one_model_form
    assert settings.alias_for("fashion") == ""


def test_a_model_list_with_aliases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAGGER_MODELS", " fashion, colours ")
    monkeypatch.setenv("TAGGER_MODEL_ALIASES", "fashion=stable, colours=latest")
    settings = Settings()
    assert settings.served_models == ("fashion", "colours")
    assert (settings.alias_for("fashion"), settings.alias_for("colours")) == ("stable", "")


@pytest.mark.parametrize("env", [{"TAGGER_MODEL_NAME": "shoes"}, {"TAGGER_MODEL_ALIAS": "stable"}])
def test_the_one_model_settings_serve_one_model_as_before(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.one_model_form
    assert settings.served_models == (settings.model_name,)
    assert settings.alias_for(settings.model_name) == settings.model_alias


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TAGGER_MODELS": "fashion,*"}, "TAGGER_MODELS 'fashion,\\*' must be \\*"),
        ({"TAGGER_MODELS": "fashion,Bad Name"}, "TAGGER_MODELS entry 'Bad Name'"),
        ({"TAGGER_MODELS": "a,a"}, "names a model twice"),
        ({"TAGGER_MODEL_ALIASES": "fashion"}, "TAGGER_MODEL_ALIASES entry 'fashion'"),
        ({"TAGGER_MODEL_ALIASES": "fashion=12"}, "alias of fashion '12'"),
        (
            {"TAGGER_MODEL_NAME": "fashion", "TAGGER_MODELS": "fashion,colours"},
            "TAGGER_MODEL_NAME \\(serve one model\\) cannot be combined with TAGGER_MODELS",
        ),
        (
            {"TAGGER_MODEL_ALIAS": "stable", "TAGGER_MODEL_ALIASES": "colours=canary"},
            "TAGGER_MODEL_ALIAS \\(serve one model\\) cannot be combined",
        ),
        (
            {"TAGGER_MODELS": "fashion", "TAGGER_MODEL_ALIASES": "colours=canary"},
            "TAGGER_MODEL_ALIASES names colours, which TAGGER_MODELS",
        ),
        (
            {"TAGGER_MODELS": "a,b,c", "TAGGER_MAX_TOTAL_LOADED_VERSIONS": "2"},
            "TAGGER_MAX_TOTAL_LOADED_VERSIONS \\(2\\) must be at least",
        ),
    ],
)
def test_bad_model_selections_are_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValidationError, match=message):
        Settings()
