"""`python -m model_store`: list, inspect, promote, roll back, verify and clean up model versions,
and write a model's Triton config.

Exit status: 0 ok, 1 not found / verify failed / store error, 2 usage (including invalid names).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from model_store.errors import CorruptVersion, InvalidName, ModelStoreError
from model_store.schema import ModelMetadata
from model_store.store import STORE_ENV, ModelStore, default_store_root
from model_store.triton import CONFIG_FILE, LABELS_FILE
from model_store.verify import loads_checked

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, not {text!r}")
    return value


def _aliases_by_version(store: ModelStore, name: str) -> dict[int, list[str]]:
    by_version: dict[int, list[str]] = {}
    for alias, version in store.aliases(name).items():
        by_version.setdefault(version, []).append(alias)
    return by_version


def _summary(store: ModelStore, name: str, version: int) -> tuple[str, str]:
    """(test accuracy, created_at) for listings; a corrupt version says so instead."""
    try:
        metadata = store.metadata(name, version)
    except CorruptVersion:
        return "corrupt", "-"
    created = metadata.created_at.strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    return f"{metadata.metrics.test.accuracy:.4f}", created


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def cmd_list(store: ModelStore, args: argparse.Namespace) -> int:
    names = store.models()
    if not names:
        print(f"no models in store {str(store.root)!r}")
        return EXIT_OK
    rows = [["MODEL", "VERSION", "ALIASES", "TEST ACC", "CREATED"]]
    for name in names:
        aliases = _aliases_by_version(store, name)
        for version in store.versions(name):
            accuracy, created = _summary(store, name, version)
            labels = ",".join(aliases.get(version, [])) or "-"
            rows.append([name, str(version), labels, accuracy, created])
    print(_table(rows))
    return EXIT_OK


def cmd_versions(store: ModelStore, args: argparse.Namespace) -> int:
    aliases = _aliases_by_version(store, args.name)
    for version in store.versions(args.name):
        names = ", ".join(aliases.get(version, []))
        print(f"{version}  ({names})" if names else str(version))
    return EXIT_OK


def _format_metadata(metadata: ModelMetadata, aliases: list[str], path: str) -> str:
    test = metadata.metrics.test
    spec, shape = metadata.preprocessing, metadata.input
    training, dataset, libs = metadata.training, metadata.dataset, metadata.versions
    calibration = ""
    if test.temperature is not None:
        calibration = f", temperature {test.temperature:.3f}"
    if test.ece_before_calibration is not None:
        calibration += f" (ECE before calibration {test.ece_before_calibration:.4f})"
    hyper = ", ".join(f"{key}={value}" for key, value in sorted(training.hyperparameters.items()))
    lines = [
        f"{metadata.name} version {metadata.version}"
        + (f"  (aliases: {', '.join(aliases)})" if aliases else ""),
        f"path         {path}",
        f"created      {metadata.created_at.isoformat()}",
        f"labels       {len(metadata.labels)}: {', '.join(metadata.labels)}",
        f"input        {shape.dtype} [batch, {shape.height}, {shape.width}, {shape.channels}]"
        f" -> {metadata.output} (signature {metadata.signature})",
        f"preprocess   color {spec.color_mode}, fit {spec.fit}, trim {spec.trim}, "
        f"invert {spec.invert}, resample {spec.resample}",
        f"test         accuracy {test.accuracy:.4f}, macro F1 {test.macro_f1:.4f}, "
        f"precision {test.macro_precision:.4f}, recall {test.macro_recall:.4f}, "
        f"ECE {test.ece:.4f}{calibration}",
    ]
    if metadata.metrics.validation:
        values = ", ".join(f"{k} {v:.4f}" for k, v in sorted(metadata.metrics.validation.items()))
        lines.append(f"validation   {values}")
    lines += [
        f"training     profile {training.profile}, {training.epochs_run} epoch(s), "
        f"{training.seconds:.1f} s, seed {training.seed}",
        f"             {hyper or 'no hyperparameters recorded'}",
    ]
    if training.strategy is not None:
        lines.append(
            f"             strategy {training.strategy}, {training.replicas} replica(s) on "
            f"{training.workers} worker(s), global batch {training.global_batch}"
            + (", balanced class weights" if training.class_weights else "")
        )
    lines += [
        f"dataset      {dataset.name} ({dataset.fingerprint[:16]}), splits "
        + ", ".join(f"{split} {count}" for split, count in dataset.splits.items())
        + (f", source {dataset.source}" if dataset.source else ""),
        f"libraries    tensorflow {libs.tensorflow}, keras {libs.keras}, python {libs.python}",
        f"files        {len(metadata.files)} checksummed",
    ]
    if test.per_class:
        rows = [["  class", "precision", "recall", "f1", "support"]]
        for label, m in test.per_class.items():
            rows.append(
                [
                    f"  {label}",
                    f"{m.precision:.4f}",
                    f"{m.recall:.4f}",
                    f"{m.f1:.4f}",
                    f"{m.support}",
                ]
            )
        lines += ["per class", _table(rows)]
    return "\n".join(lines)


def cmd_show(store: ModelStore, args: argparse.Namespace) -> int:
    version = store.resolve(args.name, args.ref)
    metadata = store.metadata(args.name, version)
    if args.json:
        print(metadata.to_json(), end="")
        return EXIT_OK
    aliases = _aliases_by_version(store, args.name).get(version, [])
    print(_format_metadata(metadata, aliases, str(store.version_dir(args.name, version))))
    return EXIT_OK


def cmd_promote(store: ModelStore, args: argparse.Namespace) -> int:
    version = store.resolve(args.name, args.ref)
    previous = store.aliases(args.name).get(args.alias)
    store.promote(args.name, version, args.alias)
    was = f" (was {previous})" if previous is not None else " (new alias)"
    print(f"{args.name}: {args.alias} -> version {version}{was}")
    return EXIT_OK


def cmd_rollback(store: ModelStore, args: argparse.Namespace) -> int:
    previous = store.aliases(args.name).get(args.alias)
    version = store.rollback(args.name, args.alias)
    print(f"{args.name}: {args.alias} -> version {version} (was {previous})")
    return EXIT_OK


def cmd_verify(store: ModelStore, args: argparse.Namespace) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ chatter out
    version = store.resolve(args.name, args.ref)
    problems = store.verify(args.name, version, load=not args.no_load)
    if problems:
        for problem in problems:
            print(f"{args.name} version {version}: {problem}", file=sys.stderr)
        return EXIT_FAILED
    checked = ["checksums"]
    if not args.no_load:
        checked += loads_checked(store.version_dir(args.name, version))
    print(f"{args.name} version {version}: ok ({', '.join(checked)})")
    return EXIT_OK


def cmd_gc(store: ModelStore, args: argparse.Namespace) -> int:
    try:
        staging = store.clean_staging(args.name)
    except OSError as exc:
        raise ModelStoreError(f"cannot remove abandoned staging directories: {exc}") from exc
    removed = store.gc(args.name, args.keep)
    for path in staging:
        print(f"{args.name}: removed abandoned staging directory {path.name}")
    if removed:
        print(f"{args.name}: removed versions {', '.join(map(str, removed))}")
    elif not staging:
        print(f"{args.name}: nothing to remove")
    return EXIT_OK


def cmd_triton_config(store: ModelStore, args: argparse.Namespace) -> int:
    model = store.triton_config(args.name)
    print(f"{args.name}: wrote {store.root / args.name / CONFIG_FILE} and {LABELS_FILE}")
    print(model.describe())
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    store_help = f"store root (default: ${STORE_ENV}, else ./models)"
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--store", default=argparse.SUPPRESS, help=store_help)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS)
    parser = argparse.ArgumentParser(prog="python -m model_store", description=__doc__)
    parser.add_argument("--store", default=None, help=store_help)
    parser.add_argument("-v", "--verbose", action="store_true", help="log what is done")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Callable[..., int], help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=[common], help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    add("list", cmd_list, "every model's versions, aliases and test accuracy")
    add("versions", cmd_versions, "a model's versions (exit 1 if it has none)").add_argument("name")
    show = add("show", cmd_show, "a version's metadata summary")
    show.add_argument("name")
    show.add_argument("ref", nargs="?", default="latest", help="version, alias or 'latest'")
    show.add_argument("--json", action="store_true", help="print the raw metadata.json")
    promote = add("promote", cmd_promote, "point an alias at a version")
    promote.add_argument("name")
    promote.add_argument("ref", help="version, alias or 'latest'")
    promote.add_argument("--alias", default="stable", help="alias to move (default: stable)")
    rollback = add("rollback", cmd_rollback, "move an alias back to its previous version")
    rollback.add_argument("name")
    rollback.add_argument("--alias", default="stable", help="alias to move (default: stable)")
    verify = add(
        "verify", cmd_verify, "check a version's checksums, load its SavedModel and model.onnx"
    )
    verify.add_argument("name")
    verify.add_argument("ref", nargs="?", default="latest", help="version, alias or 'latest'")
    verify.add_argument("--no-load", action="store_true", help="checksums only, no TensorFlow")
    gc = add("gc", cmd_gc, "delete old versions, keeping the newest N and every aliased one")
    gc.add_argument("name")
    gc.add_argument("--keep", type=_positive_int, required=True, help="newest versions to keep")
    add(
        "triton-config",
        cmd_triton_config,
        "(re)write the model's config.pbtxt and labels.txt for Triton's ONNX Runtime backend "
        "(publish, gc, promote and rollback keep them current)",
    ).add_argument("name")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    store = ModelStore(args.store if args.store is not None else default_store_root())
    try:
        return args.handler(store, args)
    except InvalidName as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ModelStoreError as exc:  # the store's own messages leave its path out (clients see them)
        print(f"error: {exc} (store {str(store.root)!r})", file=sys.stderr)
        return EXIT_FAILED
