"""`python -m training` as a user runs it: exit codes, one-line errors, an untouched store."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from image_folders import make_image_folder, write_corrupt

if TYPE_CHECKING:  # tests/conftest.py; never imported at run time (several conftest modules)
    from conftest import TrainedStore

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "training", *map(str, args)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(path.relative_to(root)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in root.rglob("*")
    }


def assert_one_line_error(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert result.stderr.rstrip().splitlines()[-1] == errors[0]
    assert "Traceback" not in result.stderr


@pytest.fixture
def existing_store(trained_store: TrainedStore, tmp_path: Path) -> Path:
    """A copy of the session's store: a real published version that must survive failures."""
    root = tmp_path / "models"
    shutil.copytree(trained_store.root, root)
    return root


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ("missing", "does not exist"),
        ("single_class", "single class"),
        ("empty_class", "has no images"),
        ("unreadable", "no readable images"),
    ],
)
def test_bad_data_fails_cleanly_and_leaves_the_store(
    existing_store: Path, tmp_path: Path, layout: str, message: str
) -> None:
    data = tmp_path / "data"
    if layout == "single_class":
        make_image_folder(data, per_class=3, classes=("circle",))
    elif layout == "empty_class":
        make_image_folder(data, per_class=3, classes=("circle", "square"))
        (data / "stripes").mkdir()
    elif layout == "unreadable":
        write_corrupt(data / "circle" / "a.png")
        write_corrupt(data / "square" / "b.jpg")
    before = snapshot(existing_store)
    result = run_cli("train", "--profile", "tiny", "--data", data, "--store", existing_store)
    assert_one_line_error(result, message)
    assert snapshot(existing_store) == before


def test_unwritable_store_fails_before_training(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the store's parent should be")
    data = make_image_folder(tmp_path / "data", per_class=4)
    result = run_cli("train", "--profile", "tiny", "--data", data, "--store", blocker / "models")
    assert_one_line_error(result, "is not a directory")
    assert blocker.read_text().startswith("a file")


def test_bad_options_and_names(tmp_path: Path) -> None:
    result = run_cli("train", "--train-limit", "3", "--store", tmp_path / "m")
    assert result.returncode == 2 and "train_limit" in result.stderr
    assert_one_line_error(
        run_cli("train", "--profile", "no-such", "--store", tmp_path / "m"), "unknown profile"
    )
    assert_one_line_error(
        run_cli("train", "--model", "Bad Name", "--store", tmp_path / "m"), "must match"
    )
    assert_one_line_error(run_cli("evaluate", "ghost", "--store", tmp_path / "m"), "ghost")
    assert not (tmp_path / "m").exists()


def test_train_then_evaluate_an_image_folder(tmp_path: Path) -> None:
    data = make_image_folder(tmp_path / "shapes", per_class=10)
    store = tmp_path / "models"
    args = ["--profile", "tiny", "--data", data, "--store", store, "--model", "shapes", "--quiet"]
    result = run_cli("train", *args, "--image-size", "24", "--color-mode", "RGB")
    assert result.returncode == 0, result.stderr
    assert "published shapes version 1" in result.stdout
    assert "model.onnx: max abs difference" in result.stdout
    assert "test accuracy" in result.stdout and "ECE" in result.stdout
    assert (store / "shapes" / "1" / "saved_model.pb").is_file()
    assert (store / "shapes" / "1" / "evaluation" / "report.md").is_file()

    evaluated = run_cli("evaluate", "shapes", "1", "--store", store)
    assert evaluated.returncode == 0, evaluated.stderr
    assert "evaluated shapes version 1" in evaluated.stdout
