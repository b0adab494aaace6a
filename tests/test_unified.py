"""The unified model: one network trained on every language with a shared digit head and a
trained script-ID head, bundled as is (integrate=unified), read without its script."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
import torch
from conftest import run_in_process
from omegaconf import OmegaConf
from torch import nn

from xlvision.bundle.export import checked_export
from xlvision.bundle.file import load_bundle
from xlvision.bundle.model import UnifiedModel
from xlvision.config.compose import compose_config
from xlvision.config.errors import ConfigError
from xlvision.integrate.calibrate import EVIDENCE_GRID
from xlvision.languages import load_language
from xlvision.models.checkpoint import load_classifier
from xlvision.models.classifier import DIGIT_HEAD, LID_HEAD, Classifier
from xlvision.stages.evaluate import evaluate
from xlvision.stages.integrate import integrate, run_data
from xlvision.stages.runner import run_stage
from xlvision.stages.train import train

CODES = ["ar", "fa", "kn"]
OBJECTIVE = ["objective.shared_digits=1", "objective.script_id=1"]


class Flat(nn.Module):
    """A backbone that passes a 2-feature input through."""

    out_features = 2

    def forward(self, x):
        return x.flatten(1)


def toy_model(lid_logits: list[float]) -> UnifiedModel:
    """Two languages; the `_lid` head outputs fixed logits, `ar` says 3, `fa` says 7, and the
    shared `_digit` head says 5, whatever the input."""
    member = Classifier(Flat(), {"ar": 10, "fa": 10, DIGIT_HEAD: 10, LID_HEAD: 2})
    for name, biases in {
        "ar": {3: 5.0},
        "fa": {7: 5.0},
        DIGIT_HEAD: {5: 5.0},
        LID_HEAD: dict(enumerate(lid_logits)),
    }.items():
        head = member.heads[name]
        nn.init.zeros_(head.weight)
        nn.init.zeros_(head.bias)
        with torch.no_grad():
            for index, value in biases.items():
                head.bias[index] = value
    return UnifiedModel(
        {"shared": member}, {"ar": "shared", "fa": "shared"}, ["ar", "fa"], "shared"
    )


def test_each_answer_rule_reads_the_digit_its_own_way():
    x = torch.zeros(4, 2)
    model = toy_model([2.0, 0.0])  # the router prefers ar
    routed = model.predict(x, answer="routed")
    assert routed["digit"].tolist() == [3] * 4 and routed["language"].tolist() == [0] * 4
    # The shared head's digit does not depend on which language the router names.
    assert model.predict(x, answer="shared")["digit"].tolist() == [5] * 4
    assert toy_model([0.0, 2.0]).predict(x, answer="shared")["digit"].tolist() == [5] * 4
    # marginal: p(ar)·p(digit | ar) + p(fa)·p(digit | fa); p(ar) = σ(2) ≈ 0.88 picks 3.
    with torch.no_grad():
        marginal = model.predict(x, answer="marginal")
    p_ar = torch.sigmoid(torch.tensor(2.0))
    p3 = torch.softmax(torch.tensor([5.0] + [0.0] * 9), 0)[0]
    p_other = (1 - p3) / 9
    expected = p_ar * p3 + (1 - p_ar) * p_other
    assert marginal["digit"].tolist() == [3] * 4
    assert marginal["digit_prob"][0] == pytest.approx(float(expected), abs=1e-5)
    # With the language given, its own head reads, whatever the rule.
    assert model.predict(x, language="fa")["digit"].tolist() == [7] * 4


def test_script_id_real_weighs_the_script_loss_of_real_samples():
    from torch.nn import functional as F

    from xlvision.training.module import DigitClassifierModule

    torch.manual_seed(0)
    x, y = torch.randn(6, 2), torch.tensor([1, 2, 3, 4, 5, 6])
    language = torch.tensor([0, 1, 0, 1, 0, 1])
    real = torch.tensor([True, True, False, False, False, True])

    def loss(real_weight: float, batch) -> torch.Tensor:
        torch.manual_seed(1)  # the same heads for every weight
        member = Classifier(Flat(), {"ar": 10, "fa": 10, LID_HEAD: 2})
        objective = {"script_id": 1.0, "script_id_real": real_weight}
        module = DigitClassifierModule(member, ["ar", "fa"], torch.optim.SGD, objective=objective)
        with torch.no_grad():
            return module._loss(batch), member

    full, member = loss(1.0, (x, y, language))
    member.requires_grad_(False)
    digits = sum(
        F.cross_entropy(member.heads[c](x[language == i]), y[language == i], reduction="sum")
        for i, c in enumerate(["ar", "fa"])
    ) / len(y)
    lid = F.cross_entropy(member.heads[LID_HEAD](x), language, reduction="none")
    assert float(full) == pytest.approx(float(digits + lid.mean()), rel=1e-5)
    # At 0 the script is learnt from the rendered samples only; in between, weighed.
    glyphs_only, _ = loss(0.0, (x, y, language, real))
    assert float(glyphs_only) == pytest.approx(float(digits + lid[~real].mean()), rel=1e-5)
    half, _ = loss(0.5, (x, y, language, real))
    weights = torch.where(real, 0.5, 1.0)
    expected = digits + (weights * lid).sum() / weights.sum()
    assert float(half) == pytest.approx(float(expected), rel=1e-5)


def test_shared_answer_needs_a_shared_digit_head():
    member = Classifier(Flat(), {"ar": 10, LID_HEAD: 1})
    with pytest.raises(ValueError, match="answer='shared' needs a '_digit' head"):
        UnifiedModel({"m": member}, {"ar": "m"}, ["ar"], "m", answer="shared")


def test_groups_are_declared_in_the_language_configs():
    assert load_language("ar").group == load_language("fa").group == "arabic_indic"
    assert load_language("hi").group == load_language("mr").group == "devanagari"
    assert load_language("mr").digits == load_language("hi").digits
    assert load_language("kn").group == "kn"


ONE_VIEW = ["integrate.views=none"]
"""These bundles read each image once: the views (six reads an image, the preset's default) are
tested in test_calibration.py and by the preset's smoke run below."""


@pytest.fixture(scope="module")
def unified_run(tmp_path_factory):
    """A tiny unified model over Arabic, Persian and Kannada glyphs, bundled with answer=auto."""
    root = tmp_path_factory.mktemp("unified")
    small = [f"paths.cache_dir={root / 'cache'}", "debug=fast", "trainer.limit_val_batches=1.0"]
    languages = f"language=[{','.join(CODES)}]"
    cfg = compose_config([f"paths.output_dir={root / 'pretrain'}", *small, languages, *OBJECTIVE])
    trained, artifacts = run_stage(train, cfg)
    integrate_cfg = compose_config(
        [
            f"paths.output_dir={root / 'integrate'}",
            *small,
            languages,
            "stage=integrate",
            "integrate=unified",
            *ONE_VIEW,
            f"base={artifacts['checkpoint']}",
        ]
    )
    integrated, bundled = run_stage(integrate, integrate_cfg)
    return root, trained, artifacts["checkpoint"], integrated, bundled["bundle"]


def test_training_with_the_objective_adds_and_scores_the_shared_heads(unified_run):
    _, metrics, checkpoint, _, _ = unified_run
    _, _, classes = load_classifier(checkpoint)
    assert classes == {"ar": 10, "fa": 10, "kn": 10, DIGIT_HEAD: 10, LID_HEAD: 3}
    for code in CODES:
        for name in ("digit_acc", "lid_acc", "lid_group_acc"):
            assert 0.0 <= metrics[f"test/{code}/{name}"] <= 1.0
        # Arabic and Persian are one group: naming either counts for both.
        assert metrics[f"test/{code}/lid_group_acc"] >= metrics[f"test/{code}/lid_acc"]
    assert metrics["test/kn/lid_group_acc"] == metrics["test/kn/lid_acc"]


def test_unified_bundle_routes_with_its_trained_head_and_picks_the_answer_on_val(unified_run):
    root, _, checkpoint, metrics, bundle = unified_run
    model, manifest = load_bundle(bundle)
    base, _, _ = load_classifier(checkpoint)
    member = model.members["shared"]
    assert torch.equal(member.heads[LID_HEAD].weight, base.heads[LID_HEAD].weight)
    params = manifest["integration"]["params"]
    assert params["script_id"] == "trained"
    scores = params["val_acc_by_answer"]
    assert set(scores) == {"routed", "shared", "marginal"}
    assert manifest["answer"] == params["answer"] == max(scores, key=scores.get)
    assert model.answer == manifest["answer"]
    assert [r["group"] for r in manifest["languages"]] == ["arabic_indic", "arabic_indic", "kn"]
    for code in CODES:
        own = metrics[f"test/{code}/answer_{model.answer}_acc"]
        assert metrics[f"test/{code}/routed_acc"] == pytest.approx(own)


def test_integrate_calibrates_on_validation_data_and_eval_rejects_by_default(unified_run, tmp_path):
    _, _, _, _, bundle = unified_run
    model, manifest = load_bundle(bundle)
    calibration = manifest["calibration"]
    assert calibration["fit_on"] == "validation" and calibration["images"] == 3 * 10 * 10
    assert model.temperatures == calibration["temperature"]
    for kind in ("script", "digit"):
        assert calibration["temperature"][kind] > 0
        assert calibration["nll"][kind]["after"] <= calibration["nll"][kind]["before"] + 1e-12
        assert 0 <= calibration["reject"][kind] <= 1
    assert calibration["reject"]["rate"] == 0.02
    # One prototype per (language, digit) of the validation data, unit length.
    assert calibration["prototypes"] == 3 * 10 and model.prototypes.shape[0] == 30
    torch.testing.assert_close(model.prototypes.norm(dim=1), torch.ones(30))
    # integrate=unified's default: every validation image a neighbour, in 64 directions.
    assert calibration["familiarity"] == "with_nearest"
    assert calibration["neighbours"] == 300 and calibration["projection"] == 64
    assert tuple(model.neighbours.shape) == (300, 64)
    assert 0 < calibration["reject"]["familiar"] <= 1
    cfg = compose_config(
        [f"bundle={bundle}", f"paths.output_dir={tmp_path}", "data.test_per_class=10"],
        config_name="eval",
    )
    metrics, _ = run_stage(evaluate, cfg)  # reject=auto: the bundle's thresholds
    assert metrics["reject_script"] == calibration["reject"]["script"]
    assert metrics["reject_familiar"] == calibration["reject"]["familiar"]
    for code in CODES:
        rate = metrics[f"test/{code}/unknown_rate"]
        assert 0 <= rate <= 1 and 0 <= metrics[f"test/{code}/ece"] <= 1
        assert (
            metrics[f"test/{code}/routed_acc"] <= metrics.get(f"test/{code}/acc_answered", 1) + 1e-6
        )


def integrate_again(unified_run, tmp_path, *overrides: str) -> tuple:
    """(model, manifest) of the unified run's checkpoint bundled again with `overrides`."""
    root, _, checkpoint, _, _ = unified_run
    cfg = compose_config(
        [
            f"paths.output_dir={tmp_path}",
            f"paths.cache_dir={root / 'cache'}",
            "debug=fast",
            "trainer.limit_val_batches=1.0",
            f"language=[{','.join(CODES)}]",
            "stage=integrate",
            "integrate=unified",
            *ONE_VIEW,
            *overrides,
            f"base={checkpoint}",
        ]
    )
    _, bundled = run_stage(integrate, cfg)
    return load_bundle(bundled["bundle"])


def test_integrate_evidence_auto_fits_lambda_on_val_and_the_bundle_reads_with_it(
    unified_run, tmp_path
):
    bundle = unified_run[4]
    model, manifest = integrate_again(unified_run, tmp_path, "integrate.evidence=auto")
    calibration = manifest["calibration"]
    losses = calibration["evidence_nll"]
    assert set(losses) == {str(v) for v in EVIDENCE_GRID}
    lam = calibration.get("evidence", 0.0)  # stored when > 0
    assert model.evidence == lam and losses[str(float(lam))] == pytest.approx(min(losses.values()))
    assert calibration["nll"]["script"]["after"] == pytest.approx(losses[str(float(lam))])
    plain, plain_manifest = load_bundle(bundle)  # the same weights, the default evidence 0
    assert plain.evidence == 0.0 and "evidence" not in plain_manifest["calibration"]
    assert plain_manifest["calibration"]["temperature"]["digit"] == model.temperatures["digit"]
    x = torch.randn(8, 1, 28, 28)
    with torch.no_grad():
        member = model.members["shared"]
        lid = member.heads[LID_HEAD](model.features("shared", x))
        heads = torch.stack([model(x, c) / model.temperatures["digit"] for c in CODES], dim=1)
        by_hand = ((lid + lam * heads.logsumexp(2)) / model.temperatures["script"]).softmax(1)
        torch.testing.assert_close(model.script_probs(x), by_hand)


def test_integrate_temperature_by_familiarity_with_the_evidence_reads_as_stored(
    unified_run, tmp_path
):
    """The rise is fitted on the validation images and three perturbed copies; the script
    reads (router + λ · the evidence at the constant digit temperature) ÷ its rising
    temperature."""
    model, manifest = integrate_again(
        unified_run, tmp_path, "integrate.evidence=0.5", "integrate.temperature=by_familiarity"
    )
    calibration = manifest["calibration"]
    assert calibration["temperature_fit"]["images"] == 4 * 3 * 10 * 10
    rise = calibration["temperature_rise"]
    assert rise == model.temperature_rise and 0 < rise["below"] < 1
    x = torch.randn(8, 1, 28, 28)
    with torch.no_grad():
        member = model.members["shared"]
        features = model.features("shared", x)  # the one backbone read
        lid = member.heads[LID_HEAD](features)
        heads = torch.stack([model(x, c) / model.temperatures["digit"] for c in CODES], dim=1)
        means = (torch.nn.functional.normalize(features, dim=1) @ model.prototypes.T).max(1)
        gap = (rise["below"] - means.values).clamp(min=0).unsqueeze(1)
        script_t = rise["script"]["t"] * torch.exp(rise["script"]["slope"] * gap)
        by_hand = ((lid + 0.5 * heads.logsumexp(2)) / script_t).softmax(1)
        torch.testing.assert_close(model.script_probs(x), by_hand)


def test_integrating_a_run_again_keeps_the_sources_of_its_own_languages(tmp_path):
    """A preset lists real sources for all its languages; `xlv-integrate run=` of a pipeline
    over fewer keeps theirs only (as the pipeline did), and still refuses a code that is none."""
    overrides = ["experiment=unified", "stage=integrate", f"paths.output_dir={tmp_path}"]
    cfg = compose_config([*overrides, f"run={tmp_path}"])
    listed = set(cfg.data.sources)
    assert {"bn", "en", "kn"} <= listed
    assert set(run_data(cfg, ["en", "gu", "kn"]).sources) == {"en", "kn"}
    assert set(run_data(compose_config(overrides), ["en", "kn"]).sources) == listed  # no run=
    assert set(cfg.data.sources) == listed  # the config itself is left alone
    typo = compose_config([*overrides, f"run={tmp_path}", "+data.sources.xx=[{preset: usps}]"])
    assert set(run_data(typo, ["en"]).sources) == {"en", "xx"}


def test_unified_bundle_exports_with_its_answer_rule(unified_run, tmp_path):
    *_, bundle = unified_run
    model, manifest = load_bundle(bundle)
    # 1,000 glyphs per language are compared for every bundle layout in test_export.py.
    _, parity = checked_export(model, manifest, bundle, "onnx", tmp_path / "u.onnx", check=300)
    assert parity.images == 900 and parity.ok, parity.line()
    info = json.loads(onnx.load(str(tmp_path / "u.onnx")).metadata_props[0].value)
    assert info["answer"] == model.answer
    assert "familiarity" in info["outputs"]  # compared with PyTorch's in `parity` too


def test_eval_reports_script_id_raw_and_by_group(unified_run, tmp_path):
    _, _, _, _, bundle = unified_run
    cfg = compose_config(
        [f"bundle={bundle}", f"paths.output_dir={tmp_path}", "data.test_per_class=20"],
        config_name="eval",
    )
    metrics, _ = run_stage(evaluate, cfg)
    for code in CODES:
        assert metrics[f"test/{code}/lid_group_acc"] >= metrics[f"test/{code}/lid_acc"]
        assert {f"test/{code}/answer_{a}_acc" for a in ("routed", "shared", "marginal")} <= set(
            metrics
        )
    record = json.loads((tmp_path / "metrics.json").read_text())
    assert record["metrics"]["test/mean/lid_group_acc"] == pytest.approx(
        metrics["test/mean/lid_group_acc"]
    )


def test_unified_needs_a_pretrained_model_in_the_pipeline():
    cfg = compose_config(
        ["experiment=unified", "pipeline.pretrain=false", "paths.output_dir=/tmp/unused"],
        config_name="pipeline",
    )
    from xlvision.stages.pipeline import pipeline

    with pytest.raises(ConfigError, match="pipeline.pretrain=False"):
        pipeline(cfg)


def test_predict_reads_a_folder_of_mixed_scripts_without_a_language(unified_run, tmp_path):
    from PIL import Image

    from xlvision.data.glyphs import generate_glyph_digits

    _, _, _, _, bundle = unified_run
    scans = tmp_path / "scans"
    scans.mkdir()
    for code in ("ar", "kn"):
        cfg = compose_config(["debug=fast"])
        digits = generate_glyph_digits(load_language(code), "test", 1, cfg.data.augment, 0)
        for i, image in enumerate(digits.images[:3]):
            Image.fromarray(image.numpy()).save(scans / f"{code}_{i}.png")
    result = run_in_process("xlv-predict", f"bundle={bundle}", f"input={scans}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if ".png" in line]
    assert len(lines) == 6


PAGE = ("routed_acc", "lid_acc", "lid_group_acc")
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.mark.skipif(not (SHARED_DATA / "gurmukhi.npz").is_file(), reason="needs ../shared/data")
def test_unified_preset_smoke_run_leaves_one_bundle(tmp_path):
    from xlvision.stages.pipeline import pipeline

    cfg = compose_config(
        [
            "experiment=unified",
            f"paths.output_dir={tmp_path / 'pipe'}",
            f"paths.cache_dir={tmp_path / 'cache'}",
            f"paths.data_dir={SHARED_DATA}",
            "debug=fast",
            "pipeline.sources=[or,pa,th]",
            "data.sources={pa: [gurmukhi], or: [{preset: odia_tiny, weight: 0}]}",
            "pipeline.copies=2",  # the model trained twice, read as one
        ],
        config_name="pipeline",
    )
    metrics, artifacts = pipeline(cfg)
    assert [p.name for p in (tmp_path / "pipe").rglob("*.safetensors")] == ["bundle.safetensors"]
    model, manifest = load_bundle(artifacts["bundle"])
    assert model.languages == ["or", "pa", "th"]
    assert manifest["integration"]["method"] == "unified"
    # The second training: the same seed and data, its own init_seed, bundled beside the first.
    again = OmegaConf.load(tmp_path / "pipe" / "pretrain_2" / "config.yaml")
    assert (again.seed, again.init_seed) == (cfg.seed, cfg.seed + 1000)
    assert manifest["members"]["shared"]["model"]["copies"] == 2
    evaluated = json.loads((tmp_path / "pipe" / "eval" / "metrics.json").read_text())["metrics"]
    # pa is tested on its real test split (174), or on Odia's 44 real digits, th on glyphs.
    counts = json.loads((tmp_path / "pipe" / "eval" / "metrics.json").read_text())["artifacts"]
    assert counts["data_counts"]["pa"] == {"test": 174}
    real = [evaluated[f"test/{c}/routed_acc"] for c in ("or", "pa")]
    assert evaluated["test/mean_real/routed_acc"] == pytest.approx(sum(real) / 2)
    # The script is also decided once per page of pipeline.page_size (5) test digits.
    assert evaluated["page_size"] == 5
    assert {f"test/{c}/page_{m}" for c in ("or", "pa", "mean_real") for m in PAGE} <= set(evaluated)
    assert metrics["eval/test/pa/acc"] == evaluated["test/pa/acc"]


def test_budget_gpu_raises_a_preset_and_the_cpu_default_stays():
    cpu = compose_config(["experiment=unified"], config_name="pipeline")
    gpu = compose_config(["experiment=unified", "budget=gpu"], config_name="pipeline")
    assert (cpu.device.accelerator, cpu.trainer.max_epochs, cpu.data.train_per_class) == (
        "cpu",
        18,
        300,
    )
    assert (gpu.device.accelerator, gpu.trainer.max_epochs, gpu.data.train_per_class) == (
        "gpu",
        30,
        3000,
    )
    assert gpu.data.sources == cpu.data.sources and gpu.objective == cpu.objective


def replay_config(tmp_path, checkpoint, *overrides: str):
    """xlv-finetune of the unified model on Thai, replaying its other scripts' glyphs."""
    return compose_config(
        [
            f"paths.output_dir={tmp_path / 'tuned'}",
            "debug=fast",
            "stage=finetune",
            "finetune=full",
            "finetune.replay=1.0",
            "language=th",
            f"base={checkpoint}",
            *overrides,
        ]
    )


def test_kshot_finetuning_of_a_new_script_replays_the_others_and_starts_from_the_shared_head(
    unified_run, tmp_path
):
    import numpy as np

    from xlvision.data.glyphs import generate_glyph_digits
    from xlvision.stages.finetune import finetune

    _, _, checkpoint, _, _ = unified_run
    scans = generate_glyph_digits(
        load_language("th"), "test", 20, compose_config([]).data.augment, 5
    )
    np.savez(tmp_path / "th.npz", images=scans.images.numpy(), labels=scans.labels.numpy())
    cfg = replay_config(
        tmp_path,
        checkpoint,
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"paths.data_dir={tmp_path}",
        "data=mix",
        "data.shots_per_class=5",
        "data.augment_real=true",
        "data.sources={th: [{name: scans, source: {format: npz, path: th.npz, "
        "arrays: {images: images, labels: labels}}}]}",
    )
    metrics, artifacts = run_stage(finetune, cfg)
    counts = artifacts["data_counts"]
    # 5 real per class and th's glyphs; validation on glyphs; the other scripts replayed.
    assert counts["th"] == {"train": 50 + 400, "val": 100, "test": 40}
    assert all(counts[c]["train"] == 400 for c in CODES)
    assert {"zeroshot/th/acc", "test/th/acc", "test/kn/acc"} <= set(metrics)
    gain = metrics["test/th/acc"] - metrics["zeroshot/th/acc"]
    assert metrics["gain/th/acc"] == pytest.approx(gain)
    config = (tmp_path / "tuned" / "config.yaml").read_text()
    assert "replay: 1.0" in config
    tuned, _, classes = load_classifier(artifacts["checkpoint"])
    assert {"th", *CODES, DIGIT_HEAD, LID_HEAD} <= set(classes)


def test_replay_needs_a_mix(unified_run, tmp_path):
    from xlvision.stages.finetune import finetune

    _, _, checkpoint, _, _ = unified_run
    cfg = replay_config(tmp_path, checkpoint)
    with pytest.raises(ConfigError, match=r"finetune.replay=1.0 is not allowed: 0 unless data=mix"):
        finetune(cfg)


def test_domain_adversarial_reverses_the_gradient_into_the_features():
    """The discriminator learns rendered vs real; the backbone gets its gradient reversed, and
    the loss weighs each domain to half whatever the batch's mix."""
    from torch.nn import functional as F

    from xlvision.training.module import DigitClassifierModule, adversarial_ramp

    torch.manual_seed(0)
    x, y = torch.randn(6, 2), torch.tensor([1, 2, 3, 4, 5, 6])
    language = torch.tensor([0, 1, 0, 1, 0, 1])
    real = torch.tensor([True, False, False, False, False, True])
    member = Classifier(Flat(), {"ar": 10, "fa": 10})
    objective = {"domain_adversarial": 0.5}
    module = DigitClassifierModule(member, ["ar", "fa"], torch.optim.SGD, objective=objective)
    assert not any(k.startswith("domain") for k in member.state_dict())  # never bundled

    features = x.clone().requires_grad_(True)
    domain = module._domain_loss(features, real)
    logits = module.domain_head(x).squeeze(1).detach()
    per_sample = F.binary_cross_entropy_with_logits(logits, real.float(), reduction="none")
    expected = 0.5 * per_sample[real].mean() + 0.5 * per_sample[~real].mean()
    assert domain.detach().item() == pytest.approx(float(expected), rel=1e-5)
    domain.backward()
    plain = x.clone().requires_grad_(True)
    F.binary_cross_entropy_with_logits(
        module.domain_head(plain).squeeze(1), real.float(), weight=torch.where(real, 0.25, 0.125)
    ).mul(len(real)).backward()
    # Outside `fit` the ramp is at its end: scale 2/(1 + e^-10) - 1 ≈ 0.99991.
    assert torch.allclose(features.grad, -adversarial_ramp(1.0) * plain.grad, atol=1e-7)
    # One domain only: nothing to tell apart.
    assert float(module._domain_loss(x, torch.zeros(6, dtype=torch.bool))) == 0.0
    # Training mode adds it to the loss (× λ); validation leaves it out of val/loss.
    module.train()
    with torch.no_grad():
        trained = module._loss((x, y, language, real))
    module.eval()
    with torch.no_grad():
        validated = module._loss((x, y, language, real))
    assert float(trained - validated) == pytest.approx(0.5 * float(expected), rel=1e-4)
    assert adversarial_ramp(0.0) == 0.0 and adversarial_ramp(1.0) == pytest.approx(1.0, abs=1e-4)


def test_glyph_anchor_pulls_each_sample_to_its_own_glyph_mean():
    """Anchors are running means of rendered features per (language, digit), never of real
    ones; each sample's loss is a softmax over its cosine to the anchors seen so far, where a
    group mate's anchor of the same digit is no rival; and it only counts in training."""
    from torch.nn import functional as F

    from xlvision.training.module import (
        ANCHOR_MOMENTUM,
        ANCHOR_TEMPERATURE,
        DigitClassifierModule,
    )

    member = Classifier(Flat(), {"hi": 2, "mr": 2, "kn": 2})
    module = DigitClassifierModule(
        member,
        ["hi", "mr", "kn"],
        torch.optim.SGD,
        objective={"glyph_anchor": 0.5},
        groups=["deva", "deva", "knda"],
    )
    assert not any(k.startswith("anchor") for k in module.state_dict())  # never saved
    # rendered: hi 0 along x, mr 0 along x too, kn 1 along y; a real hi 0 pointing at kn 1
    x = torch.tensor([[2.0, 0.0], [1.0, 0.0], [0.0, 3.0], [0.0, 1.0]])
    y = torch.tensor([0, 0, 1, 0])
    language = torch.tensor([0, 1, 2, 0])
    real = torch.tensor([False, False, False, True])
    loss = module._anchor_loss(x, y, language, real)
    slots = {"hi0": 0, "mr0": 2, "kn1": 5}
    assert module.anchor_seen.nonzero().flatten().tolist() == sorted(slots.values())
    assert torch.allclose(module.anchors[5], torch.tensor([0.0, 1.0]))  # the real one not in it
    unit = F.normalize(x, dim=1)
    cos = unit @ module.anchors.T / ANCHOR_TEMPERATURE
    # hi 0 and mr 0 are mates: neither competes with the other, kn 1 competes with both
    expected = torch.stack(
        [
            F.cross_entropy(cos[0, [0, 5]][None], torch.tensor([0])),
            F.cross_entropy(cos[1, [2, 5]][None], torch.tensor([0])),
            F.cross_entropy(cos[2, [0, 2, 5]][None], torch.tensor([2])),
            F.cross_entropy(cos[3, [0, 5]][None], torch.tensor([0])),
        ]
    ).mean()
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)
    assert float(loss) > 0.5  # the real sample sits on the wrong anchor
    # a second batch moves an anchor by (1 - momentum) toward its new mean
    module._anchor_loss(
        torch.tensor([[0.0, 1.0]]), torch.tensor([0]), torch.tensor([0]), torch.tensor([False])
    )
    moved = F.normalize(torch.tensor([ANCHOR_MOMENTUM, 1 - ANCHOR_MOMENTUM]), dim=0)
    assert torch.allclose(module.anchors[0], moved, atol=1e-6)
    # in validation the loss leaves it out
    module.eval()
    with torch.no_grad():
        validated = module._loss((x, y, language, real))
    module.train()
    with torch.no_grad():
        trained = module._loss((x, y, language, real))
    assert float(trained) > float(validated)


def test_mixstyle_swaps_feature_style_across_domains_in_training_only():
    """`mix_style` keeps each sample's normalized content and moves its channel means and
    deviations toward its partner's; partners come from the other domain; the hooks mix only
    training batches (a share p of them) and are gone afterwards."""
    from xlvision.models.net import Net
    from xlvision.training.module import DigitClassifierModule, mix_style, style_partners

    torch.manual_seed(0)
    x = torch.randn(4, 3, 5, 5) * torch.tensor([1.0, 2.0, 3.0, 4.0]).view(4, 1, 1, 1)
    partner = torch.tensor([1, 0, 3, 2])
    swapped = mix_style(x, partner, torch.zeros(4))
    assert torch.allclose(swapped.mean((2, 3)), x.mean((2, 3))[partner], atol=1e-5)
    assert torch.allclose(swapped.std((2, 3)), x.std((2, 3))[partner], rtol=1e-3)
    assert torch.allclose(mix_style(x, partner, torch.ones(4)), x, atol=1e-5)

    real = torch.tensor([True, False, False, False, True])
    for _ in range(20):
        picks = style_partners(real, 5)
        assert real[picks].tolist() == [False, True, True, True, False]
    assert style_partners(torch.ones(3, dtype=torch.bool), 3).shape == (3,)

    model = Classifier(Net(), {"en": 10})
    module = DigitClassifierModule(model, ["en"], torch.optim.SGD, objective={"mixstyle": 1.0})
    batch = (
        torch.randn(6, 1, 28, 28),
        torch.arange(6),
        torch.zeros(6, dtype=torch.long),
        torch.tensor([True, False] * 3),
    )
    model.eval()  # no dropout or batch statistics: only the hooks change the output
    plain = model.backbone(batch[0])
    hooks = module._style_hooks(batch)
    assert len(hooks) == 2  # the first two blocks
    mixed = model.backbone(batch[0])
    for hook in hooks:
        hook.remove()
    assert not torch.allclose(mixed, plain)
    assert not model.backbone.blocks[0]._forward_hooks  # nothing left behind
    module.mixstyle = 0.0
    assert module._style_hooks(batch) == []
