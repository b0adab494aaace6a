"""The `xlv-report` stage: run dirs on disk → tables, figures and one HTML page."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
from omegaconf import DictConfig
from rich.console import Console
from rich.markdown import Markdown
from rich.markup import escape

from xlvision.report.collect import (
    _ABSENT,
    COMPLETED,
    FAILED,
    INCOMPLETE,
    INTERRUPTED,
    RUNNING,
    UNSET,
    Run,
    add_lang_means,
    collect_runs,
    natural_key,
    read_training_log,
)
from xlvision.report.html import TableSection, render_html
from xlvision.report.names import metric_title
from xlvision.report.options import LANG, ReportError, ReportOptions
from xlvision.report.pivot import LANGUAGE_KEYS, Pivot, build_pivot, label_text, varying_keys
from xlvision.report.plots import (
    plot_bars,
    plot_confusions,
    plot_heatmap,
    plot_kshot,
    plot_training_curves,
)
from xlvision.report.story import draw_story, print_pipeline_summary
from xlvision.report.summary import Pipeline, Summary, find_pipelines, stage_rank, summarize
from xlvision.report.tables import markdown_table, metric_slug, write_tables
from xlvision.report.trials import Study, find_studies, trials_markdown, write_trials
from xlvision.rundir import EVAL, INTEGRATE

log = logging.getLogger(__name__)


def report(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Path]]:
    """Collect runs, pivot each metric, write tables, figures and report.html into the out dir.

    Reads only config.yaml and metrics.json (and csv/metrics.csv for curves), so a finished
    sweep is reported without rerunning anything. Returns counts and every artifact's path.
    """
    options = ReportOptions.from_config(cfg)
    out_dir = _out_dir(options)
    runs, pipelines = find_pipelines(collect_runs(options.runs))
    for run in runs:
        add_lang_means(run, options.lang_means)
    _check_axis_keys(runs, options)
    # One pipeline's report tells its story: a summary first, then the figures that explain it.
    story = _whole_pipeline(runs, pipelines)
    by_stage = story is not None and "stage" in options.rows + options.cols
    tabled = _tabled_runs(runs, story) if by_stage else runs
    targets = list(dict.fromkeys(code for p in pipelines for code in p.targets))
    slugs = _unique_slugs(options.metrics)
    artifacts: dict[str, Path] = {}
    sections = []
    for metric in options.metrics:
        pivot = build_pivot(
            tabled, options.rows, options.cols, metric, options.is_lower_better(metric)
        )
        pivot = in_pipeline_order(pivot, targets)
        if by_stage:  # a fine-tune's `mean` pools its target with its sources: not one quantity
            pivot = _without_means(pivot)
        if options.mean_row:
            pivot = pivot.with_mean_row()
        files = write_tables(pivot, out_dir, options.precision, slugs[metric])
        artifacts.update(files)
        sections.append(TableSection(pivot, list(files.values()), varying_keys(pivot)))
    studies = find_studies(runs)
    for index, study in enumerate(studies):
        slug = "trials" if len(studies) == 1 else f"trials-{index + 1}"
        artifacts.update(write_trials(study, out_dir, options.precision, slug))
    summary, captions = None, {}
    if story:
        summary = summarize(story)
        if options.figures:
            figures, captions = draw_story(story, summary, out_dir)
            artifacts.update(figures)
    elif options.figures:
        artifacts.update(
            _draw_figures(tabled, [s.pivot for s in sections], options, out_dir, slugs)
        )
    page = out_dir / "report.html"
    figures = [path for name, path in artifacts.items() if name.endswith(".png")]
    page.write_text(
        render_html(
            options.title,
            options.runs,
            runs,
            sections,
            figures,
            options.precision,
            out_dir,
            studies,
            summary=summary,
            captions=captions,
            tables_note=BY_STAGE_NOTE if by_stage else None,
        ),
        encoding="utf-8",
    )
    artifacts[page.name] = page
    _print_summary(sections, studies, runs, page, options.precision, summary)
    metrics = {
        "report/runs": len(runs),
        "report/completed": sum(run.status == COMPLETED for run in runs),
        "report/failed": sum(run.status == FAILED for run in runs),
        "report/incomplete": sum(run.status == INCOMPLETE for run in runs),
        "report/interrupted": sum(run.status == INTERRUPTED for run in runs),
        "report/running": sum(run.status == RUNNING for run in runs),
        "report/missing_cells": sum(len(s.pivot.missing_cells()) for s in sections),
    }
    return metrics, artifacts


def _check_axis_keys(runs: list[Run], options: ReportOptions) -> None:
    """A rows/cols key that no run's config has is a typo (`rows=modle`), not a `none` row."""
    pseudo = {"language", "lang", "model", "stage"}
    for axis, keys in (("rows", options.rows), ("cols", options.cols)):
        for key in keys:
            if key in pseudo or not runs:
                continue
            if all(run.config_value(key) is _ABSENT for run in runs):
                raise ReportError(f"{axis}={key}: no run's config has this key (a typo?)")


def _out_dir(options: ReportOptions) -> Path:
    if options.out_dir is None:
        raise ReportError("report.out_dir is not set; give report.out_dir=<dir>")
    try:
        options.out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ReportError(f"report.out_dir={options.out_dir}: cannot create it ({err})") from err
    return options.out_dir


def _unique_slugs(metrics: Sequence[str]) -> dict[str, str]:
    slugs: dict[str, str] = {}
    for metric in metrics:
        slug = base = metric_slug(metric)
        suffix = 2
        while slug in slugs.values():
            slug, suffix = f"{base}-{suffix}", suffix + 1
        slugs[metric] = slug
    return slugs


def _draw_figures(
    runs: Sequence[Run],
    pivots: Sequence[Pivot],
    options: ReportOptions,
    out_dir: Path,
    slugs: dict[str, str],
) -> dict[str, Path]:
    """Heatmap, per-language bars, and where the sweep has them: transfer, k-shot, confusion,
    training-curve figures."""
    written: dict[str, Path] = {}
    axes = options.rows + options.cols
    has_transfer = all(any(run.label(k) != UNSET for run in runs) for k in ("source", "target"))
    shots = {run.label(options.shots_key) for run in runs if run.status == COMPLETED}
    numeric_shots = {s for s in shots if s.replace(".", "", 1).isdigit()}
    is_transfer = sum(k in LANGUAGE_KEYS for k in axes) >= 2
    for pivot in pivots:
        slug, lower = slugs[pivot.metric], pivot.lower_is_better
        name = metric_title(pivot.metric)
        title = f"Transfer: {name}" if is_transfer else name
        written.update(plot_heatmap(pivot, out_dir / f"heatmap_{slug}", title, options.precision))
        if has_transfer and {"source", "target"} - set(axes):
            matrix = build_pivot(runs, ["source"], ["target"], pivot.metric, lower)
            written.update(plot_heatmap(matrix, out_dir / f"transfer_{slug}", f"Transfer: {name}"))
        if len(numeric_shots) >= 2:
            series = [k for k in axes if k != options.shots_key]
            curve = build_pivot(runs, series, [options.shots_key], pivot.metric, lower)
            written.update(plot_kshot(curve, out_dir / f"kshot_{slug}"))
        language_axis = next((k for k in axes if k in LANGUAGE_KEYS), None)
        if language_axis in options.rows:
            bars = pivot
        elif language_axis in options.cols:
            bars = pivot.transposed()
        else:
            bars = build_pivot(runs, ["language"], axes, pivot.metric, lower)
        written.update(plot_bars(bars, out_dir / f"bars_{slug}", f"{name}, per language"))
    group_keys = [k for k in axes if k != LANG]
    written.update(_confusion_figures(runs, group_keys, out_dir))
    curves: dict[str, list] = defaultdict(list)
    for run in runs:
        training_log = read_training_log(run)
        if training_log:
            curves[label_text(tuple(run.label(k) for k in group_keys))].append(training_log)
    if curves:
        written.update(plot_training_curves(dict(curves), out_dir / "training_curves"))
    return written


def _confusion_figures(
    runs: Sequence[Run], group_keys: Sequence[str], out_dir: Path
) -> dict[str, Path]:
    """One figure per confusion key (`test/kn`), one panel per group, counts summed over seeds."""
    summed: dict[str, dict[str, np.ndarray]] = defaultdict(dict)
    for run in runs:
        if run.status != COMPLETED:
            continue
        group = label_text(tuple(run.label(k) for k in group_keys))
        for key, matrix in run.confusion.items():
            counts = np.array(matrix, dtype=np.int64)
            previous = summed[key].setdefault(group, np.zeros_like(counts))
            if previous.shape != counts.shape:
                log.warning(
                    "%s: confusion[%r] is %s, others %s; skipped",
                    run.path,
                    key,
                    counts.shape,
                    previous.shape,
                )
                continue
            summed[key][group] = previous + counts
    written: dict[str, Path] = {}
    for key in sorted(summed):
        panels = dict(sorted(summed[key].items(), key=lambda item: natural_key(item[0])))
        stem = out_dir / f"confusion_{metric_slug(key)}"
        written.update(plot_confusions(panels, stem, f"confusion {key} (summed over runs)"))
    return written


def _print_summary(
    sections: Sequence[TableSection],
    studies: Sequence[Study],
    runs: Sequence[Run],
    page: Path,
    precision: int,
    summary: Summary | None = None,
) -> None:
    """A pipeline's summary, else every table; then the runs that did not complete and where
    the page is, last."""
    console = Console()
    if summary is not None:
        print_pipeline_summary(summary, console, precision)
    else:
        for section in sections:
            console.print(Markdown(markdown_table(section.pivot, precision)))
    for study in studies:
        console.print(Markdown(trials_markdown(study, precision, page.parent)))
    _print_unfinished(runs, console)
    console.print(f"report: {page}", highlight=False, soft_wrap=True)


def _print_unfinished(runs: Sequence[Run], console: Console) -> None:
    """`not finished (2 of 10 runs):`, then a line per run that failed, was interrupted, is
    still running or never wrote its record (a sweep's job whose dir holds only `.hydra/`)."""
    unfinished = [run for run in runs if run.status != COMPLETED]
    if not unfinished:
        return
    console.print(f"not finished ({len(unfinished)} of {len(runs)} runs):", highlight=False)
    width = max(len(run.status) for run in unfinished)
    for run in unfinished:
        status = f"[red]{run.status:<{width}}[/red]"
        console.print(f"  {status}  {escape(f'{run.path}: {run.error}')}", soft_wrap=True)


def in_pipeline_order(pivot: Pivot, targets: Sequence[str] = ()) -> Pivot:
    """Rows and cols of a `stage` axis in the order a pipeline runs its stages (pretrain,
    finetune_<target>…, integrate, eval), not alphabetically."""
    ordered = {}
    for axis, keys in (("rows", pivot.row_keys), ("cols", pivot.col_keys)):
        if "stage" in keys:
            index = keys.index("stage")
            labels = getattr(pivot, axis)
            ordered[axis] = sorted(labels, key=lambda label: stage_rank(label[index], targets))
    return replace(pivot, **ordered) if ordered else pivot


def _without_means(pivot: Pivot) -> Pivot:
    def plain(label: tuple[str, ...]) -> bool:
        return not any(part == "mean" or part.startswith("mean_") for part in label)

    return replace(
        pivot, rows=[r for r in pivot.rows if plain(r)], cols=[c for c in pivot.cols if plain(c)]
    )


BY_STAGE_NOTE = (
    "Stage runs one by one, in the order the pipeline ran them and named as it names their "
    "dirs; the bundle's test is eval's (integrate tested the same bundle on the same images), "
    "and no stage's mean (a fine-tune's pools its target with its source)."
)


def _whole_pipeline(runs: Sequence[Run], pipelines: Sequence[Pipeline]) -> Pipeline | None:
    """The pipeline the report is of: the only one, with two stages or more, and no run
    besides its own (a table over one job of a sweep stays a table)."""
    if len(pipelines) != 1:
        return None
    (pipeline,) = pipelines
    own = {pipeline.root} | {run.path for run in pipeline.stages.values()}
    if len(pipeline.stages) < 2 or any(run.path not in own for run in runs):
        return None
    return pipeline


def _tabled_runs(runs: Sequence[Run], story: Pipeline) -> list[Run]:
    """The runs a pipeline's tables by stage show: its stages, without the pipeline's own dir
    (its metrics copy theirs) and without integrate when eval tested the same bundle."""
    hidden = {story.root}
    if story.stage(EVAL) is not None and INTEGRATE in story.stages:
        hidden.add(story.stages[INTEGRATE].path)
    return [run for run in runs if run.path not in hidden]
