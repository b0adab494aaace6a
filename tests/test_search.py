"""Hyperparameter search: `hparams_search=optuna`, the Optuna sweeper over fine-tuning."""

from __future__ import annotations

import json

from conftest import run_cli
from omegaconf import OmegaConf

from xlvision.cli.search import searched_keys
from xlvision.config import compose_config


def test_the_search_preset_searches_rate_decay_and_strategy():
    cfg = compose_config(["stage=finetune", "hparams_search=optuna", "language=kn"])
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("OptunaSweeper")
    assert sweeper.direction == "maximize"
    assert set(sweeper.params) == {"finetune", "finetune.lr", "optimizer.weight_decay"}
    assert sweeper.max_failure_rate == 1.0  # a failed trial does not end the study
    # xlv-finetune's default strategy would pin `finetune`: the search decides it instead.
    assert searched_keys(["hparams_search=optuna", "language=kn"]) == set(sweeper.params)
    assert searched_keys(["language=kn"]) == set()


def test_four_trials_with_a_failed_one_end_in_the_best_of_the_others(tmp_path):
    base = run_cli("xlv-train", "debug=fast", "hydra.run.dir=base", cwd=tmp_path)
    assert base.returncode == 0, base.stderr[-2000:]
    result = run_cli(
        "xlv-finetune",
        "-m",
        "hparams_search=optuna",
        "language=kn",
        "base=base/checkpoints/best.ckpt",
        "debug=fast",
        "trainer.limit_train_batches=2",
        "hydra.sweeper.n_trials=4",
        # seed=-1 is refused when its trial starts: a trial that fails (sampler seed 0
        # draws it for trials 1 and 3).
        "++hydra.sweeper.params.seed='choice(0,-1)'",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (sweep,) = list((tmp_path / "outputs" / "multirun").glob("*/*"))
    records = {
        int(job.name): json.loads((job / "metrics.json").read_text())
        for job in sweep.iterdir()
        if job.name.isdigit()
    }
    assert sorted(records) == [0, 1, 2, 3]
    failed = [r for r in records.values() if r["status"] == "failed"]
    completed = [r for r in records.values() if r["status"] == "completed"]
    assert failed and completed
    best = OmegaConf.load(sweep / "optimization_results.yaml")
    assert best["best_value"] == max(r["metrics"]["val/kn/acc"] for r in completed)
    assert best["best_params"]["finetune"] in {
        "full",
        "linear_probe",
        "partial",
        "bitfit",
        "l2sp",
        "lora",
    }
    console = result.stdout + result.stderr
    assert "seed=-1 is not allowed" in console  # the failed trial's one line
    for chatter in ("A new study created", "setup plugin", "Traceback"):
        assert chatter not in console
