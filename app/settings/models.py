"""Settings for the model store, which models and aliases to serve, and version loading."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, field_validator

from model_store.schema import NAME_PATTERN


class ModelStoreSettings(BaseModel):
    """Where the models live, which to serve (one-model or several-model form), and how many
    versions may be loaded."""

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


def _alias(setting: str, value: str) -> str:
    """An alias to serve, "" for the latest version (also spelled `latest`)."""
    value = value.strip()
    if value and (not NAME_PATTERN.match(value) or value.isdigit()):
        raise ValueError(
            f"{setting} {value!r} must be empty (latest) or an alias name "
            f"matching {NAME_PATTERN.pattern} that is not all digits"
        )
    return "" if value == "latest" else value
