"""Hydra multirun through the console script, as a user runs a sweep."""

from __future__ import annotations

import json

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
