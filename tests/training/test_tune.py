"""A tiny real hyperparameter search through the CLI: results table and a loadable profile."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from training.cli import main
from training.config import TrainConfig
from training.profiles import get_profile, load_profile_file
from training.tune import HYPERPARAMETERS

pytestmark = pytest.mark.slow


def _tune(tmp_path: Path, *extra: str) -> tuple[int, Path, Path]:
    out, profiles = tmp_path / "results", tmp_path / "profiles"
    argv = ["tune", "--base-profile", "tiny", "--epochs-per-trial", "1", "--train-limit", "300",
            "--out", str(out), "--profile-dir", str(profiles), *extra]  # fmt: skip
    return main(argv), out, profiles


def test_a_two_trial_search_writes_the_table_and_a_profile(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, profiles = _tune(tmp_path, "--trials", "2", "--profile-name", "my-tuned")
    assert code == 0

    with (out / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["trial"] for row in rows] == ["1", "2"]
    for row in rows:
        assert row["status"] == "COMPLETED"
        assert 0.0 <= float(row["val_accuracy"]) <= 1.0
        assert float(row["seconds"]) > 0
        assert all(row[name] != "" for name in HYPERPARAMETERS)
    markdown = (out / "results.md").read_text()
    assert "| trial |" in markdown and markdown.count("COMPLETED") == 2

    # The profile is the best trial's recipe, loadable by name like any other profile.
    config = get_profile("my-tuned", directory=profiles)
    assert isinstance(config, TrainConfig) and config.profile == "my-tuned"
    best = max(rows, key=lambda row: float(row["val_accuracy"]))
    width, blocks = int(best["conv_width"]), int(best["blocks"])
    assert config.model.block_filters == tuple(width * 2**i for i in range(blocks))
    assert config.model.convs_per_block == int(best["convs_per_block"])
    assert config.model.learning_rate == pytest.approx(float(best["learning_rate"]))
    assert config.model.dropout == pytest.approx(float(best["dropout"]))
    assert config.model.augmentation == pytest.approx(float(best["augmentation"]))
    # Everything not searched comes from the base profile; data limits are not part of a recipe.
    tiny = get_profile("tiny")
    assert (config.batch_size, config.epochs) == (tiny.batch_size, tiny.epochs)
    assert config.model.head == tiny.model.head and config.train_limit is None
    assert load_profile_file(out / "best_profile.json").model == config.model

    printed = capsys.readouterr().out
    assert "best: trial" in printed and "my-tuned" in printed


def test_the_time_budget_stops_new_trials(tmp_path: Path) -> None:
    code, out, profiles = _tune(tmp_path, "--trials", "5", "--max-minutes", "0.0001")
    assert code == 0
    with (out / "results.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == 1
    assert (profiles / "tuned.json").is_file()


def test_a_builtin_profile_name_is_refused_before_any_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _tune(tmp_path, "--trials", "1", "--profile-name", "quick")
    assert code == 1
    assert "profile-name" in capsys.readouterr().err
    assert not out.exists()
