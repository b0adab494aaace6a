"""Run records, the lowest layer every other one may use: the two files each stage leaves in
its run directory (config.yaml and metrics.json), written atomically, and the error about
input files. Where a run's files live and what its state is: `xlvision.rundir`."""

from __future__ import annotations

import json
import math
import os
import socket
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from xlvision.errors import XlvisionError

METRICS_FILE = "metrics.json"
CONFIG_FILE = "config.yaml"
RUNNING = "running"


class InputFileError(XlvisionError, RuntimeError):
    """A file or dir the command line names is missing or of the wrong kind."""


def write_atomic(path: Path, text: str) -> Path:
    """Write `text` to `path` through a temporary file beside it and a rename, so a reader (or
    a process killed mid-write) sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def resolved_config(cfg: DictConfig) -> dict[str, Any]:
    """The config as plain data, interpolations resolved, without Hydra's own node."""
    return {
        key: OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
        for key, node in ((k, cfg[k]) for k in cfg if k != "hydra")
    }


def write_config(cfg: DictConfig, output_dir: Path) -> Path:
    """`config.yaml`: the resolved config, written atomically."""
    text = OmegaConf.to_yaml(OmegaConf.create(resolved_config(cfg)))
    return write_atomic(Path(output_dir) / CONFIG_FILE, text)


def write_metrics(
    output_dir: Path,
    stage: str,
    metrics: dict[str, Any],
    artifacts: dict[str, Any] | None = None,
    error: str | None = None,
    status: str | None = None,
) -> Path:
    """`{"status", "stage", "metrics", "confusion", "artifacts", "error"}`, written atomically.

    `status` is `completed` or `failed` (with `error`); `running` (written when a stage
    starts, with the process id and host) tells a report a run that never finished apart
    from one still going.
    """
    artifacts = dict(artifacts or {})
    if status == RUNNING:
        artifacts.update(pid=os.getpid(), host=socket.gethostname())
    artifacts = {k: relative_to_run(v, output_dir) for k, v in artifacts.items()}
    record = {
        "status": status or ("failed" if error else "completed"),
        "stage": stage,
        "metrics": _clean(metrics),
        "confusion": _clean(artifacts.pop("confusion", None) or {}),
        "artifacts": _clean(artifacts),
        "error": error,
    }
    return write_record(output_dir, record)


def write_record(output_dir: Path, record: dict[str, Any]) -> Path:
    """`metrics.json` as `record` holds it, written atomically."""
    text = json.dumps(record, indent=2, ensure_ascii=False)
    return write_atomic(Path(output_dir) / METRICS_FILE, text)


def relative_to_run(value: Any, run_dir: Path) -> Any:
    """A path inside the run dir as a path relative to it, so a copied or moved run dir still
    finds its own files (`resolve_artifact` reads it back); anything else unchanged."""
    if isinstance(value, Path | str) and value and os.path.isabs(str(value)):
        try:
            return str(Path(value).resolve().relative_to(Path(run_dir).resolve()))
        except ValueError:
            return str(value)
    return value


def resolve_artifact(value: str, run_dir: str | Path) -> Path:
    """A recorded artifact path: relative ones are inside the run dir that recorded them."""
    path = Path(value)
    return path if path.is_absolute() else Path(run_dir) / path


def read_metrics(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / METRICS_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: cannot read metrics ({err})") from None


def sweep_objective(cfg: DictConfig) -> str | None:
    """The metric a run returns to a sweeper, what a search (`hparams_search=optuna`)
    optimizes: the metric that picks the best checkpoint, `monitor`, or for xlv-finetune its
    target's `val/<lang>/acc` (the base's languages are only measured)."""
    if cfg.get("stage") == "finetune" and len(cfg.get("language") or {}) == 1:
        return f"val/{next(iter(cfg.language))}/acc"
    return cfg.get("monitor") or None


MOVED_TO_RUNDIR = {
    "RunDirError": "from xlvision.rundir import RunDirError",
    "ResumeError": "from xlvision.rundir import ResumeError",
    "holds_run": "xlvision.rundir.RunDir(path).holds_run()",
}


def __getattr__(name: str) -> Any:
    """A name that moved says where to (an ImportError: `from … import` shows its message)."""
    if name in MOVED_TO_RUNDIR:
        raise ImportError(f"xlvision.records.{name} moved: use {MOVED_TO_RUNDIR[name]}")
    raise AttributeError(f"module 'xlvision.records' has no attribute {name!r}")
