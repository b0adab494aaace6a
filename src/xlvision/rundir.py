"""A run directory and everything about it: where each of its files lives, the state its
record says it is in, who may write into it, and what resuming it does.

```
<run>/config.yaml            the resolved config           (records.write_config)
<run>/metrics.json           status, metrics, artifacts    (records.write_metrics)
<run>/app.log                Hydra's log of the job
<run>/.lock                  the pid of the process writing into the run (flock'ed by it)
<run>/checkpoints/           best.ckpt, last.ckpt, final.ckpt (a fine-tuning's merged model)
<run>/csv/metrics.csv        the training curves
<run>/pretrain/, finetune_<code>/, integrate/, eval/, report/    a pipeline's stages
```

Every layer may use this module; it imports no torch.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from xlvision.errors import XlvisionError
from xlvision.records import (
    CONFIG_FILE,
    METRICS_FILE,
    read_metrics,
    resolve_artifact,
    write_config,
    write_metrics,
    write_record,
)

LOG_FILE = "app.log"
LOCK_FILE = ".lock"
CHECKPOINTS = "checkpoints"
CSV_DIR = "csv"
CSV_FILE = "metrics.csv"
HYDRA_DIR = ".hydra"  # what Hydra writes for a job: config.yaml, overrides.yaml, hydra.yaml
# A resumed sweep's copy of each job's `.hydra/`, made before Hydra writes the job's new one:
# what the job was launched with, to compare with what it is resumed with (`check_same_job`).
KEPT_HYDRA_DIR = ".hydra.kept"
# Overrides a job may be resumed with other values of: where it runs, not what it computes.
RESUME_FREE = ("resume", "hydra.", "device.", "trainer.enable_progress_bar", "logger")
PRETRAIN, INTEGRATE, EVAL, REPORT = "pretrain", "integrate", "eval", "report"
FINETUNE_PREFIX = "finetune_"
# Artifacts recorded as paths (relative to the run dir when inside it).
PATH_ARTIFACTS = ("checkpoint", "bundle", "report")
# What a restarted run keeps: the lock it holds, and what Hydra wrote for the job now going.
KEPT_ON_RESTART = (LOCK_FILE, HYDRA_DIR, LOG_FILE)

KEEP, CONTINUE, RESTART, FRESH = "keep", "continue", "restart", "fresh"


class RunDirError(XlvisionError, RuntimeError):
    """A run dir that must not be written: it holds a run, or another process writes in it."""


class ResumeError(XlvisionError, RuntimeError):
    """`resume=` names a run that cannot be continued."""

    exit_status = 2


class OtherJobError(ResumeError):
    """A resumed sweep's job would land in a dir that holds another job's run."""


def job_overrides(path: Path) -> list[str]:
    """The overrides in a job's `overrides.yaml` that say what it computes (`RESUME_FREE`
    left out), sorted; [] when the file is missing or unreadable."""
    try:
        listed = OmegaConf.load(path)
    except Exception:
        return []
    if not isinstance(listed, ListConfig):
        return []
    kept = []
    for item in map(str, listed):
        key = item.partition("=")[0].lstrip("+~")
        if not any(key == free or key.startswith(free) for free in RESUME_FREE):
            kept.append(item)
    return sorted(kept)


@dataclass(frozen=True)
class ResumePlan:
    """What resuming a run dir does: `keep` (it completed: its record is the result),
    `continue` (from its last.ckpt; a pipeline stage by stage), `restart` (killed or failed
    before its first checkpoint: its files are cleared and it runs again) or `fresh` (no run
    was ever recorded there). `reason` says why, in words for people."""

    action: str
    reason: str


class RunLock:
    """`fcntl.flock` on `<run>/.lock`, held while a process writes into the run; the file
    holds that process's pid. The kernel drops the lock when the process ends, killed or not,
    so a killed run's dir is free again at once."""

    def __init__(self, run_dir: RunDir) -> None:
        self.run_dir = run_dir
        self.fd: int | None = None

    def acquire(self) -> RunLock:
        """Take the lock, or raise `RunDirError` naming the dir and the holder's pid."""
        path = self.run_dir.lock_file
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        if not _flock(fd):
            os.close(fd)
            raise self.run_dir.held_error()
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is None:
            return
        os.ftruncate(self.fd, 0)  # no pid: nobody writes here now
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _flock(fd: int) -> bool:
    """Take an exclusive flock on `fd` without waiting; False when another holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        if err.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


@dataclass(frozen=True)
class RunDir:
    """One run's directory: its layout, its status (read from metrics.json), its records
    (written atomically), its lock and the resume decision. `RunDir(path)`, str or Path."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path).expanduser())

    # Layout.
    @property
    def config_file(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def metrics_file(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def log_file(self) -> Path:
        return self.path / LOG_FILE

    @property
    def lock_file(self) -> Path:
        return self.path / LOCK_FILE

    @property
    def checkpoints(self) -> Path:
        return self.path / CHECKPOINTS

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoints / "best.ckpt"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / "last.ckpt"

    @property
    def final_checkpoint(self) -> Path:
        """A fine-tuning's model with its adapters merged, in the plain architecture."""
        return self.checkpoints / "final.ckpt"

    @property
    def csv_file(self) -> Path:
        return self.path / CSV_DIR / CSV_FILE

    @property
    def report_dir(self) -> Path:
        return self.path / REPORT

    def hydra_file(self, name: str) -> Path:
        """A file Hydra wrote for the job: `config.yaml`, `overrides.yaml` or `hydra.yaml`."""
        return self.path / HYDRA_DIR / name

    def stage(self, name: str) -> RunDir:
        """A pipeline's stage dir: `pretrain`, `integrate`, `eval` (`finetune(code)`)."""
        return RunDir(self.path / name)

    def finetune(self, code: str) -> RunDir:
        return self.stage(f"{FINETUNE_PREFIX}{code}")

    def finetunes(self) -> dict[str, RunDir]:
        """A pipeline's fine-tuning stage dirs by language code, in code order."""
        found = sorted(p for p in self.path.glob(f"{FINETUNE_PREFIX}*") if p.is_dir())
        return {p.name.removeprefix(FINETUNE_PREFIX): RunDir(p) for p in found}

    @classmethod
    def of_checkpoint(cls, checkpoint: str | Path) -> RunDir:
        """The run that wrote `<run>/checkpoints/<name>.ckpt`."""
        return cls(Path(checkpoint).parent.parent)

    # Status, read from metrics.json.
    def holds_run(self) -> bool:
        """Whether a run (finished, failed, killed or going) already recorded itself here."""
        return self.metrics_file.is_file()

    def record(self) -> dict[str, Any]:
        """metrics.json as a dict; {} when there is none or it cannot be read."""
        if not self.holds_run():
            return {}
        try:
            record = read_metrics(self.path)
        except ValueError:
            return {}
        return record if isinstance(record, dict) else {}

    @property
    def status(self) -> str | None:
        """`running`, `completed` or `failed` as metrics.json says; None without one."""
        status = self.record().get("status")
        return status if isinstance(status, str) else None

    @property
    def completed(self) -> bool:
        return self.status == "completed"

    def check_unused(self) -> None:
        """Refuse a dir that already holds a run: nothing is ever written over one."""
        if self.holds_run():
            raise RunDirError(
                f"{self.path} already holds a run (its metrics.json); give another "
                "hydra.run.dir, or delete that one"
            )

    def result(self) -> tuple[dict, dict]:
        """(metrics, artifacts) a completed run recorded, its paths made whole again."""
        record = self.record()
        artifacts = {
            key: str(resolve_artifact(value, self.path))
            if key in PATH_ARTIFACTS and isinstance(value, str)
            else value
            for key, value in (record.get("artifacts") or {}).items()
        }
        return record.get("metrics") or {}, artifacts

    def recorded_checkpoint(self, default: Path) -> Path | None:
        """The checkpoint the run recorded in metrics.json, else `default` if it is there."""
        recorded = (self.record().get("artifacts") or {}).get("checkpoint")
        if isinstance(recorded, str) and resolve_artifact(recorded, self.path).is_file():
            return resolve_artifact(recorded, self.path)
        return default if default.is_file() else None

    # Writes, each atomic.
    def write_config(self, cfg: DictConfig) -> Path:
        return write_config(cfg, self.path)

    def write_record(self, stage: str, metrics: dict, artifacts: dict | None = None, **kw) -> Path:
        """metrics.json (`records.write_metrics`: `error=`, `status=`)."""
        return write_metrics(self.path, stage, metrics, artifacts, **kw)

    def rewrite_record(self, record: dict[str, Any]) -> Path:
        return write_record(self.path, record)

    def clear(self) -> None:
        """Remove what a run that left no checkpoint wrote, so it can run again from scratch;
        the lock and what Hydra wrote for the job going now stay."""
        if not self.path.is_dir():
            return
        for entry in self.path.iterdir():
            if entry.name in KEPT_ON_RESTART:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()

    # The writer.
    def lock(self) -> RunLock:
        """`with run_dir.lock(): …` writes as the only process; `RunDirError` if another is."""
        return RunLock(self)

    def lock_holder(self) -> int | None:
        """The pid written in the lock file, if any."""
        try:
            text = self.lock_file.read_text().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def held(self) -> bool:
        """Whether another process holds the lock now (asked without writing anything)."""
        try:
            fd = os.open(self.lock_file, os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            return not _flock(fd)
        finally:
            os.close(fd)  # closing drops a lock taken here

    def check_not_held(self) -> None:
        """Refuse now, writing nothing, a dir another process writes into (the lock is
        taken for real when the run starts)."""
        if self.held():
            raise self.held_error()

    def held_error(self) -> RunDirError:
        """The one line that refuses a second writer, naming the dir and the holder."""
        holder = self.lock_holder()
        by = f"process {holder}" if holder else "another process"
        return RunDirError(
            f"{self.path}: {by} is writing into this run; wait for it to end "
            "(or stop it) before resuming it or writing there"
        )

    # Resuming.
    def check_same_job(self) -> None:
        """In a resumed sweep, refuse a dir whose run was launched with other overrides than
        the job now resumed into it (a sweep with other values of its swept keys numbers its
        jobs otherwise): the job's own `.hydra/` is put back, nothing else is touched, and
        `OtherJobError` names both. The same job: the kept copy is dropped."""
        kept = self.path / KEPT_HYDRA_DIR
        if not kept.is_dir():
            return
        before = job_overrides(kept / "overrides.yaml")
        now = job_overrides(self.hydra_file("overrides.yaml"))
        if before == now:
            shutil.rmtree(kept)
            return
        shutil.rmtree(self.path / HYDRA_DIR, ignore_errors=True)
        kept.rename(self.path / HYDRA_DIR)
        held = [o for o in before if o not in now] or ["no such override"]
        asked = [o for o in now if o not in before] or ["no such override"]
        raise OtherJobError(
            f"{self.path} holds the run of {' '.join(held)}, not {' '.join(asked)}: a sweep "
            "resumes with the values it was launched with (a new job needs its own "
            "hydra.sweep.subdir)"
        )

    def resume_plan(self, stage: str | None) -> ResumePlan:
        """What resuming this dir as a `stage` run does. The one place it is decided: the
        `resume=` command line, a resumed sweep's jobs, a resumed pipeline's stages and the
        Trainer's resume point all ask here."""
        if self.completed:
            return ResumePlan(KEEP, "that run already completed")
        if not (self.holds_run() or self.config_file.is_file() or self.last_checkpoint.is_file()):
            return ResumePlan(FRESH, "no run there (no config.yaml)")
        if stage == "pipeline":
            return ResumePlan(CONTINUE, "its finished stages are kept, the others resume")
        if self.last_checkpoint.is_file():
            return ResumePlan(CONTINUE, "continues from its checkpoints/last.ckpt")
        return ResumePlan(RESTART, "no checkpoints/last.ckpt to resume from")

    def resume_config(self, stage: str) -> DictConfig:
        """The config that continues this run (`resume=<run dir>`): its own config.yaml, with
        every path that pointed into the dir where it was written following it here, so a
        moved or copied run continues in its new place and never writes into the old one.
        `ResumeError` if the run cannot be continued, `RunDirError` if a process writes in it."""
        name = f"resume={self.path}"
        if not self.config_file.is_file():
            raise ResumeError(f"{name}: no run there (no config.yaml)")
        plan = self.resume_plan(stage)
        if plan.action != CONTINUE:
            raise ResumeError(f"{name}: {plan.reason}")
        try:
            cfg = OmegaConf.load(self.config_file)
        except Exception as err:
            reason = " ".join(str(err).split()) or type(err).__name__
            raise ResumeError(f"{name}: config.yaml cannot be read ({reason})") from None
        if not isinstance(cfg, DictConfig):
            raise ResumeError(f"{name}: config.yaml is not a mapping")
        if cfg.get("stage") != stage:
            raise ResumeError(f"{name}: a {cfg.get('stage')} run, not a {stage} run")
        self.check_not_held()
        written_in = OmegaConf.select(cfg, "paths.output_dir", default=None)
        if isinstance(written_in, str) and written_in:
            cfg = follow_run_dir(cfg, written_in)
        with open_dict(cfg):
            cfg.resume = str(self.path)
            if cfg.get("paths") is None:
                cfg.paths = {}
            cfg.paths.output_dir = str(self.path)
        return cfg


def follow_run_dir(cfg: DictConfig, written_in: str) -> DictConfig:
    """`cfg` with every path into `written_in` (config.yaml holds them resolved: the loggers'
    dirs, MLflow's `file:` URI) made `${paths.output_dir}` again, as in a composed config."""
    old = re.compile(r"(?:^|(?<=[:=\s]))" + re.escape(written_in.rstrip("/")) + r"(?=/|$)")

    def follow(value: Any) -> Any:
        if isinstance(value, str):
            return old.sub(lambda _: "${paths.output_dir}", value)
        if isinstance(value, dict):
            return {k: follow(v) for k, v in value.items()}
        if isinstance(value, list):
            return [follow(v) for v in value]
        return value

    data = OmegaConf.to_container(cfg, resolve=False)
    own = (data.get("paths") or {}).pop("output_dir", None)
    followed = follow(data)
    if own is not None:
        followed["paths"]["output_dir"] = own
    return OmegaConf.create(followed)
