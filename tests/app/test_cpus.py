"""app.cpus: the cores a process may use, a container's CPU quota included."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.config import Settings
from app.cpus import cgroup_cpu_quota, usable_cpus


def _files(tmp_path: Path, v2: str | None = None, v1: tuple[str, str] | None = None) -> dict:
    paths = {"v2": tmp_path / "cpu.max", "v1_quota": tmp_path / "q", "v1_period": tmp_path / "p"}
    if v2 is not None:
        paths["v2"].write_text(v2)
    if v1 is not None:
        paths["v1_quota"].write_text(v1[0])
        paths["v1_period"].write_text(v1[1])
    return paths


@pytest.mark.parametrize(
    ("v2", "v1", "quota"),
    [
        ("max 100000\n", None, None),
        ("150000 100000\n", None, 1.5),
        ("200000 100000\n", ("50000", "100000"), 2.0),  # v2 wins where it exists
        (None, ("50000", "100000"), 0.5),
        (None, ("-1", "100000"), None),  # v1's "no limit"
        (None, None, None),
        ("garbage\n", None, None),
    ],
)
def test_the_cgroup_quota_is_read_from_v2_or_v1(tmp_path, v2, v1, quota) -> None:
    assert cgroup_cpu_quota(**_files(tmp_path, v2, v1)) == quota


def test_workers_default_to_the_usable_cores_and_divide_the_model_threads(monkeypatch) -> None:
    monkeypatch.delenv("TAGGER_WORKERS")  # tests/conftest.py sets 1 for the servers it starts
    cores = usable_cpus()
    assert Settings().worker_count == cores
    one = Settings(workers=1)
    assert one.worker_count == 1 and one.tf_intra_op_threads == max(1, cores - 1)
    many = Settings(workers=cores)
    assert many.tf_intra_op_threads == 1  # one core each: the event loop's, shared with the model


def test_a_worker_count_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="workers"):
        Settings(workers=0)
