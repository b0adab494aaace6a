"""Hyperparameter search: `hparams_search=optuna`, the Optuna sweeper over fine-tuning."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli, run_in_process
from omegaconf import OmegaConf

from xlvision.cli.app import check_command_line, override_combinations
from xlvision.cli.search import search_combinations, searched_keys
from xlvision.config.compose import compose_config
from xlvision.config.errors import ConfigError


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
    base = run_in_process("xlv-train", "debug=fast", "hydra.run.dir=base", cwd=tmp_path)
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
        # An interval on the command line replaces the preset's for that key.
        "finetune.lr=interval(0.002,0.003)",
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
    for job in sweep.iterdir():
        if job.name.isdigit():
            assert 0.002 <= OmegaConf.load(job / "config.yaml").finetune.lr <= 0.003
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


SEARCH = ["-m", "stage=finetune", "hparams_search=optuna", "language=kn"]


def test_a_search_takes_intervals_and_choices_for_its_keys_on_the_command_line():
    searched = [
        "finetune.lr=interval(1e-4,1e-2)",
        "optimizer.weight_decay=tag(log, interval(1e-6,1e-3))",
        "finetune=choice(lora,bitfit)",
        "data.batch_size=range(16,80,16)",
        "finetune.head_init=random",  # a fixed value of the strategy each trial picks
    ]
    check_command_line([*SEARCH, *searched], "config")
    combos = search_combinations([*SEARCH[1:], *searched], "config")
    # The ends of each command-line interval and range and each choice are composed.
    tried = {item for combo in combos for item in combo}
    assert {"finetune.lr=0.0001", "finetune.lr=0.01", "data.batch_size=64"} <= tried
    assert {"finetune=lora", "finetune=bitfit", "optimizer.weight_decay=0.001"} <= tried
    # The preset's own keys take their first value; those the command line gives are its.
    assert "finetune=full" not in tried and "finetune.lr=0.0001" in combos[0]
    assert search_combinations(["-m", "seed=0,1"], "config") is None  # a grid sweep


@pytest.mark.parametrize(
    ("override", "line"),
    [
        (
            "finetune.lrr=interval(1e-4,1e-2)",
            "finetune.lrr='interval(1e-4,1e-2)' is not allowed: no such key in the config (a typo?)",
        ),
        (
            "optimizer.lr_typo=choice(0.1,0.2)",
            "optimizer.lr_typo='choice(0.1,0.2)' is not allowed: no such key in the config (a typo?)",
        ),
        (
            "optimizer.momentum=interval(0.5,2)",
            "optimizer.momentum=2.0 is not allowed: a number in [0, 1)",
        ),
        (
            "data.batch_size=interval(16,64)",
            "data.batch_size='interval(16,64)' is not allowed: an integer; an interval draws "
            "real numbers: search it with range(a,b)",
        ),
        (
            "finetune=choice(full,nope)",
            "finetune='nope' is not allowed: one of bitfit, full, l2sp, linear_probe, lora, partial",
        ),
    ],
)
def test_a_search_refuses_a_bad_key_or_value_in_one_line_naming_it(override, line):
    with pytest.raises(ConfigError) as err:
        check_command_line([*SEARCH, override], "config")
    assert str(err.value) == line


def test_an_interval_in_a_grid_sweep_is_refused_naming_the_key():
    with pytest.raises(ConfigError) as err:
        override_combinations(["finetune=full", "finetune.lr=interval(1e-4,1e-2)"])
    assert str(err.value) == (
        "finetune.lr='interval(1e-4,1e-2)' is not allowed: an interval is searched, not swept: "
        "add hparams_search=optuna, or give values (a,b,c) or range(start,stop,step)"
    )
