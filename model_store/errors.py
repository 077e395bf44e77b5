"""Errors raised by the model store; each carries a stable machine-readable `code`."""

from __future__ import annotations


class ModelStoreError(Exception):
    """Base class: something about the model store went wrong."""

    code = "model_store_error"


class InvalidName(ModelStoreError):
    """A model name, alias or version reference that is not allowed (checked before any I/O)."""

    code = "invalid_name"


class ModelNotFound(ModelStoreError):
    """The model has no published versions in this store."""

    code = "model_not_found"


class VersionNotFound(ModelStoreError):
    """The model exists but not at this version (or there is no version to roll back to)."""

    code = "version_not_found"


class AliasNotFound(ModelStoreError):
    """The model has no alias of this name."""

    code = "alias_not_found"


class CorruptVersion(ModelStoreError):
    """A published version whose metadata cannot be read or does not match its directory."""

    code = "corrupt_version"


class PublishError(ModelStoreError):
    """Publishing failed; the store was left as it was before the attempt."""

    code = "publish_failed"


class EvaluationNotFound(ModelStoreError):
    """The version has no readable evaluation report, or does not list the file asked for."""

    code = "evaluation_not_found"
