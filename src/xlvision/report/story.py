"""A pipeline's report: its summary as the console's last lines, and the figures that
explain it, each drawn once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from xlvision.report.collect import Run, read_training_log
from xlvision.report.plots import plot_before_after, plot_confusions, plot_training_curves
from xlvision.report.summary import BUNDLE, Number, Pipeline, Summary, format_number
from xlvision.rundir import EVAL


def print_pipeline_summary(summary: Summary, console: Console, precision: int = 3) -> None:
    """The summary as the console's last lines: the lead, the headline numbers, and a table
    per part (fine-tuning, the bundle) so that each fits 80 columns."""
    console.rule("summary")
    console.print(summary.lead, highlight=False)
    labels = [label for _, items in summary.headline for label, _ in items]
    width = max(map(len, labels), default=0)
    for group, items in summary.headline:
        console.print(f"{group}:", highlight=False)
        for label, number in items:
            console.print(
                f"  {label:<{width}}  {format_number(number, precision)}", highlight=False
            )
    parts = [
        [c for c in summary.columns if c.group != BUNDLE],
        [c for c in summary.columns if c.group == BUNDLE],
    ]
    for columns, (title, first) in zip(
        parts,
        (("fine-tuning, per target", "target"), ("the bundle, per language", "language")),
        strict=True,
    ):
        rows = [r for r in summary.rows if any(c.key in r.cells for c in columns)]
        if not columns or not rows:
            continue
        table = Table(title=title, title_justify="left")
        table.add_column(first, no_wrap=True)
        for column in columns:
            table.add_column(column.console, justify="right", no_wrap=True)
        for row in rows:
            cells = [row.cells.get(c.key) for c in columns]
            table.add_row(row.label, *(_console_cell(cell, precision) for cell in cells))
        console.print(table)
    for note in summary.notes:
        console.print(f"[red]{escape(note)}[/red]")


def _console_cell(cell: Number | str | None, precision: int) -> str:
    if cell is None:
        return "—"
    return cell if isinstance(cell, str) else format_number(cell, precision)


STORY_CAPTIONS = {
    "transfer_forgetting": (
        "Transfer and forgetting, per target: the target's test accuracy zero-shot (the "
        "source's head, before any update) and after its fine-tune; the source's before and "
        "after the same fine-tune, on the same test images (finetune_<target>/metrics.json)."
    ),
    "bundle_confusion": (
        "The bundle's confusion on each language's test digits (eval/metrics.json): with the "
        "script given, and without it (the bundle's own answer). Counts; colour is the share "
        "of each true digit."
    ),
    "training_curves": (
        "Training loss and validation accuracy of each stage that trained, named as the "
        "pipeline names it; each language a stage validated on is its own line."
    ),
}


def draw_story(
    story: Pipeline, summary: Summary, out_dir: Path
) -> tuple[dict[str, Path], dict[str, str]]:
    """A pipeline's figures, each drawn once: transfer and forgetting per target, the
    bundle's confusion with and without the script, every training stage's curves."""
    written: dict[str, Path] = {}
    panels = {}
    for title, pair in (
        ("the target: zero-shot → fine-tuned", ("target_before", "target_after")),
        ("the source: before → after each fine-tune", ("source_before", "source_after")),
    ):
        groups = {
            code: tuple(_value(summary.value(code, key)) for key in pair)
            for code in story.finetunes
        }
        if any(v is not None for pair_values in groups.values() for v in pair_values):
            panels[title] = groups
    if panels:
        written.update(
            plot_before_after(
                panels, out_dir / "transfer_forgetting", "Transfer and forgetting, per target"
            )
        )
    captions = {"transfer_forgetting": STORY_CAPTIONS["transfer_forgetting"]}
    bundle = story.stage(EVAL)
    matrices = bundle_confusions(bundle) if bundle is not None else {}
    if matrices:
        both = any(label.endswith("not given") for label in matrices)
        title = "The bundle's confusion, " + (
            "with and without the script" if both else "script given"
        )
        written.update(
            plot_confusions(matrices, out_dir / "bundle_confusion", title, n_cols=2 if both else 3)
        )
        captions["bundle_confusion"] = STORY_CAPTIONS["bundle_confusion"]
        if not both:
            captions["bundle_confusion"] += " This evaluation recorded none without the script."
    curves = {}
    for name, run in story.stages.items():
        # A stage's val/mean pools its target with its sources: a line per language instead.
        training_log = {k: v for k, v in read_training_log(run).items() if "/mean" not in k}
        if training_log:
            curves[name] = [training_log]
    if curves:
        written.update(plot_training_curves(curves, out_dir / "training_curves"))
    captions["training_curves"] = STORY_CAPTIONS["training_curves"]
    return written, captions


def _value(cell: Number | str | None) -> float | None:
    return cell.value if isinstance(cell, Number) else None


MAX_CONFUSION_LANGUAGES = 6
"""Beyond this many languages, the bundle's confusions are summed over them (two panels)."""


def bundle_confusions(bundle: Run) -> dict[str, np.ndarray]:
    """`kn · script given`, `kn · script not given`, … from eval's `test/<code>` and
    `test/<code>/routed` (summed over the languages when there are many)."""
    readings = (("", "script given"), ("/routed", "script not given"))
    codes = [k.split("/")[1] for k in bundle.confusion if k.count("/") == 1 and "@" not in k]
    panels = {}
    for code in codes:
        for suffix, reading in readings:
            matrix = bundle.confusion.get(f"test/{code}{suffix}")
            if matrix is not None:
                panels[(code, reading)] = np.array(matrix, dtype=np.int64)
    if len(codes) <= MAX_CONFUSION_LANGUAGES:
        return {f"{code} · {reading}": m for (code, reading), m in panels.items()}
    summed: dict[str, np.ndarray] = {}
    for (_, reading), matrix in panels.items():
        label = f"all {len(codes)} languages · {reading}"
        if label in summed and summed[label].shape != matrix.shape:
            continue  # scripts with other class counts are not summed in
        summed[label] = summed.get(label, np.zeros_like(matrix)) + matrix
    return summed
