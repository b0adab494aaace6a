"""xlv-finetune and xlv-pipeline on glyph data with tiny settings."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from xlvision.bundle.file import load_bundle
from xlvision.config.compose import compose_config
from xlvision.config.errors import ConfigError
from xlvision.stages.finetune import finetune
from xlvision.stages.pipeline import pipeline
from xlvision.stages.runner import run_stage
from xlvision.stages.train import train


@pytest.fixture(scope="module")
def base_checkpoint(tmp_path_factory):
    """A quickly trained English model: the original model every test fine-tunes."""
    root = tmp_path_factory.mktemp("base")
    cfg = compose_config(
        [f"paths.output_dir={root}", f"paths.cache_dir={root / 'cache'}", "debug=fast"]
    )
    _, artifacts = run_stage(train, cfg)
    return artifacts["checkpoint"]


def backbone_state(path) -> dict:
    state = torch.load(path, weights_only=True)["state_dict"]
    return {k: v for k, v in state.items() if k.startswith("model.backbone.")}


@pytest.mark.parametrize(
    ("strategy", "trainable"), [("linear_probe", 512 * 10 + 10), ("full", None)]
)
def test_finetune_trains_what_the_strategy_claims(
    strategy, trainable, base_checkpoint, make_config, tmp_path
):
    cfg = make_config(
        "stage=finetune", f"finetune={strategy}", "language=kn", f"base={base_checkpoint}"
    )
    metrics, artifacts = run_stage(finetune, cfg)
    assert {"test/kn/acc", "test/kn/f1", "test/en/acc"} <= set(metrics)  # en: forgetting
    before, after = backbone_state(base_checkpoint), backbone_state(artifacts["checkpoint"])
    assert before.keys() == after.keys()
    same = all(torch.equal(before[k], after[k]) for k in before)
    if strategy == "linear_probe":
        assert metrics["trainable_params"] == trainable
        assert same  # frozen backbone, BatchNorm statistics included
    else:
        assert metrics["trainable_params"] == metrics["total_params"] - 5130  # en head frozen
        assert not same
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert record["stage"] == "finetune" and record["status"] == "completed"


def test_lora_checkpoint_is_merged_into_the_plain_architecture(
    base_checkpoint, make_config, tmp_path
):
    cfg = make_config("stage=finetune", "finetune=lora", "language=kn", f"base={base_checkpoint}")
    metrics, artifacts = run_stage(finetune, cfg)
    assert backbone_state(artifacts["checkpoint"]).keys() == backbone_state(base_checkpoint).keys()
    assert metrics["trainable_params"] < metrics["total_params"] / 5


def test_missing_base_checkpoint_is_named(make_config, tmp_path):
    cfg = make_config("stage=finetune", "finetune=full", "language=kn", "base=/nope/x.ckpt")
    from xlvision.models.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match="/nope/x.ckpt: no such checkpoint"):
        run_stage(finetune, cfg)


def test_pipeline_pretrains_finetunes_and_reports(tmp_path):
    cfg = compose_config(
        [
            f"paths.output_dir={tmp_path / 'pipe'}",
            f"paths.cache_dir={tmp_path / 'cache'}",
            "debug=fast",
            "pipeline.targets=[kn,ar]",
        ],
        config_name="pipeline",
    )
    metrics, artifacts = pipeline(cfg)
    root = tmp_path / "pipe"
    for stage in ("pretrain", "finetune_kn", "finetune_ar", "integrate", "eval"):
        record = json.loads((root / stage / "metrics.json").read_text())
        assert record["status"] == "completed"
    # the pipeline ends with one bundle of every target (routed by default) and its eval
    assert artifacts["bundle"] == str(root / "integrate" / "bundle.safetensors")
    model, manifest = load_bundle(artifacts["bundle"])
    assert sorted(model.languages) == ["ar", "kn"]
    assert manifest["integration"]["method"] == "routed"
    for code in ("kn", "ar"):
        assert metrics[f"eval/test/{code}/acc"] == pytest.approx(
            metrics[f"integrate/test/{code}/acc"]
        )
        assert 0 <= metrics[f"eval/test/{code}/normalized_acc"] <= 2
    assert {"pretrain/test/en/acc", "finetune_kn/test/kn/acc", "finetune_ar/test/en/acc"} <= set(
        metrics
    )
    # eval records the bundle's confusion without the script too: its diagonal is routed_acc
    evaluated = json.loads((root / "eval" / "metrics.json").read_text())
    for code in ("kn", "ar"):
        given = np.array(evaluated["confusion"][f"test/{code}"])
        routed = np.array(evaluated["confusion"][f"test/{code}/routed"])
        assert given.sum() == routed.sum() > 0
        routed_acc = evaluated["metrics"][f"test/{code}/routed_acc"]
        assert np.trace(routed) / routed.sum() == pytest.approx(routed_acc)
    page = (root / "report" / "report.html").read_text()
    # The page opens with the summary: the bundle's accuracy as eval recorded it.
    summary = page[page.index('<section id="summary">') : page.index("</section>")]
    given = evaluated["metrics"]["test/mean/acc"]
    assert f'data-value="{given!r}"><span class="value">{given:.3f}</span>' in summary
    assert page.index("</section>") < page.index("<table data-metric")
    tables = sorted((root / "report").glob("table_*.md"))
    assert len(tables) == 2  # acc and f1
    assert all(code in tables[0].read_text() for code in ("en", "kn", "ar"))
    # A row per language, a column per stage run in the pipeline's order.
    header, *_ = (line for line in tables[0].read_text().splitlines() if line.startswith("| lang"))
    assert header.replace(" ", "") == "|lang|pretrain|finetune_kn|finetune_ar|eval|"
    kn_row = next(line for line in tables[0].read_text().splitlines() if line.startswith("| kn "))
    values = [c for c in kn_row.split("|")[2:-1] if c.strip()[:1].isdigit() or "**" in c]
    assert len(values) == 2  # finetune_kn and eval (pretraining saw only en)
    assert artifacts["report"].endswith("report.html")
    # The dir records paths relative to itself: moved elsewhere, it still finds its models.
    from xlvision.integrate.inputs import find_run_checkpoints

    moved = tmp_path / "moved"
    root.rename(moved)
    base, tuned = find_run_checkpoints(moved)
    assert base is not None and base.is_relative_to(moved) and base.is_file()
    assert sorted(tuned) == ["ar", "kn"] and all(p.is_relative_to(moved) for p in tuned.values())


def test_pipeline_reuses_identical_pretraining(tmp_path, capsys):
    def run(name, *extra):
        cfg = compose_config(
            [
                f"paths.output_dir={tmp_path / name}",
                f"paths.cache_dir={tmp_path / 'cache'}",
                "debug=fast",
                "pipeline.targets=[kn]",
                "~integrate",  # pretraining is what this test is about
                *extra,
            ],
            config_name="pipeline",
        )
        return pipeline(cfg)

    first, _ = run("a", "finetune=full")
    second, _ = run("b", "finetune=linear_probe")  # differs only downstream of pretraining
    assert "reused" in capsys.readouterr().err
    record = json.loads((tmp_path / "b" / "pretrain" / "metrics.json").read_text())
    assert record["artifacts"]["reused_from"].startswith(str(tmp_path / "cache"))
    assert (tmp_path / "b" / "pretrain" / "checkpoints" / "best.ckpt").is_file()
    assert first["pretrain/test/en/acc"] == second["pretrain/test/en/acc"]
    run("c", "seed=1")  # a different seed is a different source model
    record = json.loads((tmp_path / "c" / "pretrain" / "metrics.json").read_text())
    assert "reused_from" not in record["artifacts"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("pipeline.targets=[kn,xx]", "pipeline.targets='xx' is not allowed: language codes"),
        ("pipeline.sources=[en,yy]", "pipeline.sources='yy' is not allowed: language codes"),
        ("pipeline.sources=[]", "pipeline.sources=[] is not allowed: at least one language"),
    ],
)
def test_pipeline_languages_are_checked_before_any_training(tmp_path, override, message):
    # Refused when the config is composed: before Hydra makes a run dir, before any training.
    with pytest.raises(ConfigError, match=re.escape(message)):
        compose_config(
            [f"paths.output_dir={tmp_path / 'pipe'}", "debug=fast", override],
            config_name="pipeline",
        )
    assert not (tmp_path / "pipe").exists()


def test_pipeline_pretrains_on_all_languages_and_tunes_each_own_head(tmp_path):
    from xlvision.languages import available_languages

    cfg = compose_config(
        [
            f"paths.output_dir={tmp_path / 'pipe'}",
            f"paths.cache_dir={tmp_path / 'cache'}",
            "debug=fast",
            "pipeline.sources=[all]",
            "pipeline.targets=[kn,th]",
            "data.train_per_class=10",
            "data.val_per_class=2",
            "data.test_per_class=2",
            "~integrate",
        ],
        config_name="pipeline",
    )
    metrics, _ = pipeline(cfg)
    pretrained = {k.split("/")[2] for k in metrics if k.startswith("pretrain/test/")}
    assert set(available_languages()) <= pretrained
    for code in ("kn", "th"):  # each target starts from its own pretrained head
        config = (tmp_path / "pipe" / f"finetune_{code}" / "config.yaml").read_text()
        assert f"source_language: {code}" in config


def test_pretrain_cache_key_changes_with_the_package_and_generator(tmp_path, monkeypatch):
    import xlvision.stages.pipeline as pipeline_module

    cfg = compose_config(
        [f"paths.output_dir={tmp_path}", "debug=fast", "stage=train"], config_name="pipeline"
    )
    key = pipeline_module.pretrain_key(cfg)
    assert pipeline_module.pretrain_key(cfg) == key  # stable
    monkeypatch.setattr(pipeline_module, "GENERATOR_VERSION", 999)
    assert pipeline_module.pretrain_key(cfg) != key
    monkeypatch.undo()
    monkeypatch.setattr(pipeline_module, "__version__", "9.9.9")
    assert pipeline_module.pretrain_key(cfg) != key


def test_pipeline_reads_its_targets_real_files_before_pretraining(tmp_path):
    from xlvision.data.errors import DataError

    cfg = compose_config(
        [
            f"paths.output_dir={tmp_path / 'pipe'}",
            f"paths.cache_dir={tmp_path / 'cache'}",
            "debug=fast",
            "data=mix",
            "pipeline.targets=[kn]",
            "~integrate",
            "data.sources={kn: [{name: scans, source: {format: npz, path: "
            f"{tmp_path / 'missing.npz'}, arrays: {{images: x, labels: y}}}}}}]}}",
        ],
        config_name="pipeline",
    )
    with pytest.raises(DataError, match="missing.npz"):
        pipeline(cfg)
    assert not (tmp_path / "pipe" / "pretrain").exists()  # failed before any training
