"""A sweep's jobs fail alone: a failed job is recorded in its own dir and the sweep goes on
with the others, in every launcher (basic, joblib, SLURM); when the sweep ends, one line
names the jobs that did not complete and a grid sweep exits 1.

A job must not end its process (`sys.exit`): the basic launcher would skip the jobs after it
and joblib's pool would stop its siblings. A search sweeper (Optuna) is told of a failed
trial by an exception (`search.TrialFailed`), a grid sweeper by the job's record alone.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import sys
from pathlib import Path

from omegaconf import DictConfig

from xlvision.records import read_metrics
from xlvision.rundir import HYDRA_DIR, KEPT_HYDRA_DIR, RunDir

MAX_REASON = 80
"""Characters of a failed job's error in the sweep's closing line (its record has all)."""

refused: list[str] = []
"""Dirs of this process's resumed sweep whose run is another job's (`OtherJobError`): kept as
they were, named again at the sweep's end."""


def in_sweep() -> bool:
    """Whether this process runs a job of a multirun (`-m`), under any sweeper."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def record_failure(cfg: DictConfig, error: str) -> None:
    """A job that failed before its stage recorded anything (its dir holds only `.hydra/`)
    says so in its metrics.json; a record already there (the stage's own, or a run the dir
    held before) is left as it is, and so is a dir another process writes into."""
    run_dir = RunDir(cfg.paths.output_dir)
    rank0 = int(os.environ.get("LOCAL_RANK", "0")) == 0
    if rank0 and not run_dir.holds_run() and not run_dir.held():
        run_dir.write_record(str(cfg.get("stage") or "run"), {}, error=error)


def job_dirs(sweep_dir: Path) -> list[Path]:
    """The dirs Hydra made for a sweep's jobs (each holds `.hydra/`), in natural order."""
    found = []
    for dirpath, dirnames, _ in os.walk(sweep_dir):
        if ".hydra" in dirnames and Path(dirpath) != sweep_dir:
            found.append(Path(dirpath))
            dirnames.clear()  # a pipeline's stage dirs inside a job are not jobs
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
    return sorted(found, key=lambda p: [int(s) if s.isdigit() else s for s in p.parts])


def why_not_completed(job_dir: Path) -> str | None:
    """None for a job that completed; else its recorded error, or that it never finished."""
    if not RunDir(job_dir).holds_run():
        return "never finished: no metrics.json"
    try:
        record = read_metrics(job_dir)
    except ValueError:
        return "unreadable metrics.json"
    status = record.get("status")
    if status == "completed":
        return None
    if status == "failed":
        return str(record.get("error") or "failed")
    return f"never finished: metrics.json says {status!r}"


def failed_jobs_line(prog: str, sweep_dir: Path, noun: str = "jobs") -> str | None:
    """`xlv-train: 1 of 2 jobs failed: 1 (DataError: …)`, or None when every job completed."""
    jobs = job_dirs(sweep_dir)
    failed = [(job, why_not_completed(job)) for job in jobs]
    failed = [(job.relative_to(sweep_dir), why) for job, why in failed if why is not None]
    if not failed:
        return None
    named = ", ".join(f"{job} ({shorten(why)})" for job, why in failed)
    return f"{prog}: {len(failed)} of {len(jobs)} {noun} failed: {named}"


def shorten(text: str) -> str:
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"


def keep_launch_records(sweep_dir: Path) -> None:
    """Before a sweep resumes: a copy of each job's `.hydra/` (what it was launched with), which
    Hydra overwrites when it starts the job now given that dir (`RunDir.check_same_job`). An
    older copy, of a resumed sweep that was killed, is the launch's own and stays."""
    for job in job_dirs(sweep_dir):
        kept = job / KEPT_HYDRA_DIR
        if not kept.exists():
            shutil.copytree(job / HYDRA_DIR, kept)


def drop_launch_records(sweep_dir: Path) -> None:
    """After a resumed sweep: the copies of jobs it did not start again (their `.hydra/` as it
    was) are dropped; one whose `.hydra/` differs stays, for the next resume to judge."""
    for job in job_dirs(sweep_dir):
        kept = job / KEPT_HYDRA_DIR
        if kept.is_dir():
            names = sorted(p.name for p in kept.iterdir())
            same, _, _ = filecmp.cmpfiles(kept, job / HYDRA_DIR, names, shallow=False)
            if len(same) == len(names):
                shutil.rmtree(kept)


def end_sweep(config: DictConfig, sweep_dir: Path) -> None:
    """At a sweep's end, name the jobs that did not complete, and those refused because their
    dir holds another job's run; a grid sweep with any exits 1 (a search's failed trials are
    part of its result: the study's best still stands)."""
    search = "optuna" in str(config.hydra.sweeper.get("_target_", "")).lower()
    prog = Path(sys.argv[0]).name or "xlvision"
    drop_launch_records(sweep_dir)
    line = failed_jobs_line(prog, sweep_dir, "trials" if search else "jobs")
    lines = [] if line is None else [line]
    if refused:
        lines.append(
            f"{prog}: {len(refused)} job(s) not run, their dirs hold runs launched with other "
            f"values: {', '.join(refused)}"
        )
        refused.clear()
    if not lines:
        return
    print("\n".join(lines), file=sys.stderr, flush=True)
    if not search:
        raise SystemExit(1)


def sweep_job_failed(cfg: DictConfig, error: str) -> dict:
    """End a job of a sweep whose error is printed: record it, and tell a search sweeper
    (`TrialFailed`); a grid sweeper goes on to the next job. No metrics."""
    from xlvision.cli.search import TrialFailed, in_search

    record_failure(cfg, error)
    if in_search():
        raise TrialFailed(error) from None
    return {}
