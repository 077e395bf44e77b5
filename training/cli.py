"""`python -m training train|evaluate|tune`: train and publish a model, re-evaluate a version.

Errors a user can fix print one line on stderr and exit 1 (2 for bad options), leaving the
model store as it was. Data and store are checked before TensorFlow is even imported.
"""

from __future__ import annotations

import argparse
import errno
import gc
import importlib
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import get_args

from pydantic import ValidationError

from model_store import ModelStore, ModelStoreError, default_store_root
from model_store.schema import NAME_PATTERN
from training.config import ModelConfig, TrainConfig
from training.distribute import DEFAULT_TIMEOUT_S
from training.errors import TrainingError

logger = logging.getLogger("training")

Handler = Callable[[argparse.Namespace], int]


def _image_size(text: str) -> tuple[int, int]:
    """ "64" -> (64, 64); "48x64" -> height 48, width 64."""
    try:
        parts = [int(part) for part in text.lower().split("x")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected SIZE or HEIGHTxWIDTH, got {text!r}")
    return parts[0], parts[1]


def _add_store(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        type=Path,
        default=None,
        help="model store root (default: $TAGGER_MODEL_STORE or ./models)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a model and publish it as a new version")
    train.add_argument("--profile", default="default", help="quick, default, tiny or a tuned one")
    train.add_argument(
        "--data", type=Path, help="image folder, one sub-folder per class (default: Fashion-MNIST)"
    )
    train.add_argument(
        "--model",
        default=os.environ.get("TAGGER_MODEL_NAME") or "fashion",
        help="model name in the store (default: $TAGGER_MODEL_NAME or fashion)",
    )
    _add_store(train)
    train.add_argument("--epochs", type=int, help="maximum epochs (early stopping may end sooner)")
    train.add_argument("--batch-size", type=int, help="images per step on each replica")
    train.add_argument("--patience", type=int, help="epochs without improvement before stopping")
    train.add_argument("--seed", type=int)
    train.add_argument("--train-limit", type=int, help="use at most N training+validation images")
    train.add_argument("--test-limit", type=int, help="evaluate on at most N test images")
    train.add_argument("--image-size", type=_image_size, help="image folders: SIZE or HxW (28)")
    train.add_argument("--color-mode", choices=["L", "RGB"], help="image folders: L (default)")
    train.add_argument(
        "--mixed-precision",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="mixed_bfloat16 compute (default: as the profile says)",
    )
    train.add_argument(
        "--cache",
        type=Path,
        help="image folders: keep decoded pixels in this directory for later epochs and runs",
    )
    train.add_argument(
        "--shuffle-buffer", type=int, help="image folders: decoded images shuffled at once (1000)"
    )
    train.add_argument(
        "--class-weight",
        choices=["none", "balanced"],
        help="balanced: weight each class's loss by n / (classes * n_class)",
    )
    train.add_argument(
        "--distribute",
        choices=["auto", "none", "mirrored", "multi-worker"],
        help="auto (default): MirroredStrategy on several GPUs; multi-worker reads TF_CONFIG",
    )
    train.add_argument(
        "--worker-timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help="multi-worker: seconds a collective waits for a peer before the run fails (600)",
    )
    train.add_argument(
        "--backbone",
        choices=list(get_args(ModelConfig.model_fields["backbone"].annotation)),
        help="cnn (the profile's, from scratch) or a keras.applications backbone",
    )
    train.add_argument(
        "--weights",
        help="backbone weights: imagenet (Keras downloads them; needs network), none, or a "
        ".weights.h5 file of the backbone",
    )
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(handler=_train)

    evaluate = commands.add_parser(
        "evaluate", help="re-evaluate a published version and refresh its evaluation/"
    )
    evaluate.add_argument("name", help="model name")
    evaluate.add_argument("ref", nargs="?", default="latest", help="version, alias or latest")
    evaluate.add_argument("--data", type=Path, help="image folder, if it moved since training")
    _add_store(evaluate)
    evaluate.set_defaults(handler=_evaluate)

    tune = commands.add_parser("tune", help="search hyperparameters, write the best as a profile")
    tune.set_defaults(handler=_add_tune(tune))
    return parser


def _add_tune(parser: argparse.ArgumentParser) -> Handler:
    """Register the tuner's options; it lives in training/tune.py (imported only here)."""
    try:
        tune = importlib.import_module("training.tune")
    except ImportError as exc:  # missing or broken: train and evaluate must still work
        reason = f"tuning is unavailable: {exc}"

        def unavailable(_: argparse.Namespace) -> int:
            raise TrainingError(reason)

        return unavailable
    tune.add_tune_arguments(parser)
    return tune.run_tune


def _store(args: argparse.Namespace) -> ModelStore:
    return ModelStore(args.store if args.store is not None else default_store_root())


def _check_store_writable(root: Path) -> None:
    """Fail before training, not after it, when the store cannot be written (creates nothing)."""
    probe = root
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise TrainingError(f"model store {root} cannot be created: {probe} is not a directory")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        raise TrainingError(f"model store {root} is not writable: {exc.strerror or exc}") from exc


def _train_config(args: argparse.Namespace) -> TrainConfig:
    from training.profiles import get_profile

    config = get_profile(args.profile)
    overrides = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "patience": args.patience,
        "seed": args.seed,
        "train_limit": args.train_limit,
        "test_limit": args.test_limit,
        "image_size": args.image_size,
        "color_mode": args.color_mode,
        "mixed_precision": args.mixed_precision,
        "data_dir": args.data,
        "cache_dir": args.cache,
        "shuffle_buffer": args.shuffle_buffer,
        "class_weight": args.class_weight,
        "distribute": args.distribute,
    }
    values = config.model_dump() | {k: v for k, v in overrides.items() if v is not None}
    network = {"backbone": args.backbone, "weights": args.weights}
    values["model"] = values["model"] | {k: v for k, v in network.items() if v is not None}
    if args.backbone == "cnn" and args.weights is None:
        values["model"]["weights"] = "none"
    weights = values["model"]["weights"]
    if weights not in ("imagenet", "none") and not Path(weights).is_file():
        raise TrainingError(f"--weights {weights}: no such file (or use imagenet or none)")
    return TrainConfig.model_validate(values)


def _train(args: argparse.Namespace) -> int:
    from training.datasets import load_dataset

    started = time.monotonic()
    if not NAME_PATTERN.match(args.model):
        raise TrainingError(f"model name {args.model!r} must match {NAME_PATTERN.pattern}")
    config = _train_config(args)
    store = _store(args)
    distribution = None
    if config.distribute == "multi-worker":
        from training.distribute import make_distribution, read_tf_config

        read_tf_config()  # a clear error before TensorFlow starts
        # Collective ops must be configured before TensorFlow runs anything (data loading does).
        distribution = make_distribution(config.distribute, args.worker_timeout)
    if distribution is None or distribution.is_chief:
        _check_store_writable(store.root)
    data = load_dataset(config)

    from training.pipeline import train_and_publish

    metadata = train_and_publish(
        config, store, args.model, progress=not args.quiet, data=data, distribution=distribution
    )
    if metadata is None:
        assert distribution is not None
        print(f"{distribution.describe()}: trained; the chief publishes")
        return 0
    test = metadata.metrics.test
    version_dir = store.root / metadata.name / str(metadata.version)
    print(f"published {metadata.name} version {metadata.version} to {store.root}")
    print(
        f"  test accuracy {test.accuracy:.4f}, macro F1 {test.macro_f1:.4f}, ECE {test.ece:.4f}"
        f" (before calibration {test.ece_before_calibration or 0:.4f},"
        f" T={test.temperature or 1:.3f})"
    )
    training = metadata.training
    print(
        f"  profile {config.profile}: {training.epochs_run} epochs in "
        f"{training.seconds:.0f} s; {time.monotonic() - started:.0f} s in all"
    )
    print(
        f"  strategy {training.strategy}, {training.replicas} replica(s), "
        f"global batch {training.global_batch}"
        + (", balanced class weights" if training.class_weights else "")
    )
    if metadata.dataset.splits.get("skipped"):
        print(f"  skipped {metadata.dataset.splits['skipped']} unreadable image file(s)")
    if metadata.onnx is not None:
        onnx = metadata.onnx
        print(
            f"  model.onnx: max abs difference {onnx.max_abs_difference:.2g} from the SavedModel,"
            f" same top-1 on all {onnx.images} test images"
        )
    print(f"  report: {version_dir / 'evaluation' / 'report.md'}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from training.pipeline import evaluate_version

    store = _store(args)
    version = store.resolve(args.name, args.ref)
    metrics = evaluate_version(store, args.name, version, data_dir=args.data)
    images = sum(scores.support for scores in metrics.per_class.values())
    print(f"evaluated {args.name} version {version} on {images} test images")
    print(
        f"  test accuracy {metrics.accuracy:.4f}, macro F1 {metrics.macro_f1:.4f}, "
        f"ECE {metrics.ece:.4f}"
    )
    print(f"  report: {store.version_dir(args.name, version) / 'evaluation' / 'report.md'}")
    return 0


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return f"disk full: {exc.filename or ''} {exc.strerror}".strip()
    if isinstance(exc, ValidationError):
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors()
        )
        return f"invalid option: {problems}"
    return " ".join(str(exc).split()) or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("tensorflow", "absl", "tf2onnx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    args = build_parser().parse_args(argv)
    try:
        try:
            return args.handler(args)
        finally:
            # Tear down unreferenced tf.data iterators now: one left for interpreter exit can
            # deadlock there (its decode threads wait for the GIL in numpy_function).
            gc.collect()
    except ValidationError as exc:
        print(f"error: {_describe(exc)}", file=sys.stderr)
        return 2
    except (TrainingError, ModelStoreError, OSError) as exc:
        print(f"error: {_describe(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; the store is unchanged", file=sys.stderr)
        return 130
