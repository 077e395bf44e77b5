"""TF Serving's model status from the manager of the model in this replica."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from app.api.tfserving.codec import VersionState, VersionStatus, model_status
from app.core.model_manager import ModelManager, VersionLoad

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
