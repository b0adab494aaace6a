"""Dashboards: W&B (offline), TensorBoard and MLflow record the same final metrics."""

from __future__ import annotations

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from wandb_records import logged_values

from xlvision.stages.runner import run_stage
from xlvision.stages.train import train

KEYS = ("test/en/acc", "test/en/f1", "test/mean/acc", "val/en/recall")


def tensorboard_scalars(run_dir) -> dict[str, float]:
    """Every event file of the run (there is one); the last value of a tag wins."""
    out: dict[str, float] = {"_images": []}
    for events in sorted((run_dir / "tensorboard").glob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0, "images": 0})
        acc.Reload()
        out.update({tag: acc.Scalars(tag)[-1].value for tag in acc.Tags()["scalars"]})
        out["_images"] += acc.Tags()["images"]
    return out


def mlflow_metrics(run_dir) -> dict[str, float]:
    (run,) = [p for p in (run_dir / "mlruns").glob("*/*") if (p / "metrics").is_dir()]
    out = {}
    for file in (run / "metrics").rglob("*"):
        if file.is_file():
            last = file.read_text().strip().splitlines()[-1].split()
            out[str(file.relative_to(run / "metrics"))] = float(last[1])
    out["_artifacts"] = sorted(p.name for p in (run / "artifacts").rglob("*") if p.is_file())
    return out


def test_every_dashboard_holds_the_same_final_metrics(make_config, tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = make_config("logger=many", "trainer.limit_train_batches=2")
    assert set(cfg.logger) == {"csv", "wandb", "tensorboard", "mlflow"}
    metrics, _ = run_stage(train, cfg)
    run_dir = tmp_path / "run"

    (log,) = list((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    wandb_values = logged_values(log)
    tensorboard = tensorboard_scalars(run_dir)
    mlflow = mlflow_metrics(run_dir)
    for key in KEYS:
        assert wandb_values[key] == pytest.approx(metrics[key])
        assert tensorboard[key] == pytest.approx(metrics[key])
        assert mlflow[key] == pytest.approx(metrics[key])

    assert wandb_values["test/en/confusion/_type"] == "images/separated"
    assert wandb_values["test/en/confusion_table/_type"] == "table-file"
    assert wandb_values["test/en/confusion_table/nrows"] == 100
    assert {"en", "net", "train"} <= set(wandb_values["_tags"])
    params = next((run_dir / "mlruns").glob("*/*/params"))
    assert (params / "model" / "name").read_text() == "net"
    assert (params / "optimizer" / "lr").read_text() == "0.001"
    assert "test/en/confusion" in tensorboard["_images"]
    assert "test_en_confusion.png" in mlflow["_artifacts"]

    # One event file per run, though Lightning finalizes after fit and again after test.
    assert len(list((run_dir / "tensorboard").glob("events.out.tfevents.*"))) == 1
    # Each dashboard names the run after its dir and tags it alike; the summary reaches all.
    trainable = metrics["trainable_params"]
    assert wandb_values["trainable_params"] == mlflow["trainable_params"] == trainable
    assert tensorboard["trainable_params"] == trainable
    (run,) = [p for p in (run_dir / "mlruns").glob("*/*") if (p / "tags").is_dir()]
    assert (run / "tags" / "mlflow.runName").read_text() == f"{tmp_path.name}/run"
    assert {"en", "net", "train", "run_dir"} <= {p.name for p in (run / "tags").iterdir()}


def test_wandb_is_not_told_an_anonymous_setting(tmp_path):
    """W&B warns on every run that `anonymous` "has no effect" once it is passed at all."""
    from xlvision.training.loggers import WandbLogger

    assert "anonymous" not in WandbLogger(offline=True, save_dir=str(tmp_path))._wandb_init
    assert WandbLogger(anonymous=True, save_dir=str(tmp_path))._wandb_init["anonymous"] == "allow"
