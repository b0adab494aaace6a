"""xlv-integrate: every method end to end on two tiny fine-tuned models, bundles that load."""

from __future__ import annotations

import json
import sys

import pytest
from conftest import REPO, run_cli

from xlvision.bundle.export import checked_export
from xlvision.bundle.file import load_bundle
from xlvision.cli.integrate import models_as_mapping
from xlvision.config.compose import compose_config
from xlvision.config.errors import ConfigError
from xlvision.config.integrate import METHODS
from xlvision.records import read_metrics
from xlvision.stages.finetune import finetune
from xlvision.stages.integrate import integrate
from xlvision.stages.runner import run_stage
from xlvision.stages.train import train

TARGETS = ["ar", "kn"]
# Fine-tuning tests every target sample (limit 1.0), as integrate does: the same test set.
SMALL = ["debug=fast", "trainer.limit_test_batches=1.0"]
QUICK = ["integrate.bn_batches=2", "integrate.lam_grid=[0.5,1.0]", "integrate.probe_epochs=3"]


def stage_config(root, out, *overrides):
    return compose_config(
        [f"paths.output_dir={out}", f"paths.cache_dir={root / 'cache'}", *SMALL, *overrides]
    )


@pytest.fixture(scope="module")
def tuned_run(tmp_path_factory):
    """A pipeline's layout: English base, Kannada and Arabic fully fine-tuned."""
    root = tmp_path_factory.mktemp("pipe")
    _, pretrained = run_stage(train, stage_config(root, root / "pretrain"))
    for code in TARGETS:
        cfg = stage_config(
            root,
            root / f"finetune_{code}",
            "stage=finetune",
            "finetune=full",
            f"language={code}",
            f"base={pretrained['checkpoint']}",
        )
        run_stage(finetune, cfg)
    return root


@pytest.fixture(scope="module")
def probed_models(tuned_run):
    """The same targets fine-tuned as linear probes of the same base."""
    out = {}
    base = tuned_run / "pretrain" / "checkpoints" / "best.ckpt"
    for code in TARGETS:
        cfg = stage_config(
            tuned_run,
            tuned_run / f"probe_{code}",
            "stage=finetune",
            "finetune=linear_probe",
            f"language={code}",
            f"base={base}",
        )
        _, artifacts = run_stage(finetune, cfg)
        out[code] = artifacts["checkpoint"]
    return out


def integrate_config(tuned_run, out, method, *overrides):
    return compose_config(
        [
            f"paths.output_dir={out}",
            f"paths.cache_dir={tuned_run / 'cache'}",
            *SMALL,
            "stage=integrate",
            f"integrate={method}",
            *QUICK,
            *overrides,
        ]
    )


# integrate=unified bundles one model trained on every language: tests/test_unified.py.
@pytest.mark.parametrize("method", [m for m in METHODS if m != "unified"])
def test_every_method_writes_a_bundle_that_loads(method, tuned_run, tmp_path):
    cfg = integrate_config(tuned_run, tmp_path, method, f"run={tuned_run}")
    metrics, artifacts = run_stage(integrate, cfg)
    model, manifest = load_bundle(artifacts["bundle"])
    assert model.languages == TARGETS
    assert manifest["integration"]["method"] == method
    for code in TARGETS:
        recorded = read_metrics(tuned_run / f"finetune_{code}")["metrics"][f"test/{code}/acc"]
        assert manifest["metrics"]["individual"][code]["acc"] == pytest.approx(recorded)
        assert metrics[f"test/{code}/normalized_acc"] == pytest.approx(
            metrics[f"test/{code}/acc"] / recorded
        )
        for name in ("acc", "f1", "routed_acc", "lid_acc"):
            assert 0.0 <= metrics[f"test/{code}/{name}"] <= 1.0
    assert metrics["test/mean/lid_acc"] > 0.5  # two scripts: chance is 0.5
    assert metrics["bundle_bytes"] == (tmp_path / "bundle.safetensors").stat().st_size
    assert metrics["predict_images_per_s"] > 0
    if method == "routed":  # each language's own model: its accuracy (another batching of
        # the same weights may flip one borderline test image of the 200)
        assert set(model.members) == {*TARGETS, "router"}
        for code in TARGETS:
            recorded = read_metrics(tuned_run / f"finetune_{code}")["metrics"][f"test/{code}/acc"]
            assert metrics[f"test/{code}/acc"] == pytest.approx(recorded, abs=1 / 200 + 1e-6)
    else:
        assert set(model.members) == {"shared"}
        assert set(model.members["shared"].heads) == {*TARGETS, "_lid"}
    params = artifacts["params"]
    if method == "multihead":  # the backbones moved: heads retrained on the base features
        assert params == {"probed": TARGETS}
    if method == "task_arithmetic":  # lam: null, picked on validation data
        scores = params["val_mean_acc_by_lam"]
        assert set(scores) == {"0.5", "1.0"}
        assert params["lam"] == float(max(scores, key=scores.get))
    record = read_metrics(tmp_path)
    assert record["status"] == "completed" and record["stage"] == "integrate"
    if method != "routed":
        return  # the others' bundles hold one shared member, exported in test_export/test_unified
    # The bundle leaves Python: an ONNX file reads 200 glyphs per language as it does (the
    # layouts' parity on 1,000 per language: test_export).
    _, parity = checked_export(
        model, manifest, artifacts["bundle"], "onnx", tmp_path / "m.onnx", check=200
    )
    assert parity.images == 400 and parity.ok, parity.line()


def test_multihead_of_linear_probes_keeps_their_accuracy(tuned_run, probed_models, tmp_path):
    models = "{" + ",".join(f"{c}:{p}" for c, p in probed_models.items()) + "}"
    base = tuned_run / "pretrain" / "checkpoints" / "best.ckpt"
    cfg = integrate_config(tuned_run, tmp_path, "multihead", f"base={base}", f"models={models}")
    metrics, artifacts = run_stage(integrate, cfg)
    assert artifacts["params"] == {"probed": []}  # the heads are kept as they are
    assert all(metrics[f"test/{code}/normalized_acc"] >= 0.99 for code in TARGETS)


def test_inputs_are_named_when_missing(tuned_run, tmp_path):
    with pytest.raises(ConfigError, match="models"):
        integrate(integrate_config(tuned_run, tmp_path, "average"))
    models = f"{{kn:{tuned_run / 'finetune_kn' / 'checkpoints' / 'final.ckpt'}}}"
    with pytest.raises(ConfigError, match="base=None.*ties"):
        integrate(integrate_config(tuned_run, tmp_path, "ties", f"models={models}"))
    with pytest.raises(ConfigError, match="integrate.k"):
        integrate_config(tuned_run, tmp_path, "ties", "integrate.k=0")


def test_models_pairs_become_a_mapping_hydra_parses():
    assert models_as_mapping("models=[kn=/a/k.ckpt,ar=b.ckpt]") == "models={kn:/a/k.ckpt,ar:b.ckpt}"
    assert models_as_mapping("models={kn:/a}") == "models={kn:/a}"
    assert models_as_mapping("base=x.ckpt") == "base=x.ckpt"


def test_cli_with_base_and_models(tuned_run, tmp_path):
    base = tuned_run / "pretrain" / "checkpoints" / "best.ckpt"
    pairs = ",".join(
        f"{c}={tuned_run / f'finetune_{c}' / 'checkpoints' / 'final.ckpt'}" for c in TARGETS
    )
    result = run_cli(
        sys.executable,
        "-m",
        "xlvision.cli.integrate",
        f"base={base}",
        f"models=[{pairs}]",
        "integrate=average",
        f"paths.output_dir={tmp_path / 'out'}",
        f"paths.cache_dir={tuned_run / 'cache'}",
        *SMALL,
        *QUICK,
        cwd=tmp_path,
        env={"PYTHONPATH": str(REPO / "src")},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    record = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert record["status"] == "completed"
    _, manifest = load_bundle(tmp_path / "out" / "bundle.safetensors")
    assert manifest["integration"]["method"] == "average"
    assert sorted(manifest["metrics"]["individual"]) == TARGETS
