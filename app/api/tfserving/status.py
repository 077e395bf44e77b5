"""TF Serving's model status (`GetModelStatusResponse`) from the manager of the model in this
replica, printed as TF Serving's `get_model_status_impl.cc` does: versions newest first, as
strings."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from app.core.model_manager import ModelManager, VersionLoad


class VersionState(Enum):
    """TF Serving's `ModelVersionStatus.State` (no UNAVAILABLE: a version that failed to load
    is END with a non-OK status)."""

    START = "START"
    LOADING = "LOADING"
    AVAILABLE = "AVAILABLE"
    UNLOADING = "UNLOADING"
    END = "END"


@dataclass(frozen=True, slots=True)
class VersionStatus:
    """One version's entry in `model_version_status`; `error_code` is a `tensorflow.error.Code`
    name (`OK`, `UNKNOWN`, `NOT_FOUND`, `INTERNAL`, ...)."""

    version: int
    state: VersionState
    error_code: str = "OK"
    error_message: str = ""


# A version in the store that nothing has loaded yet is tracked, with no action initiated: TF
# Serving's START. It loads on its first request (a pinned version), so it is not END.
_STATES = {
    VersionLoad.LOADED: VersionState.AVAILABLE,
    VersionLoad.LOADING: VersionState.LOADING,
    VersionLoad.FAILED: VersionState.END,
    VersionLoad.UNLOADED: VersionState.START,
}


def version_status(manager: ModelManager | None, name: str, version: int) -> VersionStatus:
    """One version's status; a model not served here (no manager, or another model's) has no
    tracked versions, so END."""
    if manager is None or name != manager.name:
        return VersionStatus(version, VersionState.END)
    load = manager.version_load(version)
    if load is VersionLoad.FAILED:
        message = f"{name} v{version} could not be loaded; see the server log"
        return VersionStatus(version, VersionState.END, "UNKNOWN", message)
    return VersionStatus(version, _STATES[load])


def status_body(manager: ModelManager | None, name: str, versions: Iterable[int]) -> dict[str, Any]:
    """`{"model_version_status": [...]}` for `versions` of `name`, newest first."""
    return model_status(version_status(manager, name, version) for version in versions)


def model_status(versions: Iterable[VersionStatus]) -> dict[str, Any]:
    """`GetModelStatusResponse` as TF Serving prints it: versions newest first, each version an
    int64 (so a JSON string), `status` always present."""
    ordered = sorted(versions, key=lambda status: status.version, reverse=True)
    return {
        "model_version_status": [
            {
                "version": str(status.version),
                "state": status.state.value,
                "status": {
                    "error_code": status.error_code,
                    "error_message": status.error_message,
                },
            }
            for status in ordered
        ]
    }
