"""Errors a user can fix (bad data, bad options); the CLI prints them as one line."""

from __future__ import annotations


class TrainingError(Exception):
    """Base class: something about the request, the data or the store prevents training."""


class DatasetError(TrainingError):
    """The data set is missing, empty, unreadable or unusable for classification."""


class ProfileError(TrainingError):
    """An unknown profile name or an unreadable profile file."""


class OnnxExportError(TrainingError):
    """The model could not be converted to ONNX, or ONNX Runtime does not reproduce the
    SavedModel's outputs; the version is not published."""
