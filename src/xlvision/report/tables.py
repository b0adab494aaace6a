"""Write a pivot as the tables a paper or a README prints: Markdown, LaTeX booktabs, CSV.

Cells read `mean ± std (n=k)` with the sample std; the best mean per column is bold; cells
without a value say why (`failed (n=1)`, `—` for a run that was never there).
"""

from __future__ import annotations

import csv
import io
import math
import re
from pathlib import Path

from xlvision.report.pivot import Cell, Pivot, label_text

MISSING = "—"
STD_NOTE = "mean ± sample std (n − 1) over n runs; best per column in bold"


def metric_slug(metric: str) -> str:
    """File-name form of a metric: `test/{lang}/acc` → `test-lang-acc`."""
    return re.sub(r"[^A-Za-z0-9]+", "-", metric).strip("-").lower() or "metric"


def cell_parts(cell: Cell, precision: int) -> tuple[str, str]:
    """(value, note): `0.920 ± 0.020` and `n=3, 1 failed`, or no value and why."""
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
    value = f"{cell.mean:.{precision}f}"
    if not math.isnan(cell.std):
        value += f" ± {cell.std:.{precision}f}"
    return value, ", ".join([f"n={cell.n}"] + [f"{count} {what}" for what, count in without])


def format_cell(cell: Cell, precision: int, bold: bool = False) -> str:
    """A cell as Markdown text."""
    value, note = cell_parts(cell, precision)
    if not value:
        return note or MISSING
    return f"**{value}** ({note})" if bold else f"{value} ({note})"


def markdown_table(pivot: Pivot, precision: int) -> str:
    """A GitHub-flavoured Markdown table, titled with the metric and the std convention."""
    header = [_md(" / ".join(pivot.row_keys) or "")] + [_md(label_text(c)) for c in pivot.cols]
    best = {col: pivot.best_rows(col, precision) for col in pivot.cols}
    lines = [
        f"**{_md(pivot.metric)}** by {_axes(pivot)} — {STD_NOTE}",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join([":---"] + [":---:"] * len(pivot.cols)) + "|",
    ]
    for row in pivot.rows:
        cells = [format_cell(pivot.cell(row, c), precision, row in best[c]) for c in pivot.cols]
        lines.append("| " + " | ".join([_md(label_text(row)), *cells]) + " |")
    return "\n".join(lines) + "\n"


def latex_table(pivot: Pivot, precision: int) -> str:
    """A booktabs `tabular` to `\\input` into a paper's table float."""
    best = {col: pivot.best_rows(col, precision) for col in pivot.cols}
    header = [latex_escape(" / ".join(pivot.row_keys))]
    header += [latex_escape(label_text(col)) for col in pivot.cols]
    lines = [
        f"% {pivot.metric} by {_axes(pivot)}: {STD_NOTE}",
        "\\begin{tabular}{l" + "c" * len(pivot.cols) + "}",
        "\\toprule",
        " & ".join(header) + " \\\\",
        "\\midrule",
    ]
    for row in pivot.rows:
        cells = [latex_escape(label_text(row))]
        for col in pivot.cols:
            value, note = cell_parts(pivot.cell(row, col), precision)
            note_tex = latex_escape(note).replace("n=", "$n$=")
            if not value:
                cells.append(note_tex or "---")
                continue
            value_tex = value.replace(" ± ", " $\\pm$ ")
            if row in best[col]:
                value_tex = f"\\textbf{{{value_tex}}}"
            cells.append(f"{value_tex} {{\\scriptsize ({note_tex})}}")
        lines.append(" & ".join(cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines) + "\n"


def csv_table(pivot: Pivot, precision: int) -> str:
    """One line per cell (long format) with mean, std, n and the counts of runs without value."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [*pivot.row_keys, *pivot.col_keys, "metric", "mean", "std", "n"]
        + ["n_failed", "n_incomplete", "status", "best"]
    )
    for row in pivot.rows:
        best = {col: row in pivot.best_rows(col, precision) for col in pivot.cols}
        for col in pivot.cols:
            cell = pivot.cell(row, col)
            writer.writerow(
                [*row, *col, pivot.metric, _number(cell.mean), _number(cell.std), cell.n]
                + [len(cell.failed), len(cell.incomplete), cell.status, int(best[col])]
            )
    return out.getvalue()


def write_tables(pivot: Pivot, out_dir: Path, precision: int, slug: str) -> dict[str, Path]:
    """`table_<slug>.md/.tex/.csv` in `out_dir`; returns them by file name."""
    written = {}
    for suffix, render in (("md", markdown_table), ("tex", latex_table), ("csv", csv_table)):
        path = out_dir / f"table_{slug}.{suffix}"
        path.write_text(render(pivot, precision), encoding="utf-8")
        written[path.name] = path
    return written


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters (`linear_probe` → `linear\\_probe`)."""
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
    }
    return "".join(specials.get(char, char) for char in text)


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def _axes(pivot: Pivot) -> str:
    rows = " / ".join(pivot.row_keys) or "all"
    cols = " / ".join(pivot.col_keys) or "all"
    return f"{rows} × {cols}"


def _number(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.10g}"
