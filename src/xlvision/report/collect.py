"""Find run directories on disk and read what the training stages left in them.

A run dir is any directory holding `config.yaml` or `metrics.json`; sweep dirs are searched
recursively, so `runs=` can name single runs, whole sweeps or globs over both.
"""

from __future__ import annotations

import csv
import glob
import json
import logging
import math
import os
import re
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, ListConfig, OmegaConf

from xlvision.records import CONFIG_FILE, METRICS_FILE
from xlvision.report.options import NoRunsError
from xlvision.rundir import HYDRA_DIR, RunDir

log = logging.getLogger(__name__)

RUN_MARKERS = (CONFIG_FILE, METRICS_FILE)
COMPLETED, FAILED, INCOMPLETE = "completed", "failed", "incomplete"
RUNNING, INTERRUPTED = "running", "interrupted"
"""A run's metrics.json says `running` from its start; if its process is gone it was killed."""
UNSET = "none"
"""Label of a config key that is null or absent in a run."""

_ABSENT = object()


@dataclass
class Run:
    """One run dir as read from disk; `status` is completed, failed or incomplete."""

    path: Path
    config: DictConfig
    status: str
    metrics: dict[str, float] = field(default_factory=dict)
    confusion: dict[str, list[list[int]]] = field(default_factory=dict)
    error: str | None = None
    stage: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    chosen: dict[str, Any] | None = None
    """The Hydra overrides of the run's own command line or, for a run a pipeline made, of its
    pipeline's (the nearest `.hydra/overrides.yaml` above); None where there is none."""

    @property
    def languages(self) -> list[str]:
        """The run's language codes, in config order (the `language` group is keyed by code)."""
        node = self.config_value("language")
        if isinstance(node, DictConfig):
            code = node.get("code")
            return [str(code)] if isinstance(code, str) else [str(key) for key in node]
        if isinstance(node, ListConfig | list | tuple):
            return [str(item) for item in node]
        return [] if node is None or node is _ABSENT else [str(node)]

    def config_value(self, key: str) -> Any:
        """The node at dotted `key` in config.yaml, else in Hydra's overrides, else absent."""
        node = OmegaConf.select(
            self.config, key, default=_ABSENT, throw_on_resolution_failure=False
        )
        if node is _ABSENT:
            return self.overrides.get(key, _ABSENT)
        return node

    def label(self, key: str) -> str:
        """The value of `key` as a table label: `model` → its name, `language` → `kn+ar`."""
        if key == "language":
            return "+".join(self.languages) or UNSET
        return value_label(self.config_value(key))


def value_label(node: Any) -> str:
    """A short, stable label for a config value (a mapping is known by its code or name)."""
    if node is None or node is _ABSENT:
        return UNSET
    if isinstance(node, DictConfig | dict):
        for name_key in ("code", "name"):
            if isinstance(node.get(name_key), str):
                return node[name_key]
        target = node.get("_target_")
        if isinstance(target, str):
            return target.rsplit(".", 1)[-1]
        container = OmegaConf.to_container(node) if isinstance(node, DictConfig) else node
        return json.dumps(container, sort_keys=True, default=str)
    if isinstance(node, ListConfig | list | tuple):
        return "+".join(value_label(item) for item in node)
    if isinstance(node, bool):
        return str(node).lower()
    if isinstance(node, float):
        return f"{node:g}"
    return str(node)


def find_run_dirs(patterns: Sequence[str], base: Path | None = None) -> list[Path]:
    """Expand dirs and globs (`**` recurses) into run dirs, in natural order, without repeats."""
    base = base or Path.cwd()
    found: dict[Path, None] = {}
    for pattern in patterns:
        expanded = os.path.expanduser(pattern)
        if not os.path.isabs(expanded):
            expanded = str(base / expanded)
        if glob.has_magic(expanded):
            matches = sorted(glob.glob(expanded, recursive=True))
        else:
            matches = [expanded] if os.path.exists(expanded) else []
        for match in map(Path, matches):
            if match.is_dir():
                found.update(dict.fromkeys(_run_dirs_under(match)))
            elif match.name in RUN_MARKERS:
                found[match.parent.resolve()] = None
    if not found:
        shown = ", ".join(repr(p) for p in patterns)
        raise NoRunsError(
            f"runs= matched no run dirs (none holds {' or '.join(RUN_MARKERS)}): {shown}"
        )
    return sorted(found, key=natural_key)


def _run_dirs_under(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        # A sweep's job that never wrote a record still has the `.hydra/` Hydra made for it.
        started = HYDRA_DIR in dirnames
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if started or any(marker in filenames for marker in RUN_MARKERS):
            yield Path(dirpath).resolve()


def relative_path(path: str | Path, start: Path) -> str:
    """`path` (a dir, a file or a glob) as seen from `start`, the report's dir: a report that
    is moved or mailed with its runs keeps pointing at them, and shows no home directories."""
    target = os.path.realpath(os.path.expanduser(str(path)))
    return Path(os.path.relpath(target, os.path.realpath(start))).as_posix()


def natural_key(value: object) -> tuple:
    """Sort key that puts `2` before `10` (run dirs `0/ 1/ … 10/`, shots, seeds)."""
    parts = re.split(r"(\d+(?:\.\d+)?)", str(value))
    return tuple((0, float(p), "") if i % 2 else (1, 0.0, p) for i, p in enumerate(parts) if p)


def load_run(path: Path) -> Run:
    """Read one run dir; a missing metrics.json is incomplete, an unreadable one failed."""
    config = _read_config(path)
    own = RunDir(path).hydra_file("overrides.yaml")
    overrides = _read_overrides(own)
    run = Run(path=path, config=config, status=INCOMPLETE, overrides=overrides)
    run.chosen = overrides if own.is_file() else _ancestor_overrides(path)
    metrics_file = RunDir(path).metrics_file
    if not metrics_file.is_file():
        run.error = "no metrics.json: the run did not finish"
        return run
    try:
        payload = json.loads(metrics_file.read_text(encoding="utf-8"))
        if not isinstance(payload, dict):
            raise ValueError(f"expected a JSON object, got {type(payload).__name__}")
        status = payload.get("status")
        if status not in (COMPLETED, FAILED, RUNNING):
            raise ValueError(f"status is {status!r}, expected 'completed', 'failed' or 'running'")
        metrics = payload.get("metrics") or {}
        if not isinstance(metrics, dict):
            raise ValueError("'metrics' is not a mapping")
    except (OSError, UnicodeDecodeError, ValueError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        log.warning("%s: unreadable metrics.json (%s); counted as failed", metrics_file, reason)
        run.status, run.error = FAILED, f"unreadable metrics.json: {reason}"
        return run
    if status == RUNNING:
        alive = _process_alive(payload.get("artifacts") or {})
        run.status = RUNNING if alive else INTERRUPTED
        run.stage = payload.get("stage")
        run.error = None if alive else "interrupted: its process ended before the run finished"
        return run
    run.status = status
    run.stage = payload.get("stage")
    run.error = payload.get("error") or (None if status == COMPLETED else "failed (no error given)")
    run.metrics = {
        name: float(value)
        for name, value in metrics.items()
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    }
    run.confusion = _read_confusion(payload.get("confusion"), metrics_file)
    return run


def _process_alive(record: dict) -> bool:
    """Whether the process that wrote `running` still exists (on this host; another host's
    run cannot be checked from here and counts as running)."""
    pid, host = record.get("pid"), record.get("host")
    if not isinstance(pid, int) or pid <= 0:
        return False
    if host and host != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def collect_runs(patterns: Sequence[str], base: Path | None = None) -> list[Run]:
    """Every run under `patterns`, read from disk."""
    return [load_run(path) for path in find_run_dirs(patterns, base)]


def add_lang_means(run: Run, means: Sequence[tuple[str, Sequence[str]]]) -> None:
    """Per run, `<stage>/<name>/<metric>` = the mean of `<stage>/<code>/<metric>` over `codes`,
    for every metric all of those languages have (a partial mean would mislead: none)."""
    for name, codes in means:
        found: dict[tuple[str, str], list[float]] = {}
        for key, value in run.metrics.items():
            parts = key.split("/")
            if len(parts) == 3 and parts[1] in codes:
                found.setdefault((parts[0], parts[2]), []).append(value)
        for (stage, metric), values in found.items():
            if len(values) == len(set(codes)):
                run.metrics[f"{stage}/{name}/{metric}"] = sum(values) / len(values)


def _read_config(path: Path) -> DictConfig:
    for candidate in (RunDir(path).config_file, RunDir(path).hydra_file("config.yaml")):
        if not candidate.is_file():
            continue
        try:
            config = OmegaConf.load(candidate)
        except Exception as err:  # yaml and OmegaConf raise many types for one bad file
            log.warning("%s: unreadable config (%s)", candidate, str(err).splitlines()[0])
            continue
        if isinstance(config, DictConfig):
            return config
        log.warning("%s: config is not a mapping", candidate)
    return OmegaConf.create({})


def _read_overrides(path: Path) -> dict[str, Any]:
    """Hydra's `key=value` overrides, the fallback for keys config.yaml lacks."""
    if not path.is_file():
        return {}
    try:
        lines = OmegaConf.to_container(OmegaConf.load(path))
        parsed = OverridesParser.create().parse_overrides([str(line) for line in lines or []])
    except Exception as err:  # a hand-edited or truncated file: warn and go on without it
        log.warning("%s: unreadable overrides (%s)", path, str(err).splitlines()[0])
        return {}
    return {o.key_or_group: o.value() for o in parsed if not o.is_delete()}


def _ancestor_overrides(path: Path, levels: int = 3) -> dict[str, Any] | None:
    """The overrides of the nearest dir above `path` (within `levels`) that Hydra ran in."""
    for parent in list(path.parents)[:levels]:
        candidate = RunDir(parent).hydra_file("overrides.yaml")
        if candidate.is_file():
            return _read_overrides(candidate)
    return None


def _read_confusion(raw: object, source: Path) -> dict[str, list[list[int]]]:
    if not isinstance(raw, dict):
        return {}
    matrices = {}
    for key, matrix in raw.items():
        ok = (
            isinstance(matrix, list)
            and matrix
            and all(isinstance(row, list) and len(row) == len(matrix) for row in matrix)
            and all(isinstance(v, int | float) for row in matrix for v in row)
        )
        if ok:
            matrices[str(key)] = [[int(v) for v in row] for row in matrix]
        else:
            log.warning("%s: confusion[%r] is not a square matrix of counts; skipped", source, key)
    return matrices


def read_training_log(run: Run) -> dict[str, tuple[list[float], list[float]]]:
    """Columns of `csv/metrics.csv` as (x, y) series; x is the step, or the epoch for val/."""
    path = RunDir(run.path).csv_file
    if not path.is_file():
        return {}
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        log.warning("%s: unreadable training log (%s)", path, err)
        return {}
    series: dict[str, tuple[list[float], list[float]]] = {}
    for row in rows:
        for column, text in row.items():
            if column in (None, "epoch", "step") or not text:
                continue
            x_column = "epoch" if column.startswith("val/") and row.get("epoch") else "step"
            try:
                x, y = float(row.get(x_column) or "nan"), float(text)
            except ValueError:
                continue
            if math.isfinite(x) and math.isfinite(y):
                xs, ys = series.setdefault(column, ([], []))
                xs.append(x)
                ys.append(y)
    return series
