"""A hyperparameter search's trials as a table: trial, the parameters drawn, objective, status.

A search (`xlv-finetune -m hparams_search=optuna`) is a sweep dir of trial dirs `0/ 1/ …`.
Each trial's `.hydra/overrides.yaml` holds the values its sampler drew, its
`.hydra/hydra.yaml` the searched keys and the direction, and the sweep dir's
`optimization_results.yaml` the best trial once the study has ended.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from xlvision.records import sweep_objective
from xlvision.report.collect import COMPLETED, Run, natural_key, relative_path, value_label
from xlvision.report.names import metric_title
from xlvision.report.tables import LATEX_PACKAGES, MISSING, latex_escape
from xlvision.rundir import RunDir

log = logging.getLogger(__name__)

RESULTS_FILE = "optimization_results.yaml"
SEARCH_GROUPS = ("hparams_search", "hydra/sweeper")
"""Override groups that make a sweep a search when one of them names Optuna."""


@dataclass
class Trial:
    number: int
    run: Run
    params: dict[str, Any]
    objective: float | None


@dataclass
class Study:
    """One search: its trials in order, what it searched and what it optimized."""

    sweep_dir: Path
    params: tuple[str, ...]
    objective: str | None
    direction: str
    trials: list[Trial]
    finished: bool

    @property
    def lower_is_better(self) -> bool:
        return self.direction == "minimize"

    def best_trials(self) -> set[int]:
        """The numbers of the trials with the best objective (the study's best trial)."""
        done = [t for t in self.trials if t.run.status == COMPLETED and t.objective is not None]
        if not done:
            return set()
        best = (min if self.lower_is_better else max)(t.objective for t in done)
        return {t.number for t in done if t.objective == best}

    def notes(self, code: Callable[[str], str], text: Callable[[str], str]) -> str:
        """The caption after the title: trial counts, the objective (its raw key set by
        `code`, prose by `text`), whether the study ended, what bold marks."""
        counts: dict[str, int] = {}
        for trial in self.trials:
            counts[trial.run.status] = counts.get(trial.run.status, 0) + 1
        done = ", ".join(f"{n} {status}" for status, n in counts.items())
        aim = "minimized" if self.lower_is_better else "maximized"
        objective = "objective"
        if self.objective:
            objective += f": {text(metric_title(self.objective))} {code(self.objective)}"
        parts = [text(f"{len(self.trials)} trials ({done}); "), objective, text(f", {aim}")]
        if not self.finished:
            parts.append(text("; the study has not ended (no ") + code(RESULTS_FILE) + ")")
        parts.append(".")
        if self.best_trials():
            parts.append(text(" The best trial in bold."))
        return "".join(parts)


def find_studies(runs: Sequence[Run]) -> list[Study]:
    """Every search among `runs`: a sweep dir holding `optimization_results.yaml`, or whose
    trials were started with an Optuna sweeper."""
    by_dir: dict[Path, list[Run]] = {}
    for run in runs:
        by_dir.setdefault(run.path.parent, []).append(run)
    studies = []
    for sweep_dir, members in sorted(by_dir.items(), key=lambda item: natural_key(item[0])):
        searched = (sweep_dir / RESULTS_FILE).is_file() or any(
            "optuna" in str(run.overrides.get(group, ""))
            for run in members
            for group in SEARCH_GROUPS
        )
        if not searched:  # a sweeper chosen in a config file: the trial's own record says
            sweeper = _sweeper_config(members[:1])
            searched = sweeper is not None and "optuna" in str(sweeper.get("_target_", ""))
        if searched:
            studies.append(_study(sweep_dir, members))
    return studies


def _study(sweep_dir: Path, runs: list[Run]) -> Study:
    sweeper = _sweeper_config(runs)
    results = _load(sweep_dir / RESULTS_FILE)
    keys = list(sweeper.get("params") or {}) if sweeper else []
    if not keys and results is not None:
        keys = list(results.get("best_params") or {})
    if not keys:  # no record of what was searched: the overrides that differ between trials
        every = {key for run in runs for key in run.overrides}
        keys = [k for k in every if len({str(r.overrides.get(k)) for r in runs}) > 1]
    direction = sweeper.get("direction") if sweeper else None
    if OmegaConf.is_list(direction) or isinstance(direction, list):  # several objectives
        direction = direction[0] if direction else None
    objective = next((k for k in map(_objective_key, runs) if k), None)
    trials = []
    for index, run in enumerate(runs):
        number = int(run.path.name) if run.path.name.isdigit() else index
        params = {key: run.overrides.get(key) for key in keys}
        value = run.metrics.get(objective) if objective else None
        trials.append(Trial(number, run, params, value))
    return Study(
        sweep_dir=sweep_dir,
        params=tuple(sorted(keys, key=natural_key)),
        objective=objective,
        direction=str(direction or "maximize").lower(),
        trials=sorted(trials, key=lambda t: t.number),
        finished=results is not None,
    )


def _sweeper_config(runs: list[Run]) -> DictConfig | None:
    """`hydra.sweeper` as a trial saved it (the keys it searched, its direction)."""
    for run in runs:
        hydra = _load(RunDir(run.path).hydra_file("hydra.yaml"))
        if hydra is not None:
            node = OmegaConf.select(hydra, "hydra.sweeper", throw_on_resolution_failure=False)
            if isinstance(node, DictConfig):
                return node
    return None


def _load(path: Path) -> DictConfig | None:
    if not path.is_file():
        return None
    try:
        node = OmegaConf.load(path)
    except Exception as err:  # yaml and OmegaConf raise many types for one bad file
        log.warning("%s: unreadable (%s); left out", path, str(err).splitlines()[0])
        return None
    return node if isinstance(node, DictConfig) else None


def _objective_key(run: Run) -> str | None:
    try:
        return sweep_objective(run.config)
    except Exception:  # a hand-edited config.yaml: the trial is shown without an objective
        return None


def param_text(value: Any) -> str:
    """A drawn value as printed: floats to 3 significant digits (`0.00123`, `1.2e-05`)."""
    if value is None:
        return MISSING
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.3g}"
    return value_label(value)


def _objective_text(trial: Trial, precision: int) -> str:
    return MISSING if trial.objective is None else f"{trial.objective:.{precision}f}"


def _header(study: Study) -> list[str]:
    return ["trial", *study.params, study.objective or "objective", "status"]


def trials_markdown(study: Study, precision: int, start: Path) -> str:
    """The trials as a Markdown table under its caption."""
    path = relative_path(study.sweep_dir, start)
    notes = study.notes(lambda key: f"`{key}`", lambda prose: prose)
    best = study.best_trials()
    lines = [
        f"**Search trials** of `{path}`. {notes}",
        "",
        "| " + " | ".join(h.replace("|", "\\|") for h in _header(study)) + " |",
        "|" + "|".join(["---:"] + [":---:"] * (len(study.params) + 1) + [":---"]) + "|",
    ]
    for trial in study.trials:
        objective = _objective_text(trial, precision)
        if trial.number in best:
            objective = f"**{objective}**"
        cells = [str(trial.number), *(param_text(trial.params[k]) for k in study.params)]
        lines.append("| " + " | ".join([*cells, objective, trial.run.status]) + " |")
    return "\n".join(lines) + "\n"


def trials_latex(study: Study, precision: int, start: Path, label: str = "trials") -> str:
    """The trials as a booktabs `table` float."""
    path = _texttt(relative_path(study.sweep_dir, start))
    notes = study.notes(_texttt, latex_escape)
    best = study.best_trials()
    lines = [
        LATEX_PACKAGES,
        "\\begin{table}[htbp]",
        "\\centering",
        f"\\caption{{Search trials of {path}. {notes}}}",
        f"\\label{{tab:{label}}}",
        "\\begin{tabular}{r" + "c" * len(study.params) + "cl}",
        "\\toprule",
        " & ".join(latex_escape(h) for h in _header(study)) + " \\\\",
        "\\midrule",
    ]
    for trial in study.trials:
        objective = latex_escape(_objective_text(trial, precision))
        if trial.number in best:
            objective = f"\\textbf{{{objective}}}"
        cells = [str(trial.number), *(param_text(trial.params[k]) for k in study.params)]
        cells = [latex_escape(c) for c in cells] + [objective, latex_escape(trial.run.status)]
        lines.append(" & ".join(cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(lines) + "\n"


def trials_csv(study: Study) -> str:
    """One line per trial: number, parameters as drawn, objective, status, error, best."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["trial", *study.params, "objective", "metric", "status", "error", "best"])
    best = study.best_trials()
    for trial in study.trials:
        params = ["" if trial.params[k] is None else trial.params[k] for k in study.params]
        objective = "" if trial.objective is None else f"{trial.objective:.10g}"
        writer.writerow(
            [trial.number, *params, objective, study.objective or "", trial.run.status]
            + [trial.run.error or "", int(trial.number in best)]
        )
    return out.getvalue()


def trials_html(study: Study, precision: int, start: Path) -> str:
    """The trials' heading, caption and `<table>` for the report page."""
    path = relative_path(study.sweep_dir, start)
    notes = study.notes(lambda key: f"<code>{escape(key)}</code>", escape)
    best = study.best_trials()
    head = "".join(f"<th>{escape(h)}</th>" for h in _header(study))
    body = []
    for trial in study.trials:
        objective = escape(_objective_text(trial, precision))
        if trial.number in best:
            objective = f"<strong>{objective}</strong>"
        params = "".join(f"<td>{escape(param_text(trial.params[k]))}</td>" for k in study.params)
        css = trial.run.status.replace(" ", "-")
        body.append(
            f"<tr><th>{trial.number}</th>{params}<td>{objective}</td>"
            f'<td class="{css}">{escape(trial.run.status)}</td></tr>'
        )
    return (
        f'<h3>Search trials of <code>{escape(path)}</code></h3><p class="meta">{notes}</p>'
        f'<table class="trials"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _texttt(text: str) -> str:
    return f"{{\\footnotesize\\texttt{{{latex_escape(text)}}}}}"


def write_trials(study: Study, out_dir: Path, precision: int, slug: str) -> dict[str, Path]:
    """`table_<slug>.md/.tex/.csv` in `out_dir`; returns them by file name."""
    texts = {
        "md": trials_markdown(study, precision, out_dir),
        "tex": trials_latex(study, precision, out_dir, label=slug),
        "csv": trials_csv(study),
    }
    written = {}
    for suffix, text in texts.items():
        path = out_dir / f"table_{slug}.{suffix}"
        path.write_text(text, encoding="utf-8")
        written[path.name] = path
    return written
