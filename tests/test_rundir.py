"""RunDir: a run's layout, its status read from metrics.json, atomic records, the lock that
keeps a second writer out, and the one resume decision every caller asks."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import run_cli
from omegaconf import OmegaConf, open_dict

import xlvision
from xlvision.cli.app import resume_config
from xlvision.records import write_atomic
from xlvision.rundir import (
    CONTINUE,
    FRESH,
    KEEP,
    RESTART,
    ResumeError,
    RunDir,
    RunDirError,
    follow_run_dir,
)
from xlvision.stages.runner import run_stage
from xlvision.training.fit import resume_point


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_the_layout_is_where_a_run_writes(make_config, tmp_path):
    run = RunDir(tmp_path / "run")
    assert run.config_file == tmp_path / "run" / "config.yaml"
    assert run.metrics_file == tmp_path / "run" / "metrics.json"
    assert run.log_file == tmp_path / "run" / "app.log"
    assert run.lock_file == tmp_path / "run" / ".lock"
    assert run.best_checkpoint == tmp_path / "run" / "checkpoints" / "best.ckpt"
    assert run.last_checkpoint == tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert run.final_checkpoint == tmp_path / "run" / "checkpoints" / "final.ckpt"
    assert run.csv_file == tmp_path / "run" / "csv" / "metrics.csv"
    assert run.stage("pretrain").path == tmp_path / "run" / "pretrain"
    assert run.finetune("kn").path == tmp_path / "run" / "finetune_kn"
    assert RunDir.of_checkpoint(run.finetune("ar").final_checkpoint) == run.finetune("ar")

    seen = {}

    def stage(cfg):  # what a stage sees of its dir while it runs
        seen["record"] = json.loads(run.metrics_file.read_text())
        seen["lock"] = run.lock_file.read_text()
        return {"test/kn/acc": 0.5}, {"checkpoint": str(run.best_checkpoint)}

    run_stage(stage, make_config())
    assert seen["record"]["status"] == "running" and seen["lock"] == f"{os.getpid()}\n"
    assert OmegaConf.load(run.config_file).paths.output_dir == str(run.path)
    assert run.status == "completed" and run.lock_file.read_text() == ""  # released
    # Artifacts are recorded relative to the dir and read back whole.
    assert run.record()["artifacts"]["checkpoint"] == "checkpoints/best.ckpt"
    assert run.result() == ({"test/kn/acc": 0.5}, {"checkpoint": str(run.best_checkpoint)})
    for code in ("ar", "kn"):
        run.finetune(code).checkpoints.mkdir(parents=True)
    (run.path / "finetune_notes.txt").write_text("not a stage")
    assert list(run.finetunes()) == ["ar", "kn"]


def test_no_module_spells_run_dir_paths_outside_rundir():
    """A run dir's files are joined onto a path in rundir.py alone; the others ask RunDir."""
    root = Path(xlvision.__file__).parent
    names = "metrics.json|config.yaml|checkpoints|last.ckpt|best.ckpt|final.ckpt|metrics.csv"
    names += "|csv|app.log|.lock|.hydra|finetune_[^\"']*|pretrain|integrate|eval|report"
    joined = re.compile(r"/\s*[\"'](" + names.replace(".", r"\.") + r")[\"']")
    allowed = {
        "rundir.py",
        "paths.py",  # conf/config.yaml, the shipped configs
        "models/resnet.py",  # torch hub's checkpoints dir
    }
    found = []
    for path in sorted(root.rglob("*.py")):
        name = str(path.relative_to(root))
        if name in allowed or name.split("/")[0] in allowed:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if joined.search(line):
                found.append(f"{name}:{number}: {line.strip()}")
    assert not found, found
    assert joined.search('run / "checkpoints" / "last.ckpt"')  # the check can fail


def test_status_is_read_from_the_json_not_its_text(tmp_path):
    run = RunDir(tmp_path)
    assert run.status is None and not run.holds_run()
    # A completed record written compactly is completed; a failed one that holds a completed
    # record inside it (the text matches '"status": "completed"') is failed.
    run.metrics_file.write_text('{"status":"completed","stage":"train","metrics":{}}')
    assert run.completed
    run.rewrite_record({"status": "failed", "artifacts": {"source": {"status": "completed"}}})
    assert '"status": "completed"' in run.metrics_file.read_text()
    assert run.status == "failed" and not run.completed
    (tmp_path / "config.yaml").write_text("stage: train\npaths:\n  output_dir: /x\n")
    run.last_checkpoint.parent.mkdir()
    run.last_checkpoint.write_bytes(b"")
    assert resume_config([f"resume={tmp_path}"], "train").resume == str(tmp_path)
    run.metrics_file.write_text('{"status": "compl')  # cut short
    assert run.status is None and run.record() == {}


def test_records_are_written_atomically(tmp_path, monkeypatch):
    run = RunDir(tmp_path)
    run.write_record("train", {"test/kn/acc": 0.5})
    before = run.metrics_file.read_bytes()

    def crash(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", crash)  # the process dies mid-write
    with pytest.raises(OSError):
        run.write_record("train", {"test/kn/acc": 0.9})
    with pytest.raises(OSError):
        write_atomic(run.config_file, "seed: 1\n")
    assert run.metrics_file.read_bytes() == before and not run.config_file.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]  # no tmp left


def test_a_held_run_dir_refuses_a_second_writer(tmp_path):
    run = RunDir(tmp_path / "run")
    with run.lock():
        assert run.lock_holder() == os.getpid()
        with pytest.raises(RunDirError) as err:
            RunDir(tmp_path / "run").lock().acquire()  # another writer, even in this process
        assert str(err.value).startswith(f"{run.path}: process {os.getpid()} is writing")
        assert RunDir(tmp_path / "run").held()
        with pytest.raises(RunDirError, match="is writing into this run"):
            RunDir(tmp_path / "run").check_not_held()  # a check that takes nothing
        assert run.lock_holder() == os.getpid()
        with RunDir(tmp_path / "other").lock():  # other dirs are free
            pass
    assert not run.held()
    run.check_not_held()
    with run.lock():  # released at the end
        pass
    assert run.lock_holder() is None
    fresh = RunDir(tmp_path / "fresh")
    fresh.check_not_held()
    assert not fresh.path.exists()  # the check writes nothing


def test_a_killed_holder_frees_the_dir(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from xlvision.rundir import RunDir\n"
            f"RunDir({str(tmp_path)!r}).lock().acquire(); print('held', flush=True); "
            "time.sleep(600)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(RunDirError, match=f"process {holder.pid} is writing"):
            RunDir(tmp_path).lock().acquire()
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    with RunDir(tmp_path).lock():  # the kernel dropped the lock with its process
        assert RunDir(tmp_path).lock_holder() == os.getpid()


def killed_run(make_config, tmp_path) -> RunDir:
    """A run dir as a kill leaves it: its config, `running`, a last.ckpt."""
    run = RunDir(tmp_path / "run")
    cfg = make_config("language=kn")
    run.write_config(cfg)
    run.write_record("train", {}, status="running")
    run.checkpoints.mkdir()
    run.last_checkpoint.write_bytes(b"not read before the lock")
    return run


def test_the_cli_refuses_to_resume_a_held_run_in_one_line(make_config, tmp_path):
    run = killed_run(make_config, tmp_path)
    code = "import sys; from xlvision.rundir import RunDir\n"
    code += (
        f"with RunDir({str(run.path)!r}).lock():\n    print('held', flush=True); sys.stdin.read()"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline() == "held\n"
        before = snapshot(tmp_path)
        result = run_cli("xlv-train", f"resume={run.path}", cwd=tmp_path)
        assert result.returncode == 1, result.stderr[-1500:]
        assert result.stderr.strip().splitlines() == [
            f"xlv-train: {run.path}: process {holder.pid} is writing into this run; wait for "
            "it to end (or stop it) before resuming it or writing there"
        ]
        assert snapshot(tmp_path) == before  # nothing written
    finally:
        holder.communicate("")


# setup → what resuming it does. "ckpt": a last.ckpt is there; "text": the record holds
# another one with the other status; "garbled": metrics.json cannot be read.
PLANS = [
    ("nothing", "train", FRESH),
    ("config", "train", RESTART),
    ("running", "train", RESTART),
    ("running+ckpt", "train", CONTINUE),
    ("failed+ckpt", "finetune", CONTINUE),
    ("failed+text", "train", RESTART),
    ("completed+text", "train", KEEP),
    ("garbled+ckpt", "train", CONTINUE),
    ("completed+ckpt", "train", KEEP),
    ("nothing", "pipeline", FRESH),
    ("running", "pipeline", CONTINUE),
    ("completed", "pipeline", KEEP),
]


def make_setup(run: RunDir, setup: str, stage: str, cfg=None) -> None:
    run.path.mkdir(parents=True, exist_ok=True)
    if setup == "nothing":
        return
    if cfg is not None:
        with open_dict(cfg):
            cfg.stage = stage
        run.write_config(cfg)
    else:
        run.config_file.write_text(f"stage: {stage}\npaths:\n  output_dir: {run.path}\n")
    status = setup.split("+")[0]
    if status == "garbled":
        run.metrics_file.write_text("{")
    elif status != "config":
        error = 'quotes {"status": "completed"}' if setup.endswith("text") else None
        run.rewrite_record(
            {"status": status, "stage": stage, "metrics": {"x": 1.0}, "error": error}
        )
    if setup.endswith("ckpt"):
        run.checkpoints.mkdir()
        torch.save({"epoch": 2}, run.last_checkpoint)
    (run.path / "csv").mkdir()
    (run.path / "csv" / "metrics.csv").write_text("epoch,step\n0,1\n")


@pytest.mark.parametrize(("setup", "stage", "action"), PLANS)
def test_the_resume_plan_table(tmp_path, setup, stage, action):
    run = RunDir(tmp_path / "run")
    make_setup(run, setup, stage)
    assert run.resume_plan(stage).action == action
    # resume=<dir> on the command line continues exactly the runs the plan continues.
    if action == CONTINUE:
        assert resume_config([f"resume={run.path}"], stage).resume == str(run.path)
    else:
        message = {
            KEEP: "that run already completed",
            RESTART: "no checkpoints/last.ckpt to resume from",
            FRESH: "no run there (no config.yaml)",
        }[action]
        with pytest.raises(ResumeError, match=re.escape(f"resume={run.path}: {message}")):
            resume_config([f"resume={run.path}"], stage)
    # The Trainer's resume point agrees (it is asked once the stage records `running`).
    if stage != "pipeline" and action in (CONTINUE, RESTART):
        cfg = OmegaConf.create({"resume": str(run.path), "stage": stage})
        if action == CONTINUE:
            assert resume_point(cfg, run.path).epoch == 3
        else:
            with pytest.raises(ResumeError, match="no checkpoints/last.ckpt to resume from"):
                resume_point(cfg, run.path)


@pytest.mark.parametrize("setup", ["nothing", "running", "running+ckpt", "completed+ckpt"])
def test_a_resumed_job_does_what_the_plan_says(make_config, tmp_path, setup):
    """As a job of a resumed sweep (or a stage of a resumed pipeline) runs in its dir."""
    run = RunDir(tmp_path / "run")
    cfg = make_config("language=kn")
    make_setup(run, setup, "train", cfg=cfg.copy())
    action = run.resume_plan("train").action
    seen = {}

    def stage(cfg):
        seen["resume"] = cfg.resume
        seen["csv"] = run.csv_file.is_file()
        return {"y": 2.0}, {}

    with open_dict(cfg):
        cfg.resume = str(tmp_path)  # the sweep dir
    metrics, _ = run_stage(stage, cfg)
    if action == KEEP:
        assert not seen and metrics == {"x": 1.0}  # not run again
    elif action == CONTINUE:
        assert seen == {"resume": str(run.path), "csv": True} and metrics == {"y": 2.0}
    else:  # run from scratch: what a killed first attempt left is gone
        assert seen == {"resume": None, "csv": False} and run.status == "completed"


def test_paths_into_the_old_dir_follow_the_moved_one(make_config, tmp_path):
    old, new = tmp_path / "old", tmp_path / "moved" / "run"
    cfg = make_config("language=kn", "logger=many")
    with open_dict(cfg):
        cfg.paths.output_dir = str(old)
        cfg.base = f"{old}-other/checkpoints/best.ckpt"  # a neighbour, not inside the run
    RunDir(old).write_config(cfg)
    RunDir(old).rewrite_record({"status": "running"})
    RunDir(old).checkpoints.mkdir()
    RunDir(old).last_checkpoint.write_bytes(b"")
    old.rename(tmp_path / "tmp")
    new.parent.mkdir()
    (tmp_path / "tmp").rename(new)

    resumed = RunDir(new).resume_config("train")
    saved = OmegaConf.to_container(resumed, resolve=True)
    assert saved["paths"]["output_dir"] == str(new) and saved["resume"] == str(new)
    assert saved["logger"]["csv"]["save_dir"] == str(new)
    assert saved["logger"]["mlflow"]["tracking_uri"] == f"file:{new}/mlruns"
    assert saved["base"] == f"{old}-other/checkpoints/best.ckpt"
    assert str(old) not in json.dumps({k: v for k, v in saved.items() if k != "base"})
    # Written as a composed config writes them: the loggers follow the output dir.
    again = follow_run_dir(OmegaConf.create({"a": f"{old}/x", "b": f"{old}x"}), str(old))
    assert OmegaConf.to_container(again) == {"a": "${paths.output_dir}/x", "b": f"{old}x"}


def test_names_that_moved_here_say_where_to():
    with pytest.raises(ImportError, match=r"use from xlvision\.rundir import RunDirError$"):
        from xlvision.records import RunDirError  # noqa: F401
    with pytest.raises(ImportError, match=r"use xlvision\.rundir\.RunDir\(path\)\.holds_run\(\)"):
        from xlvision.records import holds_run  # noqa: F401


def test_a_sweep_job_refused_by_the_lock_records_nothing(tmp_path):
    """A job of a sweep that fails records its error in its dir, but not in a dir another
    process holds: that dir's record is its writer's."""
    from xlvision.cli.sweep_jobs import record_failure

    job = RunDir(tmp_path / "3")
    cfg = OmegaConf.create({"stage": "train", "paths": {"output_dir": str(job.path)}})
    with job.lock():  # as another process would
        record_failure(cfg, f"RunDirError: {job.path}: process 1 is writing into this run")
        assert not job.holds_run()
    record_failure(cfg, "DataError: no such file")
    assert job.status == "failed" and job.record()["error"] == "DataError: no such file"


@pytest.mark.parametrize(
    ("launched", "resumed", "same"),
    [
        (["seed=0", "model=net"], ["model=net", "seed=0", "resume=/x"], True),  # order, resume=
        (["seed=0", "device.threads=1"], ["seed=0", "trainer.enable_progress_bar=false"], True),
        (["seed=0", "finetune=lora"], ["seed=0", "finetune=partial"], False),
        (["seed=0"], ["seed=0", "+data.real_per_class=5"], False),
    ],
)
def test_a_resumed_sweep_job_must_be_the_one_its_dir_holds(tmp_path, launched, resumed, same):
    from xlvision.rundir import KEPT_HYDRA_DIR, OtherJobError

    job = RunDir(tmp_path / "3")
    for folder, overrides in ((KEPT_HYDRA_DIR, launched), (".hydra", resumed)):
        (job.path / folder).mkdir(parents=True)
        OmegaConf.save(OmegaConf.create(overrides), job.path / folder / "overrides.yaml")
    if same:
        job.check_same_job()
        assert OmegaConf.load(job.hydra_file("overrides.yaml")) == resumed
    else:
        with pytest.raises(OtherJobError, match=r"3 holds the run of .*, not .*subdir"):
            job.check_same_job()
        assert list(OmegaConf.load(job.hydra_file("overrides.yaml"))) == launched  # put back
    assert not (job.path / KEPT_HYDRA_DIR).exists()
    job.check_same_job()  # nothing kept: nothing to judge
