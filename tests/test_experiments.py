"""Every experiment preset: its sweep composes value by value, and a tiny run goes through."""

from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf

from xlvision.cli.app import override_combinations
from xlvision.config import compose_config
from xlvision.config.compose import group_options
from xlvision.stages.pipeline import pipeline

PRESETS = group_options("experiment")


def test_the_presets_the_readme_promises_exist():
    assert {"demo", "transfer_matrix", "kshot_curve", "strategy_ablation"} <= set(PRESETS)


@pytest.mark.parametrize("preset", PRESETS)
def test_every_swept_value_composes(preset, tmp_path):
    base = [f"experiment={preset}", f"paths.output_dir={tmp_path}"]
    cfg = compose_config(base, config_name="pipeline")
    sweep = [f"{k}={v}" for k, v in (cfg.hydra.sweeper.params or {}).items()]
    combos = override_combinations(sweep)
    for combo in combos:
        composed = compose_config(base + combo, config_name="pipeline")
        assert composed.stage == "pipeline"
    if sweep:
        assert len(combos) > 1


@pytest.mark.parametrize("preset", PRESETS)
def test_budget_gpu_raises_every_preset_and_its_cpu_defaults_stay(preset):
    cpu = compose_config([f"experiment={preset}"], config_name="pipeline")
    gpu = compose_config([f"experiment={preset}", "budget=gpu"], config_name="pipeline")
    assert (cpu.device.accelerator, cpu.model.name) == ("cpu", "net")
    # Sized for two CPU cores: unified's 18 epochs of 60,000 draws take about 10 minutes.
    assert cpu.data.train_per_class <= 600
    assert cpu.trainer.max_epochs <= (18 if preset == "unified" else 6)
    assert (gpu.device.accelerator, gpu.device.precision, gpu.model.name) == (
        "gpu",
        "bf16-mixed",
        "resnet18",
    )
    assert gpu.data.train_per_class >= 1000 and gpu.trainer.max_epochs >= 10
    assert gpu.trainer.max_epochs > cpu.trainer.max_epochs
    assert gpu.data.batch_size > cpu.data.batch_size and gpu.data.pin_memory
    # What the preset is about stays: its languages, shots, strategy, sweep, sources.
    for key in ("pipeline", "finetune", "integrate", "objective", "data.shots_per_class"):
        assert OmegaConf.select(gpu, key) == OmegaConf.select(cpu, key), key
    assert gpu.hydra.sweeper.params == cpu.hydra.sweeper.params
    assert OmegaConf.select(gpu, "data.sources") == OmegaConf.select(cpu, "data.sources")


def test_a_model_given_beside_the_budget_wins():
    cfg = compose_config(["experiment=kshot_curve", "budget=gpu", "model=net"], "pipeline")
    assert (cfg.model.name, cfg.trainer.max_epochs) == ("net", 30)


# `demo` is the pipeline's default preset: test_finetune_stage runs it end to end; `unified`
# bundles its pretrained model with no fine-tuning: tests/test_unified.py runs it.
@pytest.mark.parametrize("preset", [p for p in PRESETS if p not in ("demo", "unified")])
def test_preset_smoke_run(preset, tmp_path):
    cfg = compose_config(
        [
            f"experiment={preset}",
            f"paths.output_dir={tmp_path / 'pipe'}",
            f"paths.cache_dir={tmp_path / 'cache'}",
            "debug=fast",
            "pipeline.targets=[kn]",
            "data.train_per_class=60",
            "data.val_per_class=10",
            "data.test_per_class=20",
            "trainer.limit_train_batches=1",
            "trainer.limit_val_batches=1",
            "trainer.limit_test_batches=1",
        ],
        config_name="pipeline",
    )
    metrics, _ = pipeline(cfg)
    record = json.loads((tmp_path / "pipe" / "finetune_kn" / "metrics.json").read_text())
    assert record["status"] == "completed"
    assert 0 <= metrics["finetune_kn/test/kn/acc"] <= 1
    assert 0 <= record["metrics"]["zeroshot/kn/acc"] <= 1  # the source head on the target
    config = (tmp_path / "pipe" / "finetune_kn" / "config.yaml").read_text()
    assert "source_language: en" in config
    assert (tmp_path / "pipe" / "report" / "report.html").is_file()


def test_from_scratch_baseline_skips_pretraining(tmp_path):
    cfg = compose_config(
        [
            f"paths.output_dir={tmp_path / 'pipe'}",
            f"paths.cache_dir={tmp_path / 'cache'}",
            "debug=fast",
            "pipeline.targets=[kn]",
            "pipeline.pretrain=false",
            "data.shots_per_class=5",
        ],
        config_name="pipeline",
    )
    metrics, _ = pipeline(cfg)
    assert not (tmp_path / "pipe" / "pretrain").exists()
    record = json.loads((tmp_path / "pipe" / "finetune_kn" / "metrics.json").read_text())
    assert "zeroshot/kn/acc" not in record["metrics"]
    assert record["artifacts"]["data_counts"]["kn"]["train"] == 50
    assert "head_init: random" in (tmp_path / "pipe" / "finetune_kn" / "config.yaml").read_text()
