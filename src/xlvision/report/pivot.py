"""Pivot runs into a rows × cols grid of one metric, aggregating everything else (seeds …).

Each cell keeps its values and the runs that gave none (failed, incomplete, metric absent),
so a table can say why a cell is empty instead of silently dropping it.
"""

from __future__ import annotations

import logging
import math
import re
import statistics
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from omegaconf import OmegaConf

from xlvision.report.collect import COMPLETED, FAILED, INTERRUPTED, Run, natural_key, value_label
from xlvision.report.options import LANG, LANG_PLACEHOLDER

log = logging.getLogger(__name__)

Label = tuple[str, ...]
LANGUAGE_KEYS = ("language", LANG, "source", "target")
"""Keys whose values are language codes: a pivot with one on each axis is a transfer matrix."""
SUBSET_KEYS = (*LANGUAGE_KEYS, "outside")
"""Keys that name the data a number was measured on, not a choice to compare: rows of these
alone are not set in bold (`xlv-eval outside=[…]` names a set of scripts, as a language does)."""

_LAST = ("mean", "mean_real", "none")


@dataclass
class Cell:
    """One table cell: the metric's values from completed runs, and the runs that gave none."""

    values: list[float] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)
    failed: list[Run] = field(default_factory=list)
    incomplete: list[Run] = field(default_factory=list)
    without_metric: list[Run] = field(default_factory=list)
    over_rows: int = 0
    """For a cell of the `mean` row: how many rows it averages (its values are their means)."""

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values) if self.values else math.nan

    @property
    def std(self) -> float:
        """Sample standard deviation (n − 1 in the denominator); NaN for fewer than 2 values."""
        return statistics.stdev(self.values) if len(self.values) > 1 else math.nan

    @property
    def status(self) -> str:
        """`ok`, or why there is no value: `failed`, `incomplete`, `no metric`, `missing`."""
        if self.values:
            return "ok"
        if self.failed:
            return "failed"
        if self.incomplete:
            interrupted = all(run.status == INTERRUPTED for run in self.incomplete)
            return INTERRUPTED if interrupted else "incomplete"
        return "no metric" if self.without_metric else "missing"


@dataclass
class Pivot:
    """A metric over a rows × cols grid; every row×col pair is a cell, empty or not."""

    metric: str
    row_keys: tuple[str, ...]
    col_keys: tuple[str, ...]
    rows: list[Label]
    cols: list[Label]
    cells: dict[tuple[Label, Label], Cell]
    lower_is_better: bool = False

    def cell(self, row: Label, col: Label) -> Cell:
        return self.cells.get((row, col)) or Cell()

    def means(self) -> np.ndarray:
        """Means as a rows × cols array, NaN where a cell has no value."""
        return np.array([[self.cell(r, c).mean for c in self.cols] for r in self.rows], float)

    def stds(self) -> np.ndarray:
        return np.array([[self.cell(r, c).std for c in self.cols] for r in self.rows], float)

    @property
    def bold_axis(self) -> str:
        """What bold compares: `row` (the best col of each row) when the table has cols to
        compare, e.g. the best model per language, else `column` (the best row), or `none`
        when the rows are only languages (or other data, `SUBSET_KEYS`): the easiest script is
        not a finding to set in bold."""
        if self.col_keys:
            return "row"
        if self.row_keys and all(key in SUBSET_KEYS for key in self.row_keys):
            return "none"
        return "column"

    def best_cells(self, precision: int) -> set[tuple[Label, Label]]:
        """The best cells as printed along `bold_axis`, printed ties all bold; a comparison of
        fewer than two values bolds nothing, `mean` rows are not candidates for the best row
        (they are not one of the things compared), and in the mean row of `with_mean_row` only
        means over every row are (a mean over fewer rows is over other things)."""
        every_row = len(self.data_rows())
        if self.bold_axis == "none":
            return set()
        if self.bold_axis == "row":
            groups = [[(row, col) for col in self.cols] for row in self.rows]
        else:
            candidates = [row for row in self.rows if not is_summary(row)]
            groups = [[(row, col) for row in candidates] for col in self.cols]
        best: set[tuple[Label, Label]] = set()
        for group in groups:
            rounded = {
                key: round(self.cell(*key).mean, precision)
                for key in group
                if self.cell(*key).n and self.cell(*key).over_rows in (0, every_row)
            }
            if len(rounded) < 2:
                continue
            top = (min if self.lower_is_better else max)(rounded.values())
            best |= {key for key, value in rounded.items() if value == top}
        return best

    def data_rows(self) -> list[Label]:
        """The rows that are not a `mean` row of `with_mean_row`."""
        return [row for row in self.rows if not any(self.cell(row, c).over_rows for c in self.cols)]

    def transposed(self) -> Pivot:
        cells = {(col, row): cell for (row, col), cell in self.cells.items()}
        return replace(
            self,
            row_keys=self.col_keys,
            col_keys=self.row_keys,
            rows=self.cols,
            cols=self.rows,
            cells=cells,
        )

    def with_mean_row(self) -> Pivot:
        """A last row `mean` whose cell in each col is the mean ± std of that col's row means
        (each row counts once, whatever its runs), e.g. the mean over languages of a
        per-language table; its spread is over rows, not runs. Nothing for fewer than 2 rows."""
        label = ("mean",) * len(self.row_keys)
        if not self.row_keys or label in self.rows or len(self.rows) < 2:
            return self
        cells = dict(self.cells)
        for col in self.cols:
            mean = Cell()
            for row in self.rows:
                cell = self.cell(row, col)
                if cell.n:
                    mean.values.append(cell.mean)
                    mean.over_rows += 1
                mean.runs += cell.runs
            cells[(label, col)] = mean
        return replace(self, rows=[*self.rows, label], cells=cells)

    def missing_cells(self) -> list[tuple[Label, Label]]:
        """Expected row×col pairs that no completed run filled."""
        return [(r, c) for r in self.rows for c in self.cols if not self.cell(r, c).n]


def is_summary(label: Label) -> bool:
    """Whether a row or col is a mean (`mean`, `mean_real`, `mean_<name>` of lang_means)."""
    return any(part == "mean" or part.startswith("mean_") for part in label)


def label_text(label: Label) -> str:
    """How a row or col label is printed: `net / full`, or `all` for an axis with no keys."""
    return " / ".join(label) if label else "all"


def build_pivot(
    runs: Sequence[Run],
    rows: Sequence[str],
    cols: Sequence[str],
    metric: str,
    lower_is_better: bool = False,
) -> Pivot:
    """Group runs by their row and col keys and collect `metric` from each.

    `{lang}` in the metric is the run's language when it has one; with the pseudo key `lang`
    on an axis it matches every language the run reported, one cell each.
    """
    keys = tuple(rows) + tuple(cols)
    cells: dict[tuple[Label, Label], Cell] = {}
    ambiguous: list[Run] = []
    for run in runs:
        for lang, value in _metric_entries(run, metric, spread=LANG in keys, ambiguous=ambiguous):
            labels = {key: lang if key == LANG else run.label(key) for key in keys}
            row = tuple(labels[key] for key in rows)
            col = tuple(labels[key] for key in cols)
            cell = cells.setdefault((row, col), Cell())
            cell.runs.append(run)
            if run.status == FAILED:
                cell.failed.append(run)
            elif run.status != COMPLETED:
                cell.incomplete.append(run)
            elif value is None:
                cell.without_metric.append(run)
            else:
                cell.values.append(value)
    if ambiguous:
        log.warning(
            "metric %s: %s is ambiguous for %d run(s) with several languages (e.g. %s); "
            "add %s to rows= or cols=",
            metric,
            LANG_PLACEHOLDER,
            len(ambiguous),
            ambiguous[0].path,
            LANG,
        )
    return Pivot(
        metric=metric,
        row_keys=tuple(rows),
        col_keys=tuple(cols),
        rows=sorted({row for row, _ in cells}, key=_label_order),
        cols=sorted({col for _, col in cells}, key=_label_order),
        cells=cells,
        lower_is_better=lower_is_better,
    )


def _metric_entries(
    run: Run, metric: str, spread: bool, ambiguous: list[Run]
) -> Iterator[tuple[str | None, float | None]]:
    """(language, value) pairs a run contributes; value None when the run has none."""
    if LANG_PLACEHOLDER not in metric:
        yield None, run.metrics.get(metric)
        return
    if spread:
        escaped = re.escape(metric).replace(re.escape(LANG_PLACEHOLDER), "([^/]+)", 1)
        pattern = re.compile(escaped.replace(re.escape(LANG_PLACEHOLDER), r"\1"))
        found = [(m.group(1), v) for k, v in run.metrics.items() if (m := pattern.fullmatch(k))]
        yield from found or [(lang, None) for lang in run.languages or ["none"]]
        return
    if len(run.languages) == 1:
        yield None, run.metrics.get(metric.replace(LANG_PLACEHOLDER, run.languages[0]))
        return
    if run.status == COMPLETED:
        ambiguous.append(run)
    yield None, None


def _label_order(label: Label) -> tuple:
    """Natural order, with means (`mean`, `mean_real`, `mean_<name>` of lang_means) last."""
    return tuple((part in _LAST or part.startswith("mean_"), natural_key(part)) for part in label)


def varying_keys(pivot: Pivot) -> dict[str, int]:
    """What a cell pools besides its row and col: the Hydra overrides (`seed=0,1,2`) and the
    language that differ between the runs that gave it a value, with their most values.

    Only what a person chose on a command line or in a sweep counts, so a language's own
    config (its class names, fonts) never shows; paths are left out as noise. A run with no
    overrides file anywhere above it is compared by its config's values outside `language`.
    """
    # With `lang` on an axis, `language` stays: a cell of `en` that pools the runs of three
    # fine-tunes (kn, ar, hi) did pool over language.
    axis = pivot.row_keys + pivot.col_keys
    counts: dict[str, int] = {}
    for cell in pivot.cells.values():
        if cell.over_rows:
            continue
        chosen = [_chosen(run) for run in cell.runs if _gave_value(run, cell)]
        for key in set().union(*chosen) if chosen else ():
            if _on_axis(key, axis) or _is_path_key(key) or key.startswith("hydra"):
                continue
            distinct = len({c.get(key, "<absent>") for c in chosen})
            if distinct > 1:
                counts[key] = max(counts.get(key, 0), distinct)
    return dict(sorted(counts.items(), key=lambda item: natural_key(item[0])))


def _gave_value(run: Run, cell: Cell) -> bool:
    without = (cell.failed, cell.incomplete, cell.without_metric)
    return not any(run is other for runs in without for other in runs)


def _chosen(run: Run) -> dict[str, str]:
    """A run's choices as labels: its overrides, else its config's leaves outside `language`;
    the language always, by its codes."""
    if run.chosen is not None:
        labels = {key: value_label(value) for key, value in run.chosen.items()}
    else:
        labels = {k: v for k, v in _flatten(run).items() if not k.startswith("language.")}
    labels["language"] = run.label("language")
    return labels


def _flatten(run: Run) -> dict[str, str]:
    container = OmegaConf.to_container(run.config, resolve=False)
    flat: dict[str, str] = {}

    def walk(node: object, prefix: str) -> None:
        if isinstance(node, dict) and node:
            for key, value in node.items():
                walk(value, f"{prefix}.{key}" if prefix else str(key))
        else:
            flat[prefix] = repr(node)

    walk(container, "")
    return flat


def _on_axis(key: str, axis: Sequence[str]) -> bool:
    """`finetune` is on an axis `finetune.name`; `finetune.lr` is not on an axis `finetune`
    (a cell of strategy `full` may pool several learning rates)."""
    return any(key == a or a.startswith(key + ".") for a in axis)


def _is_path_key(key: str) -> bool:
    last = key.rsplit(".", 1)[-1].lower()
    return last.endswith(("dir", "path", "file")) or last in ("cwd", "output", "root")
