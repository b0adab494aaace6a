"""Parallel sweeps on one machine: the joblib launcher, each job with its share of threads."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli

from xlvision.cli.job_threads import threads_per_job
from xlvision.config.compose import compose_config
from xlvision.config.errors import ConfigError


@pytest.mark.parametrize(
    ("n_jobs", "cores", "threads"),
    [(2, 2, 1), (2, 16, 8), (4, 2, 1), (-1, 8, 1), (-2, 8, 1), (3, 16, 5), (1, 8, None)],
)
def test_each_job_gets_its_share_of_the_cores(n_jobs, cores, threads):
    assert threads_per_job(n_jobs, cores) == threads


def test_a_sweep_without_parallel_jobs_keeps_its_threads():
    assert threads_per_job(None, 8) is None  # the basic launcher: one job at a time


def test_the_joblib_launcher_composes_with_the_thread_share():
    cfg = compose_config(["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"])
    assert cfg.hydra.launcher._target_.endswith("JoblibLauncher")
    assert cfg.hydra.launcher.n_jobs == 2
    assert cfg.hydra.callbacks.thread_share._target_ == "xlvision.cli.job_threads.ThreadShare"


def test_an_unknown_launcher_is_one_line_naming_it():
    with pytest.raises(ConfigError, match="hydra/launcher/nope"):
        compose_config(["hydra/launcher=nope"])


def test_two_jobs_run_side_by_side_and_each_records_its_run(tmp_path):
    result = run_cli(
        "xlv-train",
        "-m",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "debug=fast",
        "trainer.limit_train_batches=2",
        "seed=0,1",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (sweep,) = list((tmp_path / "outputs" / "multirun").glob("*/*"))
    for job in ("0", "1"):
        record = json.loads((sweep / job / "metrics.json").read_text())
        assert record["status"] == "completed"
        assert f"seed: {job}" in (sweep / job / "config.yaml").read_text()
