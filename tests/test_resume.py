"""Resume: a run killed with SIGKILL mid-training continues from last.ckpt to the same end."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import SCRIPTS, run_cli

# Deterministic, four epochs of 50 steps: long enough to be killed mid-run.
ARGS = [
    "debug=fast",
    "language=kn",
    "data.train_per_class=80",
    "data.batch_size=16",
    "trainer.limit_train_batches=1.0",
    "trainer.max_epochs=4",
    "trainer.deterministic=true",
]


def final_test_metrics(run_dir: Path) -> dict:
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["status"] == "completed", record.get("error")
    return {k: v for k, v in record["metrics"].items() if k.startswith("test/")}


def train_losses(run_dir: Path) -> dict[int, float]:
    with (run_dir / "csv" / "metrics.csv").open() as file:
        rows = csv.DictReader(file)
        return {int(r["step"]): float(r["train/loss"]) for r in rows if r.get("train/loss")}


def val_epochs(run_dir: Path) -> list[int]:
    with (run_dir / "csv" / "metrics.csv").open() as file:
        return [int(float(r["epoch"])) for r in csv.DictReader(file) if r.get("val/kn/acc")]


def kill_after_first_checkpoint(run_dir: Path, cwd: Path) -> None:
    """Start xlv-train, SIGKILL it once epoch 1's last.ckpt is on disk, mid-epoch 2."""
    env = {**os.environ, "XLV_CACHE_DIR": str(cwd / "cache")}
    proc = subprocess.Popen(
        [str(SCRIPTS / "xlv-train"), *ARGS, f"hydra.run.dir={run_dir}"],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    last = run_dir / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 600
    while not last.is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # into the next epoch
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["status"] == "running"  # killed before it finished


def test_killed_run_resumes_to_the_same_metrics(tmp_path):
    full = tmp_path / "full"
    assert run_cli("xlv-train", *ARGS, f"hydra.run.dir={full}", cwd=tmp_path).returncode == 0
    killed = tmp_path / "killed"
    kill_after_first_checkpoint(killed, tmp_path)

    # The report sees the killed run as interrupted.
    report = run_cli(
        "xlv-report", f"runs=[{killed}]", f"report.out_dir={tmp_path / 'report'}", cwd=tmp_path
    )
    assert report.returncode == 0 and "interrupted" in report.stdout + report.stderr

    result = run_cli("xlv-train", f"resume={killed}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert final_test_metrics(killed) == pytest.approx(final_test_metrics(full), abs=1e-6)
    # The same batches, augmentation and dropout draws after the kill as without it: every
    # step's training loss is the same (a different order would show from the first step).
    losses = train_losses(full)
    assert len(losses) == 200 and train_losses(killed) == losses
    # The epochs before the kill are kept in the curve, each once.
    assert val_epochs(killed) == val_epochs(full) == [0, 1, 2, 3, 4]  # 4: the final validate


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("none", "no run there (no config.yaml)"),
        ("completed", "that run already completed"),
        ("no_ckpt", "no checkpoints/last.ckpt to resume from"),
        ("extra", "resume= takes no other argument"),
    ],
)
def test_resume_mistakes_are_one_line(tmp_path, setup, message):
    run_dir = tmp_path / "run"
    extra = []
    if setup != "none":
        run_dir.mkdir()
        (run_dir / "config.yaml").write_text("stage: train\n")
        status = "completed" if setup == "completed" else "running"
        (run_dir / "metrics.json").write_text(json.dumps({"status": status}))
    if setup == "extra":
        (run_dir / "checkpoints").mkdir()
        (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"")
        extra = ["trainer.max_epochs=9"]
    result = run_cli("xlv-train", f"resume={run_dir}", *extra, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("xlv-train: ") and message in lines[0]


def test_a_killed_pipeline_resumes_keeping_its_finished_stages(tmp_path):
    from xlvision.cli.app import resume_config
    from xlvision.config import compose_config
    from xlvision.stages.pipeline import pipeline
    from xlvision.stages.runner import run_stage

    root = tmp_path / "pipe"
    cfg = compose_config(
        [
            f"paths.output_dir={root}",
            f"paths.cache_dir={tmp_path / 'cache'}",
            "debug=fast",
            "pipeline.targets=[kn,ar]",
        ],
        config_name="pipeline",
    )
    run_stage(pipeline, cfg)
    kept = (root / "finetune_kn" / "metrics.json").read_text()
    # As if killed during ar's fine-tuning: its record says running, nothing after it exists.
    record = json.loads((root / "finetune_ar" / "metrics.json").read_text())
    (root / "finetune_ar" / "metrics.json").write_text(json.dumps({**record, "status": "running"}))
    for later in ("integrate", "eval"):
        shutil.rmtree(root / later)
    pipe_record = json.loads((root / "metrics.json").read_text())
    (root / "metrics.json").write_text(json.dumps({**pipe_record, "status": "running"}))

    resumed = resume_config([f"resume={root}"], "pipeline")
    metrics, artifacts = run_stage(pipeline, resumed)
    assert (root / "finetune_kn" / "metrics.json").read_text() == kept  # not rerun
    for stage in ("finetune_ar", "integrate", "eval", "."):
        assert json.loads((root / stage / "metrics.json").read_text())["status"] == "completed"
    assert Path(artifacts["bundle"]).is_file() and "eval/test/ar/acc" in metrics


def test_a_resumed_sweep_reruns_only_its_unfinished_jobs(tmp_path):
    sweep = tmp_path / "sweep"
    args = ["-m", "debug=fast", "seed=0,1", f"hydra.sweep.dir={sweep}"]
    assert run_cli("xlv-train", *args, cwd=tmp_path).returncode == 0
    finished = (sweep / "0" / "metrics.json").read_text()
    # Job 1 as if killed before its first checkpoint.
    record = json.loads((sweep / "1" / "metrics.json").read_text())
    (sweep / "1" / "metrics.json").write_text(json.dumps({**record, "status": "running"}))
    shutil.rmtree(sweep / "1" / "checkpoints")

    result = run_cli("xlv-train", "-m", "debug=fast", "seed=0,1", f"resume={sweep}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (sweep / "0" / "metrics.json").read_text() == finished  # kept, not rerun
    assert json.loads((sweep / "1" / "metrics.json").read_text())["status"] == "completed"
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1"]
