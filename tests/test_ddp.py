"""`device=ddp_sim`: two CPU processes under DDP (gloo), run as a user runs them."""

from __future__ import annotations

import json

from conftest import run_cli

# Enough training for the metrics to mean something (about 70 % accuracy), in seconds. Batch
# norm and dropout are off: on CPU each process normalizes by its own half of the batch
# (PyTorch's SyncBatchNorm is CUDA-only) and draws its own dropout masks; with both off the
# two processes compute what one does, so the test metrics must agree.
SETUP = (
    "debug=fast",
    "data.train_per_class=100",
    "data.test_per_class=50",
    "trainer.max_epochs=2",
    "trainer.limit_train_batches=1.0",
    "trainer.limit_val_batches=1.0",
    "trainer.limit_test_batches=1.0",
    "model.batch_norm=false",
    "model.dropout=0",
)


def train(device: str, cwd) -> tuple[dict, str]:
    result = run_cli("xlv-train", f"device={device}", *SETUP, cwd=cwd)
    assert result.returncode == 0, result.stderr[-2000:]
    (run,) = list((cwd / "outputs" / "runs").glob("*/*"))  # one run dir, not one per rank
    record = json.loads((run / "metrics.json").read_text())
    assert record["status"] == "completed"
    return record["metrics"], result.stdout + result.stderr


def test_two_processes_reach_the_metrics_of_one_and_record_once(tmp_path):
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    one, _ = train("cpu", tmp_path / "one")
    two, console = train("ddp_sim", tmp_path / "two")
    assert one["test/mean/acc"] > 0.5
    for metric in ("acc", "recall", "f1"):
        assert abs(one[f"test/mean/{metric}"] - two[f"test/mean/{metric}"]) <= 0.005, metric
    assert console.count("outputs: ") == 1
    assert "sync_dist" not in console  # no library advice on the console
    assert not list((tmp_path / "two").glob("outputs/runs/*/*/*/metrics.json"))
