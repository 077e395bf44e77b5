"""aliases.json (flat `{"stable": 3}`) and alias_history.json (every alias's previous targets).

Callers hold the model's lock for any change; both files are replaced atomically.
"""

from __future__ import annotations

from pathlib import Path

from model_store.errors import ModelStoreError
from model_store.fsutil import read_json, write_json_atomic

ALIASES_FILE = "aliases.json"
HISTORY_FILE = "alias_history.json"


def _check_mapping(path: Path, value: object, of_lists: bool) -> None:
    def valid(target: object) -> bool:
        return isinstance(target, int) and not isinstance(target, bool) and target >= 0

    ok = isinstance(value, dict) and all(
        isinstance(key, str)
        and (
            (isinstance(target, list) and all(valid(item) for item in target))
            if of_lists
            else valid(target)
        )
        for key, target in value.items()
    )
    if not ok:
        kind = "alias -> list of versions" if of_lists else "alias -> version"
        raise ModelStoreError(f"{path} is not a JSON object of {kind}")


def _read_mapping(path: Path, of_lists: bool) -> dict[str, object]:
    """One of the two files, validated, with its aliases sorted; {} when it does not exist."""
    try:
        value = read_json(path, {})
    except (OSError, ValueError) as exc:
        raise ModelStoreError(f"cannot read {path}: {exc}") from exc
    _check_mapping(path, value, of_lists)
    return dict(sorted(value.items()))  # type: ignore[union-attr]


def read_aliases(model_dir: Path) -> dict[str, int]:
    return _read_mapping(model_dir / ALIASES_FILE, of_lists=False)  # type: ignore[return-value]


def read_history(model_dir: Path) -> dict[str, list[int]]:
    history = _read_mapping(model_dir / HISTORY_FILE, of_lists=True)
    return {alias: list(targets) for alias, targets in history.items()}  # type: ignore[call-overload]


def set_alias(model_dir: Path, alias: str, version: int) -> None:
    """Point `alias` at `version`, remembering its previous target for rollback."""
    aliases = read_aliases(model_dir)
    previous = aliases.get(alias)
    if previous == version:
        return
    if previous is not None:
        history = read_history(model_dir)
        history.setdefault(alias, []).append(previous)
        # History first: if we stop between the writes, rollback skips the duplicate entry.
        write_json_atomic(model_dir / HISTORY_FILE, history)
    aliases[alias] = version
    write_json_atomic(model_dir / ALIASES_FILE, aliases)


def roll_back_alias(model_dir: Path, alias: str, existing: set[int]) -> int | None:
    """Move `alias` to its most recent previous target that still exists; None if there is none.

    Entries are consumed, so repeated rollbacks keep going further back.
    """
    aliases = read_aliases(model_dir)
    current = aliases[alias]
    history = read_history(model_dir)
    targets = history.get(alias, [])
    while targets:
        candidate = targets.pop()
        if candidate != current and candidate in existing:
            aliases[alias] = candidate
            write_json_atomic(model_dir / ALIASES_FILE, aliases)
            # Alias first: if we stop between the writes, the stale entry equals the target
            # and the next rollback skips it.
            history[alias] = targets
            write_json_atomic(model_dir / HISTORY_FILE, history)
            return candidate
    return None
