"""Publishing, listing and resolving versions; failures leave the store untouched."""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest
from store_helpers import (
    VARIABLES_FILE,
    make_metadata,
    publish_fake,
    publish_worker,
    start_staging_writer,
    tree_snapshot,
    write_fake_savedmodel,
)

import model_store.store as store_module
from model_store import (
    CorruptVersion,
    InvalidName,
    ModelNotFound,
    ModelStore,
    OnnxExport,
    PublishError,
    VersionNotFound,
    default_store_root,
)
from model_store.signature import ONNX_FILE


def test_publish_list_and_resolve(store: ModelStore) -> None:
    assert store.models() == []
    assert publish_fake(store, accuracy=0.7) == 1
    assert publish_fake(store, accuracy=0.9) == 2

    assert store.models() == ["fashion"]
    assert store.versions("fashion") == [1, 2]
    assert store.latest("fashion") == 2
    assert store.resolve("fashion") == 2
    assert store.resolve("fashion", "latest") == 2
    assert store.resolve("fashion", "1") == 1
    assert store.resolve("fashion", 1) == 1
    version_dir = store.version_dir("fashion", 1)
    assert version_dir == store.root / "fashion" / "1"
    metadata = store.metadata("fashion", 1)
    assert (metadata.name, metadata.version, metadata.metrics.test.accuracy) == ("fashion", 1, 0.7)
    # Checksums cover the servable files only: not metadata.json, not evaluation/.
    assert sorted(metadata.files) == ["saved_model.pb", VARIABLES_FILE, "variables/variables.index"]
    on_disk = json.loads((version_dir / "metadata.json").read_text())
    assert on_disk["version"] == 1
    assert (version_dir / "evaluation/report.json").is_file()
    # Nothing but versions (and the lock) beside them: staging is gone.
    assert sorted(p.name for p in (store.root / "fashion").iterdir()) == [".lock", "1", "2"]


def test_publish_from_outside_the_store_copies_and_leaves_source(
    store: ModelStore, tmp_path: Path
) -> None:
    source = write_fake_savedmodel(tmp_path / "export")
    before = tree_snapshot(source)
    published = store.publish("fashion", source, make_metadata())
    assert published.version == 1
    assert tree_snapshot(source) == before
    assert store.verify("fashion", 1, load=False) == []


def test_staging_is_removed_when_not_published(store: ModelStore) -> None:
    with pytest.raises(RuntimeError), store.staging("fashion") as staged:
        write_fake_savedmodel(staged)
        raise RuntimeError("training crashed")
    assert not staged.exists()
    assert store.models() == []
    assert not store.root.joinpath("fashion").exists()


def test_half_published_versions_are_invisible(store: ModelStore) -> None:
    publish_fake(store)
    model_dir = store.root / "fashion"
    (model_dir / "007").mkdir()  # not a canonical version name
    (model_dir / "tmp").mkdir()
    with store.staging("fashion") as staged:
        write_fake_savedmodel(staged)
        (staged / "metadata.json").write_text("{}")
        assert staged.parent == model_dir and staged.name.startswith(".")
        assert store.versions("fashion") == [1]
        assert store.latest("fashion") == 1
    with store.staging("other") as staged:
        write_fake_savedmodel(staged)
        assert store.models() == ["fashion"]
        with pytest.raises(ModelNotFound):
            store.versions("other")


def test_concurrent_publishes_get_distinct_versions(tmp_path: Path) -> None:
    workers = 5
    root = tmp_path / "models"
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(workers)
    processes = [
        context.Process(target=publish_worker, args=(str(root), seed, barrier))
        for seed in range(workers)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [process.exitcode for process in processes] == [0] * workers

    store = ModelStore(root)
    assert store.versions("fashion") == list(range(1, workers + 1))
    seeds = {store.metadata("fashion", v).training.seed for v in store.versions("fashion")}
    assert seeds == set(range(workers))
    for version in store.versions("fashion"):
        assert store.verify("fashion", version, load=False) == []
    assert [p.name for p in (root / "fashion").iterdir() if p.name.startswith(".staging")] == []


def test_publish_refuses_wrong_name_and_non_savedmodel(store: ModelStore, tmp_path: Path) -> None:
    source = write_fake_savedmodel(tmp_path / "export")
    with pytest.raises(PublishError, match="not 'shoes'"):
        store.publish("shoes", source, make_metadata("fashion"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(PublishError, match=r"saved_model\.pb"):
        store.publish("fashion", empty, make_metadata())
    assert tree_snapshot(store.root) == {}


def test_onnx_model_and_its_parity_record_are_published_together(
    store: ModelStore, tmp_path: Path
) -> None:
    record = OnnxExport(
        opset=17, images=20, max_abs_difference=5e-7, top1_agreement=1.0, tolerance=1e-4,
        seconds=0.4, converter_versions={"tf2onnx": "1.17.0"},
    )  # fmt: skip
    with_record = make_metadata().model_copy(update={"onnx": record})
    source = write_fake_savedmodel(tmp_path / "export")
    with pytest.raises(PublishError, match=r"records an ONNX export but .* has no model\.onnx"):
        store.publish("fashion", source, with_record)
    (source / ONNX_FILE).write_bytes(b"onnx graph")
    with pytest.raises(PublishError, match=r"model\.onnx comes without its parity record"):
        store.publish("fashion", source, make_metadata())
    assert tree_snapshot(store.root) == {}

    published = store.publish("fashion", source, with_record)
    assert published.onnx == record and ONNX_FILE in published.files
    assert store.metadata("fashion", 1) == published
    assert store.verify("fashion", 1, load=False) == []


@pytest.mark.parametrize("layout", ["root_is_a_file", "root_below_a_file"])
def test_publish_to_unwritable_root_fails_cleanly(tmp_path: Path, layout: str) -> None:
    # Tests run as root, so permissions cannot make a directory unwritable; a file can.
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    store = ModelStore(blocker if layout == "root_is_a_file" else blocker / "models")
    source = write_fake_savedmodel(tmp_path / "export")
    with pytest.raises(PublishError, match="cannot publish model 'fashion'"):
        store.publish("fashion", source, make_metadata())
    with pytest.raises(PublishError, match="cannot stage"), store.staging("fashion"):
        pass
    assert blocker.read_text() == "not a directory"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker", "export"]


def test_failure_midway_leaves_store_as_it_was(
    store: ModelStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish_fake(store)
    before = tree_snapshot(store.root)

    def disk_full(_path: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_module, "fsync_tree", disk_full)
    with pytest.raises(PublishError, match="No space left"):
        publish_fake(store)
    source = write_fake_savedmodel(tmp_path / "export")
    with pytest.raises(PublishError, match="No space left"):
        store.publish("fashion", source, make_metadata())
    assert tree_snapshot(store.root) == before
    assert store.versions("fashion") == [1]


def test_existing_version_is_never_overwritten(
    store: ModelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish_fake(store)
    before = tree_snapshot(store.root)
    # A writer that ignores the lock would make the next number already taken.
    monkeypatch.setattr(store_module, "_version_numbers", lambda _model_dir: [])
    with pytest.raises(PublishError, match="already exists"):
        publish_fake(store)
    assert tree_snapshot(store.root) == before


@pytest.mark.parametrize("name", ["../etc", "A", "", "a/b", ".hidden", "-x", "fa shion", None])
def test_bad_model_names_are_refused_before_io(store: ModelStore, name: object) -> None:
    for call in (
        lambda: store.versions(name),  # type: ignore[arg-type]
        lambda: store.resolve(name),  # type: ignore[arg-type]
        lambda: store.aliases(name),  # type: ignore[arg-type]
        lambda: store.publish(name, store.root, make_metadata()),  # type: ignore[arg-type]
        lambda: store.staging(name).__enter__(),  # type: ignore[arg-type]
        lambda: store.gc(name, keep=1),  # type: ignore[arg-type]
    ):
        with pytest.raises(InvalidName):
            call()
    assert not store.root.exists()


def test_missing_model_and_version(store: ModelStore) -> None:
    with pytest.raises(ModelNotFound, match="'fashion'"):
        store.resolve("fashion")
    with pytest.raises(ModelNotFound):
        store.latest("fashion")
    publish_fake(store)
    with pytest.raises(VersionNotFound, match="no version 9"):
        store.resolve("fashion", 9)
    with pytest.raises(VersionNotFound):
        store.metadata("fashion", 2)
    for ref in ("-1", True, -1, 1.0, "1.0"):
        with pytest.raises(InvalidName):
            store.resolve("fashion", ref)  # type: ignore[arg-type]


def test_unreadable_metadata_is_a_corrupt_version(store: ModelStore) -> None:
    publish_fake(store)
    (store.version_dir("fashion", 1) / "metadata.json").write_text("{not json")
    with pytest.raises(CorruptVersion, match="version 1"):
        store.metadata("fashion", 1)


def test_gc_keeps_newest_and_aliased_versions(store: ModelStore) -> None:
    for _ in range(5):
        publish_fake(store)
    store.promote("fashion", 1, "stable")
    assert store.gc("fashion", keep=2) == [2, 3]
    assert store.versions("fashion") == [1, 4, 5]
    assert store.resolve("fashion", "stable") == 1
    assert not [p for p in (store.root / "fashion").iterdir() if p.name.startswith(".trash")]
    assert store.gc("fashion", keep=2) == []
    assert publish_fake(store) == 6  # numbers are never reused
    with pytest.raises(ValueError, match="keep"):
        store.gc("fashion", keep=0)


def test_replace_evaluation_swaps_only_evaluation(store: ModelStore, tmp_path: Path) -> None:
    publish_fake(store)
    version_dir = store.version_dir("fashion", 1)
    checksums = store.metadata("fashion", 1).files
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "report.json").write_text('{"accuracy": 0.95}')
    (fresh / "confusion_matrix.png").write_bytes(b"png")
    store.replace_evaluation("fashion", 1, fresh)
    assert sorted(p.name for p in (version_dir / "evaluation").iterdir()) == [
        "confusion_matrix.png",
        "report.json",
    ]
    assert json.loads((version_dir / "evaluation/report.json").read_text()) == {"accuracy": 0.95}
    assert not [p for p in version_dir.iterdir() if p.name.startswith(".")]
    assert store.metadata("fashion", 1).files == checksums
    assert store.verify("fashion", 1, load=False) == []


def test_default_store_root_follows_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TAGGER_MODEL_STORE", raising=False)
    assert default_store_root() == Path("models")
    monkeypatch.setenv("TAGGER_MODEL_STORE", "/srv/models")
    assert default_store_root() == Path("/srv/models")


def staging_entries(store: ModelStore) -> list[str]:
    return sorted(
        p.name for p in (store.root / "fashion").iterdir() if p.name.startswith(".staging")
    )


@pytest.mark.parametrize("cleaner", ["gc", "publish"])
def test_staging_left_by_a_killed_process_is_removed_and_a_live_one_is_kept(
    store: ModelStore, cleaner: str
) -> None:
    publish_fake(store)
    killed, abandoned = start_staging_writer(store.root)
    live, writing = start_staging_writer(store.root)
    try:
        killed.send_signal(signal.SIGKILL)
        killed.wait(30)
        if cleaner == "gc":
            assert store.gc("fashion", keep=5) == []
        else:
            assert publish_fake(store) == 2
        assert not abandoned.exists()
        assert writing.is_dir() and (writing / "saved_model.pb").read_bytes() == b"half written"
        assert [name for name in staging_entries(store) if name.startswith(writing.name)]
        assert not [name for name in staging_entries(store) if name.startswith(abandoned.name)]
    finally:
        live.kill()
        live.wait(30)
    store.gc("fashion", keep=5)
    assert staging_entries(store) == []


def test_staging_of_unknown_owner_is_removed_only_when_old(store: ModelStore) -> None:
    publish_fake(store)
    model_dir = store.root / "fashion"
    old, recent = model_dir / ".staging-old", model_dir / ".staging-recent"
    for path in (old, recent):
        write_fake_savedmodel(path)
    an_hour_ago = time.time() - 3700
    for path in [old, *old.rglob("*")]:
        os.utime(path, (an_hour_ago, an_hour_ago))
    store.gc("fashion", keep=5)
    assert not old.exists()
    assert recent.is_dir()
