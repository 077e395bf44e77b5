"""`python -m model_store`, run as a user would: output, stderr and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from store_helpers import (
    VARIABLES_FILE,
    build_tiny_savedmodel,
    make_metadata,
    publish_fake,
    run_cli,
)

from model_store import ModelStore


@pytest.fixture
def populated(store: ModelStore) -> ModelStore:
    publish_fake(store, accuracy=0.8123)
    publish_fake(store, accuracy=0.9001)
    store.promote("fashion", 1, "stable")
    return store


def test_versions_of_an_empty_store_exits_1(tmp_path: Path) -> None:
    result = run_cli("--store", str(tmp_path), "versions", "fashion")
    assert result.returncode == 1
    assert result.stdout == ""
    assert "error: model 'fashion' has no versions" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_list(populated: ModelStore, tmp_path: Path) -> None:
    result = run_cli("--store", str(populated.root), "list")
    assert result.returncode == 0, result.stderr
    header, first, second = result.stdout.strip().splitlines()
    assert header.split()[:4] == ["MODEL", "VERSION", "ALIASES", "TEST"]
    assert first.split()[:4] == ["fashion", "1", "stable", "0.8123"]
    assert second.split()[:4] == ["fashion", "2", "-", "0.9001"]
    empty = run_cli("--store", str(tmp_path / "nothing"), "list")
    assert (empty.returncode, empty.stdout.startswith("no models")) == (0, True)


def test_versions_and_env_default_store(populated: ModelStore) -> None:
    result = run_cli("versions", "fashion", env={"TAGGER_MODEL_STORE": str(populated.root)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["1  (stable)", "2"]


def test_show_summary_and_json(populated: ModelStore) -> None:
    result = run_cli("--store", str(populated.root), "show", "fashion", "stable")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("fashion version 1  (aliases: stable)")
    assert "labels       3: shirt, trouser, sneaker" in out
    assert "uint8 [batch, 28, 28, 1]" in out
    assert "accuracy 0.8123" in out
    assert "profile test, 1 epoch(s)" in out
    assert "fashion-mnist" in out and "created" in out
    raw = run_cli("--store", str(populated.root), "show", "fashion", "--json")
    assert raw.returncode == 0, raw.stderr
    document = json.loads(raw.stdout)
    assert (document["version"], document["metrics"]["test"]["accuracy"]) == (2, 0.9001)


def test_promote_and_rollback(populated: ModelStore) -> None:
    root = str(populated.root)
    result = run_cli("--store", root, "promote", "fashion", "latest", "--alias", "stable")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "fashion: stable -> version 2 (was 1)"
    assert populated.aliases("fashion") == {"stable": 2}
    result = run_cli("--store", root, "rollback", "fashion")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "fashion: stable -> version 1 (was 2)"
    result = run_cli("--store", root, "rollback", "fashion")
    assert result.returncode == 1
    assert "no previous version" in result.stderr
    assert populated.aliases("fashion") == {"stable": 1}


def test_verify_checksums_and_tampering(populated: ModelStore) -> None:
    root = str(populated.root)
    result = run_cli("--store", root, "verify", "fashion", "2", "--no-load")
    assert (result.returncode, result.stdout.strip()) == (0, "fashion version 2: ok (checksums)")
    (populated.version_dir("fashion", 2) / VARIABLES_FILE).write_bytes(b"tampered")
    result = run_cli("--store", root, "verify", "fashion", "2", "--no-load")
    assert result.returncode == 1
    assert f"fashion version 2: {VARIABLES_FILE} does not match its checksum" in result.stderr


@pytest.mark.slow
def test_verify_loads_the_savedmodel(store: ModelStore, tmp_path: Path) -> None:
    store.publish("fashion", build_tiny_savedmodel(tmp_path / "export"), make_metadata())
    result = run_cli("--store", str(store.root), "verify", "fashion", "latest")
    assert result.returncode == 0, result.stderr
    assert "fashion version 1: ok (checksums, SavedModel load)" in result.stdout


def test_gc(populated: ModelStore) -> None:
    publish_fake(populated)
    result = run_cli("--store", str(populated.root), "gc", "fashion", "--keep", "1")
    assert (result.returncode, result.stdout.strip()) == (0, "fashion: removed versions 2")
    assert populated.versions("fashion") == [1, 3]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["show", "fashion", "9"], 1, "no version 9"),
        (["show", "fashion", "canary"], 1, "no alias 'canary'"),
        (["show", "shoes"], 1, "model 'shoes' has no versions"),
        (["versions", "../etc"], 2, "invalid model name '../etc'"),
        (["promote", "fashion", "1", "--alias", "latest"], 2, "invalid alias 'latest'"),
        (["gc", "fashion", "--keep", "0"], 2, "--keep"),
        (["frobnicate"], 2, "invalid choice"),
        ([], 2, "required"),
    ],
)
def test_errors_and_exit_codes(
    populated: ModelStore, args: list[str], code: int, message: str
) -> None:
    result = run_cli("--store", str(populated.root), *args)
    assert result.returncode == code
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert populated.versions("fashion") == [1, 2]


def test_gc_removes_staging_left_by_a_killed_writer(populated: ModelStore) -> None:
    model_dir = populated.root / "fashion"
    dead = model_dir / ".staging-0123456789abcdef"
    dead.mkdir()
    (dead / "saved_model.pb").write_bytes(b"half written")
    # Its owner file, unlocked: the process that held it has ended.
    (model_dir / ".staging-0123456789abcdef.owner").write_text("pid 4242 on elsewhere\n")
    result = run_cli("--store", str(populated.root), "gc", "fashion", "--keep", "5")
    assert result.returncode == 0, result.stderr
    assert (
        result.stdout == "fashion: removed abandoned staging directory .staging-0123456789abcdef\n"
    )
    assert sorted(p.name for p in model_dir.iterdir() if p.name.startswith(".staging")) == []
    again = run_cli("--store", str(populated.root), "gc", "fashion", "--keep", "5")
    assert again.stdout == "fashion: nothing to remove\n"
