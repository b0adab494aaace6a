"""`evaluate`: a bundle's accuracy per language, against the individual models' accuracy."""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from torchmetrics.classification import MulticlassConfusionMatrix

from xlvision.bundle import LID_HEAD, digit_preprocessing, load_bundle, model_input
from xlvision.bundle.model import UnifiedModel
from xlvision.bundle.predict import inference_device
from xlvision.config.errors import ConfigError
from xlvision.data.datamodule import load_splits
from xlvision.languages import load_language
from xlvision.languages.registry import language_from_mapping
from xlvision.models.checkpoint import load_classifier
from xlvision.training.metrics import METRICS, classification_metrics

MEANS = (*METRICS, "normalized_acc", "routed_acc", "lid_acc")


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


def score_language(
    model: UnifiedModel, x: torch.Tensor, labels: torch.Tensor, code: str, batch_size: int
) -> tuple[dict[str, float], list[list[int]]]:
    """Oracle metrics (language given), and with a router the routed accuracy and LID accuracy."""
    device = next(model.parameters()).device
    num_classes = model.members[model.routes[code]].heads[code].out_features
    oracle = classification_metrics(num_classes)
    confusion = MulticlassConfusionMatrix(num_classes)
    routed_correct = lid_correct = 0
    index = model.languages.index(code)
    with torch.no_grad():
        for start in range(0, len(labels), batch_size):
            xb = x[start : start + batch_size].to(device)
            yb = labels[start : start + batch_size]
            digit = model.predict(xb, language=code)["digit"].cpu()
            oracle.update(digit, yb)
            confusion.update(digit, yb)
            if model.router is not None:
                routed = {k: v.cpu() for k, v in model.predict(xb).items()}
                routed_correct += int((routed["digit"] == yb).sum())
                lid_correct += int((routed["language"] == index).sum())
    metrics = {name: float(value) for name, value in oracle.compute().items()}
    if model.router is not None:
        metrics["routed_acc"] = routed_correct / len(labels)
        metrics["lid_acc"] = lid_correct / len(labels)
    return metrics, confusion.compute().int().tolist()


def checkpoint_as_bundle(path: str) -> tuple[UnifiedModel, dict]:
    """A classifier checkpoint as a router-less bundle: one member reading all its languages."""
    classifier, spec, classes = load_classifier(path)
    codes = [code for code in classes if code != LID_HEAD]
    model = UnifiedModel({"model": classifier}, dict.fromkeys(codes, "model"), codes).eval()
    return model, {"preprocessing": digit_preprocessing(), "metrics": {}, "integration": {}}


def evaluate(cfg: DictConfig) -> tuple[dict, dict]:
    """Test every asked language on the configured data; normalized acc = acc ÷ individual acc."""
    if (cfg.get("bundle") is None) == (cfg.get("checkpoint") is None):
        raise ConfigError(
            "bundle", cfg.get("bundle"), "a bundle file, or checkpoint=<classifier ckpt> instead"
        )
    source = cfg.bundle or cfg.checkpoint
    model, manifest = load_bundle(cfg.bundle) if cfg.bundle else checkpoint_as_bundle(source)
    model.to(inference_device(cfg.device.accelerator))
    codes = eval_languages(cfg, model.languages)
    individual = (manifest.get("metrics") or {}).get("individual") or {}
    metrics, confusion, counts = {}, {}, {}
    for code in codes:
        node = cfg.language.get(code)
        language = language_from_mapping(node) if node is not None else load_language(code)
        test = load_splits(cfg.data, language, cfg.seed, cfg.paths.data_dir, ("test",))["test"]
        x = model_input(test.images, manifest["preprocessing"])
        scores, confusion[f"test/{code}"] = score_language(
            model, x, test.labels, code, cfg.data.batch_size
        )
        reference = (individual.get(code) or {}).get("acc")
        if reference:
            scores["normalized_acc"] = scores["acc"] / reference
        metrics.update({f"test/{code}/{name}": value for name, value in scores.items()})
        counts[code] = {"test": len(test)}
    for name in MEANS:
        values = [metrics[f"test/{c}/{name}"] for c in codes if f"test/{c}/{name}" in metrics]
        if values:
            metrics[f"test/mean/{name}"] = sum(values) / len(values)
    metrics["bundle_bytes"] = Path(source).expanduser().stat().st_size
    integration = manifest.get("integration") or {}
    artifacts = {
        "bundle": str(source),
        "integration": integration.get("method"),
        "confusion": confusion,
        "data_counts": counts,
    }
    return metrics, artifacts
