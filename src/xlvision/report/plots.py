"""Figures for the report, each written as PNG (for the HTML) and SVG (for papers).

Figures are built on `matplotlib.figure.Figure` without pyplot, so no GUI backend or global
state is touched and reports render on headless machines.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from xlvision.report.names import is_count, metric_title
from xlvision.report.pivot import Pivot, label_text

FORMATS = ("png", "svg")


def save_figure(fig: Figure, stem: Path) -> dict[str, Path]:
    """Write `stem.png` and `stem.svg`; returns them by file name."""
    written = {}
    for fmt in FORMATS:
        path = stem.with_name(f"{stem.name}.{fmt}")
        fig.savefig(path, format=fmt, dpi=120, bbox_inches="tight")
        written[path.name] = path
    return written


def plot_heatmap(
    pivot: Pivot, stem: Path, title: str | None = None, precision: int = 3
) -> dict[str, Path]:
    """Any pivot as a colour grid of means, each cell annotated; empty cells say why."""
    means = pivot.means()
    n_rows, n_cols = means.shape
    fig = Figure(figsize=(1.6 + 0.9 * n_cols, 1.2 + 0.55 * n_rows))
    ax = fig.add_subplot()
    cmap = "viridis_r" if pivot.lower_is_better else "viridis"
    image = ax.imshow(np.ma.masked_invalid(means), cmap=cmap, aspect="auto")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    finite = means[np.isfinite(means)]
    middle = (finite.min() + finite.max()) / 2 if finite.size else 0.0
    for i, row in enumerate(pivot.rows):
        for j, col in enumerate(pivot.cols):
            cell = pivot.cell(row, col)
            if cell.n:
                text = (
                    f"{cell.mean:,.0f}" if is_count(pivot.metric) else f"{cell.mean:.{precision}f}"
                )
                bright = (means[i, j] < middle) != pivot.lower_is_better
                color = "white" if bright else "black"
            else:
                text, color = ("—" if cell.status == "missing" else cell.status), "dimgray"
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color=color)
    ax.set_xticks(range(n_cols), [label_text(c) for c in pivot.cols], rotation=45, ha="right")
    ax.set_yticks(range(n_rows), [label_text(r) for r in pivot.rows])
    ax.set_xlabel(" / ".join(pivot.col_keys))
    ax.set_ylabel(" / ".join(pivot.row_keys))
    ax.set_title(title or metric_title(pivot.metric))
    return save_figure(fig, stem)


def plot_kshot(pivot: Pivot, stem: Path, title: str | None = None) -> dict[str, Path]:
    """Metric against shots per class (the pivot's cols), one line per row, ±std band."""
    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.add_subplot()
    numeric = [(float(col[0]), col) for col in pivot.cols if _is_number(col[0])]
    numeric.sort()
    for row in pivot.rows:
        points = [(x, pivot.cell(row, col)) for x, col in numeric if pivot.cell(row, col).n]
        if not points:
            continue
        xs = np.array([x for x, _ in points])
        mean = np.array([cell.mean for _, cell in points])
        std = np.nan_to_num(np.array([cell.std for _, cell in points]))
        (line,) = ax.plot(xs, mean, marker="o", label=label_text(row))
        ax.fill_between(xs, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    xs_all = [x for x, _ in numeric]
    if xs_all and min(xs_all) > 0 and max(xs_all) / min(xs_all) >= 8:
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs_all, [f"{x:g}" for x in xs_all])
    ax.set_xlabel(" / ".join(pivot.col_keys))
    ax.set_ylabel(metric_title(pivot.metric))
    ax.set_title(title or f"{metric_title(pivot.metric)} vs shots per class")
    ax.grid(alpha=0.3)
    if ax.lines:
        legend_outside(ax, title=" / ".join(pivot.row_keys) or None)
    return save_figure(fig, stem)


def plot_bars(pivot: Pivot, stem: Path, title: str | None = None) -> dict[str, Path]:
    """Grouped bars: one group per row (a language), one bar per col; the sample std as an
    error bar where a cell has two values or more (a single run has no spread to draw)."""
    means, stds = pivot.means(), pivot.stds()
    n_rows, n_cols = means.shape
    width = 0.8 / max(n_cols, 1)
    fig = Figure(figsize=(max(4.8, 0.7 * n_rows * max(1, n_cols) ** 0.5 + 2), 4.2))
    ax = fig.add_subplot()
    x = np.arange(n_rows)
    for j, col in enumerate(pivot.cols):
        offsets = x - 0.4 + width * (j + 0.5)
        heights = np.nan_to_num(means[:, j])
        spread = np.isfinite(stds[:, j])
        ax.bar(offsets, heights, width, label=label_text(col))
        if spread.any():
            ax.errorbar(
                offsets[spread],
                heights[spread],
                yerr=stds[spread, j],
                fmt="none",
                ecolor="black",
                elinewidth=1,
                capsize=2,
            )
        for i, row in enumerate(pivot.rows):
            cell = pivot.cell(row, col)
            if not cell.n:
                ax.text(
                    offsets[i], 0, cell.status, rotation=90, ha="center", va="bottom", fontsize=7
                )
    ax.set_xticks(x, [label_text(r) for r in pivot.rows])
    ax.set_xlabel(" / ".join(pivot.row_keys))
    ax.set_ylabel(metric_title(pivot.metric))
    ax.set_title(title or metric_title(pivot.metric))
    ax.grid(axis="y", alpha=0.3)
    if pivot.col_keys:
        legend_outside(ax, title=" / ".join(pivot.col_keys))
    return save_figure(fig, stem)


def plot_before_after(
    panels: Mapping[str, Mapping[str, tuple[float | None, float | None]]],
    stem: Path,
    title: str,
    labels: tuple[str, str] = ("before", "after"),
) -> dict[str, Path]:
    """Side-by-side panels of paired bars, each bar labelled with its value: per panel, per
    group (a target language) the value before and after. A missing value is no bar."""
    fig = Figure(figsize=(max(6.0, 1.1 * sum(len(g) for g in panels.values()) + 3), 4.0))
    axes = fig.subplots(1, len(panels), squeeze=False, sharey=True)[0]
    colours = ("#9bb7d4", "#1f5f99")
    for ax, (panel, groups) in zip(axes, panels.items(), strict=True):
        x = np.arange(len(groups))
        for k, (label, colour) in enumerate(zip(labels, colours, strict=True)):
            values = [pair[k] for pair in groups.values()]
            have = np.array([v is not None for v in values])
            heights = np.array([v if v is not None else 0.0 for v in values])
            bars = ax.bar(x[have] + (k - 0.5) * 0.4, heights[have], 0.4, label=label, color=colour)
            ax.bar_label(bars, fmt="%.3f", fontsize=7, padding=2)
        ax.set_xticks(x, list(groups))
        ax.set_title(panel, fontsize=10)
        ax.set_ylim(0, 1.12)  # room for the labels above a bar at 1.0
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("test accuracy")
    legend_outside(axes[-1])
    fig.suptitle(title)
    return save_figure(fig, stem)


def legend_outside(ax, **kwargs) -> None:
    """The legend right of the axes, so it never covers a bar, a label or a line."""
    entries = len(ax.get_legend_handles_labels()[1])
    ax.legend(
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        borderaxespad=0.0,
        fontsize=7 if entries > 8 else 8,
        ncol=1 + entries // 16,
        **kwargs,
    )


def plot_confusions(
    matrices: Mapping[str, np.ndarray],
    stem: Path,
    title: str,
    class_names: Sequence[str] = (),
    n_cols: int = 3,
) -> dict[str, Path]:
    """One panel per group: counts summed over its runs (zeros left blank), coloured by
    row-normalised recall; `n_cols` panels a row."""
    n = len(matrices)
    n_cols = min(n, n_cols)
    n_rows = math.ceil(n / n_cols)
    size = 3.4 if n_cols == 2 else 4.2  # two panels a row: a pair, read side by side
    fig = Figure(figsize=(size * n_cols, size * n_rows), layout="constrained")
    for index, (name, counts) in enumerate(matrices.items(), start=1):
        ax = fig.add_subplot(n_rows, n_cols, index)
        totals = counts.sum(axis=1, keepdims=True)
        recall = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
        ax.imshow(recall, cmap="Blues", vmin=0, vmax=1)
        size = counts.shape[0]
        for i, j in zip(*np.nonzero(counts), strict=True):
            color = "white" if recall[i, j] > 0.5 else "black"
            ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=6, color=color)
        ticks = list(class_names) if len(class_names) == size else [str(k) for k in range(size)]
        ax.set_xticks(range(size), ticks, fontsize=7)
        ax.set_yticks(range(size), ticks, fontsize=7)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(name, fontsize=9)
    fig.suptitle(title)
    return save_figure(fig, stem)


_LINESTYLES = ("-", "--", ":", "-.")


def plot_training_curves(
    curves: Mapping[str, Sequence[Mapping[str, tuple[Sequence[float], Sequence[float]]]]],
    stem: Path,
) -> dict[str, Path]:
    """Training loss by step and validation accuracy by epoch; one colour per group of runs
    (a stage of a pipeline, a model of a sweep), named in both legends; a group's runs
    (seeds) share its colour and its name."""
    fig = Figure(figsize=(8, 7))
    loss_ax, acc_ax = fig.add_subplot(2, 1, 1), fig.add_subplot(2, 1, 2)
    colors = [f"C{k % 10}" for k in range(len(curves))]
    for color, (group, logs) in zip(colors, curves.items(), strict=True):
        labelled = set()
        for log in logs:
            loss = _loss_column(log)
            if loss:
                xs, ys = log[loss]
                kwargs = {"label": group or "all"} if "loss" not in labelled else {}
                loss_ax.plot(xs, ys, color=color, alpha=0.8, lw=1, **kwargs)
                labelled.add("loss")
            columns = sorted(c for c in log if c.startswith("val/") and c.endswith("/acc"))
            for k, column in enumerate(columns):
                # One line per language, named in the legend: `group · kn`, `group · mean`.
                language = column.split("/")[1]
                kwargs = {}
                if ("acc", language) not in labelled:
                    kwargs["label"] = f"{group} · {language}" if group else language
                    labelled.add(("acc", language))
                xs, ys = log[column]
                style = _LINESTYLES[k % len(_LINESTYLES)]
                acc_ax.plot(xs, ys, color=color, alpha=0.8, lw=1, ls=style, marker=".", **kwargs)
    loss_ax.set(xlabel="step", ylabel="train loss", title="training loss")
    acc_ax.set(xlabel="epoch", ylabel="val accuracy", title="validation accuracy (per language)")
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        if ax.lines:
            legend_outside(ax)
    fig.subplots_adjust(hspace=0.4)
    return save_figure(fig, stem)


def _loss_column(log: Mapping[str, object]) -> str | None:
    for name in ("train/loss", "train/loss_step", "train/loss_epoch"):
        if name in log:
            return name
    return next((c for c in sorted(log) if c.startswith("train/") and "loss" in c), None)


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False
