"""The serving core knows no HTTP: nothing under app/core or model_store imports the web
framework, the server or the edge, so every protocol can map the core's errors its own way."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_HTTP_MODULES = ("fastapi", "starlette", "uvicorn", "httpx", "app.api", "app.server", "app.main")
_CORE_FILES = sorted([*(ROOT / "app" / "core").glob("*.py"), *(ROOT / "model_store").glob("*.py")])


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


@pytest.mark.parametrize("path", _CORE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_core_module_imports_nothing_of_http(path: Path) -> None:
    http = [
        name
        for name in _imports(path)
        if any(name == m or name.startswith(m + ".") for m in _HTTP_MODULES)
    ]
    assert http == [], f"{path.relative_to(ROOT)} imports {http}"


def test_the_core_holds_the_serving_modules() -> None:
    names = {path.stem for path in _CORE_FILES}
    assert {"batcher", "model_manager", "runtime", "decoding", "errors", "inference"} <= names
