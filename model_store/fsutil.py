"""File-system primitives for the store: locks, durable atomic writes and directory swaps."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import json
import logging
import os
import secrets
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

logger = logging.getLogger(__name__)

LOCK_FILE = ".lock"
OWNER_SUFFIX = ".owner"
# A scratch directory with no owner file (or an owner file never locked) is removed only when
# nothing in it changed for this long: longer than any copy or export into it takes.
ABANDONED_AFTER_S = 3600.0
_RENAME_EXCHANGE = 2  # linux/fs.h


@contextlib.contextmanager
def exclusive_lock(model_dir: Path) -> Iterator[None]:
    """Hold an exclusive `flock` on `<model_dir>/.lock` (shared by every process on the host)."""
    fd = os.open(model_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (renames, new files) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """fsync every file and directory under `root`, so a rename publishes durable contents."""
    for dirpath, _dirnames, filenames in os.walk(root):
        for filename in filenames:
            fd = os.open(Path(dirpath) / filename, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(dirpath))


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data`: temp file beside it, fsync, rename, fsync the directory."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    fsync_dir(path.parent)


def write_json_atomic(path: Path, value: object) -> None:
    write_bytes_atomic(path, (json.dumps(value, indent=2, sort_keys=True) + "\n").encode())


def read_json(path: Path, default: object) -> object:
    """Parsed JSON from `path`, or `default` when the file does not exist."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return default


def remove_tree(path: Path) -> None:
    """Delete a directory tree, logging (not raising) what could not be removed."""
    shutil.rmtree(path, ignore_errors=True)
    if path.exists():
        logger.warning("could not remove all of %s", path)


def exchange(a: Path, b: Path) -> bool:
    """Atomically swap two existing paths with renameat2(RENAME_EXCHANGE).

    Returns False where the kernel, libc or file system cannot do it.
    """
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd = -100
    result = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(a))


def remove_empty_dirs(created: list[Path]) -> None:
    """Undo `_ensure_dirs`: remove the directories it made, deepest first, if still empty."""
    for path in reversed(created):
        with contextlib.suppress(OSError):
            os.rmdir(path)


def ensure_dirs(path: Path) -> list[Path]:
    """`mkdir -p path`, returning the directories it had to create (outermost first)."""
    missing = []
    probe = path
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    created = []
    for directory in reversed(missing):
        try:
            directory.mkdir()
        except FileExistsError:
            if not directory.is_dir():
                remove_empty_dirs(created)
                raise
            continue
        except OSError:
            remove_empty_dirs(created)
            raise
        created.append(directory)
    if not path.is_dir():
        raise NotADirectoryError(f"{path} is not a directory")
    return created


def replace_dir_with_copy(source: Path, target: Path, scratch_prefix: str) -> None:
    """Make `target` a copy of `source`; readers see the old or the new tree, never a mix.

    The copy is written beside `target` under `scratch_prefix` and swapped in with
    renameat2(RENAME_EXCHANGE) (or, without it, two renames: briefly absent, never partial).
    """
    parent = target.parent
    scratch = Path(tempfile.mkdtemp(prefix=f"{scratch_prefix}new-", dir=parent))
    old = parent / f"{scratch_prefix}old-{secrets.token_hex(4)}"
    try:
        shutil.copytree(source, scratch, dirs_exist_ok=True)
        fsync_tree(scratch)
        if not target.exists():
            os.rename(scratch, target)
        elif exchange(scratch, target):
            old = scratch
        else:
            os.rename(target, old)
            try:
                os.rename(scratch, target)
            except OSError:
                os.rename(old, target)
                raise
        fsync_dir(parent)
    finally:
        for leftover in (scratch, old):
            if leftover.exists():
                remove_tree(leftover)


@contextlib.contextmanager
def owned_scratch_dir(parent: Path, prefix: str) -> Iterator[Path]:
    """A new directory `<parent>/<prefix><random>`, marked as this process's while the block runs.

    The owner holds an exclusive `flock` on `<dir>.owner` beside it (which also names the pid
    and host, for people). The kernel releases the lock when the process ends, even by
    SIGKILL, so `remove_abandoned` tells a live writer from a dead one without guessing from
    pids, which are reused. The directory is not removed here (it may have been renamed into
    place); the owner file is.
    """
    while True:
        path = parent / f"{prefix}{secrets.token_hex(8)}"
        owner = parent / f"{path.name}{OWNER_SUFFIX}"
        try:
            fd = os.open(owner, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            continue
        break
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
        path.mkdir()
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(owner)
        os.close(fd)


def remove_abandoned(parent: Path, prefix: str, min_age_s: float = ABANDONED_AFTER_S) -> list[Path]:
    """Remove `<prefix>*` directories under `parent` whose writer is gone; returns them.

    Gone means: its owner file exists and nobody holds its lock; or it has no owner file and
    nothing in it changed for `min_age_s` (written by an older release, or its owner file was
    lost). Owner files without a directory are removed at the same age.
    """
    removed = []
    try:
        entries = [entry for entry in os.scandir(parent) if entry.name.startswith(prefix)]
    except (FileNotFoundError, NotADirectoryError):
        return []
    names = {entry.name for entry in entries}
    for entry in entries:
        path = Path(entry.path)
        if entry.name.endswith(OWNER_SUFFIX):
            if entry.name[: -len(OWNER_SUFFIX)] not in names and _idle_for(path) >= min_age_s:
                _remove_if_unlocked(path, None)
            continue
        if not entry.is_dir(follow_symlinks=False):
            continue
        owner = parent / f"{entry.name}{OWNER_SUFFIX}"
        if owner.exists():
            if _remove_if_unlocked(owner, path):
                removed.append(path)
        elif _idle_for(path) >= min_age_s:
            remove_tree(path)
            removed.append(path)
    if removed:
        logger.info("removed abandoned %s", ", ".join(str(path) for path in removed))
    return removed


def _remove_if_unlocked(owner: Path, directory: Path | None) -> bool:
    """Remove `directory` and its `owner` file unless a live process holds the owner's lock."""
    try:
        fd = os.open(owner, os.O_RDWR)
    except FileNotFoundError:  # its owner finished meanwhile
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        if directory is not None:
            remove_tree(directory)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(owner)
        return True
    finally:
        os.close(fd)


def _idle_for(path: Path) -> float:
    """Seconds since anything in the tree at `path` last changed."""
    newest = 0.0
    for dirpath, dirnames, filenames in os.walk(path):
        for name in [*dirnames, *filenames, "."]:
            with contextlib.suppress(OSError):
                newest = max(newest, os.lstat(os.path.join(dirpath, name)).st_mtime)
    with contextlib.suppress(OSError):
        newest = max(newest, os.lstat(path).st_mtime)
    return time.time() - newest
