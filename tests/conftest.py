"""Fixtures shared by the whole suite: one real model, trained once per session."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The servers tests start as processes are one process each (TAGGER_WORKERS defaults to one
# per core) unless a test asks for more: tests/app/test_workers_e2e.py does.
os.environ["TAGGER_WORKERS"] = "1"

from model_store import ModelMetadata, ModelStore

TRAIN_LIMIT = 600
TEST_LIMIT = 300


def pytest_sessionstart(session: pytest.Session) -> None:
    """`.[dev]` alone is the test tools on the serve-only install; the suite also trains."""
    if importlib.util.find_spec("tensorflow") is None:
        pytest.exit(
            "the tests train a real model and need TensorFlow: pip install -e '.[train,dev]' "
            "(make test does)",
            returncode=pytest.ExitCode.USAGE_ERROR,
        )


@dataclass(frozen=True)
class TrainedStore:
    """A tmp model store holding one published, evaluated version of a small real model."""

    root: Path
    store: ModelStore
    name: str
    version: int
    metadata: ModelMetadata


@pytest.fixture(scope="session")
def trained_store(tmp_path_factory: pytest.TempPathFactory) -> TrainedStore:
    """Profile `tiny` trained for one epoch on 600 real Fashion-MNIST images (300 test images),
    published with its evaluation/ into a fresh store.

    Use the fixture; do not import from this module (several conftest modules share the name).
    """
    from training.pipeline import train_and_publish  # TensorFlow: only for tests that need it
    from training.profiles import get_profile

    root = tmp_path_factory.mktemp("trained-store")
    store = ModelStore(root)
    config = get_profile("tiny").model_copy(
        update={"train_limit": TRAIN_LIMIT, "test_limit": TEST_LIMIT}
    )
    metadata = train_and_publish(config, store, "fashion", progress=False)
    return TrainedStore(root, store, "fashion", metadata.version, metadata)
