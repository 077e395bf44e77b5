"""Aliases: promote, rollback through history, and what they refuse."""

from __future__ import annotations

import json
import shutil

import pytest
from store_helpers import publish_fake

from model_store import AliasNotFound, InvalidName, ModelNotFound, ModelStore, VersionNotFound


@pytest.fixture
def three_versions(store: ModelStore) -> ModelStore:
    for _ in range(3):
        publish_fake(store)
    return store


def test_promote_and_rollback_walk_back_through_history(three_versions: ModelStore) -> None:
    store = three_versions
    for version in (1, 2, 3):
        store.promote("fashion", version, "stable")
    assert store.aliases("fashion") == {"stable": 3}
    assert store.resolve("fashion", "stable") == 3
    assert json.loads((store.root / "fashion/aliases.json").read_text()) == {"stable": 3}
    assert store.alias_history("fashion") == {"stable": [1, 2]}

    assert store.rollback("fashion") == 2
    assert store.resolve("fashion", "stable") == 2
    assert store.rollback("fashion", "stable") == 1
    assert store.alias_history("fashion") == {"stable": []}
    with pytest.raises(VersionNotFound, match="no previous version"):
        store.rollback("fashion")
    assert store.aliases("fashion") == {"stable": 1}


def test_aliases_are_independent(three_versions: ModelStore) -> None:
    store = three_versions
    store.promote("fashion", 1, "stable")
    store.promote("fashion", 3, "canary")
    store.promote("fashion", 2, "stable")
    store.promote("fashion", 2, "stable")  # re-promoting the current target adds no history
    assert store.aliases("fashion") == {"canary": 3, "stable": 2}
    assert store.alias_history("fashion") == {"stable": [1]}
    with pytest.raises(VersionNotFound):
        store.rollback("fashion", "canary")
    assert store.rollback("fashion", "stable") == 1
    assert store.resolve("fashion", "canary") == 3


def test_promote_refuses_missing_versions_and_bad_aliases(three_versions: ModelStore) -> None:
    store = three_versions
    with pytest.raises(VersionNotFound, match="no version 7"):
        store.promote("fashion", 7, "stable")
    for alias in ("latest", "3", "../x", "A", "", "a/b"):
        with pytest.raises(InvalidName):
            store.promote("fashion", 1, alias)
    assert store.aliases("fashion") == {}
    assert not (store.root / "fashion/aliases.json").exists()


def test_unknown_alias_and_model(three_versions: ModelStore) -> None:
    store = three_versions
    with pytest.raises(AliasNotFound, match="no alias 'stable'"):
        store.resolve("fashion", "stable")
    with pytest.raises(AliasNotFound):
        store.rollback("fashion", "stable")
    with pytest.raises(InvalidName):
        store.resolve("fashion", "../../etc/passwd")
    store.promote("fashion", 1, "stable")
    with pytest.raises(ModelNotFound):
        store.promote("shoes", 1, "stable")


def test_rollback_skips_versions_removed_by_gc(store: ModelStore) -> None:
    for _ in range(4):
        publish_fake(store)
    for version in (1, 3, 4):
        store.promote("fashion", version, "stable")
    store.promote("fashion", 1, "canary")
    assert store.gc("fashion", keep=1) == [2, 3]  # 1 is aliased (canary), 4 is newest
    assert store.rollback("fashion", "stable") == 1


def test_alias_to_a_deleted_version_is_reported(three_versions: ModelStore) -> None:
    store = three_versions
    store.promote("fashion", 2, "stable")
    shutil.rmtree(store.version_dir("fashion", 2))  # someone deleted it by hand
    with pytest.raises(VersionNotFound, match="points to version 2"):
        store.resolve("fashion", "stable")
