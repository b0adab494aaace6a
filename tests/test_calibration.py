"""Knowing when it does not know: temperatures fitted on validation data, reject thresholds,
ECE, unknown answers in xlv-predict and xlv-eval, out-of-bundle AUROC, and the same numbers
from the exported ONNX file and the web page's logic."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import run_cli, run_in_process
from test_predict import CODES, SPEC, eval_config, predict_cli_run, train_shared, write_scans
from test_unified import toy_model

import xlvision.bundle.model as bundle_model
from xlvision.bundle.calibration import (
    Thresholds,
    fit_rising_temperature,
    fit_temperature,
    nll,
    reject_threshold,
    reject_thresholds,
    unknown_reasons,
)
from xlvision.bundle.errors import BundleError
from xlvision.bundle.export import (
    WEB_TEMPLATE,
    check_images,
    checked_export,
    compare,
    description,
    page_model,
    reference_outputs,
    run_onnx,
)
from xlvision.bundle.file import load_bundle, save_bundle
from xlvision.bundle.manifest import digit_preprocessing, language_record, model_input
from xlvision.bundle.model import UnifiedModel
from xlvision.bundle.onnx_file import OnnxReader
from xlvision.bundle.predict import TorchReader, predict_images
from xlvision.config.compose import compose_config
from xlvision.config.errors import ConfigError
from xlvision.data.arrays import MNIST_MEAN, MNIST_STD
from xlvision.data.datamodule import DigitDataModule, glyph_splits
from xlvision.evaluation.calibration import auroc, expected_calibration_error
from xlvision.evaluation.unified import outside_aurocs, page_means, score_language, score_pages
from xlvision.integrate.calibrate import (
    EVIDENCE_GRID,
    RISE_LEVELS,
    digit_evidence,
    fit_calibration,
    fit_evidence,
    glyph_perturbation,
)
from xlvision.languages import load_language
from xlvision.stages.evaluate import evaluate
from xlvision.stages.runner import run_stage


# ------------------------------------------------------------------ the math, by hand
def test_fit_temperature_undoes_overconfidence_and_lowers_nll():
    rng = np.random.default_rng(0)
    honest = rng.normal(0, 2, (4000, 10))
    p = np.exp(honest) / np.exp(honest).sum(1, keepdims=True)
    labels = np.array([rng.choice(10, p=row) for row in p])
    overconfident = 3.0 * honest  # the labels follow softmax(logits / 3)
    t = fit_temperature(overconfident, labels)
    assert t == pytest.approx(3.0, rel=0.08)
    assert nll(overconfident, labels, t) < nll(overconfident, labels) - 0.3
    assert nll(overconfident, labels, t) <= nll(overconfident, labels, 3.0) + 1e-9


def test_fit_temperature_is_one_when_there_is_nothing_to_fit():
    assert fit_temperature(np.zeros((0, 10)), np.zeros(0, dtype=int)) == 1.0
    assert fit_temperature(np.ones((5, 1)), np.zeros(5, dtype=int)) == 1.0


def test_expected_calibration_error_by_hand():
    confidence = [0.95, 0.95, 0.55, 0.55, 0.25]
    correct = [1, 0, 1, 1, 0]
    # bin 14: acc 0.5, conf 0.95; bin 8: acc 1, conf 0.55; bin 3: acc 0, conf 0.25
    by_hand = (2 * 0.45 + 2 * 0.45 + 1 * 0.25) / 5
    assert expected_calibration_error(confidence, correct) == pytest.approx(by_hand)
    assert expected_calibration_error([1.0, 1.0], [1, 1]) == 0.0  # 1.0 lands in the last bin
    assert expected_calibration_error([0.5, 0.52], [1, 0], bins=2) == pytest.approx(0.01)


def test_auroc_by_hand_counts_ties_half():
    assert auroc([0.9, 0.8, 0.4], [0.5, 0.4, 0.1]) == pytest.approx(7.5 / 9)
    assert auroc([1.0], [0.0]) == 1.0 and auroc([0.2], [0.2]) == 0.5


def test_reject_thresholds_reject_their_share_and_name_the_reason():
    confidence = np.arange(1, 101) / 100
    threshold = reject_threshold(confidence, 0.02)
    assert threshold == pytest.approx(0.03) and (confidence < threshold).mean() == 0.02
    reasons = unknown_reasons([0.2, 0.9, 0.9, 0.2], [0.9, 0.1, 0.9, 0.1], Thresholds(0.5, 0.5))
    assert list(reasons) == ["script", "digit", "", "script"]  # the script is checked first
    assert list(unknown_reasons([0.0], [0.0], None)) == [""]
    # An unfamiliar image's script is unknown, however sure the router is, and before its digit.
    script, digit, familiarity = [0.9, 0.9, 0.9, 0.2], [0.9, 0.1, 0.9, 0.9], [0.5, 0.5, 0.7, 0.9]
    with_familiar = Thresholds(0.5, 0.5, 0.6)
    assert list(unknown_reasons(script, digit, with_familiar, familiarity)) == [
        "script",
        "script",
        "",
        "script",
    ]
    assert list(unknown_reasons(script, digit, with_familiar)) == ["", "digit", "", "script"]
    assert list(unknown_reasons(script, digit, Thresholds(0.5, 0.5), familiarity)) == [
        "",
        "digit",
        "",
        "script",
    ]
    stored = {"calibration": {"reject": {"script": 0.4, "digit": 0.3, "rate": 0.02}}}
    assert reject_thresholds("auto", stored) == Thresholds(0.4, 0.3)
    assert reject_thresholds("auto", {}) is None and reject_thresholds("none", stored) is None
    assert reject_thresholds(0.7, stored) == Thresholds(0.7, 0.7)
    stored["calibration"]["reject"]["familiar"] = 0.55
    assert reject_thresholds("auto", stored) == Thresholds(0.4, 0.3, 0.55)
    assert reject_thresholds(0.7, stored) == Thresholds(0.7, 0.7, None)  # not a probability
    for bad in (-0.1, 1.5, "abc"):
        with pytest.raises(ConfigError, match="reject="):
            reject_thresholds(bad, stored)


def test_prototypes_by_hand_on_a_toy_router_and_familiarity_is_their_cosine():
    """The toy router's backbone passes its two input features through, so every feature,
    prototype and cosine can be written down."""
    model = toy_model([2.0, 0.0])
    x = torch.tensor([[1.0, 0.0], [2.0, 0.2], [0.0, 1.0], [-1.0, -1.0], [-3.0, -1.0]])
    y = torch.tensor([3, 3, 5, 3, 3])
    language = torch.tensor([0, 0, 0, 1, 1])  # ar, ar, ar, fa, fa
    batches = [(x[:2], y[:2], language[:2]), (x[2:], y[2:], language[2:])]
    record = fit_calibration(model, batches, 0.02)
    unit = x / x.norm(dim=1, keepdim=True)
    # (ar, 3), (ar, 5), (fa, 3): the mean of unit features, made unit again.
    by_hand = torch.stack([unit[0] + unit[1], unit[2], unit[3] + unit[4]])
    by_hand = by_hand / by_hand.norm(dim=1, keepdim=True)
    assert record["prototypes"] == 3
    torch.testing.assert_close(model.prototypes, by_hand)
    cosines = [[float(a @ b) for b in by_hand] for a in unit]
    assert record["reject"]["familiar"] == pytest.approx(min(max(row) for row in cosines))
    with torch.no_grad():
        along = model.familiarity(torch.stack([2.5 * by_hand[1], -by_hand[0]]))
        read = model.predict(x)
    assert along[0] == pytest.approx(1.0, abs=1e-6)  # an image along a prototype
    assert along[1] == pytest.approx(max(float(-by_hand[0] @ b) for b in by_hand), abs=1e-6)
    torch.testing.assert_close(read["familiarity"], torch.tensor([max(r) for r in cosines]))


def test_outside_aurocs_by_hand_per_image_and_per_page_of_one_language():
    # Two bundle languages and one outside language; a page never spans two languages.
    inside = [
        {"script_prob": np.array([0.9, 0.8, 0.7]), "familiarity": np.array([0.9, 0.9, 0.1])},
        {"script_prob": np.array([0.6, 0.5]), "familiarity": np.array([0.5, 0.7])},
    ]
    outside = [
        {
            "script_prob": np.array([0.95, 0.6, 0.4, 0.3]),
            "familiarity": np.array([0.6, 0.8, 0.2, 0.4]),
        }
    ]
    np.testing.assert_allclose(page_means(np.array([0.9, 0.9, 0.1]), 2), [0.9])  # whole pages
    found = outside_aurocs(inside, outside, page_size=2)
    # Per image, familiarity: 0.9 and 0.9 beat all 4, 0.1 none, 0.5 two, 0.7 three: 13 / 20.
    assert found["auroc"] == pytest.approx(13 / 20)
    # Script probability: 3 + 3 + 3 + (0.6: 2 and a tie) + 2 = 13.5 / 20.
    assert found["auroc_script_prob"] == pytest.approx(13.5 / 20)
    # Pages of 2: inside [0.9] and [0.6]; outside [0.7] and [0.3]: 3 of 4 pairs.
    assert found["auroc_page"] == pytest.approx(3 / 4)
    # Without prototypes, auroc is the script probability's; pages [0.85], [0.55] vs [0.775, 0.35].
    bare = [{"script_prob": part["script_prob"]} for part in inside]
    found = outside_aurocs(bare, outside, page_size=2)
    assert found["auroc"] == found["auroc_script_prob"] == pytest.approx(13.5 / 20)
    assert found["auroc_page"] == pytest.approx(3 / 4)
    assert "auroc_page" not in outside_aurocs(inside, outside, page_size=1)
    # Only the second language on real handwriting: 0.5 beats two, 0.7 three: 5 / 8; its page
    # [0.6] beats [0.3] only. All real or none: no auroc_real.
    found = outside_aurocs(inside, outside, page_size=2, real=[False, True])
    assert found["auroc_real"] == pytest.approx(5 / 8)
    assert found["auroc_real_page"] == pytest.approx(1 / 2)
    assert found["auroc"] == pytest.approx(13 / 20)
    for real in ([True, True], [False, False], None):
        assert "auroc_real" not in outside_aurocs(inside, outside, page_size=2, real=real)


# ------------------------------------------------------------------ a calibrated bundle
def test_fit_evidence_takes_lambda_where_the_heads_know_more_than_the_router():
    """A router that barely tells languages 0 and 1 apart and heads whose logsumexp can:
    λ > 0 lowers the NLL and is chosen. Evidence that is noise: λ = 0."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 2000)
    script = 0.5 * np.eye(2)[labels] + rng.normal(0, 1, (2000, 2))
    heads = rng.normal(0, 1, (2000, 2, 10))
    heads[np.arange(2000), labels, 0] += 3.0  # the right language's head reads a digit surely
    evidence = digit_evidence(heads, 1.0)
    by_hand = np.log(np.exp(heads).sum(axis=2))
    np.testing.assert_allclose(evidence, by_hand)
    lam, temperature, losses = fit_evidence(script, evidence, labels)
    assert lam > 0 and set(losses) == {str(float(v)) for v in EVIDENCE_GRID}
    assert losses[str(lam)] == pytest.approx(min(losses.values()))
    assert losses[str(lam)] < losses["0.0"] - 0.1
    assert nll(script + lam * evidence, labels, temperature) == pytest.approx(losses[str(lam)])
    noise = digit_evidence(rng.normal(0, 1, (2000, 2, 10)), 1.0)
    informative = 3.0 * np.eye(2)[labels]  # a router that knows
    assert fit_evidence(informative, noise, labels)[0] == 0.0
    # A padded class (a head with fewer digits) adds nothing to its language's evidence.
    padded = np.concatenate([heads, np.full((2000, 2, 1), -1e9)], axis=2)
    np.testing.assert_allclose(digit_evidence(padded, 0.5), digit_evidence(heads, 0.5))


def save(path, model: UnifiedModel, calibration: dict | None):
    return save_bundle(
        path,
        model,
        member_specs={"shared": SPEC},
        languages={c: language_record(c) for c in CODES},
        preprocessing=digit_preprocessing(),
        integration={"method": "multihead", "params": {}},
        metrics={"individual": {c: {"acc": 0.8} for c in CODES}},
        calibration=calibration,
    )


@pytest.fixture(scope="module")
def data():
    """The glyph data of the bundle's languages as the shipped config makes them (small)."""
    cfg = compose_config([f"language=[{','.join(CODES)}]", "debug=fast", "data.val_per_class=30"])
    module = DigitDataModule(cfg.data, [load_language(c) for c in CODES], cfg.seed)
    module.setup()
    return module


@pytest.fixture(scope="module")
def calibrated(data, tmp_path_factory):
    """test_predict's multihead bundle, calibrated on the validation split as integrate does:
    (path, the calibration record, the uncalibrated model)."""
    shared = train_shared()
    plain = UnifiedModel({"shared": shared}, {c: "shared" for c in CODES}, CODES, "shared")
    model = UnifiedModel({"shared": shared}, {c: "shared" for c in CODES}, CODES, "shared")
    record = fit_calibration(model, data.val_dataloader(), 0.02)
    path = save(tmp_path_factory.mktemp("calibrated") / "digits.safetensors", model, record)
    return path, record, plain


def test_calibration_is_fitted_on_validation_data_and_stored(calibrated, data):
    path, record, plain = calibrated
    model, manifest = load_bundle(path)
    stored = manifest["calibration"]
    assert stored["fit_on"] == "validation" and stored["images"] == len(data.datasets["val"])
    assert model.temperatures == stored["temperature"] != {"script": 1.0, "digit": 1.0}
    for kind in ("script", "digit"):
        assert stored["nll"][kind]["after"] <= stored["nll"][kind]["before"]
    # The probabilities are softmax(logits / T), and each threshold rejects ≤ 2 % of val.
    x, _, language = next(iter(data.val_dataloader()))
    with torch.no_grad():
        router = plain.members["shared"]
        lid = router.heads["_lid"](router.backbone(x))
        t = stored["temperature"]["script"]
        torch.testing.assert_close(model.script_probs(x), (lid / t).softmax(1))
        torch.testing.assert_close(plain.script_probs(x), lid.softmax(1))
        read = [model.predict(xb) for xb, _, _ in data.val_dataloader()]
    script = torch.cat([r["language_prob"] for r in read]).numpy()
    digit = torch.cat([r["digit_prob"] for r in read]).numpy()
    familiar = torch.cat([r["familiarity"] for r in read]).numpy()
    for kind, probs in (("script", script), ("digit", digit), ("familiar", familiar)):
        share = (probs < stored["reject"][kind]).mean()
        assert share <= 0.02 and stored["reject"][kind] == reject_threshold(probs, 0.02)
    # The prototypes: per (language, digit) of the validation images, the mean of the router
    # backbone's unit features, made unit again; 3 languages × 10 digits.
    units, classes = [], []
    with torch.no_grad():
        for xb, yb, lb in data.val_dataloader():
            units.append(F.normalize(router.backbone(xb), dim=1))
            classes += [(int(i), int(d)) for i, d in zip(lb, yb, strict=True)]
    units = torch.cat(units)
    present = sorted(set(classes))
    by_hand = torch.stack(
        [F.normalize(units[[c == k for c in classes]].mean(0), dim=0) for k in present]
    )
    assert stored["prototypes"] == len(present) == 30
    torch.testing.assert_close(model.prototypes, by_hand, atol=1e-5, rtol=0)
    # A bundle saved without calibration reads with temperature 1 and has no thresholds.
    bare = save(path.parent / "bare.safetensors", plain, None)
    model, manifest = load_bundle(bare)
    assert "calibration" not in manifest and model.temperatures == {"script": 1.0, "digit": 1.0}
    assert model.prototypes is None


def test_familiarity_with_nearest_by_hand_read_back_and_exported(calibrated, data, tmp_path):
    """familiarity=with_nearest: the class-mean cosine averaged with the cosine to the nearest
    validation image in a principal subspace; its threshold from each validation image against
    the bank without it."""
    _, _, plain = calibrated
    model = UnifiedModel(dict(plain.members), plain.routes, plain.languages, plain.router)
    record = fit_calibration(
        model, data.val_dataloader(), 0.02, familiarity="with_nearest", familiarity_dims=8
    )
    router = plain.members["shared"]
    with torch.no_grad():
        features = torch.cat([router.backbone(x) for x, _, _ in data.val_dataloader()]).double()
    center = features.mean(0)
    _, _, v = torch.linalg.svd(features - center, full_matrices=False)
    bank = F.normalize((features - center) @ v[:8].T, dim=1)
    means = model.prototypes.double()
    assert record["familiarity"] == "with_nearest" and record["prototypes"] == len(means) == 30
    assert tuple(model.neighbours.shape) == (len(features), 8)
    # Cosines are the same whatever the signs of the principal directions.
    gram = (model.neighbours @ model.neighbours.T).double()
    torch.testing.assert_close(gram, bank @ bank.T, atol=1e-4, rtol=0)
    own = (F.normalize(features, dim=1) @ means.T).max(1).values
    cosines = bank @ bank.T
    cosines.fill_diagonal_(-float("inf"))
    held_out = ((own + cosines.max(dim=1).values) / 2).numpy()
    assert record["reject"]["familiar"] == pytest.approx(reject_threshold(held_out, 0.02), abs=1e-5)
    assert (cosines.max(dim=1).values < 1 - 1e-3).float().mean() > 0.5  # few twins
    # An image the bank holds scores (its class-mean cosine + 1) / 2; others their nearest.
    test = glyph_splits(data.data, load_language(CODES[0]), 0, ("test",))["test"]
    x = model_input(test.images[:64], digit_preprocessing())
    val_x = next(iter(data.val_dataloader()))[0]
    with torch.no_grad():
        inside = model.familiarity(val_x).double()
        inside_means = (F.normalize(router.backbone(val_x).double(), dim=1) @ means.T).max(1)
        read = model.familiarity(x)
        mine = router.backbone(x).double()
        near = (F.normalize((mine - center) @ v[:8].T, dim=1) @ bank.T).max(1).values
        by_hand = ((F.normalize(mine, dim=1) @ means.T).max(1).values + near) / 2
    torch.testing.assert_close(inside, (inside_means.values + 1) / 2, atol=1e-4, rtol=0)
    torch.testing.assert_close(read.double(), by_hand, atol=1e-4, rtol=0)
    # The bundle keeps both and the projection; the export computes the same familiarity.
    path = save(tmp_path / "nearest.safetensors", model, record)
    loaded, manifest = load_bundle(path)
    stored = manifest["calibration"]
    assert (stored["projection"], stored["neighbours"], stored["prototypes"]) == (8, len(bank), 30)
    with torch.no_grad():
        torch.testing.assert_close(loaded.familiarity(x), read)
    out, parity = checked_export(loaded, manifest, path, "onnx", tmp_path / "n.onnx", check=50)
    assert parity.ok, parity.line()
    image = check_images(CODES, 50)
    exported = run_onnx(out)(image)
    reference = reference_outputs(loaded, manifest, image)
    np.testing.assert_allclose(exported["familiarity"], reference["familiarity"], atol=1e-4)
    # Neighbours come with their center and projection, and fit the router's features.
    kept = (model.prototypes, model.neighbours, model.feature_center, model.feature_projection)
    with pytest.raises(ValueError, match="go together"):
        model.set_prototypes(kept[0], kept[1], None, kept[3])
    with pytest.raises(ValueError, match=r"expected \[N ≥ 1, 8\]"):
        model.set_prototypes(kept[0], kept[1][:, :4], *kept[2:])
    with pytest.raises(ValueError, match="feature projection of shape"):
        model.set_prototypes(*kept[:3], kept[3].T)
    with pytest.raises(ValueError, match="need prototypes"):
        model.set_prototypes(None, kept[1])
    with pytest.raises(ValueError, match="familiarity='nearest'"):
        fit_calibration(model, data.val_dataloader(), 0.02, familiarity="nearest")


def test_evidence_auto_is_fitted_on_validation_data_and_read_back(calibrated, data, tmp_path):
    _, record, plain = calibrated
    assert record["evidence"] == 0.0 and "evidence_nll" not in record  # integrate's default
    model = UnifiedModel(dict(plain.members), plain.routes, plain.languages, plain.router)
    fitted = fit_calibration(model, data.val_dataloader(), 0.02, "auto")
    losses = fitted["evidence_nll"]
    assert set(losses) == {str(v) for v in EVIDENCE_GRID}
    assert model.evidence == fitted["evidence"]
    assert losses[str(model.evidence)] == pytest.approx(min(losses.values()))
    assert fitted["nll"]["script"]["after"] == losses[str(model.evidence)] <= losses["0.0"]
    fixed = UnifiedModel(dict(plain.members), plain.routes, plain.languages, plain.router)
    assert fit_calibration(fixed, data.val_dataloader(), 0.02, 0.3)["evidence"] == 0.3
    # The router with the evidence: what script_probs gives, and what predict names.
    x, _, _ = next(iter(data.val_dataloader()))
    with torch.no_grad():
        router = fixed.members["shared"]
        lid = router.heads["_lid"](router.backbone(x))
        t = fixed.temperatures
        heads = torch.stack([fixed(x, c) / t["digit"] for c in fixed.languages], dim=1)
        by_hand = ((lid + 0.3 * heads.logsumexp(dim=2)) / t["script"]).softmax(1)
        torch.testing.assert_close(fixed.script_probs(x), by_hand)
        read = fixed.predict(x)
    torch.testing.assert_close(read["language"], by_hand.argmax(1))
    torch.testing.assert_close(read["language_prob"], by_hand.max(1).values)
    loaded, manifest = load_bundle(save(tmp_path / "evidence.safetensors", fixed, fitted))
    assert loaded.evidence == 0.3 == manifest["calibration"]["evidence"]
    with torch.no_grad():
        torch.testing.assert_close(loaded.script_probs(x), by_hand)
    with pytest.raises(ValueError, match="evidence must be"):
        UnifiedModel(dict(plain.members), plain.routes, plain.languages, plain.router, evidence=-1)


def test_eval_unknown_rate_and_acc_answered_recomputed_by_hand(calibrated, tmp_path):
    path, record, _ = calibrated
    cfg = eval_config(tmp_path / "auto", f"bundle={path}")
    metrics, _ = run_stage(evaluate, cfg)
    plain, _ = run_stage(evaluate, eval_config(tmp_path / "none", f"bundle={path}", "reject=none"))
    model, manifest = load_bundle(path)
    reject = Thresholds(*(record["reject"][k] for k in ("script", "digit", "familiar")))
    assert (metrics["reject_script"], metrics["reject_digit"]) == (reject.script, reject.digit)
    assert metrics["reject_familiar"] == reject.familiar
    rates = []
    for code in CODES:
        test = glyph_splits(cfg.data, load_language(code), cfg.seed, ("test",))["test"]
        x = model_input(test.images, manifest["preprocessing"])
        with torch.no_grad():
            read = model.predict(x)
            given = model.predict(x, language=code)
        hit = (read["digit"] == test.labels).numpy()
        reasons = unknown_reasons(
            read["language_prob"], read["digit_prob"], reject, read["familiarity"]
        )
        unknown = reasons != ""
        rates.append(unknown.mean())
        assert metrics[f"test/{code}/unknown_rate"] == pytest.approx(unknown.mean())
        if (~unknown).any():
            assert metrics[f"test/{code}/acc_answered"] == pytest.approx(hit[~unknown].mean())
        assert metrics[f"test/{code}/routed_acc"] == pytest.approx((hit & ~unknown).mean())
        assert metrics[f"test/{code}/ece"] == pytest.approx(
            expected_calibration_error(read["digit_prob"].numpy(), hit)
        )
        assert metrics[f"test/{code}/ece_given"] == pytest.approx(
            expected_calibration_error(
                given["digit_prob"].numpy(), (given["digit"] == test.labels).numpy()
            )
        )
        # reject=none: the metrics mean what they meant; the oracle metrics never change.
        assert plain[f"test/{code}/routed_acc"] == pytest.approx(hit.mean())
        assert f"test/{code}/unknown_rate" not in plain
        assert plain[f"test/{code}/acc"] == metrics[f"test/{code}/acc"]
        assert plain[f"test/{code}/ece"] == metrics[f"test/{code}/ece"]
    assert metrics["test/mean/unknown_rate"] == pytest.approx(np.mean(rates))
    assert "test/mean/ece" in metrics and "test/mean/ece_given" in metrics
    everything, _ = run_stage(evaluate, eval_config(tmp_path / "all", f"bundle={path}", "reject=1"))
    assert all(everything[f"test/{c}/unknown_rate"] == 1.0 for c in CODES)
    assert all(everything[f"test/{c}/routed_acc"] == 0.0 for c in CODES)


def test_eval_outside_languages_scores_auroc_and_their_unknown_rate(calibrated, tmp_path):
    path, record, _ = calibrated
    cfg = eval_config(tmp_path / "o", f"bundle={path}", "outside=[gu,th]", "page_size=4")
    metrics, artifacts = run_stage(evaluate, cfg)
    model, manifest = load_bundle(path)
    reject = Thresholds(*(record["reject"][k] for k in ("script", "digit", "familiar")))
    script, familiar, unknown = {}, {}, {}
    for code in [*CODES, "gu", "th"]:
        test = glyph_splits(cfg.data, load_language(code), cfg.seed, ("test",))["test"]
        x = model_input(test.images, manifest["preprocessing"])
        with torch.no_grad():
            script[code] = model.script_probs(x).max(1).values.numpy()
            familiar[code] = model.familiarity(x).numpy()
            read = model.predict(x)
        reasons = unknown_reasons(
            read["language_prob"], read["digit_prob"], reject, read["familiarity"]
        )
        unknown[code] = reasons != ""

    def split(scores: dict, pages: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """(inside, outside), each language's scores averaged over its own pages."""
        mean = {
            c: v[: len(v) // pages * pages].reshape(-1, pages).mean(1) for c, v in scores.items()
        }
        return np.concatenate([mean[c] for c in CODES]), np.concatenate([mean["gu"], mean["th"]])

    assert metrics["test/outside/auroc"] == pytest.approx(auroc(*split(familiar)))
    assert metrics["test/outside/auroc_script_prob"] == pytest.approx(auroc(*split(script)))
    assert metrics["test/outside/auroc_page"] == pytest.approx(auroc(*split(familiar, 4)))
    assert "test/outside/auroc_real" not in metrics  # glyphs only: no real set to compare
    for code in ("gu", "th"):
        assert metrics[f"test/{code}/unknown_rate"] == pytest.approx(unknown[code].mean())
        assert artifacts["data_counts"][code] == {"test": len(script[code])}
    pooled = np.concatenate([unknown["gu"], unknown["th"]]).mean()
    assert metrics["test/outside/unknown_rate"] == pytest.approx(pooled)
    assert "test/gu/acc" not in metrics  # read by the router only, never scored as its own


def test_outside_holding_a_bundle_language_fails_in_one_line(calibrated, tmp_path, monkeypatch):
    path, _, _ = calibrated
    done = run_in_process("xlv-eval", f"bundle={path}", "outside=[gu,kn]", cwd=tmp_path)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and lines[-1] == (
        "xlv-eval: config error: outside='kn' is not allowed: a language the bundle does not hold; "
        "it holds kn, zh, hi"
    )
    with pytest.raises(ConfigError, match="outside='xx'"):
        run_stage(evaluate, eval_config(tmp_path / "x", f"bundle={path}", "outside=[xx]"))


@pytest.mark.parametrize("value", ["-0.1", "1.5", "abc"])
def test_bad_reject_values_fail_in_one_line_and_write_nothing(
    calibrated, value, tmp_path, monkeypatch, capsys
):
    path, _, _ = calibrated
    write_scans(tmp_path / "scans")
    out = tmp_path / "preds.json"
    code, stdout, err = predict_cli_run(
        monkeypatch,
        capsys,
        f"bundle={path}",
        f"input={tmp_path / 'scans'}",
        f"reject={value}",
        f"output={out}",
    )
    assert code == 2 and err.count("\n") == 1 and stdout == ""
    assert "reject=" in err and "auto, none, or a probability in [0, 1]" in err
    assert not out.exists()
    monkeypatch.chdir(tmp_path)
    done = run_cli("xlv-eval", f"bundle={path}", f"reject={value}", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "reject=" in done.stderr and not (tmp_path / "outputs").exists()


def test_predict_answers_unknown_with_its_reason(calibrated, tmp_path, monkeypatch, capsys):
    path, record, _ = calibrated
    write_scans(tmp_path / "scans")
    scans = f"input={tmp_path / 'scans'}"
    out = tmp_path / "p.json"
    code, stdout, _ = predict_cli_run(
        monkeypatch, capsys, f"bundle={path}", scans, "reject=1", f"output={out}"
    )
    assert code == 0
    rows = json.loads(out.read_text())
    assert len(rows) == 6 and {r["answer"] for r in rows} == {"?"}
    assert {r["unknown_reason"] for r in rows} <= {"script", "digit"}
    assert all("  ?  " in line and "unknown (" in line for line in stdout.splitlines())
    out = tmp_path / "p.csv"
    code, stdout, _ = predict_cli_run(
        monkeypatch, capsys, f"bundle={path}", scans, "reject=none", f"output={out}"
    )
    rows = out.read_text().splitlines()
    assert code == 0 and "answer" in rows[0] and "unknown_reason" in rows[0]
    answers = [line.split(",") for line in rows[1:]]
    assert all(r[1] in r and "?" not in r for r in answers)  # each answer is its digit
    # reject=auto: the bundle's own thresholds, each reason from the probabilities shown.
    model, manifest = load_bundle(path)
    predictions = predict_images(
        TorchReader(model, manifest),
        manifest,
        str(tmp_path / "scans"),
        progress=False,
        reject=reject_thresholds("auto", manifest),
    )
    for p in predictions:
        unfamiliar = p.familiarity < record["reject"]["familiar"]
        if p.language_prob < record["reject"]["script"] or unfamiliar:
            assert (p.answer, p.unknown_reason) == ("?", "script")
        elif p.digit_prob < record["reject"]["digit"]:
            assert (p.answer, p.unknown_reason) == ("?", "digit")
        else:
            assert (p.answer, p.unknown_reason) == (str(p.digit), None)
    # Above every familiarity, each image's script is unknown, unless the user names it.
    scans = str(tmp_path / "scans")
    strict = Thresholds(0.0, 0.0, 1.01)
    reader = TorchReader(model, manifest)
    named = predict_images(reader, manifest, scans, progress=False, reject=strict)
    assert {p.unknown_reason for p in named} == {"script"}
    given = predict_images(reader, manifest, scans, language="kn", progress=False, reject=strict)
    assert {p.unknown_reason for p in given} == {None}
    assert [p.familiarity for p in given] == pytest.approx([p.familiarity for p in named])


# ------------------------------------------------------------------ out of Python
@pytest.fixture(scope="module")
def strongly_calibrated(calibrated, tmp_path_factory):
    """The calibrated bundle with temperatures far from 1 (and thresholds that bite), its
    prototypes and familiarity threshold kept."""
    path, record, plain = calibrated
    model = UnifiedModel(
        dict(plain.members),
        plain.routes,
        plain.languages,
        plain.router,
        temperatures={"script": 2.5, "digit": 0.6},
    )
    model.set_prototypes(load_bundle(path)[0].prototypes)
    reject = {"script": 0.9, "digit": 0.9, "familiar": record["reject"]["familiar"], "rate": 0.02}
    stored = {**record, "reject": reject}
    return save(tmp_path_factory.mktemp("strong") / "digits.safetensors", model, stored)


def test_onnx_export_is_calibrated_and_reads_as_pytorch(strongly_calibrated, tmp_path):
    model, manifest = load_bundle(strongly_calibrated)
    out, parity = checked_export(
        model, manifest, strongly_calibrated, "onnx", tmp_path / "d.onnx", check=300
    )
    assert parity.ok and parity.images == 900, parity.line()
    image = check_images(CODES, 300)
    exported = run_onnx(out)(image)
    reference = reference_outputs(model, manifest, image)
    np.testing.assert_array_equal(exported["digit"], reference["digit"])
    # The graph holds the temperatures: its probabilities are not the raw softmax.
    x = model_input(
        torch.from_numpy(np.round(image[:, 0] * 255).astype(np.uint8)), manifest["preprocessing"]
    )
    with torch.no_grad():
        router = model.members["shared"]
        raw = router.heads["_lid"](router.backbone(x)).softmax(1).numpy()
    np.testing.assert_allclose(exported["script_probs"], reference["script_probs"], atol=1e-4)
    assert np.abs(exported["script_probs"] - raw).max() > 0.05
    # So it holds the prototypes: the familiarity is PyTorch's, and the parity check covers it.
    with torch.no_grad():
        familiarity = model.familiarity(x).numpy()
    np.testing.assert_allclose(reference["familiarity"], familiarity, atol=1e-6)
    np.testing.assert_allclose(exported["familiarity"], familiarity, atol=1e-4)
    assert 0.2 < familiarity.min() < familiarity.max() <= 1.0 + 1e-6
    off = {**exported, "familiarity": exported["familiarity"] + 1e-3}
    assert not compare(off, reference).ok and compare(exported, reference).ok
    # The manifest's calibration travels in the metadata; both readers say `?` alike.
    onnx_reader = OnnxReader(out)
    assert onnx_reader.manifest["calibration"] == manifest["calibration"]
    write_scans(tmp_path / "scans")
    read = {}
    for name, reader in (("torch", TorchReader(model, manifest)), ("onnx", onnx_reader)):
        for one_script in (None, "all"):
            predictions = predict_images(
                reader,
                reader.manifest,
                str(tmp_path / "scans"),
                progress=False,
                one_script=one_script,
                reject=reject_thresholds("auto", reader.manifest),
            )
            read[name, one_script] = [
                (p.path, p.answer, p.unknown_reason, round(p.language_prob, 3)) for p in predictions
            ]
    for one_script in (None, "all"):
        assert read["onnx", one_script] == read["torch", one_script]
    reasons = {r[2] for mode in (None, "all") for r in read["torch", mode]}
    assert reasons == {None, "script", "digit"}
    # A familiarity threshold that bites on half the scans: the same `?`s from both readers.
    scans = str(tmp_path / "scans")
    torch_reader = TorchReader(model, manifest)
    shown = [p.familiarity for p in predict_images(torch_reader, manifest, scans, progress=False)]
    half = Thresholds(0.0, 0.0, float(np.median(shown)))
    for one_script in (None, "all"):
        said = {}
        for name, reader in (("torch", torch_reader), ("onnx", onnx_reader)):
            predictions = predict_images(
                reader, reader.manifest, scans, progress=False, one_script=one_script, reject=half
            )
            said[name] = [(p.unknown_reason, round(p.familiarity, 4)) for p in predictions]
        assert said["onnx"] == said["torch"]
        if one_script is None:
            assert [r for r, _ in said["torch"]] == [
                "script" if f < half.familiar else None for f in shown
            ]
            assert [r for r, _ in said["torch"]].count("script") == 3


def test_onnx_export_reads_the_script_with_the_digit_evidence(calibrated, tmp_path):
    """λ > 0 in the graph: its script probabilities are (router + λ·logsumexp of each
    language's calibrated digit logits) ÷ T, as PyTorch's; λ = 0 gives the router's alone."""
    path, _, plain = calibrated
    temperatures = {"script": 1.5, "digit": 0.8}
    lam = 0.05
    model = UnifiedModel(
        dict(plain.members),
        plain.routes,
        plain.languages,
        plain.router,
        "marginal",
        temperatures,
        evidence=lam,
    )
    bundle = save(tmp_path / "evidence.safetensors", model, {"fit_on": "validation"})
    model, manifest = load_bundle(bundle)
    assert model.evidence == lam and manifest["calibration"]["evidence"] == lam
    out, parity = checked_export(model, manifest, bundle, "onnx", tmp_path / "e.onnx", check=100)
    assert parity.ok, parity.line()
    image = check_images(CODES, 100)
    exported = run_onnx(out)(image)
    x = model_input(
        torch.from_numpy(np.round(image[:, 0] * 255).astype(np.uint8)), manifest["preprocessing"]
    )
    with torch.no_grad():
        router = model.members["shared"]
        lid = router.heads["_lid"](router.backbone(x))
        heads = torch.stack([model(x, c) / 0.8 for c in model.languages], dim=1)
        by_hand = ((lid + lam * heads.logsumexp(dim=2)) / 1.5).softmax(1).numpy()
        router_alone = (lid / 1.5).softmax(1).numpy()
    np.testing.assert_allclose(exported["script_probs"], by_hand, atol=1e-4)
    assert np.abs(by_hand - router_alone).max() > 0.01


def test_fit_rising_temperature_recovers_how_sure_a_model_grows_where_unfamiliar():
    """Labels drawn from softmax(z / T(x)), T rising as the familiarity falls below 0.5: the
    fit finds the base temperature and slope; with T constant it finds no slope."""
    rng = np.random.default_rng(0)
    n, below = 6000, 0.5
    logits = rng.normal(0, 3, (n, 10))
    familiar = rng.uniform(0.0, 1.0, n)

    def draw(temperature: np.ndarray) -> np.ndarray:
        probs = np.exp(logits / temperature[:, None])
        probs /= probs.sum(axis=1, keepdims=True)
        return (probs.cumsum(axis=1) > rng.uniform(0, 1, (n, 1))).argmax(axis=1)

    rising = 1.5 * np.exp(2.0 * np.maximum(below - familiar, 0))
    labels = draw(rising)
    t, slope, loss = fit_rising_temperature(logits, labels, familiar, below)
    assert slope == pytest.approx(2.0, abs=0.5) and t == pytest.approx(1.5, rel=0.15)
    constant_t, flat, constant = fit_rising_temperature(logits, labels, familiar, below, (0.0,))
    assert flat == 0.0 and constant_t == pytest.approx(fit_temperature(logits, labels))
    assert loss < constant - 0.01
    labels = draw(np.full(n, 1.5))
    assert fit_rising_temperature(logits, labels, familiar, below)[1] <= 0.25


def test_temperature_by_familiarity_fitted_on_perturbed_validation_read_back_and_exported(
    calibrated, data, tmp_path
):
    """temperature=by_familiarity: each kind's temperature is t·exp(slope·max(0, below − the
    class-mean familiarity)), below the validation images' median; the probabilities of
    `predict`, a bundle round trip and the ONNX graph all use it."""
    _, _, plain = calibrated
    augment = compose_config(["debug=fast"]).data.augment
    perturb = glyph_perturbation(augment, MNIST_MEAN, MNIST_STD, 0)
    x = next(iter(data.val_dataloader()))[0]
    again = glyph_perturbation(augment, MNIST_MEAN, MNIST_STD, 0)
    torch.testing.assert_close(perturb(x, 1.0), again(x, 1.0))  # seeded
    assert (perturb(x, 1.5) - x).abs().mean() > (perturb(x, 0.5) - x).abs().mean() > 0.05
    model = UnifiedModel(dict(plain.members), plain.routes, plain.languages, plain.router)
    with pytest.raises(ValueError, match="needs a router and a perturbation"):
        fit_calibration(model, data.val_dataloader(), 0.02, temperature="by_familiarity")
    with pytest.raises(ValueError, match="temperature='hot'"):
        fit_calibration(model, data.val_dataloader(), 0.02, temperature="hot", perturb=perturb)
    record = fit_calibration(
        model, data.val_dataloader(), 0.02, temperature="by_familiarity", perturb=perturb
    )
    fit = record["temperature_fit"]
    assert fit["levels"] == [0.0, *RISE_LEVELS]
    assert fit["images"] == (1 + len(RISE_LEVELS)) * len(data.datasets["val"])
    for kind in ("script", "digit"):
        assert fit["nll"][kind]["rising"] <= fit["nll"][kind]["constant"] + 1e-9
    rise = model.temperature_rise
    router = plain.members["shared"]
    with torch.no_grad():
        features = torch.cat([router.backbone(xb) for xb, _, _ in data.val_dataloader()])
        means = (F.normalize(features, dim=1) @ model.prototypes.T).max(1).values
    assert rise["below"] == pytest.approx(float(means.double().median()), abs=1e-3)
    assert rise["script"]["slope"] > 0 or rise["digit"]["slope"] > 0
    # By hand on perturbed images: T per image, for the script and each digit reading.
    shifted = perturb(x, 1.5)
    with torch.no_grad():
        feats = router.backbone(shifted)
        gap = rise["below"] - (F.normalize(feats, dim=1) @ model.prototypes.T).max(1).values
        gap = gap.clamp(min=0).unsqueeze(1)
        script_t = rise["script"]["t"] * torch.exp(rise["script"]["slope"] * gap)
        digit_t = rise["digit"]["t"] * torch.exp(rise["digit"]["slope"] * gap)
        script = (router.heads["_lid"](feats) / script_t).softmax(1)
        torch.testing.assert_close(model.script_probs(shifted), script)
        first = model(shifted, CODES[0])
        read = model.predict(shifted, language=CODES[0])
        torch.testing.assert_close(read["digit_prob"], (first / digit_t).softmax(1).max(1).values)
        routed = model.predict(shifted, answer="routed")
        assert (routed["language_prob"] == script.max(1).values).all()
        assert gap.max() > 0 and script_t.max() > script_t.min()
    # Kept in the bundle, read back the same, exported into the graph.
    path = save(tmp_path / "rising.safetensors", model, record)
    loaded, manifest = load_bundle(path)
    assert manifest["calibration"]["temperature_rise"] == rise == loaded.temperature_rise
    with torch.no_grad():
        again = loaded.predict(shifted)
        torch.testing.assert_close(again["digit_prob"], model.predict(shifted)["digit_prob"])
    out, parity = checked_export(loaded, manifest, path, "onnx", tmp_path / "r.onnx", check=100)
    assert parity.ok, parity.line()
    image = check_images(CODES, 100)
    exported = run_onnx(out)(image)
    reference = reference_outputs(loaded, manifest, image)
    for name in ("digit_logits", "script_probs", "digit_prob"):
        np.testing.assert_allclose(exported[name], reference[name], atol=1e-4)
    # A rise that is not a rise, or one without prototypes, fails to load in one line.
    for bad, message in (
        ({**rise, "script": {"t": 1.0, "slope": -1.0}}, "each t must be > 0 and slope ≥ 0"),
        ({**rise, "digit": {"t": 0.0, "slope": 1.0}}, "each t must be > 0"),
        ({"below": 0.5}, "needs a number 'below'"),
    ):
        model.temperature_rise = bad
        written = save(tmp_path / "bad.safetensors", model, record)
        with pytest.raises(
            BundleError, match=f"bad.safetensors: calibration.temperature_rise.*{message}"
        ):
            load_bundle(written)
    bare = UnifiedModel(dict(plain.members), plain.routes, plain.languages, plain.router)
    bare.temperature_rise = rise
    written = save(tmp_path / "bare.safetensors", bare, {"fit_on": "validation"})
    with pytest.raises(BundleError, match="temperature_rise needs prototypes"):
        load_bundle(written)
    bare.set_prototypes(model.prototypes)
    bare.set_temperature_rise(rise)
    bare.set_prototypes(None)
    assert bare.temperature_rise is None


def run_page_logic(calls: list[str]) -> list:
    """The page's `verdict` and `percent`, cut out of app.js and run by node."""
    source = (WEB_TEMPLATE / "app.js").read_text()
    functions = [
        re.search(rf"^function {name}\(.*?^}}$", source, re.S | re.M).group(0)
        for name in ("verdict", "percent", "languageLabel")
    ]
    script = "\n".join(functions) + f"\nconsole.log(JSON.stringify([{', '.join(calls)}]));"
    done = subprocess.run(
        [shutil.which("node"), "-e", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_page_reads_the_thresholds_from_model_json_and_says_not_sure(strongly_calibrated):
    model, manifest = load_bundle(strongly_calibrated)
    page = page_model(description(manifest, strongly_calibrated, "onnx"))
    familiar = manifest["calibration"]["reject"]["familiar"]
    assert page["reject"] == {"script": 0.9, "digit": 0.9, "familiar": familiar, "rate": 0.02}
    bare = page_model(description({**manifest, "calibration": None}, "b", "onnx"))
    assert bare["reject"] is None
    # A graph without the familiarity output has no familiarity threshold on its page.
    without = {k: v for k, v in manifest["calibration"].items() if k != "prototypes"}
    older = page_model(description({**manifest, "calibration": without}, "b", "onnx"))
    assert older["reject"] == {"script": 0.9, "digit": 0.9, "rate": 0.02}
    if shutil.which("node") is None:
        pytest.skip("no node to run the page's logic")
    reject = json.dumps(page["reject"])
    low, high = familiar - 0.01, familiar + 0.01
    cases = [(0.5, 0.99, high), (0.95, 0.5, high), (0.95, 0.95, high), (0.1, 0.1, high)]
    cases += [(0.95, 0.95, low), (0.95, 0.5, low)]
    calls = [f"verdict({s}, {d}, {reject}, {f})" for s, d, f in cases]
    calls += [f"verdict(0.95, 0.95, {reject})", "verdict(0.1, 0.1, null)"]
    calls += ["percent(0.99996)", "percent(1)", "percent(0.8123)"]
    got = run_page_logic(calls)
    thresholds = Thresholds(*(page["reject"][k] for k in ("script", "digit", "familiar")))
    script, digit, familiarity = zip(*cases, strict=True)
    expected = list(unknown_reasons(script, digit, thresholds, familiarity))
    assert got[:6] == expected == ["script", "digit", "", "script", "script", "script"]
    assert got[6:] == ["", "", "99.9%", "99.9%", "81.2%"]


def test_the_page_names_a_language_and_its_script_without_nesting_them():
    if shutil.which("node") is None:
        pytest.skip("no node to run the page's logic")
    languages = [load_language(code) for code in ("ar", "bn", "fa")]
    records = [json.dumps({"name": lang.name, "script": lang.script}) for lang in languages]
    got = run_page_logic([f"languageLabel({r})" for r in records])
    assert got == [
        "Arabic · Arabic (Arabic-Indic digits)",
        "Bengali",
        "Persian · Arabic (Extended Arabic-Indic digits)",
    ]


@pytest.mark.chromium
def test_the_page_reads_the_familiarity_and_is_not_sure_of_the_script_below_it(
    strongly_calibrated, tmp_path
):
    from browser import chromium_binary, chromium_page, serve
    from test_export import THREE, draw

    from xlvision.bundle.export import default_runtime

    chromium_binary()
    if not (default_runtime() / "ort.wasm.min.js").is_file():
        pytest.skip(f"no onnxruntime-web at {default_runtime()} (make install puts it there)")
    # Above every familiarity, and nothing else: every drawing is "not sure" of its script.
    model, manifest = load_bundle(strongly_calibrated)
    reject = {"script": 0.0, "digit": 0.0, "familiar": 1.01, "rate": 0.02}
    path = save(tmp_path / "odd.safetensors", model, {**manifest["calibration"], "reject": reject})
    model, manifest = load_bundle(path)
    page_dir, _ = checked_export(model, manifest, path, "web", tmp_path / "page", check=20)
    assert json.loads((page_dir / "model.json").read_text())["reject"] == reject
    with serve(page_dir) as url, chromium_page(tmp_path / "profile", url + "index.html") as page:
        page.wait_for("document.body.dataset.state === 'ready'")
        shown = draw(page, THREE)
        body = page.evaluate("({...document.body.dataset})")
        text = page.evaluate("document.getElementById('digit').textContent")
    assert (shown["unknown"], body["unknown"], body["digit"]) == ("script", "script", "?")
    assert text == "not sure"
    # The familiarity the page read is PyTorch's for the very input it showed.
    digits = torch.tensor(shown["input"], dtype=torch.uint8).reshape(1, 28, 28)
    with torch.no_grad():
        familiarity = model.familiarity(model_input(digits, manifest["preprocessing"]))
    assert shown["familiarity"] == pytest.approx(float(familiarity[0]), abs=1e-4)
    assert 0 < shown["familiarity"] < 1.01


def test_an_integrate_config_from_before_reject_rate_takes_its_default():
    from omegaconf import OmegaConf

    from xlvision.config.integrate import validate_integrate

    old = OmegaConf.create({"name": "unified", "answer": "auto", "bn_batches": 3})
    OmegaConf.set_struct(old, True)  # as a resumed run's config.yaml is read
    conf = validate_integrate(old)
    assert conf.reject_rate == 0.02 and conf.lam_grid == [0.2, 0.4, 0.6, 0.8, 1.0]
    assert conf.bn_batches == 3 and "reject_rate" not in old


# ------------------------------------------------------------------ views
def test_views_read_the_mean_of_the_copies_features_stored_and_exported(calibrated, data, tmp_path):
    """integrate.views=shifts_thick: every image read as the mean of the backbone features of
    it, its four one-pixel moves and its strokes grown by a 3×3 maximum filter; calibrated on
    those features, kept in the bundle and read the same by its ONNX export."""
    from xlvision.config.models import VIEW_SETS as CONFIG_VIEW_SETS
    from xlvision.models.views import VIEW_SETS, Views

    assert CONFIG_VIEW_SETS == VIEW_SETS
    _, _, plain = calibrated
    model = UnifiedModel(
        dict(plain.members), plain.routes, plain.languages, plain.router, views="shifts_thick"
    )
    record = fit_calibration(model, data.val_dataloader(), 0.02)
    x = next(iter(data.val_dataloader()))[0][:48]
    # With a background border (as a digit canvas has before noise), a move is a roll.
    x = x.clone()
    background = float(x.min())
    for edge in (0, -1):
        x[..., edge, :] = background
        x[..., :, edge] = background
    copies = [
        x,
        *(torch.roll(x, (dy, dx), dims=(2, 3)) for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1))),
    ]
    copies.append(F.max_pool2d(x, 3, stride=1, padding=1))
    torch.testing.assert_close(Views("shifts_thick")(x), torch.cat(copies), atol=0, rtol=0)
    router = plain.members["shared"]
    with torch.no_grad():
        mean = torch.stack([router.backbone(c) for c in copies]).mean(0)
        t = model.temperatures
        torch.testing.assert_close(
            model.script_probs(x), (router.heads["_lid"](mean) / t["script"]).softmax(1)
        )
        torch.testing.assert_close(model(x, CODES[1]), router.heads[CODES[1]](mean))
        differs = (model.script_probs(x) - plain.script_probs(x)).abs().max()
    assert differs > 1e-3  # the copies change the reading
    # Fitted on the views' features: the prototypes are theirs, and a threshold rejects ≤ 2 %.
    val = [model.predict(xb) for xb, _, _ in data.val_dataloader()]
    assert (
        torch.cat([r["language_prob"] for r in val]) < record["reject"]["script"]
    ).float().mean() <= 0.02
    # Kept in the bundle (a bundle without views says nothing), read back, exported alike.
    path = save(tmp_path / "views.safetensors", model, record)
    loaded, manifest = load_bundle(path)
    assert manifest["views"] == "shifts_thick" and loaded.views.count == 6
    assert "views" not in load_bundle(save(tmp_path / "p.safetensors", plain, None))[1]
    with torch.no_grad():
        torch.testing.assert_close(loaded.predict(x)["digit_prob"], model.predict(x)["digit_prob"])
    out, parity = checked_export(loaded, manifest, path, "onnx", tmp_path / "v.onnx", check=50)
    assert parity.ok, parity.line()
    image = check_images(CODES, 50)
    exported = run_onnx(out)(image)
    reference = reference_outputs(loaded, manifest, image)
    np.testing.assert_allclose(exported["script_probs"], reference["script_probs"], atol=1e-4)
    with pytest.raises(ValueError, match="views='rotations': one of none, shifts, shifts_thick"):
        Views("rotations")


def test_an_unknown_views_value_fails_in_one_line():
    from omegaconf import OmegaConf

    from xlvision.config.integrate import validate_integrate

    with pytest.raises(ConfigError, match="integrate.views"):
        validate_integrate(OmegaConf.create({"name": "unified", "views": "rotations"}))


def test_reusing_features_runs_the_backbone_once_per_input_and_reads_the_same(calibrated, data):
    _, _, plain = calibrated
    model = UnifiedModel(
        dict(plain.members), plain.routes, plain.languages, plain.router, "marginal", views="shifts"
    )
    calls = []
    hook = model.members["shared"].backbone.register_forward_hook(lambda *_: calls.append(1))
    x = next(iter(data.val_dataloader()))[0][:32]
    try:
        with torch.no_grad():
            alone = [model.predict(x, language=CODES[0]), model.predict(x, answer="routed")]
            assert len(calls) == 2
            with model.reusing_features():
                reused = [model.predict(x, language=CODES[0]), model.predict(x, answer="routed")]
                model.predict(x.clone())  # another tensor: its own pass
            assert len(calls) == 4
            model.predict(x)  # outside: nothing kept
            assert len(calls) == 5 and model._reused is None
    finally:
        hook.remove()
    for a, b in zip(alone, reused, strict=True):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_reading_set_runs_each_backbone_once_per_image_and_scores_the_same(
    calibrated, data, monkeypatch
):
    """xlv-eval reads a test set in batches, again by page and by the script each page is
    given: inside `reading_set` the backbone reads each image once, and every figure is as
    without it."""
    _, _, plain = calibrated
    model = UnifiedModel(
        dict(plain.members), plain.routes, plain.languages, plain.router, "marginal", views="shifts"
    )
    calls = []
    hook = model.members["shared"].backbone.register_forward_hook(lambda *_: calls.append(1))
    x, y = next(iter(data.val_dataloader()))[:2]
    batches = -(-len(x) // 32)

    def scored() -> dict:
        scores, _ = score_language(model, x, y, CODES[0], 32)
        return {**scores, **score_pages(model, x, y, CODES[0], 32, 5, seed=0)}

    try:
        with torch.no_grad():
            alone = scored()
            passes = len(calls)
            assert passes > 2 * batches  # by score_language, by the pages, then by script
            with model.reading_set(x, 32):
                once = scored()
                assert len(calls) - passes == batches
                model.features("shared", x[:8] + 1)  # not images of the set: their own pass
                assert len(calls) - passes == batches + 1
            assert model._set is None
            monkeypatch.setattr(bundle_model, "SET_FEATURES_BYTES", 0)  # too large to keep
            calls.clear()
            with model.reading_set(x, 32):
                kept_none = scored()
            assert len(calls) == passes + 1  # one batch read to find the features' size
    finally:
        hook.remove()
    assert once.keys() == alone.keys() == kept_none.keys()
    for key, value in alone.items():
        assert once[key] == pytest.approx(value, abs=1e-9), key
        assert kept_none[key] == value, key
