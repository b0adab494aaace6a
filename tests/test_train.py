"""Training end to end on CPU: the files a run leaves and the numbers in them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from wandb_records import logged_values

from xlvision.records import read_metrics
from xlvision.stages.runner import run_stage
from xlvision.stages.train import train


def check_run_dir(run: Path, languages: list[str]) -> dict:
    record = read_metrics(run)
    assert record["status"] == "completed" and record["error"] is None
    metrics = record["metrics"]
    for code in [*languages, "mean"]:
        for name in ("acc", "recall", "f1"):
            assert 0.0 <= metrics[f"test/{code}/{name}"] <= 1.0
            assert 0.0 <= metrics[f"val/{code}/{name}"] <= 1.0
    assert (run / "config.yaml").is_file()
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert (run / record["artifacts"]["checkpoint"]).is_file()  # relative to the run dir
    assert "train/loss" in (run / "csv" / "metrics.csv").read_text().splitlines()[0]
    return record


def test_net_trains_and_beats_chance(make_config, tmp_path):
    cfg = make_config(
        "trainer.limit_train_batches=1.0", "trainer.limit_test_batches=1.0", "trainer.max_epochs=2"
    )
    metrics, _ = run_stage(train, cfg)
    record = check_run_dir(tmp_path / "run", ["en"])
    assert record["metrics"] == pytest.approx(metrics)
    assert metrics["test/en/acc"] > 0.3  # 10 classes: chance is 0.1
    confusion = torch.tensor(record["confusion"]["test/en"])
    assert confusion.shape == (10, 10) and confusion.sum() == 200
    assert confusion.diag().sum() / 200 == pytest.approx(metrics["test/en/acc"])
    assert metrics["trainable_params"] > 700_000


def test_resnet18_smoke(make_config, tmp_path):
    cfg = make_config(
        "model=resnet18",
        "data.batch_size=16",
        "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1",
    )
    metrics, _ = run_stage(train, cfg)
    check_run_dir(tmp_path / "run", ["en"])
    assert metrics["trainable_params"] > 11_000_000


def test_failed_run_records_its_error(make_config, tmp_path, monkeypatch):
    cfg = make_config()

    def broken(cfg):
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        run_stage(broken, cfg)
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert record["status"] == "failed"
    assert record["error"] == "RuntimeError: disk on fire"


def test_checkpoint_names_its_architecture(make_config, tmp_path):
    cfg = make_config("trainer.limit_train_batches=1")
    run_stage(train, cfg)
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=False)
    assert ckpt["xlvision"]["model"]["name"] == "net"
    assert ckpt["xlvision"]["classes"] == {"en": 10}


def test_wandb_offline_run_records_the_metrics(make_config, tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc key
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = make_config("logger=wandb", "trainer.limit_train_batches=2")
    assert cfg.logger.wandb.offline is True
    metrics, _ = run_stage(train, cfg)
    logs = list((tmp_path / "run" / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(logs) == 1
    logged = logged_values(logs[0])
    assert logged["test/en/acc"] == pytest.approx(metrics["test/en/acc"])
    assert logged["val/en/f1"] == pytest.approx(metrics["val/en/f1"])


def test_a_run_records_running_from_its_start(make_config, tmp_path):
    seen = {}

    def peek(cfg):
        seen.update(read_metrics(cfg.paths.output_dir))
        return {"x": 1.0}, {}

    run_stage(peek, make_config())
    assert seen["status"] == "running" and seen["artifacts"]["pid"] > 0
    assert read_metrics(tmp_path / "run")["status"] == "completed"


def test_a_dir_holding_a_run_is_never_written_over(make_config, tmp_path):
    from xlvision.rundir import RunDirError

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "metrics.json").write_text('{"status": "running"}')
    (run_dir / "config.yaml").write_text("seed: 7\n")
    with pytest.raises(RunDirError, match=f"^{run_dir} already holds a run"):
        run_stage(lambda cfg: ({}, {}), make_config())
    assert (run_dir / "metrics.json").read_text() == '{"status": "running"}'
    assert (run_dir / "config.yaml").read_text() == "seed: 7\n"


def test_cli_refuses_a_run_dir_holding_a_run_in_one_line(tmp_path):
    from conftest import run_cli

    run_dir = tmp_path / "old"
    run_dir.mkdir()
    (run_dir / "metrics.json").write_text('{"status": "completed", "metrics": {}}')
    result = run_cli("xlv-train", "debug=fast", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"xlv-train: {run_dir} already holds a run (its metrics.json); give another "
        "hydra.run.dir, or delete that one"
    )
    assert sorted(p.name for p in run_dir.iterdir() if p.name != ".hydra") == ["metrics.json"]


def test_the_training_loss_is_written_every_log_every_n_steps(make_config, tmp_path):
    import csv

    cfg = make_config(
        "trainer.log_every_n_steps=2", "trainer.limit_train_batches=5", "trainer.max_epochs=2"
    )
    run_stage(train, cfg)
    with (tmp_path / "run" / "csv" / "metrics.csv").open() as file:
        rows = [r for r in csv.DictReader(file) if r.get("train/loss")]
    # 10 steps; Lightning writes after steps 2, 4, … (step index 1, 3, …), each a finite loss.
    assert [int(r["step"]) for r in rows] == [1, 3, 5, 7, 9]
    assert all(0 < float(r["train/loss"]) < 10 for r in rows)
