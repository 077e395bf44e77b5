"""Profiles: the built-in recipes and tuner-written JSON files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.config import FASHION_DIR_ENV, ModelConfig, TrainConfig, default_fashion_dir
from training.errors import ProfileError
from training.profiles import get_profile, load_profile_file, profile_names, save_profile


def test_builtin_profiles() -> None:
    assert profile_names()[:3] == ["tiny", "quick", "default"]
    assert get_profile("tiny").epochs == 1
    default = get_profile("default")
    assert default.model.block_filters == (32, 64, 128) and default.model.convs_per_block == 2
    assert default.model.batch_norm and default.model.augmentation > 0
    assert default.mixed_precision and default.data_dir is None


def test_saved_profile_loads_by_name_without_data_locations(tmp_path: Path) -> None:
    tuned = TrainConfig(
        model=ModelConfig(block_filters=(24, 48), learning_rate=3e-3),
        epochs=7,
        train_limit=5000,
        data_dir=tmp_path,
    )
    path = save_profile("tuned-1", tuned, tmp_path)
    assert "train_limit" not in json.loads(path.read_text())
    assert "tuned-1" in profile_names(tmp_path)
    loaded = get_profile("tuned-1", tmp_path)
    assert loaded.profile == "tuned-1" and loaded.epochs == 7
    assert loaded.model == tuned.model
    assert loaded.train_limit is None and loaded.data_dir is None


def test_bare_model_config_file_is_a_profile(tmp_path: Path) -> None:
    (tmp_path / "small.json").write_text(json.dumps({"block_filters": [8], "dropout": 0.1}))
    loaded = get_profile("small", tmp_path)
    assert loaded.model.block_filters == (8,) and loaded.epochs == TrainConfig().epochs


def test_bad_profiles_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="unknown profile 'nope'; available: tiny, quick"):
        get_profile("nope", tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"epochs": 0}))
    with pytest.raises(ProfileError, match="not a valid profile"):
        load_profile_file(bad)
    with pytest.raises(ProfileError, match="built-in"):
        save_profile("default", TrainConfig(), tmp_path)


def test_fashion_dir_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(FASHION_DIR_ENV, str(tmp_path))
    assert default_fashion_dir() == tmp_path
    assert TrainConfig().fashion_dir == tmp_path
