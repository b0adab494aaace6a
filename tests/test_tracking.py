"""Dashboards: W&B (offline), TensorBoard and MLflow record the same final metrics."""

from __future__ import annotations

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from wandb_records import logged_values

from xlvision.stages.runner import run_stage
from xlvision.stages.train import train

KEYS = ("test/en/acc", "test/en/f1", "test/mean/acc", "val/en/recall")


def tensorboard_scalars(run_dir) -> dict[str, float]:
    """Fit, validate and test each write an event file; the last value of a tag wins."""
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
