"""`python -m training tune`: random search over the CNN's hyperparameters under a budget.

KerasTuner's `RandomSearchOracle` proposes the trials (seeded, so a search is repeatable); each
trial is trained by `training.train.fit`, exactly as `python -m training train` would train that
recipe, for `--epochs-per-trial` epochs on a `--train-limit` subset and judged by its best
validation accuracy. The tuner subclass overrides `run_trial`, so no per-trial checkpoints and
no TensorBoard are involved. `--max-minutes` stops starting new trials once it has passed (the
first trial always runs).

Writes `results.csv` and `results.md` (one row per trial) under `--out`, and the best recipe as
profile `--profile-name` (the base profile with the winning model settings), ready for
`python -m training train --profile <name>`.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from training.config import ModelConfig, TrainConfig
from training.errors import ProfileError, TrainingError
from training.profiles import BUILTIN_PROFILES, PROFILE_DIR, PROFILE_NAME, get_profile, save_profile

logger = logging.getLogger(__name__)

# The search space: name -> values (a list is a choice; a (low, high) pair a log-uniform range).
CONV_WIDTHS = [16, 24, 32, 48, 64]  # filters of the first block; each next block doubles them
BLOCKS = [2, 3]
CONVS_PER_BLOCK = [1, 2]
DROPOUTS = [0.0, 0.1, 0.2, 0.3, 0.4]
LEARNING_RATE = (3e-4, 3e-3)
AUGMENTATIONS = [0.0, 0.05, 0.1, 0.15]
HYPERPARAMETERS = (
    "conv_width", "blocks", "convs_per_block", "dropout", "learning_rate", "augmentation",
)  # fmt: skip


@dataclass
class TrialRow:
    """One line of the results table."""

    trial: int
    status: str
    hyperparameters: dict[str, Any]
    val_accuracy: float | None = None
    epochs: int = 0
    seconds: float = 0.0
    error: str = ""


@dataclass
class SearchResult:
    rows: list[TrialRow] = field(default_factory=list)

    def best(self) -> TrialRow | None:
        done = [row for row in self.rows if row.val_accuracy is not None]
        return max(done, key=lambda row: (row.val_accuracy, -row.trial)) if done else None


def add_tune_arguments(parser: argparse.ArgumentParser) -> None:
    """The `tune` sub-command's options."""
    add = parser.add_argument
    add("--base-profile", default="quick", help="recipe for everything not searched (batch "
        "size, head, schedule, epochs of the written profile); default quick")  # fmt: skip
    add("--trials", type=int, default=12, help="number of trials (default 12)")
    add("--max-minutes", type=float, help="start no new trial after this many minutes")
    add("--epochs-per-trial", type=int, default=2, help="default 2")
    add("--train-limit", type=int, default=6000,
        help="train+validation images per trial (default 6000; 0 = all)")  # fmt: skip
    add("--seed", type=int, default=1337, help="search and training seed (default 1337)")
    add("--data", type=Path, help="image folder, one sub-folder per class (default: Fashion-MNIST)")
    add("--out", type=Path, help="results directory (default tuning/<timestamp>/)")
    add("--profile-name", default="tuned", help="profile the best recipe is saved as (tuned)")
    add("--profile-dir", type=Path, default=PROFILE_DIR,
        help="where to write the profile (default training/profiles/)")  # fmt: skip


def model_config(values: dict[str, Any], base: ModelConfig) -> ModelConfig:
    """The base model recipe with one trial's hyperparameters applied."""
    width, blocks = int(values["conv_width"]), int(values["blocks"])
    update = {
        "block_filters": [width * 2**block for block in range(blocks)],
        "convs_per_block": int(values["convs_per_block"]),
        "dropout": float(values["dropout"]),
        "learning_rate": float(values["learning_rate"]),
        "augmentation": float(values["augmentation"]),
    }
    return ModelConfig.model_validate(base.model_dump() | update)


def search(
    base: TrainConfig, data: Any, args: argparse.Namespace, workdir: Path, result: SearchResult
) -> None:
    """Run the random search, appending a row to `result` per trial (so an interrupted search
    keeps its finished trials); `base` carries seed, batch size and epochs per trial."""
    import keras
    import keras_tuner as kt

    from training.train import fit

    deadline = None if args.max_minutes is None else time.monotonic() + 60 * args.max_minutes
    space = kt.HyperParameters()
    space.Choice("conv_width", CONV_WIDTHS)
    space.Choice("blocks", BLOCKS)
    space.Choice("convs_per_block", CONVS_PER_BLOCK)
    space.Choice("dropout", DROPOUTS)
    space.Float("learning_rate", *LEARNING_RATE, sampling="log")
    space.Choice("augmentation", AUGMENTATIONS)

    class BudgetOracle(kt.oracles.RandomSearchOracle):
        """Random search that proposes nothing more once the time budget is spent."""

        def populate_space(self, trial_id: str) -> dict[str, Any]:
            # At least one trial always runs, so there is a best one to save.
            if deadline is not None and time.monotonic() >= deadline and result.rows:
                logger.info("time budget of %s minutes spent: no new trials", args.max_minutes)
                return {"status": kt.engine.trial.TrialStatus.STOPPED, "values": None}
            return super().populate_space(trial_id)

    class FitTuner(kt.Tuner):
        """Trains each trial with the project's own `fit`; the objective is val_accuracy."""

        def run_trial(self, trial: Any, *_: Any, **__: Any) -> dict[str, float]:
            values = dict(trial.hyperparameters.values)
            row = TrialRow(len(result.rows) + 1, "FAILED", values)
            result.rows.append(row)
            config = base.model_copy(update={"model": model_config(values, base.model)})
            logger.info("trial %d/%d: %s", row.trial, args.trials, _describe(values))
            start = time.monotonic()
            try:
                trained = fit(config, data, verbose=0)
            except Exception as exc:
                row.seconds, row.error = time.monotonic() - start, " ".join(str(exc).split())
                logger.warning("trial %d failed: %s", row.trial, row.error)
                raise
            finally:
                keras.backend.clear_session()
            row.seconds = time.monotonic() - start
            row.epochs = trained.epochs_run
            row.val_accuracy = max(trained.history.get("val_accuracy") or [math.nan])
            row.status = "COMPLETED"
            logger.info("trial %d: val_accuracy %.4f in %.1f s", row.trial, row.val_accuracy,
                        row.seconds)  # fmt: skip
            return {"val_accuracy": row.val_accuracy}

    oracle = BudgetOracle(
        objective=kt.Objective("val_accuracy", direction="max"),
        max_trials=args.trials,
        seed=args.seed,
        hyperparameters=space,
        allow_new_entries=False,
        tune_new_entries=False,
        max_consecutive_failed_trials=3,
    )
    tuner = FitTuner(oracle, directory=str(workdir), project_name="keras_tuner", overwrite=True)
    tuner.search(verbose=0)


def _describe(values: dict[str, Any]) -> str:
    return ", ".join(f"{name}={_format(values.get(name))}" for name in HYPERPARAMETERS)


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2e}" if 0 < abs(value) < 0.01 else f"{value:g}"
    return "" if value is None else str(value)


def write_table(result: SearchResult, out: Path) -> tuple[Path, Path]:
    """`results.csv` and `results.md`: trial, hyperparameters, validation accuracy, seconds."""
    out.mkdir(parents=True, exist_ok=True)
    header = ["trial", *HYPERPARAMETERS, "val_accuracy", "epochs", "seconds", "status"]
    best = result.best()
    csv_path, md_path = out / "results.csv", out / "results.md"
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for row in result.rows:
            accuracy = "" if row.val_accuracy is None else f"{row.val_accuracy:.4f}"
            params = [row.hyperparameters.get(name, "") for name in HYPERPARAMETERS]
            status = row.status + (f": {row.error}" if row.error else "")
            seconds = f"{row.seconds:.1f}"
            writer.writerow([row.trial, *params, accuracy, row.epochs, seconds, status])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in result.rows:
        accuracy = "" if row.val_accuracy is None else f"{row.val_accuracy:.4f}"
        if row is best:
            accuracy = f"**{accuracy}**"
        params = [_format(row.hyperparameters.get(name)) for name in HYPERPARAMETERS]
        cells = [str(row.trial), *params, accuracy, str(row.epochs), f"{row.seconds:.1f}"]
        cells.append(row.status)
        lines.append("| " + " | ".join(cells) + " |")
    md_path.write_text("# Hyperparameter search\n\n" + "\n".join(lines) + "\n")
    return csv_path, md_path


def _check_args(args: argparse.Namespace) -> None:
    name = args.profile_name
    if not PROFILE_NAME.match(name) or name in BUILTIN_PROFILES:
        raise ProfileError(
            f"--profile-name {name!r} must match {PROFILE_NAME.pattern} and not be a built-in "
            f"profile ({', '.join(BUILTIN_PROFILES)})"
        )
    if args.trials < 1 or args.epochs_per_trial < 1:
        raise TrainingError("--trials and --epochs-per-trial must be at least 1")
    if args.train_limit < 0 or 0 < args.train_limit < 10:
        raise TrainingError("--train-limit must be 0 (all) or at least 10")
    if args.max_minutes is not None and args.max_minutes <= 0:
        raise TrainingError("--max-minutes must be positive")


def run_tune(args: argparse.Namespace) -> int:
    """Search, write the results table and the best profile, print both; 0 on success."""
    _check_args(args)
    recipe = get_profile(args.base_profile)
    base = TrainConfig.model_validate(
        recipe.model_dump()
        | {
            "seed": args.seed,
            "data_dir": args.data,
            "train_limit": args.train_limit or None,
            "test_limit": 1,  # the test split is not used while tuning
        }
    )
    out = args.out or Path("tuning") / datetime.now().strftime("%Y%m%d-%H%M%S")
    try:
        import keras_tuner as kt
    except ImportError as exc:
        raise TrainingError(f"tuning needs keras-tuner ({exc}); pip install keras-tuner") from exc

    from training.datasets import load_dataset

    data = load_dataset(base)
    logger.info("tuning on %s: %s; results in %s", data.name, data.sizes(), out)
    trial_config = base.model_copy(update={"epochs": args.epochs_per_trial})
    result = SearchResult()
    try:
        search(trial_config, data, args, out, result)
    except kt.errors.FatalError as exc:
        last = result.rows[-1].error if result.rows else str(exc)
        raise TrainingError(f"the search stopped after repeated failures: {last}") from exc
    finally:
        csv_path, md_path = write_table(result, out)
    best = result.best()
    if best is None:
        raise TrainingError(f"no trial finished; see {csv_path}")
    best_model = model_config(best.hyperparameters, base.model)
    tuned = base.model_copy(update={"profile": args.profile_name, "model": best_model})
    profile_path = save_profile(args.profile_name, tuned, args.profile_dir)
    (out / "best_profile.json").write_text(profile_path.read_text())
    print(md_path.read_text())
    summary = _describe(best.hyperparameters)
    print(f"best: trial {best.trial}, val_accuracy {best.val_accuracy:.4f} ({summary})")
    print(json.dumps(tuned.recipe()["model"], indent=2))
    print(f"results: {csv_path}, {md_path}")
    print(f"profile {args.profile_name}: {profile_path}  (python -m training train --profile "
          f"{args.profile_name})")  # fmt: skip
    return 0
