"""A static, self-contained report page: opens by double-click, zips and mails.

Images are inlined as base64 PNG and styles are inline, so the page makes no request at all;
each figure links its SVG and each table its Markdown/LaTeX/CSV files by relative path.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape
from pathlib import Path

from omegaconf import OmegaConf

from xlvision.report.collect import COMPLETED, Run, relative_path
from xlvision.report.pivot import Pivot
from xlvision.report.tables import STD_NOTE, html_caption, html_table, table_caption
from xlvision.report.trials import Study, trials_html

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { margin-bottom: 0.2em; } .meta { color: #666; }
table { border-collapse: collapse; margin: 0.6em 0 1.4em; }
th, td { border-top: 1px solid #ccc; border-bottom: 1px solid #ccc; padding: 4px 10px; }
thead th { border-bottom: 2px solid #333; } th { text-align: left; }
td { text-align: center; white-space: nowrap; }
td.failed, td.incomplete, td.no-metric { color: #b00020; } td.missing { color: #999; }
td .n { color: #777; font-size: 0.85em; } h3 small { font-weight: normal; color: #666; }
figure { display: inline-block; margin: 0.5em 1em 1em 0; vertical-align: top; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #555; }
details { margin: 0.25em 0; } summary { cursor: pointer; }
pre { background: #f6f6f6; padding: 0.6em; overflow-x: auto; font-size: 12px; }
.error { color: #b00020; font-family: monospace; }
"""


@dataclass
class TableSection:
    """One metric's table and the files it was also written to."""

    pivot: Pivot
    files: Sequence[Path]
    aggregated_over: Mapping[str, int]


def render_html(
    title: str,
    sources: Sequence[str],
    runs: Sequence[Run],
    tables: Sequence[TableSection],
    figures: Sequence[Path],
    precision: int,
    out_dir: Path,
    studies: Sequence[Study] = (),
) -> str:
    """The whole page as one HTML string; `figures` are PNGs, their SVGs linked beside;
    `studies`, the searches among the runs, each get a table of their trials."""
    counts = {status: sum(r.status == status for r in runs) for status in _statuses(runs)}
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="meta">Generated {datetime.now():%Y-%m-%d %H:%M} from '
        f"{', '.join(f'<code>{escape(relative_path(s, out_dir))}</code>' for s in sources)}: "
        f"{len(runs)} runs ("
        + ", ".join(f"{n} {escape(status)}" for status, n in counts.items())
        + ").</p>",
        f"<p>Cells: {escape(STD_NOTE)}.</p>",
        "<h2>Tables</h2>",
    ]
    for section in tables:
        parts.append(_table_html(section, precision, out_dir))
    if studies:
        parts.append("<h2>Search trials</h2>")
        parts.extend(trials_html(study, precision, out_dir) for study in studies)
    if figures:
        parts.append("<h2>Figures</h2>")
        parts.extend(_figure_html(path, out_dir) for path in figures)
    parts.append(_problems_html(runs))
    parts.append(_configs_html(runs, out_dir))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _statuses(runs: Sequence[Run]) -> list[str]:
    return sorted({run.status for run in runs}, key=lambda s: (s != COMPLETED, s))


def _table_html(section: TableSection, precision: int, out_dir: Path) -> str:
    pivot = section.pivot
    caption = table_caption(pivot, precision, section.aggregated_over)
    links = " · ".join(
        f'<a href="{escape(_relative(f, out_dir))}">{escape(f.suffix[1:])}</a>'
        for f in section.files
    )
    axes = f"Rows × cols: {escape(caption.axes)}. " if caption.axes else ""
    return (
        html_caption(caption, pivot.metric)
        + f'<p class="meta">{axes}{escape(" ".join(caption.notes))} Also as {links}.</p>'
        + html_table(pivot, precision)
    )


def _figure_html(png: Path, out_dir: Path) -> str:
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    svg = png.with_suffix(".svg")
    link = f' (<a href="{escape(_relative(svg, out_dir))}">svg</a>)' if svg.is_file() else ""
    return (
        f'<figure><img alt="{escape(png.stem)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{escape(png.stem)}{link}</figcaption></figure>"
    )


def _problems_html(runs: Sequence[Run]) -> str:
    bad = [run for run in runs if run.status != COMPLETED]
    if not bad:
        return "<h2>Failed and incomplete runs</h2><p>None: every run completed.</p>"
    root = _common_root(runs)
    rows = "".join(
        f"<tr><th>{escape(_relative(run.path, root))}</th><td>{escape(run.status)}</td>"
        f'<td class="error">{escape(run.error or "")}</td></tr>'
        for run in bad
    )
    return (
        f"<h2>Failed and incomplete runs ({len(bad)})</h2>"
        '<table class="problems"><thead><tr><th>run</th><th>status</th><th>error</th></tr>'
        f"</thead><tbody>{rows}</tbody></table>"
    )


def _configs_html(runs: Sequence[Run], out_dir: Path) -> str:
    root = _common_root(runs)
    items = []
    for run in runs:
        config = OmegaConf.to_yaml(run.config) if run.config else "(no config.yaml)\n"
        metrics = json.dumps(run.metrics, indent=1, sort_keys=True) if run.metrics else "{}"
        items.append(
            f'<details class="run"><summary>{escape(_relative(run.path, root))} — '
            f"{escape(run.status)}</summary><pre>{escape(config)}</pre>"
            f"<pre>{escape(metrics)}</pre></details>"
        )
    return (
        f"<h2>Runs and their configs</h2><details><summary>{len(runs)} runs under "
        f"<code>{escape(relative_path(root, out_dir))}</code></summary>{''.join(items)}</details>"
    )


def _common_root(runs: Sequence[Run]) -> Path:
    paths = [str(run.path) for run in runs]
    if not paths:
        return Path(".")
    root = Path(os.path.commonpath(paths))
    return root.parent if len(paths) == 1 else root


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix() or "."
    except ValueError:
        return path.as_posix()
