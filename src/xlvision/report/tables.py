"""Write a pivot as the tables a paper or a README prints: Markdown, LaTeX booktabs, CSV, HTML.

Every format carries the same caption: the metric's readable name with its raw key in small
print, what a cell holds (mean ± sample std over n runs, n said once when every cell has the
same), what the cells pool, and which cells are bold: with cols, the best col of each row
(the best model per language); without, the best row. Cells without a value say why
(`failed (n=1)`, `—` for a run that was never there).
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from pathlib import Path

from xlvision.report.names import is_count, metric_title
from xlvision.report.pivot import Cell, Label, Pivot, is_summary, label_text, varying_keys

MISSING = "—"
STD_NOTE = "mean ± sample std (n − 1) over the n runs of a cell"
LATEX_PACKAGES = "% needs \\usepackage{booktabs}"


@dataclass(frozen=True)
class Caption:
    """What a table shows, said once for all its cells."""

    title: str
    """The metric's readable name, or its key when it has none."""
    key: str
    """The metric's key, printed small beside the title."""
    axes: str
    notes: tuple[str, ...]
    """Sentences: what a cell holds and pools, what bold marks."""

    @property
    def named(self) -> bool:
        return self.title != self.key


def table_caption(
    pivot: Pivot, precision: int, aggregated_over: Mapping[str, int] | None = None
) -> Caption:
    """The caption of `pivot`'s table; `aggregated_over` defaults to its `varying_keys`."""
    over = varying_keys(pivot) if aggregated_over is None else aggregated_over
    n = shared_n(pivot)
    if n == 1:
        spread = "One run per cell"
    elif n:
        spread = f"Mean ± sample std over {n} runs per cell"
    else:
        spread = "Mean ± sample std over the n runs of each cell"
    if over:
        spread += ", aggregated over " + ", ".join(f"{k} ({v} values)" for k, v in over.items())
    notes = [spread + "."]
    if pivot.best_cells(precision):
        where = "per row" if pivot.bold_axis == "row" else "row"
        direction = "lower" if pivot.lower_is_better else "higher"
        notes.append(f"Best {where} in bold ({direction} is better).")
    axes = " × ".join(" / ".join(keys) for keys in (pivot.row_keys, pivot.col_keys) if keys)
    return Caption(metric_title(pivot.metric), pivot.metric, axes, tuple(notes))


def shared_n(pivot: Pivot) -> int | None:
    """The run count of every cell with a value, when it is the same in all (mean rows aside)."""
    counts = {
        cell.n
        for (row, col), cell in pivot.cells.items()
        if cell.n and not cell.over_rows and row in pivot.rows and col in pivot.cols
    }
    return counts.pop() if len(counts) == 1 else None


def metric_slug(metric: str) -> str:
    """File-name form of a metric: `test/{lang}/acc` → `test-lang-acc`."""
    return re.sub(r"[^A-Za-z0-9]+", "-", metric).strip("-").lower() or "metric"


def cell_parts(
    cell: Cell, precision: int, n_said: int | None = None, count: bool = False
) -> tuple[str, str]:
    """(value, note): `0.920 ± 0.020` and `n=3, 1 failed`, or no value and why. `n=` is left
    out where the caption says it (`n_said`); a mean row's note counts its rows instead. A
    `count` that is whole in every run prints as one (`148,270`), with no zero spread."""
    without = [
        (what, len(runs))
        for what, runs in (
            ("failed", cell.failed),
            ("interrupted", [r for r in cell.incomplete if r.status == "interrupted"]),
            ("incomplete", [r for r in cell.incomplete if r.status != "interrupted"]),
            ("no metric", cell.without_metric),
        )
        if runs
    ]
    if not cell.n:
        return "", ", ".join(f"{what} (n={count})" for what, count in without)
    if count and all(float(v).is_integer() for v in cell.values):
        value = f"{cell.mean:,.0f}" if float(cell.mean).is_integer() else f"{cell.mean:,.1f}"
        if not math.isnan(cell.std) and cell.std > 0:
            value += f" ± {cell.std:,.1f}"
    else:
        value = f"{cell.mean:.{precision}f}"
        if not math.isnan(cell.std):
            value += f" ± {cell.std:.{precision}f}"
    if cell.over_rows:
        return value, ""
    said = [] if cell.n == n_said else [f"n={cell.n}"]
    return value, ", ".join(said + [f"{count} {what}" for what, count in without])


def row_label(pivot: Pivot, row: Label) -> str:
    """How a row is printed; the `mean` row of `with_mean_row` says what its spread is over."""
    counts = {pivot.cell(row, col).over_rows for col in pivot.cols} - {0}
    if not counts:
        return label_text(row)
    every_row = len(pivot.data_rows())
    return (
        f"mean ± std over the {every_row} rows" if counts == {every_row} else "mean ± std over rows"
    )


def _shown(pivot: Pivot, row: Label, col: Label, precision: int, n: int | None) -> tuple[str, str]:
    """(value, note) as a table prints them: without a value the note says why (`—`: no run
    was there); a mean row's note counts its rows where fewer than all have a value."""
    cell = pivot.cell(row, col)
    value, note = cell_parts(cell, precision, n, count=is_count(pivot.metric))
    rows = len(pivot.data_rows())
    if cell.over_rows and cell.over_rows < rows:
        note = f"{cell.over_rows} of {rows} rows"
    return value, note if value else (note or MISSING)


def markdown_table(pivot: Pivot, precision: int) -> str:
    """A GitHub-flavoured Markdown table under its caption."""
    caption = table_caption(pivot, precision)
    best, n = pivot.best_cells(precision), shared_n(pivot)
    key = f" `{caption.key}`" if caption.named else ""
    header = [_md(" / ".join(pivot.row_keys) or "")] + [_md(label_text(c)) for c in pivot.cols]
    lines = [
        f"**{_md(caption.title)}**{key}{_by(caption)}. {' '.join(caption.notes)}",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join([":---"] + [":---:"] * len(pivot.cols)) + "|",
    ]
    for row in pivot.rows:
        cells = []
        for col in pivot.cols:
            value, note = _shown(pivot, row, col, precision, n)
            if not value:
                cells.append(_md(note))
                continue
            shown = f"**{value}**" if (row, col) in best else value
            cells.append(f"{shown} ({_md(note)})" if note else shown)
        lines.append("| " + " | ".join([_md(row_label(pivot, row)), *cells]) + " |")
    return "\n".join(lines) + "\n"


def latex_table(pivot: Pivot, precision: int, label: str | None = None) -> str:
    """A booktabs `table` float, captioned and labelled `tab:<label>`, to `\\input`."""
    caption = table_caption(pivot, precision)
    best, n = pivot.best_cells(precision), shared_n(pivot)
    header = [latex_escape(" / ".join(pivot.row_keys))]
    header += [latex_escape(label_text(col)) for col in pivot.cols]
    lines = [
        LATEX_PACKAGES,
        "\\begin{table}[htbp]",
        "\\centering",
        f"\\caption{{{latex_caption(caption)}}}",
        f"\\label{{tab:{label or metric_slug(pivot.metric)}}}",
        "\\begin{tabular}{l" + "c" * len(pivot.cols) + "}",
        "\\toprule",
        " & ".join(header) + " \\\\",
        "\\midrule",
    ]
    for above, row in zip([None, *pivot.rows], pivot.rows, strict=False):
        if above is not None and is_summary(row) and not is_summary(above):
            lines.append("\\midrule")  # the means apart from the rows they summarise
        cells = [latex_escape(row_label(pivot, row))]
        for col in pivot.cols:
            value, note = _shown(pivot, row, col, precision, n)
            note_tex = latex_escape(note).replace("n=", "$n$=")
            if not value:
                cells.append(note_tex)
                continue
            value_tex = latex_escape(value)
            if (row, col) in best:
                value_tex = f"\\textbf{{{value_tex}}}"
            cells.append(f"{value_tex} {{\\scriptsize ({note_tex})}}" if note_tex else value_tex)
        lines.append(" & ".join(cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(lines) + "\n"


def latex_caption(caption: Caption) -> str:
    """The caption's text in LaTeX, the raw key in `\\footnotesize` typewriter."""
    title = latex_escape(caption.title)
    if caption.named:
        title += f" {{\\footnotesize\\texttt{{{latex_escape(caption.key)}}}}}"
    return f"{title}{latex_escape(_by(caption))}. {latex_escape(' '.join(caption.notes))}"


def html_table(pivot: Pivot, precision: int) -> str:
    """The `<table>` of a report page (its caption is the page's heading above it)."""
    best, n = pivot.best_cells(precision), shared_n(pivot)
    head = "".join(f"<th>{escape(label_text(col))}</th>" for col in pivot.cols)
    body = []
    for row in pivot.rows:
        cells = []
        for col in pivot.cols:
            value, note = _shown(pivot, row, col, precision, n)
            css = pivot.cell(row, col).status.replace(" ", "-")
            if not value:
                cells.append(f'<td class="{css}">{escape(note)}</td>')
                continue
            shown = f"<strong>{escape(value)}</strong>" if (row, col) in best else escape(value)
            small = f' <span class="n">({escape(note)})</span>' if note else ""
            cells.append(f'<td class="{css}">{shown}{small}</td>')
        body.append(f"<tr><th>{escape(row_label(pivot, row))}</th>{''.join(cells)}</tr>")
    return (
        f'<table data-metric="{escape(pivot.metric)}"><thead><tr>'
        f"<th>{escape(' / '.join(pivot.row_keys))}</th>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def html_caption(caption: Caption, anchor: str) -> str:
    """The table's heading: its readable name with the raw key in small print."""
    key = f" <small><code>{escape(caption.key)}</code></small>" if caption.named else ""
    return f'<h3 id="{escape(anchor)}">{escape(caption.title)}{key}</h3>'


def csv_table(pivot: Pivot, precision: int) -> str:
    """One line per cell (long format) with mean, std, n and the counts of runs without value;
    `over` says whether mean, std and n are over runs or, for a mean row, over rows."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [*pivot.row_keys, *pivot.col_keys, "metric", "mean", "std", "n", "over"]
        + ["n_failed", "n_incomplete", "status", "best"]
    )
    best = pivot.best_cells(precision)
    for row in pivot.rows:
        for col in pivot.cols:
            cell = pivot.cell(row, col)
            over = "rows" if cell.over_rows else "runs"
            writer.writerow(
                [*row, *col, pivot.metric, _number(cell.mean), _number(cell.std), cell.n, over]
                + [len(cell.failed), len(cell.incomplete), cell.status, int((row, col) in best)]
            )
    return out.getvalue()


def write_tables(pivot: Pivot, out_dir: Path, precision: int, slug: str) -> dict[str, Path]:
    """`table_<slug>.md/.tex/.csv` in `out_dir`; returns them by file name."""
    texts = {
        "md": markdown_table(pivot, precision),
        "tex": latex_table(pivot, precision, label=slug),
        "csv": csv_table(pivot, precision),
    }
    written = {}
    for suffix, text in texts.items():
        path = out_dir / f"table_{slug}.{suffix}"
        path.write_text(text, encoding="utf-8")
        written[path.name] = path
    return written


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters (`linear_probe` → `linear\\_probe`) and write the
    typographic ones it has no glyph for in math (`±` → `$\\pm$`)."""
    specials = {
        "\\": r"\textbackslash{}",
        "&": r"\&",
        "%": r"\%",
        "$": r"\$",
        "#": r"\#",
        "_": r"\_",
        "{": r"\{",
        "}": r"\}",
        "~": r"\textasciitilde{}",
        "^": r"\textasciicircum{}",
        "—": "---",
        "–": "--",
        "±": r"$\pm$",
        "×": r"$\times$",
        "−": "$-$",
        "·": r"$\cdot$",
        "…": r"\dots{}",
    }
    return "".join(specials.get(char, char) for char in text)


def _by(caption: Caption) -> str:
    return f" by {caption.axes}" if caption.axes else ""


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def _number(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.10g}"
