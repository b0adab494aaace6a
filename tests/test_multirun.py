"""Hydra multirun through the console script, as a user runs a sweep."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conftest import run_cli


def quick_train(*args: str, cwd):
    """xlv-train with fast settings; it must succeed."""
    result = run_cli("xlv-train", *args, "debug=fast", "trainer.limit_train_batches=2", cwd=cwd)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def test_two_language_sweep_writes_one_run_dir_each(tmp_path):
    result = quick_train("-m", "language=en,kn", cwd=tmp_path)
    sweeps = list((tmp_path / "outputs" / "multirun").glob("*/*"))
    assert len(sweeps) == 1
    # The sweep names its dir, on a line of its own, when it starts and when it ends.
    lines = result.stderr.splitlines()
    assert lines[lines.index("sweep dir:") + 1] == f"  {sweeps[0]}"
    assert lines[-1] == f"  xlv-report 'runs=[{sweeps[0]}]'"
    runs = sorted(p for p in sweeps[0].iterdir() if p.is_dir() and p.name.isdigit())
    assert [p.name for p in runs] == ["0", "1"]
    for run, code in zip(runs, ["en", "kn"], strict=True):
        record = json.loads((run / "metrics.json").read_text())
        assert record["status"] == "completed"
        assert 0 <= record["metrics"][f"test/{code}/acc"] <= 1
        assert "language:\n  " + code in (run / "config.yaml").read_text()


CHATTER = (
    "GPU available",
    "Tip:",
    "was configured so",
    "Restoring states",
    "LeafSpec",
    "transfer_batch_to_device",
)


def test_one_model_reads_several_languages(tmp_path):
    result = quick_train("language=[en,kn]", cwd=tmp_path)
    (run,) = list((tmp_path / "outputs" / "runs").glob("*/*"))
    metrics = json.loads((run / "metrics.json").read_text())["metrics"]
    assert {"test/en/acc", "test/kn/acc", "test/mean/acc"} <= set(metrics)
    mean = (metrics["test/en/acc"] + metrics["test/kn/acc"]) / 2
    assert abs(metrics["test/mean/acc"] - mean) < 1e-6
    assert str(run) in result.stderr + result.stdout
    assert "train · en+kn · net" in result.stderr  # one header line naming the stage
    # No library chatter: device banners, tips, limit and restore notices, deprecations.
    for chatter in CHATTER:
        assert chatter not in result.stderr + result.stdout


def seed_zero_fails(cfg):
    """A stage for the sweep tests: the job with seed 0 fails as a missing data file does."""
    from xlvision.data.errors import DataError

    if cfg.seed == 0:
        raise DataError("../shared/data/a.npz: file not found")
    return {"test/en/acc": 0.5 + cfg.seed / 10}, {}


def run_sweep_in_process(monkeypatch, tmp_path, *args: str) -> int | None:
    """xlv-train's main over `seed_zero_fails`, in this process; its exit code."""
    from hydra.core.global_hydra import GlobalHydra

    from xlvision.cli.app import Command

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["xlv-train", *args])
    main = Command("xlv-train", "config", stage=seed_zero_fails)
    try:
        main()
    except SystemExit as stop:
        return stop.code
    finally:
        GlobalHydra.instance().clear()
    return 0


@pytest.mark.parametrize("launcher", ["basic", "joblib"])
def test_a_failing_job_leaves_its_siblings_running(monkeypatch, tmp_path, capfd, launcher):
    code = run_sweep_in_process(
        monkeypatch,
        tmp_path,
        "-m",
        f"hydra/launcher={launcher}",
        *(["hydra.launcher.n_jobs=2"] if launcher == "joblib" else []),
        "hydra.sweep.dir=sweep",
        "seed=0,1,2",
    )
    assert code == 1
    records = {
        job: json.loads((tmp_path / "sweep" / job / "metrics.json").read_text()) for job in "012"
    }
    assert records["0"]["status"] == "failed"
    assert records["0"]["error"] == "DataError: ../shared/data/a.npz: file not found"
    for job in "12":
        assert records[job]["status"] == "completed"
        assert records[job]["metrics"] == {"test/en/acc": 0.5 + int(job) / 10}
    lines = capfd.readouterr().err.strip().splitlines()
    assert "xlv-train: ../shared/data/a.npz: file not found" in lines  # the job's own line
    assert lines[-1] == (
        "xlv-train: 1 of 3 jobs failed: 0 (DataError: ../shared/data/a.npz: file not found)"
    )


def test_the_sweep_ends_naming_jobs_that_failed_or_never_finished(tmp_path, capsys):
    from omegaconf import OmegaConf

    from xlvision.cli.sweep_jobs import end_sweep, record_failure
    from xlvision.records import write_metrics

    sweep = tmp_path / "sweep"
    for job in ("0", "1", "2", "10"):
        (sweep / job / ".hydra").mkdir(parents=True)
    write_metrics(sweep / "0", "train", {"test/en/acc": 0.5})
    # Job 1 failed before its stage recorded anything; job 2 left a record that says running.
    job_cfg = OmegaConf.create({"stage": "train", "paths": {"output_dir": str(sweep / "1")}})
    record_failure(job_cfg, "RunDirError: x: cannot write there")
    record_failure(job_cfg, "a second failure does not write over the first")
    write_metrics(sweep / "2", "train", {}, status="running")
    grid = OmegaConf.create({"hydra": {"sweeper": {"_target_": "BasicSweeper"}}})
    with pytest.raises(SystemExit) as stop:
        end_sweep(grid, sweep)
    assert stop.value.code == 1
    assert capsys.readouterr().err.splitlines() == [
        f"{Path(sys.argv[0]).name}: 3 of 4 jobs failed: 1 (RunDirError: x: cannot write there), "
        "2 (never finished: metrics.json says 'running'), 10 (never finished: no metrics.json)"
    ]
    # A search's failed trials are named, but its best trial stands: no exit code.
    search = OmegaConf.create({"hydra": {"sweeper": {"_target_": "x.OptunaSweeper"}}})
    end_sweep(search, sweep)
    assert " 3 of 4 trials failed: 1 (" in capsys.readouterr().err
    for job in ("1", "2", "10"):
        write_metrics(sweep / job, "train", {"test/en/acc": 0.5})
    end_sweep(grid, sweep)
    assert capsys.readouterr().err == ""
