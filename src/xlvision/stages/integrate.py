"""`integrate`: fine-tuned models → one method → a unified bundle, tested per language."""

from __future__ import annotations

import time
from pathlib import Path

import lightning as L
import torch
from omegaconf import DictConfig
from rich.console import Console

from xlvision.bundle.file import save_bundle
from xlvision.bundle.manifest import digit_preprocessing, language_record
from xlvision.bundle.model import UnifiedModel
from xlvision.config.errors import ConfigError
from xlvision.config.integrate import METHODS as METHOD_NAMES
from xlvision.config.integrate import validate_integrate
from xlvision.data.arrays import MNIST_MEAN, MNIST_STD
from xlvision.data.datamodule import DigitDataModule
from xlvision.evaluation.means import language_means
from xlvision.evaluation.metrics import accuracy_per_language
from xlvision.evaluation.unified import MEANS, confusion_records, score_language
from xlvision.integrate.calibrate import fit_calibration, glyph_perturbation
from xlvision.integrate.inputs import Sources, load_sources, recorded_accuracy
from xlvision.integrate.methods import METHODS, Context, check_sources
from xlvision.languages import available_languages, load_language
from xlvision.progress import tracked

BUNDLE_FILE = "bundle.safetensors"


def individual_accuracy(sources: Sources, data: DigitDataModule) -> dict[str, dict]:
    """Each fine-tuned model's own test accuracy: as its run recorded it, else measured here."""
    out = {code: recorded_accuracy(sources.checkpoints[code], code) for code in sources.codes}
    missing = [code for code, record in out.items() if record is None]
    if missing:

        def own_model(x, code):
            return sources.tuned[code].eval()(x, code)

        measured = accuracy_per_language(own_model, data.test_dataloader(), sources.codes, missing)
        out.update({code: {"acc": measured[code], "source": "measured"} for code in missing})
    return out


def test_unified(
    model: UnifiedModel, data: DigitDataModule, codes: list[str], individual: dict[str, dict]
) -> tuple[dict[str, float], dict]:
    """xlv-eval's metrics on the test split: with the language given, routed, and normalized
    by each individual model's accuracy."""
    test = data.datasets["test"]
    metrics, confusion = {}, {}
    groups = {lang.code: lang.group for lang in data.languages}
    for i, code in enumerate(tracked(codes, "testing the unified model")):
        where = test.languages == i
        scores, matrices = score_language(
            model, test.images[where], test.labels[where], code, data.data.batch_size, groups
        )
        confusion.update(confusion_records(f"test/{code}", matrices))
        if individual[code]["acc"] > 0:
            scores["normalized_acc"] = scores["acc"] / individual[code]["acc"]
        metrics.update({f"test/{code}/{name}": value for name, value in scores.items()})
    metrics.update(language_means(metrics, "test", {"mean": codes}, MEANS))
    return metrics, confusion


def temperature_line(model: UnifiedModel) -> str:
    line = ", ".join(f"{kind} temperature {t:.3f}" for kind, t in model.temperatures.items())
    line += f", digit evidence λ {model.evidence:g}" if model.evidence else ""
    rise = model.temperature_rise
    if rise is not None:
        kinds = ", ".join(
            f"{k} {rise[k]['t']:.3f} · exp({rise[k]['slope']:g} · gap)" for k in ("script", "digit")
        )
        line += f"; below familiarity {rise['below']:.3f} they rise: {kinds}"
    return line


def prediction_throughput(model: UnifiedModel, data: DigitDataModule, codes: list[str]) -> float:
    """Test images per second through `predict` (routed when the bundle can route)."""
    images = data.datasets["test"].images
    language = None if model.router is not None else codes[0]
    batch = data.data.batch_size
    start = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(images), batch):
            model.predict(images[i : i + batch], language=language)
    return len(images) / (time.perf_counter() - start)


def run_data(cfg: DictConfig, codes: list[str]) -> DictConfig:
    """`cfg.data`; with `run=`, its `sources` of languages the run does not hold dropped, as
    the pipeline drops them (a preset lists sources for all its languages, a run may hold
    fewer). A code that names no language is kept, so it still fails in one line."""
    sources = cfg.data.get("sources")
    if not cfg.get("run") or not sources:
        return cfg.data
    known = set(available_languages())
    data = cfg.data.copy()
    data.sources = {c: s for c, s in sources.items() if c in codes or c not in known}
    return data


def rising_perturbation(cfg: DictConfig, conf, model: UnifiedModel):
    """With `integrate.temperature=by_familiarity`, what `fit_calibration` perturbs the
    validation images with: the run's glyph augmentation (`data.augment`); else None."""
    if conf.temperature == "constant":
        return None
    if model.router is None:
        raise ConfigError(
            "integrate.temperature", conf.temperature, "constant (this bundle has no router)"
        )
    augment = cfg.data.get("augment")
    if augment is None:
        raise ConfigError(
            "integrate.temperature", conf.temperature, "constant (the data have no augment)"
        )
    return glyph_perturbation(augment, MNIST_MEAN, MNIST_STD, cfg.seed)


def integrate(cfg: DictConfig) -> tuple[dict, dict]:
    """Integrate per-language models with `cfg.integrate` and write `bundle.safetensors`."""
    if cfg.get("integrate") is None:
        raise ConfigError("integrate", None, f"one of {', '.join(METHOD_NAMES)}")
    conf = validate_integrate(cfg.integrate)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    console = Console(stderr=True)
    output_dir = Path(cfg.paths.output_dir)

    sources = load_sources(cfg)
    check_sources(conf.name, sources)
    codes = sources.codes
    console.print(f"integrate={conf.name}: {', '.join(codes)}")
    data = DigitDataModule(
        run_data(cfg, codes), [load_language(c) for c in codes], cfg.seed, cfg.paths.data_dir
    )
    data.setup()
    individual = individual_accuracy(sources, data)

    start = time.perf_counter()
    ctx = Context(sources, data, cfg, output_dir, console)
    result = METHODS[conf.name](ctx)
    integrate_time = time.perf_counter() - start
    answer = result.params.get("answer", "routed")
    model = UnifiedModel(
        result.members, result.routes, codes, result.router, answer, views=conf.views
    ).eval()
    calibration = fit_calibration(
        model,
        data.val_dataloader(),
        conf.reject_rate,
        conf.evidence,
        conf.familiarity,
        conf.familiarity_dims,
        conf.temperature,
        rising_perturbation(cfg, conf, model),
    )
    console.print(
        f"  calibrated on {calibration['images']} validation images: {temperature_line(model)}"
    )

    console.print("  testing the unified model")
    metrics, confusion = test_unified(model, data, codes, individual)
    bundle = save_bundle(
        output_dir / BUNDLE_FILE,
        model,
        member_specs=result.specs,
        languages={code: language_record(code) for code in codes},
        preprocessing=digit_preprocessing(),
        integration={"method": conf.name, "params": result.params},
        metrics={**metrics, "individual": individual},
        calibration=calibration,
    )
    metrics.update(
        {
            "bundle_bytes": bundle.stat().st_size,
            "integrate_time_s": round(integrate_time, 3),
            "total_params": sum(p.numel() for p in model.parameters()),
            "predict_images_per_s": round(prediction_throughput(model, data, codes), 1),
        }
    )
    console.print(f"  bundle: {bundle} ({metrics['bundle_bytes'] / 1e6:.1f} MB)")
    artifacts = {
        "bundle": str(bundle),
        "confusion": confusion,
        "individual": individual,
        "params": result.params,
        "calibration": calibration,
        "checkpoints": sources.checkpoints,
        "data_counts": data.counts,
    }
    return metrics, artifacts
