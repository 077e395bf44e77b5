"""Fallback for the served version: which older version to serve when the target fails to load."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from model_store.errors import ModelStoreError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fallback:
    """Why the served version is not the one the alias (or latest) points at."""

    target: int
    reason: str


def fallback_candidates(store: Any, name: str, alias: str, target: int) -> list[int]:
    """Versions to try instead of `target`, best first (blocking: call on a thread).

    Following an alias: its earlier targets, most recent first (versions someone chose to
    serve), then every version older than `target`, newest first. Following latest: only
    the latter. Newer versions are never tried: nobody asked for them yet.
    """
    try:
        versions = store.versions(name)
        earlier = store.alias_history(name).get(alias, []) if alias else []
    except ModelStoreError as exc:
        logger.warning("cannot list fallback versions of %s: %s", name, exc)
        return []
    known = set(versions)
    ordered = [v for v in reversed(earlier) if v in known and v != target]
    ordered += [v for v in reversed(versions) if v < target]
    return list(dict.fromkeys(ordered))
