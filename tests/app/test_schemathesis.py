"""Schemathesis against the live /openapi.json of a real server, with the API key on.

Every check it has (server errors, status codes, content types, headers, response schemas,
schema-valid data accepted, invalid data rejected, auth enforced) over all operations and
all phases (examples, coverage, fuzzing, stateful), deterministic so CI is reproducible.
Image fields are drawn as real images (tests/app/schemathesis_hooks.py).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from app_helpers import ModelGate, make_settings, run_server

from model_store import ModelStore

pytestmark = pytest.mark.slow

API_KEY = "0f3c9a7d2b8e4f61a5c3d9e7b1f2a4c6"  # long: a generated value never equals it
MIN_CASES = 1_500
EXAMPLES_PER_OPERATION = 20  # with the coverage phase and stateful links: ~2,400 cases
TIME_LIMIT_S = 500  # a hang, not the budget: ~30-40 s on an idle 2-core machine
HOOKS = Path(__file__).with_name("schemathesis_hooks.py")


class OpenGate(ModelGate):
    """Never holds nor poisons: random images may well have the poison pixel."""

    def __call__(self, batch: np.ndarray) -> None:
        return None


def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    store_root: Path, trained_store, tmp_path: Path
) -> None:
    ModelStore(store_root).promote("fashion", trained_store.version, "stable")  # an alias to find
    settings = make_settings(
        store_root,
        api_key=API_KEY,
        max_batch_delay_ms=0,
        max_images_per_request=4,
        auth_exempt_paths="/healthz,/readyz,/metrics",
    )
    path = [str(HOOKS.parent), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": HOOKS.stem, "PYTHONPATH": os.pathsep.join(path)}
    with run_server(settings, gate=OpenGate()) as server:
        started = time.monotonic()
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "schemathesis.cli",
                "run",
                f"{server.url}/openapi.json",
                "--header",
                f"Authorization: Bearer {API_KEY}",
                "--checks",
                "all",
                "--max-examples",
                str(EXAMPLES_PER_OPERATION),
                "--generation-deterministic",
                # One worker: Python 3.11's AST constructor is not thread-safe ("recursion
                # depth mismatch" SystemError), and Schemathesis compiles in its workers.
                "--workers",
                "1",
                "--request-timeout",
                "30",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,  # its crash cache (.schemathesis/) goes there, not into the checkout
            timeout=TIME_LIMIT_S,
            check=False,
        )
        elapsed = time.monotonic() - started
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-8000:]
    generated = re.search(r"(\d+) generated", output)
    assert generated is not None, output[-3000:]
    cases = int(generated.group(1))
    assert cases >= MIN_CASES, output[-3000:]
    assert re.search(rf"{cases} passed", output), output[-3000:]
    print(f"schemathesis: {cases} cases in {elapsed:.1f} s")
