"""The serve-only install (`pip install .`, no TensorFlow) in a fresh virtual environment:
`python -m app` starts, reports ready and classifies with ONNX Runtime; a version only
TensorFlow can serve fails to load with a message that says what to install."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest
from app_helpers import Evaluated, encode, republish_with_onnx
from process_helpers import wait_ready

from benchmarks.service import free_port
from model_store import ModelStore

pytestmark = pytest.mark.slow

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
# What `pip install .` builds from: the project's metadata and its packages.
PROJECT_FILES = ("pyproject.toml", "README.md", "app", "model_store", "training")
TRAINING_ONLY = ("tensorflow", "keras", "matplotlib", "keras_tuner", "tf2onnx", "onnx")
INSTALL_TIMEOUT_S = 600
STARTUP_TIMEOUT_S = 120
IMAGES = 16


def _clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without anything that would put its packages in reach."""
    hidden = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")
    env = {key: value for key, value in os.environ.items() if key not in hidden}
    return {**env, "PIP_DISABLE_PIP_VERSION_CHECK": "1", **extra}


@pytest.fixture(scope="module")
def serve_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python of a fresh venv holding the base install of this checkout and nothing else
    (no --system-site-packages: this interpreter's TensorFlow must stay out of reach)."""
    root = tmp_path_factory.mktemp("serve-only")
    venv = root / "venv"
    made = subprocess.run(
        [sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True, timeout=120
    )
    if made.returncode != 0:
        pytest.skip(f"cannot create a virtual environment here: {made.stderr.strip()[-500:]}")
    # A copy, so that pip's build leaves nothing in the checkout.
    source = root / "source"
    for name in PROJECT_FILES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            source.mkdir(exist_ok=True)
            shutil.copy2(path, source / name)
    python = venv / "bin" / "python"
    started = time.monotonic()
    install = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", str(source)],
        cwd=root,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_S,
    )
    assert install.returncode == 0, f"pip install . failed:\n{install.stderr[-3000:]}"
    logger.info("pip install . into a fresh venv took %.1f s", time.monotonic() - started)
    return python


@contextmanager
def _serve(python: Path, store: Path, log: Path) -> Iterator[str]:
    """`python -m app` from the venv on a free loopback port, once /readyz answers 200; run
    outside the checkout, so the installed packages are what it imports."""
    port = free_port()
    env = _clean_env(
        TAGGER_HOST="127.0.0.1",
        TAGGER_PORT=str(port),
        TAGGER_MODEL_STORE=str(store),
        TAGGER_MODEL_NAME="fashion",
        TAGGER_RUNTIME="auto",
        TAGGER_POLL_INTERVAL_S="0",
    )
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [python, "-m", "app"],
            cwd=log.parent,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(process, url, log, STARTUP_TIMEOUT_S)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=60)


def _classify(url: str, images: np.ndarray) -> list[dict]:
    files = [("file", (f"{i}.png", encode(pixels), "image/png")) for i, pixels in enumerate(images)]
    response = httpx.post(
        f"{url}/v1/models/fashion/classify", files=files, params={"top_k": 10}, timeout=60
    )
    assert response.status_code == 200, response.text
    return response.json()["results"]


def _run(python: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [python, *args], cwd=cwd, env=_clean_env(), capture_output=True, text=True, timeout=120
    )


def test_the_serve_install_has_no_tensorflow(serve_python: Path, tmp_path: Path) -> None:
    script = (
        "import importlib.util as util, app, model_store; "
        f"print(app.__file__); print(*[m for m in {TRAINING_ONLY!r} if util.find_spec(m)])"
    )
    found = _run(serve_python, "-c", script, cwd=tmp_path)
    assert found.returncode == 0, found.stderr
    location, training_only = found.stdout.split("\n", 1)
    assert location.startswith(str(serve_python.parents[1])), "app must come from the venv"
    assert training_only.strip() == "", f"the serve install carries {training_only.strip()}"
    imported = _run(serve_python, "-c", "import tensorflow", cwd=tmp_path)
    assert imported.returncode != 0
    assert "No module named 'tensorflow'" in imported.stderr
    trainer = _run(serve_python, "-m", "training", "train", cwd=tmp_path)
    assert trainer.returncode == 2
    assert "needs tensorflow and keras: pip install '.[train]'" in trainer.stderr


def test_python_m_app_classifies_with_onnxruntime_without_tensorflow(
    serve_python: Path, shared_root: Path, evaluated: Evaluated, trained_store, tmp_path: Path
) -> None:
    labels = trained_store.metadata.labels
    with _serve(serve_python, shared_root, tmp_path / "server.log") as url:
        ready = httpx.get(f"{url}/readyz").json()
        results = _classify(url, evaluated.images[:IMAGES])
        (model,) = httpx.get(f"{url}/v1/models").json()["models"]
        # The page ships as package data: `pip install .` carries its files.
        page = [httpx.get(f"{url}{path}") for path in ("/", "/static/page.js", "/static/page.css")]
    assert [response.status_code for response in page] == [200, 200, 200]
    assert '<script type="module" src="/static/page.js">' in page[0].text
    assert (ready["version"], ready["fallback"]) == (trained_store.version, False)
    assert model["runtime"] == "onnxruntime"
    top1 = [result["predictions"][0]["label"] for result in results]
    assert top1 == [labels[i] for i in evaluated.probabilities[:IMAGES].argmax(axis=1)]
    served = np.array(
        [
            [{p["label"]: p["confidence"] for p in r["predictions"]}[x] for x in labels]
            for r in results
        ]
    )
    np.testing.assert_allclose(served, evaluated.probabilities[:IMAGES], atol=1e-4)


def test_a_version_without_model_onnx_fails_to_load_saying_what_to_install(
    serve_python: Path, store_root: Path, evaluated: Evaluated, trained_store, tmp_path: Path
) -> None:
    """The newest version predates ONNX export: it is refused with a message and counted, and
    the replica serves the version before it instead (as for any version that fails to load)."""
    old = republish_with_onnx(ModelStore(store_root), trained_store.version, None)
    log = tmp_path / "server.log"
    with _serve(serve_python, store_root, log) as url:
        ready = httpx.get(f"{url}/readyz").json()
        metrics = httpx.get(f"{url}/metrics").text
        (result,) = _classify(url, evaluated.images[:1])
    assert (ready["version"], ready["fallback"], ready["target_version"]) == (
        trained_store.version,
        True,
        old,
    )
    assert f"fashion v{old} needs TensorFlow" in ready["fallback_reason"]
    assert "pip install '.[train]'" in ready["fallback_reason"]
    assert 'tagger_model_reload_failures_total{model="fashion"} 1.0' in metrics
    assert (
        result["predictions"][0]["label"]
        == trained_store.metadata.labels[int(evaluated.probabilities[0].argmax())]
    )
    stderr = log.read_text()
    assert "needs TensorFlow" in stderr
    assert "Traceback" not in stderr and "ModuleNotFoundError" not in stderr


def test_model_store_verify_checks_model_onnx_without_tensorflow(
    serve_python: Path, shared_root: Path, tmp_path: Path
) -> None:
    done = _run(
        serve_python,
        "-m",
        "model_store",
        "--store",
        str(shared_root),
        "verify",
        "fashion",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "ok (checksums, model.onnx load)" in done.stdout
    assert "TensorFlow is not installed" in done.stderr
