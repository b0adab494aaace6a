"""`evaluate`: a bundle's accuracy per language, against the individual models' accuracy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from xlvision.bundle.calibration import Thresholds, reject_thresholds, unknown_reasons
from xlvision.bundle.file import load_bundle
from xlvision.bundle.manifest import digit_preprocessing, language_groups, model_input
from xlvision.bundle.model import UnifiedModel
from xlvision.bundle.predict import inference_device
from xlvision.config.errors import ConfigError
from xlvision.data.arrays import DigitArrays
from xlvision.data.datamodule import evaluation_sets
from xlvision.data.mix import parse_mix, trains_on_real
from xlvision.evaluation.means import language_means
from xlvision.evaluation.metrics import classification_metrics
from xlvision.evaluation.unified import (
    MEANS,
    confusion_records,
    in_bundle_scores,
    outside_aurocs,
    score_language,
    score_pages,
)
from xlvision.languages import available_languages, load_language
from xlvision.languages.registry import language_from_mapping
from xlvision.models.checkpoint import load_classifier
from xlvision.models.classifier import language_codes
from xlvision.progress import tracked
from xlvision.stages.adapt import adapted_for_test

OUTSIDE = "outside"
"""The row of the languages a bundle does not hold: `test/outside/auroc`, `auroc_script_prob`,
`auroc_page`, `unknown_rate`."""


def eval_languages(cfg: DictConfig, bundle_languages: list[str]) -> list[str]:
    """`language=[…]` if given; else a real-data preset's own language; else all of the bundle's."""
    codes = list(cfg.language)
    declared = OmegaConf.select(cfg, "data.source.language", default=None, throw_on_missing=False)
    if not codes:
        codes = [declared] if declared else list(bundle_languages)
    for code in codes:
        if code not in bundle_languages:
            raise ConfigError(
                "language", code, f"one of the bundle's {', '.join(bundle_languages)}"
            )
    return codes


def checkpoint_as_bundle(path: str) -> tuple[UnifiedModel, dict]:
    """A classifier checkpoint as a router-less bundle: one member reading all its languages."""
    classifier, spec, classes = load_classifier(path)
    codes = language_codes(classes)
    model = UnifiedModel({"model": classifier}, dict.fromkeys(codes, "model"), codes).eval()
    return model, {"preprocessing": digit_preprocessing(), "metrics": {}, "integration": {}}


def outside_languages(cfg: DictConfig, model: UnifiedModel) -> list[str]:
    """`outside=[…]`: languages of conf/language the bundle does not hold; refused otherwise."""
    codes = list(cfg.get("outside") or [])
    if codes and model.router is None:
        raise ConfigError("outside", codes, "[]: this model has no router to score them with")
    for code in codes:
        if code in model.languages:
            raise ConfigError(
                "outside",
                code,
                f"a language the bundle does not hold; it holds {', '.join(model.languages)}",
            )
        if code not in available_languages():
            raise ConfigError(
                "outside", code, f"a language of conf/language: {', '.join(available_languages())}"
            )
    return codes


@torch.no_grad()
def score_outside(
    cfg: DictConfig,
    model: UnifiedModel,
    manifest: dict,
    codes: list[str],
    inside: list[dict[str, np.ndarray]],
    reject: Thresholds | None,
    page_size: int = 0,
    real: list[bool] | None = None,
) -> tuple[dict[str, float], dict[str, dict]]:
    """Test sets of languages the bundle does not hold, read by its router: `outside_aurocs`
    of the in-bundle scores, its own languages' images (`inside`; `real`: which are real
    handwriting) against these; with `reject`,
    the share answered `?` per language and over them all (`test/outside/unknown_rate`)."""
    device = next(model.parameters()).device
    batch = cfg.data.batch_size
    metrics, counts, scores, unknown = {}, {}, [], []
    for code in tracked(codes, "scoring outside scripts"):
        sets = evaluation_sets(cfg.data, load_language(code), cfg.seed, cfg.paths.data_dir)
        x = model_input(DigitArrays.concat(list(sets.values())).images, manifest["preprocessing"])
        counts[code] = {"test": len(x)}
        scores.append(in_bundle_scores(model, x, batch))
        reasons = []
        for xb in x.split(batch):
            read = {k: v.cpu() for k, v in model.predict(xb.to(device)).items()}
            reasons.append(
                unknown_reasons(
                    read["language_prob"], read["digit_prob"], reject, read.get("familiarity")
                )
            )
        mine = torch.from_numpy(np.concatenate(reasons) != "")
        unknown.append(mine)
        if reject is not None:
            metrics[f"test/{code}/unknown_rate"] = float(mine.float().mean())
    found = outside_aurocs(inside, scores, page_size, real)
    metrics.update({f"test/{OUTSIDE}/{name}": value for name, value in found.items()})
    if reject is not None:
        metrics[f"test/{OUTSIDE}/unknown_rate"] = float(torch.cat(unknown).float().mean())
    return metrics, counts


ANY_SCRIPT = "any"
"""The row of a file whose script nobody gave: `test/any/acc` is read by the bundle's router."""


def evaluate_any_script(
    cfg: DictConfig, model: UnifiedModel, manifest: dict, bundle: str
) -> tuple[dict, dict]:
    """A labelled file of unknown or mixed scripts: digit metrics of the routed reading, and
    the share of images the router gave to each language."""
    if model.router is None:
        raise ConfigError(
            "language", None, f"one of {', '.join(model.languages)}: this model cannot route"
        )
    from xlvision.data.real import load_real_splits

    source = {**OmegaConf.to_container(cfg.data.source, resolve=True), "language": "und"}
    cap = cfg.data.get("real_per_class")
    test = load_real_splits(source, cfg.seed, Path(cfg.paths.data_dir), cap)["test"]
    x = model_input(test.images, manifest["preprocessing"])
    device = next(model.parameters()).device
    scores = classification_metrics(10)  # readers refuse labels outside 0–9
    named = torch.zeros(len(model.languages))
    with torch.no_grad():
        batch = cfg.data.batch_size
        for xb, yb in zip(x.split(batch), test.labels.split(batch), strict=True):
            read = {k: v.cpu() for k, v in model.predict(xb.to(device)).items()}
            scores.update(read["digit"], yb)
            named += torch.bincount(read["language"], minlength=len(model.languages)).float()
    metrics = {f"test/{ANY_SCRIPT}/{k}": float(v) for k, v in scores.compute().items()}
    shares = {
        code: float(n / max(len(test), 1)) for code, n in zip(model.languages, named, strict=True)
    }
    metrics["bundle_bytes"] = Path(bundle).expanduser().stat().st_size
    artifacts = {
        "bundle": str(bundle),
        "named_languages": shares,
        "data_counts": {ANY_SCRIPT: {"test": len(test)}},
    }
    return metrics, artifacts


def evaluate(cfg: DictConfig) -> tuple[dict, dict]:
    """Test every asked language on the configured data; normalized acc = acc ÷ individual acc."""
    if (cfg.get("bundle") is None) == (cfg.get("checkpoint") is None):
        raise ConfigError(
            "bundle", cfg.get("bundle"), "a bundle file, or checkpoint=<classifier ckpt> instead"
        )
    source = cfg.bundle or cfg.checkpoint
    model, manifest = load_bundle(cfg.bundle) if cfg.bundle else checkpoint_as_bundle(source)
    model.to(inference_device(cfg.device.accelerator))
    declared = OmegaConf.select(cfg, "data.source.language", default=None, throw_on_missing=False)
    if cfg.data.kind == "real" and not declared:
        if not cfg.language:  # nobody says the script: the bundle names it per image
            if cfg.get("adapt") is not None and cfg.adapt.method != "none":
                raise ConfigError("language", None, "a language to adapt to (adapt=…)")
            return evaluate_any_script(cfg, model, manifest, source)
        with open_dict(cfg):  # the file's script is the one given
            cfg.data.source.language = next(iter(cfg.language))
    codes = eval_languages(cfg, model.languages)
    outside = outside_languages(cfg, model)
    # xlv-eval's default is auto; a config without the key (xlv-pipeline's) keeps today's metrics.
    reject = reject_thresholds(cfg.get("reject", "none"), manifest)
    inside = []  # the in-bundle scores of each tested language's images (`in_bundle_scores`)
    inside_real = []  # whether each of them is real handwriting (not glyphs)
    page_size = cfg.get("page_size") or 0
    if not isinstance(page_size, int) or page_size < 0:
        raise ConfigError(
            "page_size", page_size, "a page of n ≥ 2 digits of one script, or 0: none"
        )
    individual = (manifest.get("metrics") or {}).get("individual") or {}
    metrics, confusion, counts = {}, {}, {}
    groups = language_groups(manifest)
    on_real = []  # languages scored on real data, not on glyphs
    for code in tracked(codes, "evaluating"):
        node = cfg.language.get(code)
        language = language_from_mapping(node) if node is not None else load_language(code)
        sets = evaluation_sets(cfg.data, language, cfg.seed, cfg.paths.data_dir)
        reader, preprocessing, adapted = adapted_for_test(cfg, model, manifest, language)
        if "glyphs" not in sets:
            on_real.append(code)
        parts = {code: DigitArrays.concat(list(sets.values()))}
        if len(sets) > 1:
            parts.update({f"{code}@{name}": arrays for name, arrays in sets.items()})
        # Each image is read by the backbones once; every reading below takes its features.
        whole = model_input(parts[code].images, preprocessing)
        with reader.reading_set(whole, cfg.data.batch_size):
            for name, test in parts.items():
                x = whole if name == code else model_input(test.images, preprocessing)
                scores, matrices = score_language(
                    reader, x, test.labels, code, cfg.data.batch_size, groups, reject
                )
                confusion.update(confusion_records(f"test/{name}", matrices))
                if outside and name == code:
                    plain = x  # the unadapted bundle's scores: its own preprocessing
                    if preprocessing is not manifest["preprocessing"]:
                        plain = model_input(test.images, manifest["preprocessing"])
                    inside.append(in_bundle_scores(model, plain, cfg.data.batch_size))
                    inside_real.append("glyphs" not in sets)
                if model.router is not None and page_size > 1:
                    scores.update(
                        score_pages(
                            reader,
                            x,
                            test.labels,
                            code,
                            cfg.data.batch_size,
                            page_size,
                            cfg.seed,
                            groups,
                            reject,
                        )
                    )
                reference = (individual.get(code) or {}).get("acc")
                if reference and name == code:
                    scores["normalized_acc"] = scores["acc"] / reference
                if name == code:
                    scores.update(adapted)
                metrics.update({f"test/{name}/{key}": value for key, value in scores.items()})
                counts[name] = {"test": len(test)}
    # `mean_real`: over the languages scored on real handwriting, when glyphs score the others;
    # with data.leave_real_out, `mean_left_out` over those and `mean_trained_real` over the
    # languages whose real training data the model saw.
    left_out = [c for c in on_real if c in (cfg.data.get("leave_real_out") or [])]
    trained_real = []
    if left_out:
        mix = parse_mix(cfg.data, on_real, whole_run=False)
        trained_real = [c for c in on_real if trains_on_real(mix[c])]
    rows = {
        "mean": codes,
        "mean_real": on_real if len(on_real) < len(codes) else [],
        "mean_left_out": left_out,
        "mean_trained_real": trained_real,
    }
    metrics.update(language_means(metrics, "test", rows, MEANS))
    if outside:
        found, outside_counts = score_outside(
            cfg, model, manifest, outside, inside, reject, page_size, inside_real
        )
        metrics.update(found)
        counts.update(outside_counts)
    if reject is not None:
        metrics["reject_script"], metrics["reject_digit"] = reject.script, reject.digit
        if reject.familiar is not None and model.prototypes is not None:
            metrics["reject_familiar"] = reject.familiar
    metrics["bundle_bytes"] = Path(source).expanduser().stat().st_size
    integration = manifest.get("integration") or {}
    if model.router is not None and page_size > 1:
        metrics["page_size"] = page_size
    artifacts = {
        "bundle": str(source),
        "integration": integration.get("method"),
        "confusion": confusion,
        "data_counts": counts,
    }
    return metrics, artifacts
