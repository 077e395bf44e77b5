"""Validation of model names, aliases and version references, before any file-system access."""

from __future__ import annotations

import re

from model_store.errors import InvalidName
from model_store.schema import NAME_PATTERN

LATEST = "latest"
# Version directories: plain decimal integers without leading zeros (what TF Serving loads).
VERSION_PATTERN = re.compile(r"^(0|[1-9][0-9]*)$")


def check_name(name: object) -> str:
    """Return `name` if it is a valid model name, else raise `InvalidName`."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise InvalidName(
            f"invalid model name {name!r}: use lower-case letters, digits, '_' and '-', "
            "starting with a letter or digit"
        )
    return name


def check_alias(alias: object) -> str:
    """Return `alias` if it can name an alias (model-name pattern, not digits, not 'latest')."""
    if not isinstance(alias, str) or not NAME_PATTERN.match(alias):
        raise InvalidName(
            f"invalid alias {alias!r}: use lower-case letters, digits, '_' and '-', "
            "starting with a letter or digit"
        )
    if alias.isdigit() or alias == LATEST:
        raise InvalidName(f"invalid alias {alias!r}: an alias may not be a number nor {LATEST!r}")
    return alias


def check_version(version: object) -> int:
    """Return `version` if it is a non-negative int (bools refused), else raise `InvalidName`."""
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise InvalidName(f"invalid version {version!r}: versions are non-negative integers")
    return version


def parse_version_dir(entry: str) -> int | None:
    """The version number a directory name stands for, or None if it is not a version."""
    return int(entry) if VERSION_PATTERN.match(entry) else None
