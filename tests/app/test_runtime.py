"""Which runtime loads a version (TAGGER_RUNTIME), and what happens when it cannot."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from app_helpers import make_settings, republish_with_onnx
from pydantic import ValidationError

from app.config import Settings
from app.core import runtime, servable
from app.core.runtime import ONNXRUNTIME, TENSORFLOW, RuntimeUnavailable, choose_runtime
from app.core.servable import load_and_warm
from model_store import ModelStore
from model_store.errors import CorruptVersion
from model_store.signature import ONNX_FILE

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def with_onnx(trained_store):
    return trained_store.metadata


@pytest.fixture
def without_onnx(trained_store):
    """Metadata as versions published before ONNX export have it."""
    files = {k: v for k, v in trained_store.metadata.files.items() if k != ONNX_FILE}
    return trained_store.metadata.model_copy(update={"files": files, "onnx": None})


def test_auto_uses_onnxruntime_only_for_versions_with_model_onnx(with_onnx, without_onnx) -> None:
    assert choose_runtime("auto", "fashion", 1, with_onnx, None) == ONNXRUNTIME
    assert choose_runtime("auto", "fashion", 1, without_onnx, None) == TENSORFLOW
    # Where ONNX Runtime should not run (not installed, or a GPU it cannot use): TensorFlow.
    assert choose_runtime("auto", "fashion", 1, with_onnx, "no onnxruntime") == TENSORFLOW


def test_tensorflow_is_used_whenever_asked(with_onnx, without_onnx) -> None:
    for metadata in (with_onnx, without_onnx):
        assert choose_runtime("tensorflow", "fashion", 1, metadata, None) == TENSORFLOW


def test_onnxruntime_refuses_a_version_without_model_onnx(with_onnx, without_onnx) -> None:
    assert choose_runtime("onnxruntime", "fashion", 3, with_onnx, None) == ONNXRUNTIME
    with pytest.raises(RuntimeUnavailable, match=r"fashion v3 has no model\.onnx"):
        choose_runtime("onnxruntime", "fashion", 3, without_onnx, None)
    with pytest.raises(RuntimeUnavailable, match="no onnxruntime"):
        choose_runtime("onnxruntime", "fashion", 3, with_onnx, "no onnxruntime")


def test_a_visible_gpu_stays_with_tensorflow_unless_onnxruntime_has_cuda(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runtime, "nvidia_gpu_visible", lambda: True)
    monkeypatch.setattr(runtime, "cuda_provider_installed", lambda: False)
    assert "no CUDA provider" in (runtime.onnxruntime_refusal() or "")
    assert runtime.onnxruntime_refusal(leave_gpu_to_tensorflow=False) is None  # runs on CPU
    assert runtime.onnx_providers() == ["CPUExecutionProvider"]
    monkeypatch.setattr(runtime, "cuda_provider_installed", lambda: True)
    assert runtime.onnxruntime_refusal() is None
    assert runtime.onnx_providers() == ["CUDAExecutionProvider", "CPUExecutionProvider"]


def test_without_tensorflow_a_visible_gpu_does_not_keep_onnxruntime_away(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runtime, "nvidia_gpu_visible", lambda: True)
    monkeypatch.setattr(runtime, "cuda_provider_installed", lambda: False)
    monkeypatch.setattr(runtime, "tensorflow_available", lambda: False)
    assert runtime.onnxruntime_refusal() is None


def test_cuda_visible_devices_can_hide_the_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert not runtime.nvidia_gpu_visible()


def test_the_setting_is_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().runtime == "auto"
    monkeypatch.setenv("TAGGER_RUNTIME", " ONNXRuntime ")
    assert Settings().runtime == "onnxruntime"
    monkeypatch.setenv("TAGGER_RUNTIME", "onnx")
    with pytest.raises(ValidationError, match="TAGGER_RUNTIME 'onnx' must be one of auto"):
        Settings()


def test_a_model_onnx_that_does_not_load_costs_only_the_onnx_path(
    store_root: Path, trained_store
) -> None:
    store = ModelStore(store_root)
    garbage = republish_with_onnx(store, trained_store.version, b"not an ONNX model")
    model = load_and_warm(make_settings(store_root), store, "fashion", garbage, None)
    assert model.runtime == TENSORFLOW
    assert "model.onnx does not load" in (model.onnx_failure or "")
    strict = make_settings(store_root, runtime="onnxruntime")
    with pytest.raises(CorruptVersion, match=r"model\.onnx does not load"):
        load_and_warm(strict, store, "fashion", garbage, None)


def test_a_version_without_model_onnx_serves_through_tensorflow_in_auto(
    store_root: Path, trained_store
) -> None:
    store = ModelStore(store_root)
    old = republish_with_onnx(store, trained_store.version, None)
    model = load_and_warm(make_settings(store_root), store, "fashion", old, None)
    assert (model.runtime, model.onnx_failure) == (TENSORFLOW, None)
    assert model.predict(np.zeros((2, 28, 28, 1), np.uint8)).shape == (2, 10)
    strict = make_settings(store_root, runtime="onnxruntime")
    with pytest.raises(RuntimeUnavailable, match="use auto or tensorflow"):
        load_and_warm(strict, store, "fashion", old, None)


def test_without_tensorflow_a_version_that_needs_it_says_how_to_install_it(
    store_root: Path, trained_store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ModelStore(store_root)
    old = republish_with_onnx(store, trained_store.version, None)
    garbage = republish_with_onnx(store, trained_store.version, b"not an ONNX model")
    monkeypatch.setattr(servable, "tensorflow_available", lambda: False)
    install = r"which is not installed here: pip install '\.\[train\]' to serve it"
    cases = [
        ("auto", old, r"needs TensorFlow \(it has no model\.onnx: published before ONNX export\)"),
        ("auto", garbage, r"needs TensorFlow \(its model\.onnx cannot be served: .*does not load"),
        ("tensorflow", trained_store.version, r"needs TensorFlow \(TAGGER_RUNTIME=tensorflow\)"),
    ]
    for setting, version, why in cases:
        settings = make_settings(store_root, runtime=setting)
        with pytest.raises(RuntimeUnavailable, match=f"fashion v{version} {why}.*{install}"):
            load_and_warm(settings, store, "fashion", version, None)
    # A version with a sound model.onnx needs no TensorFlow.
    model = load_and_warm(make_settings(store_root), store, "fashion", trained_store.version, None)
    assert model.runtime == ONNXRUNTIME


def test_serving_model_onnx_imports_no_tensorflow(trained_store) -> None:
    """The ONNX Runtime path, from the app's import to a warmed version answering, never
    imports TensorFlow (run in a fresh interpreter, this one has it loaded)."""
    script = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        from app.config import Settings
        from app.main import create_app
        from app.core.servable import load_and_warm
        from model_store import ModelStore

        settings = Settings(model_store={str(trained_store.root)!r}, poll_interval_s=0)
        store = ModelStore(settings.model_store)
        create_app(settings, store=store)
        model = load_and_warm(settings, store, "fashion", {trained_store.version}, None)
        model.predict(np.zeros((3, 28, 28, 1), np.uint8))
        print(model.runtime, "tensorflow" in sys.modules)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["onnxruntime", "False"]
