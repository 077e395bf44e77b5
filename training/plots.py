"""Evaluation figures as PNG files.

Figures are built with `matplotlib.figure.Figure` and rendered by an explicit Agg canvas, never
through pyplot: nothing needs a display, the global backend is left alone, and no figure state
leaks between calls or threads.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

DPI = 110


def _save(figure: Figure, path: Path) -> Path:
    FigureCanvasAgg(figure)
    figure.savefig(path, format="png", dpi=DPI, bbox_inches="tight")
    return path


def plot_confusion_matrix(matrix: np.ndarray, label_names: list[str], path: Path) -> Path:
    """Counts in each cell, coloured by the row-normalised rate (recall on the diagonal)."""
    cm = np.asarray(matrix, dtype=np.int64)
    rows = cm.sum(axis=1, keepdims=True)
    rates = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0)
    n = len(label_names)
    size = max(4.0, 0.55 * n + 2.0)
    figure = Figure(figsize=(size + 1.0, size))
    ax = figure.add_subplot()
    image = ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class")
    ax.set_xticks(range(n), labels=label_names, rotation=45, ha="right")
    ax.set_yticks(range(n), labels=label_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix (test)")
    fontsize = 8 if n <= 12 else 6
    for i in range(n):
        for j in range(n):
            if cm[i, j]:
                colour = "white" if rates[i, j] > 0.5 else "black"
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", color=colour,
                        fontsize=fontsize)  # fmt: skip
    return _save(figure, path)


def plot_learning_curves(history: dict[str, list[float]], path: Path) -> Path:
    """Loss and accuracy per epoch, training against validation, from a Keras history dict."""
    figure = Figure(figsize=(10.0, 4.0))
    for position, metric in enumerate(("loss", "accuracy"), start=1):
        ax = figure.add_subplot(1, 2, position)
        for key, style, name in ((metric, "-o", "train"), (f"val_{metric}", "--s", "validation")):
            values = history.get(key) or []
            if values:
                ax.plot(range(1, len(values) + 1), values, style, label=name, markersize=4)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.set_title(metric.capitalize())
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend()
            epochs = max(len(line.get_xdata()) for line in ax.lines)
            if epochs <= 20:
                ax.set_xticks(range(1, epochs + 1))
            else:
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlim(0.5, epochs + 0.5)
        else:
            ax.text(0.5, 0.5, "not recorded", ha="center", va="center", transform=ax.transAxes)
            ax.set_xticks([])
            ax.set_yticks([])
    return _save(figure, path)


def plot_reliability(
    before: tuple[np.ndarray, np.ndarray, np.ndarray],
    after: tuple[np.ndarray, np.ndarray, np.ndarray],
    ece_before: float,
    ece_after: float,
    temperature: float,
    path: Path,
) -> Path:
    """Reliability diagram: accuracy against confidence per bin, before and after scaling.

    `before` and `after` are `reliability_curve` results; bar widths show each bin's share of
    the examples in the lower panel.
    """
    figure = Figure(figsize=(6.0, 6.5))
    grid = figure.add_gridspec(2, 1, height_ratios=(3, 1), hspace=0.08)
    top = figure.add_subplot(grid[0])
    bottom = figure.add_subplot(grid[1], sharex=top)
    top.plot([0, 1], [0, 1], ":", color="grey", label="perfect calibration")
    series = (
        (before, f"uncalibrated (ECE {ece_before:.3f})", "tab:red", "o"),
        (after, f"T = {temperature:.2f} (ECE {ece_after:.3f})", "tab:blue", "s"),
    )
    bins = len(before[2])
    edges = np.linspace(0.0, 1.0, bins + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    width = 1.0 / bins
    for offset, ((confidence, accuracy, counts), name, colour, marker) in zip(
        (-0.2, 0.2), series, strict=True
    ):
        used = counts > 0
        top.plot(confidence[used], accuracy[used], marker=marker, color=colour, label=name)
        share = counts / max(int(counts.sum()), 1)
        bottom.bar(centres + offset * width, share, width=0.4 * width, color=colour, alpha=0.7)
    top.set_xlim(0.0, 1.0)
    top.set_ylim(0.0, 1.0)
    top.set_ylabel("accuracy")
    top.set_title("Reliability diagram (test)")
    top.legend(loc="upper left")
    top.grid(alpha=0.3)
    top.tick_params(labelbottom=False)
    bottom.set_xlabel("confidence (top-1 probability)")
    bottom.set_ylabel("share")
    bottom.grid(alpha=0.3)
    return _save(figure, path)
