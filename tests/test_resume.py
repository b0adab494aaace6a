"""Resume: a run killed with SIGKILL mid-training continues from last.ckpt to the same end,
in its own dir or in a moved or copied one, and never beside another writer."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from conftest import SCRIPTS, run_cli, run_in_process

from xlvision.training.callbacks import CheckpointsFollowRunDir
from xlvision.training.fit import restore_csv_history

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


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def start_training(run_dir: Path, cwd: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "XLV_CACHE_DIR": str(cwd / "cache")}
    return subprocess.Popen(
        [str(SCRIPTS / "xlv-train"), *args, f"hydra.run.dir={run_dir}"],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def wait_for_first_checkpoint(run_dir: Path, proc: subprocess.Popen) -> None:
    """Until epoch 0's last.ckpt is whole on disk (it loads), the run still going."""
    last = run_dir / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the run ended before its first checkpoint"
        try:
            torch.load(last, map_location="cpu", weights_only=True)
            return
        except Exception:  # not there yet, or half written
            time.sleep(0.05)
    raise AssertionError(f"no checkpoint in {run_dir} after 600 s")


def kill(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL


@dataclass
class Killed:
    full: Path  # the same run never interrupted
    pristine: Path  # a copy of the killed run as the kill left it
    original: Path  # where it was killed (its config.yaml names this dir)

    def place(self, where: Path) -> Path:
        """A fresh copy of the killed run at `where`."""
        shutil.rmtree(where, ignore_errors=True)
        shutil.copytree(self.pristine, where, symlinks=True)
        return where


@pytest.fixture(scope="module")
def killed(tmp_path_factory) -> Killed:
    """One run trained whole and one SIGKILLed after its first checkpoint, for every test."""
    base = tmp_path_factory.mktemp("killed")
    full = base / "full"
    assert run_cli("xlv-train", *ARGS, f"hydra.run.dir={full}", cwd=base).returncode == 0
    original = base / "killed"
    proc = start_training(original, base, *ARGS)
    wait_for_first_checkpoint(original, proc)
    kill(proc)
    assert json.loads((original / "metrics.json").read_text())["status"] == "running"
    pristine = base / "pristine"
    original.rename(pristine)
    return Killed(full, pristine, original)


def assert_resumed_whole(run_dir: Path, full: Path) -> None:
    """The resumed run ends as the one never killed: the same metrics, every step's loss,
    every epoch's validation once, its checkpoints under their own names."""
    assert final_test_metrics(run_dir) == pytest.approx(final_test_metrics(full), abs=1e-6)
    # The same batches, augmentation and dropout draws after the kill as without it: every
    # step's training loss is the same (a different order would show from the first step).
    losses = train_losses(full)
    assert len(losses) == 200 and train_losses(run_dir) == losses
    assert val_epochs(run_dir) == val_epochs(full) == [0, 1, 2, 3, 4]  # 4: the final validate
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]


def test_killed_run_resumes_to_the_same_metrics(killed, tmp_path):
    run_dir = killed.place(killed.original)
    # The report sees the killed run as interrupted.
    report = run_in_process(
        "xlv-report", f"runs=[{run_dir}]", f"report.out_dir={tmp_path / 'report'}", cwd=tmp_path
    )
    assert report.returncode == 0 and "interrupted" in report.stdout + report.stderr

    result = run_cli("xlv-train", f"resume={run_dir}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert_resumed_whole(run_dir, killed.full)


def test_a_moved_run_dir_resumes_whole_in_its_new_place(killed, tmp_path):
    shutil.rmtree(killed.original, ignore_errors=True)  # moved away: the old place is gone
    moved = killed.place(tmp_path / "elsewhere" / "moved")
    result = run_cli("xlv-train", f"resume={moved}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert_resumed_whole(moved, killed.full)
    assert not killed.original.exists()  # nothing written where it was
    assert str(killed.original) not in (moved / "config.yaml").read_text()


def test_a_copied_run_dir_resumes_whole_once_and_leaves_the_original_alone(killed, tmp_path):
    original = killed.place(killed.original)
    before = snapshot(original)
    copy = killed.place(tmp_path / "copy")
    # Resumed twice at once: one continues it, the other is refused in one line.
    env = {**os.environ, "XLV_CACHE_DIR": str(tmp_path / "cache")}
    results = []
    with (tmp_path / "a.err").open("w+") as first, (tmp_path / "b.err").open("w+") as second:
        procs = [
            subprocess.Popen(
                [str(SCRIPTS / "xlv-train"), f"resume={copy}"],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
            for log in (first, second)
        ]
        for proc, log in zip(procs, (first, second), strict=True):
            code = proc.wait(timeout=900)
            log.seek(0)
            results.append((code, log.read(), proc.pid))
    results.sort()
    (ok, _, winner), (refused, message, _) = results
    assert (ok, refused) == (0, 1), message[-2000:]
    assert message.strip().splitlines() == [
        f"xlv-train: {copy}: process {winner} is writing into this run; wait for it to end "
        "(or stop it) before resuming it or writing there"
    ]
    assert_resumed_whole(copy, killed.full)
    assert snapshot(original) == before


def test_a_run_still_training_refuses_a_second_writer(tmp_path):
    run_dir = tmp_path / "live"
    proc = start_training(run_dir, tmp_path, "debug=fast", "trainer.max_epochs=1000")
    try:
        wait_for_first_checkpoint(run_dir, proc)
        os.killpg(proc.pid, signal.SIGSTOP)  # holds its dir, writes nothing while we look
        before = snapshot(run_dir)
        result = run_cli("xlv-train", f"resume={run_dir}", cwd=tmp_path)
        assert result.returncode == 1, result.stderr[-2000:]
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"xlv-train: {run_dir}: process ")
        assert f"process {proc.pid} is writing into this run" in lines[0]
        assert snapshot(run_dir) == before
    finally:
        kill(proc)


def test_the_csv_history_takes_the_union_of_columns(tmp_path):
    """Rows before the resumed epoch, rows a resumed run wrote, and a row a second writer left
    longer than its header (read with a None key) make one file."""
    csv_file = tmp_path / "csv" / "metrics.csv"
    csv_file.parent.mkdir()
    csv_file.write_text("epoch,step,val/kn/acc\n1,99,0.5\n")  # the resumed run's rows
    before = [
        {"epoch": "0", "step": "49", "train/loss": "2.1"},
        {"epoch": "0", "step": "50", "val/kn/acc": "0.3", "time/train_s": "1.0"},
        {"epoch": "1", "step": "60", "train/loss": "1.9"},  # after the checkpoint: dropped
        {"step": "70"},  # no epoch: dropped
    ]
    with (tmp_path / "broken.csv").open("w") as file:
        file.write("epoch,step\n0,51,extra,values\n")
    with (tmp_path / "broken.csv").open() as file:
        before.append(next(csv.DictReader(file)))  # {"epoch", "step", None: [...]}
    restore_csv_history(csv_file, before, resumed_epoch=1)
    with csv_file.open() as file:
        reader = csv.DictReader(file)
        rows = list(reader)
    assert reader.fieldnames == ["epoch", "step", "time/train_s", "train/loss", "val/kn/acc"]
    assert [(r["epoch"], r["step"]) for r in rows] == [
        ("0", "49"),
        ("0", "50"),
        ("0", "51"),
        ("1", "99"),
    ]
    assert rows[1]["val/kn/acc"] == "0.3" and rows[3]["train/loss"] == ""


def test_checkpoint_state_follows_a_moved_dir(tmp_path):
    """What last.ckpt remembers of its files names the old dir; the Trainer's dir is new."""

    class Trainer:
        class checkpoint_callback:  # noqa: N801
            dirpath = str(tmp_path / "new" / "checkpoints")

    old = "/old/run/checkpoints"
    state = {
        "dirpath": old,
        "best_model_path": f"{old}/best.ckpt",
        "last_model_path": f"{old}/last.ckpt",
        "kth_best_model_path": f"{old}/best.ckpt",
        "best_k_models": {f"{old}/best.ckpt": 0.9},
        "best_model_score": 0.9,
    }
    key = "ModelCheckpoint{'monitor': 'val/mean/acc', 'mode': 'max'}"
    checkpoint = {"callbacks": {key: state, "RngState": {"dirpath": old}}}
    CheckpointsFollowRunDir().on_load_checkpoint(Trainer, None, checkpoint)
    new = Trainer.checkpoint_callback.dirpath
    assert checkpoint["callbacks"][key] == {
        "dirpath": new,
        "best_model_path": f"{new}/best.ckpt",
        "last_model_path": f"{new}/last.ckpt",
        "kth_best_model_path": f"{new}/best.ckpt",
        "best_k_models": {f"{new}/best.ckpt": 0.9},
        "best_model_score": 0.9,
    }
    assert checkpoint["callbacks"]["RngState"] == {"dirpath": old}  # not a ModelCheckpoint


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
    result = run_in_process("xlv-train", f"resume={run_dir}", *extra, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("xlv-train: ") and message in lines[0]


def test_a_killed_and_moved_pipeline_resumes_keeping_its_finished_stages(tmp_path, capsys):
    from xlvision.cli.app import resume_config
    from xlvision.config.compose import compose_config
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
    moved = tmp_path / "moved"  # and moved elsewhere before it is resumed
    root.rename(moved)

    resumed = resume_config([f"resume={moved}"], "pipeline")
    capsys.readouterr()
    metrics, artifacts = run_stage(pipeline, resumed)
    said = capsys.readouterr().err
    assert f"{moved / 'finetune_kn'}: completed before, kept" in said
    assert f"{moved / 'finetune_ar'}: resumed from its last.ckpt" in said
    assert (moved / "finetune_kn" / "metrics.json").read_text() == kept  # not rerun
    for stage in ("finetune_ar", "integrate", "eval", "."):
        assert json.loads((moved / stage / "metrics.json").read_text())["status"] == "completed"
    assert Path(artifacts["bundle"]).is_relative_to(moved) and "eval/test/ar/acc" in metrics
    # Each stage logs into its own dir in the new place, none into the pipeline's or the old.
    assert (moved / "finetune_ar" / "csv" / "metrics.csv").is_file()
    assert not (moved / "csv").exists() and not root.exists()


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory) -> Path:
    """A two-job sweep (`debug=fast seed=0,1`) run whole; each test resumes a copy of it."""
    base = tmp_path_factory.mktemp("sweep")
    args = ["-m", "debug=fast", "seed=0,1", f"hydra.sweep.dir={base / 'sweep'}"]
    assert run_cli("xlv-train", *args, cwd=base).returncode == 0
    return base / "sweep"


def copied_sweep(finished_sweep: Path, tmp_path: Path) -> Path:
    """A copy of the finished sweep whose runs name their copied dirs, as if run there."""
    sweep = tmp_path / "sweep"
    shutil.copytree(finished_sweep, sweep, symlinks=True)
    for path in sweep.rglob("*"):
        if path.is_file() and path.suffix in (".yaml", ".json", ".log"):
            text = path.read_text()
            if str(finished_sweep) in text:
                path.write_text(text.replace(str(finished_sweep), str(sweep)))
    return sweep


def test_a_resumed_sweep_reruns_only_its_unfinished_jobs(finished_sweep, tmp_path):
    sweep = copied_sweep(finished_sweep, tmp_path)
    finished = (sweep / "0" / "metrics.json").read_text()
    # Job 1 as if killed before its first checkpoint.
    record = json.loads((sweep / "1" / "metrics.json").read_text())
    (sweep / "1" / "metrics.json").write_text(json.dumps({**record, "status": "running"}))
    shutil.rmtree(sweep / "1" / "checkpoints")

    result = run_in_process(
        "xlv-train", "-m", "debug=fast", "seed=0,1", f"resume={sweep}", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (sweep / "0" / "metrics.json").read_text() == finished  # kept, not rerun
    assert json.loads((sweep / "1" / "metrics.json").read_text())["status"] == "completed"
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1"]


def test_a_sweep_resumed_with_other_values_leaves_every_run_as_it_was(finished_sweep, tmp_path):
    sweep = copied_sweep(finished_sweep, tmp_path)
    files = ("metrics.json", ".hydra/overrides.yaml", ".hydra/config.yaml", "config.yaml")
    before = {(job, f): (sweep / job / f).read_bytes() for job in ("0", "1") for f in files}

    # seed=1,2 numbers its jobs 0 (seed 1) and 1 (seed 2): both dirs hold other seeds' runs.
    result = run_in_process(
        "xlv-train", "-m", "debug=fast", "seed=1,2", f"resume={sweep}", cwd=tmp_path
    )
    assert result.returncode == 1
    refusals = [line for line in result.stderr.splitlines() if "launched with" in line]
    assert len(refusals) == 3, result.stderr[-2000:]  # one per job, one at the end
    assert "holds the run of seed=0, not seed=1" in refusals[0]
    assert f"{sweep / '0'}, {sweep / '1'}" in refusals[-1]
    after = {(job, f): (sweep / job / f).read_bytes() for job in ("0", "1") for f in files}
    assert after == before
    assert not list(sweep.rglob(".hydra.kept"))

    # The same values again: every job is the one its dir holds, kept.
    result = run_in_process(
        "xlv-train", "-m", "debug=fast", "seed=0,1", f"resume={sweep}", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stderr.count("completed before, kept") == 2
    assert (sweep / "0" / "metrics.json").read_bytes() == before[("0", "metrics.json")]
    assert not list(sweep.rglob(".hydra.kept"))
