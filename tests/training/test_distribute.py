"""TF_CONFIG checks and the chief rule, before TensorFlow starts (no cluster needed)."""

from __future__ import annotations

import json

import pytest

from training.cli import main
from training.distribute import is_chief, make_distribution, read_tf_config
from training.errors import TrainingError

TWO = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "needs TF_CONFIG"),
        ("not json", "not a usable cluster description"),
        (json.dumps({"cluster": TWO}), "not a usable cluster description"),
        (json.dumps({"cluster": TWO, "task": {"type": "worker", "index": 2}}), "not one of"),
        (json.dumps({"cluster": TWO, "task": {"type": "ps", "index": 0}}), "not one of"),
    ],
)
def test_bad_tf_config_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, value: str | None, message: str
) -> None:
    if value is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", value)
    with pytest.raises(TrainingError, match=message):
        read_tf_config()


def test_chief_is_the_chief_task_else_worker_zero() -> None:
    def task(kind: str, index: int, cluster: dict) -> dict:
        return {"cluster": cluster, "task": {"type": kind, "index": index}}

    assert is_chief(task("worker", 0, TWO)) and not is_chief(task("worker", 1, TWO))
    with_chief = {"chief": ["127.0.0.1:3"], **TWO}
    assert is_chief(task("chief", 0, with_chief)) and not is_chief(task("worker", 0, with_chief))


def test_no_strategy_on_one_device() -> None:
    distribution = make_distribution("auto")  # this machine: CPU only
    assert (distribution.name, distribution.replicas, distribution.is_chief) == ("none", 1, True)
    with distribution.scope():
        pass


def test_cli_without_tf_config_fails_before_training(
    monkeypatch: pytest.MonkeyPatch, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("TF_CONFIG", raising=False)
    code = main(["train", "--distribute", "multi-worker", "--store", str(tmp_path / "m")])
    assert code == 1
    assert "needs TF_CONFIG" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()
