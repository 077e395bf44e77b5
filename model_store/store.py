"""`ModelStore`: versioned models on disk, laid out the way TensorFlow Serving reads them.

    <root>/<name>/<version>/{saved_model.pb, variables/, model.onnx, metadata.json, evaluation/}
    <root>/<name>/aliases.json          {"stable": 3}
    <root>/<name>/alias_history.json    {"stable": [1, 2]}  previous targets, oldest first
    <root>/<name>/config.pbtxt, labels.txt  the model for Triton's ONNX Runtime backend

Versions appear atomically (staged beside the versions under a dot-name TF Serving ignores,
then renamed into place) and are never modified afterwards, except `evaluation/`. A staging
directory is marked by an flock its writer holds (`<dir>.owner`); `gc` and `publish` remove
those whose writer died (a killed training). Every change to the versions or aliases rewrites
the model's Triton config (`model_store.triton`) under the same lock.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import shutil
from collections.abc import Collection, Iterator
from pathlib import Path

from model_store import aliases as alias_files
from model_store import triton
from model_store.checksums import SCRATCH_PREFIX, compute_checksums
from model_store.errors import (
    AliasNotFound,
    CorruptVersion,
    ModelNotFound,
    ModelStoreError,
    PublishError,
    VersionNotFound,
)
from model_store.fsutil import (
    ensure_dirs,
    exclusive_lock,
    fsync_dir,
    fsync_tree,
    owned_scratch_dir,
    remove_abandoned,
    remove_empty_dirs,
    remove_tree,
    replace_dir_with_copy,
)
from model_store.names import LATEST, check_alias, check_name, check_version, parse_version_dir
from model_store.schema import EVALUATION_DIR, METADATA_FILE, NAME_PATTERN, ModelMetadata
from model_store.signature import ONNX_FILE
from model_store.verify import REQUIRED_FILE, describe_error, read_metadata, verify_version

logger = logging.getLogger(__name__)

STORE_ENV = "TAGGER_MODEL_STORE"
DEFAULT_STORE = "models"
STAGING_PREFIX = ".staging-"
_DIGITS = re.compile(r"^[0-9]+$")


def default_store_root() -> Path:
    """The store root from `TAGGER_MODEL_STORE`, else `./models`."""
    return Path(os.environ.get(STORE_ENV) or DEFAULT_STORE)


def _version_numbers(model_dir: Path) -> list[int]:
    try:
        entries = list(os.scandir(model_dir))
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = (parse_version_dir(entry.name) for entry in entries if entry.is_dir())
    return sorted(version for version in found if version is not None)


def _check_onnx_record(staged: Path, metadata: ModelMetadata) -> None:
    """model.onnx is published only with the record of its parity check, and vice versa."""
    has_file = (staged / ONNX_FILE).is_file()
    if has_file and metadata.onnx is None:
        raise PublishError(f"{staged / ONNX_FILE} comes without its parity record (metadata.onnx)")
    if metadata.onnx is not None and not has_file:
        raise PublishError(f"metadata records an ONNX export but {staged} has no {ONNX_FILE}")


class ModelStore:
    """A directory tree of published model versions (see the module docstring)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"ModelStore({str(self.root)!r})"

    def _model_dir(self, name: str) -> Path:
        return self.root / check_name(name)

    # Reading -----------------------------------------------------------------------------

    def models(self) -> list[str]:
        """Names of the models that have at least one version, sorted."""
        try:
            entries = sorted(os.listdir(self.root))
        except (FileNotFoundError, NotADirectoryError):
            return []
        return [e for e in entries if NAME_PATTERN.match(e) and _version_numbers(self.root / e)]

    def versions(self, name: str) -> list[int]:
        """The model's versions, ascending; `ModelNotFound` if it has none."""
        found = _version_numbers(self._model_dir(name))
        if not found:
            raise ModelNotFound(f"model {name!r} has no versions in the store")
        return found

    def latest(self, name: str) -> int:
        return self.versions(name)[-1]

    def resolve(self, name: str, ref: int | str = LATEST) -> int:
        """A version number from 3, "3", "latest" or an alias name."""
        check_name(name)
        if isinstance(ref, str) and _DIGITS.match(ref):
            ref = int(ref)
        if isinstance(ref, int) and not isinstance(ref, bool):
            self.version_dir(name, ref)
            return ref
        if ref == LATEST:
            return self.latest(name)
        alias = check_alias(ref)
        known = self.versions(name)
        aliases = self.aliases(name)
        if alias not in aliases:
            listed = ", ".join(aliases) or "none"
            raise AliasNotFound(f"model {name!r} has no alias {alias!r} (aliases: {listed})")
        target = aliases[alias]
        if target not in known:
            raise VersionNotFound(
                f"alias {alias!r} of model {name!r} points to version {target}, which is gone"
            )
        return target

    def version_dir(self, name: str, version: int) -> Path:
        """The directory of a published version; `VersionNotFound` if there is none."""
        check_version(version)
        known = self.versions(name)
        if version not in known:
            listed = ", ".join(map(str, known))
            raise VersionNotFound(f"model {name!r} has no version {version} (versions: {listed})")
        return self._model_dir(name) / str(version)

    def metadata(self, name: str, version: int) -> ModelMetadata:
        """The version's metadata.json; `CorruptVersion` if unreadable or not about this version."""
        path = self.version_dir(name, version)
        try:
            metadata = read_metadata(path)
        except (OSError, ValueError) as exc:
            if not path.is_dir():  # removed (gc) since we found it
                raise VersionNotFound(f"model {name!r} version {version} was just removed") from exc
            raise CorruptVersion(
                f"{name} version {version}: metadata.json is unreadable: {describe_error(exc)}"
            ) from exc
        if (metadata.name, metadata.version) != (name, version):
            raise CorruptVersion(
                f"{path / METADATA_FILE} describes {metadata.name} version {metadata.version}"
            )
        return metadata

    def aliases(self, name: str) -> dict[str, int]:
        """`{alias: version}`; empty when the model has none (or does not exist)."""
        return alias_files.read_aliases(self._model_dir(name))

    def alias_history(self, name: str) -> dict[str, list[int]]:
        """Each alias's previous targets, oldest first (what `rollback` walks back through)."""
        return alias_files.read_history(self._model_dir(name))

    def verify(
        self, name: str, version: int, load: bool = True, exclude: Collection[str] = ()
    ) -> list[str]:
        """Problems with a version (checksums, layout and, with `load`, the SavedModel), but
        none about the files in `exclude` (which the caller checks itself)."""
        return verify_version(self.version_dir(name, version), name, version, load, exclude)

    # Writing -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self, name: str) -> Iterator[Path]:
        """Hold the model's lock; file-system failures become `ModelStoreError`."""
        model_dir = self._model_dir(name)
        try:
            with exclusive_lock(model_dir):
                yield model_dir
        except FileNotFoundError as exc:
            if not model_dir.is_dir():
                raise ModelNotFound(f"model {name!r} is not in the store") from exc
            raise ModelStoreError(f"cannot update model {name!r}: {exc}") from exc
        except OSError as exc:
            raise ModelStoreError(f"cannot update model {name!r}: {exc}") from exc

    @contextlib.contextmanager
    def staging(self, name: str) -> Iterator[Path]:
        """An empty directory beside the versions to write a SavedModel into, then `publish`.

        It is removed on exit unless it was published; if this process dies first, the next
        `gc` or `publish` removes it.
        """
        model_dir = self._model_dir(name)
        with contextlib.ExitStack() as stack:
            try:
                created = ensure_dirs(model_dir)
                stack.callback(remove_empty_dirs, created)
                path = stack.enter_context(owned_scratch_dir(model_dir, STAGING_PREFIX))
            except OSError as exc:
                where = str(self.root)
                raise PublishError(f"cannot stage model {name!r} in {where!r}: {exc}") from exc
            try:
                yield path
            finally:
                if path.exists():
                    remove_tree(path)

    def clean_staging(self, name: str) -> list[Path]:
        """Remove staging directories whose writer died; returns them (never a live one)."""
        return remove_abandoned(self._model_dir(name), STAGING_PREFIX)

    def publish(self, name: str, staged: Path, metadata: ModelMetadata) -> ModelMetadata:
        """Publish the SavedModel in `staged` as the model's next version; returns its metadata.

        A directory from `staging()` is renamed into place; any other is copied first (and left
        as it was). On failure the store is left as it was and `PublishError` is raised.
        """
        model_dir = self._model_dir(name)
        staged = Path(staged)
        if metadata.name != name:
            raise PublishError(f"metadata is for model {metadata.name!r}, not {name!r}")
        if not (staged / REQUIRED_FILE).is_file():
            raise PublishError(f"{staged} is not a SavedModel directory: no {REQUIRED_FILE}")
        _check_onnx_record(staged, metadata)
        own = staged.name.startswith(STAGING_PREFIX) and staged.parent.resolve() == (
            model_dir.resolve()
        )
        created: list[Path] = []
        # Only a staging directory inside the store is ever moved or removed, never the caller's.
        work: Path | None = staged if own else None
        published = False
        scratch = contextlib.ExitStack()
        try:
            if work is None:
                created = ensure_dirs(model_dir)
                work = scratch.enter_context(owned_scratch_dir(model_dir, STAGING_PREFIX))
                shutil.copytree(staged, work, dirs_exist_ok=True)
            self._clean_staging_quietly(name)
            files = compute_checksums(work)
            with exclusive_lock(model_dir):
                version = max(_version_numbers(model_dir), default=0) + 1
                target = model_dir / str(version)
                if os.path.lexists(target):
                    raise PublishError(f"{target} already exists; refusing to overwrite it")
                final = ModelMetadata.model_validate(
                    {**metadata.model_dump(), "version": version, "files": files}
                )
                (work / METADATA_FILE).write_text(final.to_json(), encoding="utf-8")
                fsync_tree(work)
                os.rename(work, target)
                published = True
                self._sync_triton(name, model_dir)
        except PublishError:
            raise
        except (OSError, ValueError) as exc:
            where = str(self.root)
            raise PublishError(f"cannot publish model {name!r} to {where!r}: {exc}") from exc
        finally:
            if not published and work is not None and work.exists():
                remove_tree(work)
            scratch.close()
            if not published:
                remove_empty_dirs(created)
        try:
            fsync_dir(model_dir)
        except OSError as exc:  # the version is visible; only its durability is in doubt
            logger.warning("published %s but could not fsync %s: %s", target, model_dir, exc)
        logger.info("published %s version %d", name, version)
        return final

    def _clean_staging_quietly(self, name: str) -> None:
        """`clean_staging` for publish: a failure to clean up never fails a publish."""
        try:
            self.clean_staging(name)
        except OSError as exc:
            logger.warning("could not remove abandoned staging directories of %s: %s", name, exc)

    def promote(self, name: str, version: int, alias: str) -> None:
        """Point `alias` at an existing version (its previous target goes into the history)."""
        check_alias(alias)
        check_version(version)
        with self._locked(name) as model_dir:
            self.version_dir(name, version)
            alias_files.set_alias(model_dir, alias, version)
            self._sync_triton(name, model_dir)
        logger.info("%s: alias %s -> version %d", name, alias, version)

    def rollback(self, name: str, alias: str = "stable") -> int:
        """Move `alias` back to its previous target; repeated calls keep going back."""
        check_alias(alias)
        with self._locked(name) as model_dir:
            known = self.versions(name)
            current = alias_files.read_aliases(model_dir)
            if alias not in current:
                raise AliasNotFound(f"model {name!r} has no alias {alias!r}")
            target = alias_files.roll_back_alias(model_dir, alias, set(known))
            if target is not None:
                self._sync_triton(name, model_dir)
        if target is None:
            raise VersionNotFound(
                f"alias {alias!r} of model {name!r} has no previous version to roll back to"
            )
        logger.info("%s: alias %s rolled back %d -> %d", name, alias, current[alias], target)
        return target

    def gc(self, name: str, keep: int) -> list[int]:
        """Delete all but the `keep` newest versions, sparing aliased ones; returns the removed.

        Staging directories of dead writers go too (see `clean_staging`).
        """
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise ValueError(f"keep must be an integer >= 1, not {keep!r}")
        self.clean_staging(name)
        trash = []
        with self._locked(name) as model_dir:
            known = self.versions(name)
            spared = set(known[-keep:]) | set(alias_files.read_aliases(model_dir).values())
            removed = [version for version in known if version not in spared]
            for version in removed:
                # Renamed out of sight first, so no reader sees a half-deleted version.
                hidden = model_dir / f".trash-{version}-{secrets.token_hex(4)}"
                os.rename(model_dir / str(version), hidden)
                trash.append(hidden)
            if removed:
                fsync_dir(model_dir)
                self._sync_triton(name, model_dir)
        for path in trash:
            remove_tree(path)
        if removed:
            logger.info("%s: removed versions %s", name, removed)
        return removed

    def triton_config(self, name: str) -> triton.TritonModel:
        """(Re)write the model folder's config.pbtxt and labels.txt; returns what they serve.

        For stores published before the store kept them. When no version has model.onnx, the
        two files are removed and `ModelStoreError` says why.
        """
        self.versions(name)
        with self._locked(name) as model_dir:
            model = self._write_triton(name, model_dir)
        if model is None:
            listed = ", ".join(map(str, self.versions(name)))
            raise ModelStoreError(
                f"model {name!r} has no version Triton's ONNX Runtime backend can serve "
                f"(versions {listed}: none has {ONNX_FILE} and a readable metadata.json); "
                "publish one with `python -m training train`"
            )
        logger.info("%s", model.describe())
        return model

    def _write_triton(self, name: str, model_dir: Path) -> triton.TritonModel | None:
        """Bring config.pbtxt and labels.txt up to date (or remove them); the lock is held."""
        model = triton.plan(
            model_dir, name, _version_numbers(model_dir), alias_files.read_aliases(model_dir)
        )
        if model is None:
            if triton.remove(model_dir):
                logger.warning("%s: removed its Triton config: no version left to serve", name)
            return None
        triton.write(model_dir, model)
        return model

    def _sync_triton(self, name: str, model_dir: Path) -> None:
        """`_write_triton` after a change that already happened: a failure is logged, not raised."""
        try:
            self._write_triton(name, model_dir)
        except (OSError, ValueError, ModelStoreError) as exc:
            logger.warning(
                "%s: could not update the Triton config (%s); rewrite it with "
                "`python -m model_store triton-config %s`",
                name,
                exc,
                name,
            )

    def replace_evaluation(self, name: str, version: int, new_dir: Path) -> None:
        """Atomically replace `<version>/evaluation/` with a copy of `new_dir`."""
        new_dir = Path(new_dir)
        if not new_dir.is_dir():
            raise ModelStoreError(f"{new_dir} is not a directory")
        with self._locked(name):
            version_dir = self.version_dir(name, version)
            replace_dir_with_copy(new_dir, version_dir / EVALUATION_DIR, SCRATCH_PREFIX)
        logger.info("%s version %d: evaluation replaced", name, version)
