"""The model store: versioned, aliased SavedModels on disk, in TensorFlow Serving's layout."""

from model_store.errors import (
    AliasNotFound,
    CorruptVersion,
    InvalidName,
    ModelNotFound,
    ModelStoreError,
    PublishError,
    VersionNotFound,
)
from model_store.schema import (
    ClassMetrics,
    DatasetInfo,
    InputSpec,
    LibraryVersions,
    Metrics,
    ModelMetadata,
    OnnxExport,
    PreprocessingSpec,
    TestMetrics,
    TrainingInfo,
)
from model_store.store import ModelStore, default_store_root

__all__ = [
    "AliasNotFound",
    "ClassMetrics",
    "CorruptVersion",
    "DatasetInfo",
    "InputSpec",
    "InvalidName",
    "LibraryVersions",
    "Metrics",
    "ModelMetadata",
    "ModelNotFound",
    "ModelStore",
    "ModelStoreError",
    "OnnxExport",
    "PreprocessingSpec",
    "PublishError",
    "TestMetrics",
    "TrainingInfo",
    "VersionNotFound",
    "default_store_root",
]
