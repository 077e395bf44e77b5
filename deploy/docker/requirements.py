"""Print the requirements of the base install plus the named extras, one per line.

The Docker build installs these from pyproject.toml alone, before it copies the code, so that
code edits do not reinstall them:

    python requirements.py [EXTRA ...] < pyproject.toml
"""

from __future__ import annotations

import sys
import tomllib
from collections.abc import Sequence


def requirements(pyproject: dict, extras: Sequence[str]) -> list[str]:
    project = pyproject["project"]
    optional = project.get("optional-dependencies", {})
    unknown = [extra for extra in extras if extra not in optional]
    if unknown:
        raise SystemExit(f"unknown extra(s) {unknown}; pyproject.toml has {sorted(optional)}")
    return [*project["dependencies"], *(line for extra in extras for line in optional[extra])]


if __name__ == "__main__":
    print("\n".join(requirements(tomllib.load(sys.stdin.buffer), sys.argv[1:])))
