"""`adapt`: a bundle adapted to unlabeled scans of one script (xlv-adapt), and the same
adaptation of a copy per language before its test (xlv-eval adapt=…)."""

from __future__ import annotations

import copy
import sys
from collections.abc import Iterator
from pathlib import Path

import torch
from omegaconf import DictConfig, open_dict
from rich.console import Console
from rich.progress import track

from xlvision.bundle.adapt import (
    Adaptation,
    adapt_model,
    adapted_preprocessing,
    read_scans,
    scan_script,
    sha256_of_file,
    silent,
    write_adapted,
)
from xlvision.bundle.file import load_bundle
from xlvision.bundle.manifest import language_groups, model_input
from xlvision.bundle.model import UnifiedModel
from xlvision.bundle.predict import inference_device
from xlvision.config.errors import ConfigError
from xlvision.data.arrays import DigitArrays
from xlvision.data.datamodule import evaluation_sets
from xlvision.languages import Language


def progress_bar(description: str, total: int) -> Iterator[int]:
    """A rich bar on stderr, as xlv-predict's."""
    return iter(track(range(total), description=description, console=Console(stderr=True)))


def check_script(model: UnifiedModel, given: str | None, key: str = "language") -> None:
    """A given script must be the bundle's; none given needs a router to name it."""
    if given is not None and given not in model.languages:
        raise ConfigError(key, given, f"one of the bundle's {', '.join(model.languages)}")
    if given is None and model.router is None:
        raise ConfigError(
            key, None, f"one of {', '.join(model.languages)}: this bundle cannot identify scripts"
        )


def group_mates(manifest: dict, code: str) -> list[str]:
    """The bundle's languages in `code`'s script group (itself included): they read the same
    digits, so routing a scan to any of them reads it right."""
    groups = language_groups(manifest)
    return [c for c, g in groups.items() if g == groups.get(code, code)]


def scans_script(model: UnifiedModel, x: torch.Tensor, given: str | None) -> tuple[str, float]:
    """(script, posterior): the given one, or the one pooled over all the scans."""
    return (given, 1.0) if given is not None else scan_script(model, x)


def adapt(cfg: DictConfig, progress: bool = True) -> tuple[dict, dict]:
    """Load the bundle, name the scans' script, read the scans, adapt, write `output`."""
    model, manifest = load_bundle(cfg.bundle)
    model.to(inference_device(cfg.device.accelerator))
    codes = list(cfg.language)
    check_script(model, codes[0] if codes else None)  # before any image is read
    digits = read_scans(cfg.input, manifest["preprocessing"])
    x = model_input(digits, manifest["preprocessing"])
    code, posterior = scans_script(model, x, codes[0] if codes else None)
    if progress:
        named = "given" if codes else "pooled"
        header = f"xlv-adapt · {code} ({named}) · {len(digits)} scans · adapt={cfg.adapt.method}"
        print(header, file=sys.stderr)
    result = adapt_model(
        model,
        digits,
        code,
        manifest["preprocessing"],
        cfg.adapt,
        cfg.seed,
        progress_bar if progress else silent,
        group_mates(manifest, code),
    )
    result.source_sha256 = sha256_of_file(cfg.bundle)
    record = {**result.record(), "script_posterior": posterior, "given": bool(codes)}
    output = write_adapted(Path(cfg.output).expanduser(), model.cpu(), manifest, record)
    return result.metrics(), {"output": str(output), "adaptation": record}


def unlabeled_scans(cfg: DictConfig, language: Language, max_images: int) -> torch.Tensor:
    """Up to `max_images` of a language's training images, drawn by the seed, labels dropped
    here: nothing after this line can read one. Glyphs are generated only as many as needed."""
    data = copy.deepcopy(cfg.data)
    with open_dict(data):
        per_class = -(-max_images // language.num_classes)
        data.train_per_class = min(data.train_per_class, per_class)
    sets = evaluation_sets(data, language, cfg.seed, cfg.paths.data_dir, split="train")
    images = DigitArrays.concat(list(sets.values())).images
    chosen = torch.randperm(len(images), generator=torch.Generator().manual_seed(cfg.seed))
    return images[chosen[:max_images].sort().values]


def adapted_for_test(
    cfg: DictConfig, model: UnifiedModel, manifest: dict, language: Language
) -> tuple[UnifiedModel, dict, dict[str, float]]:
    """`model` and its preprocessing as they are without `adapt`; else a copy adapted to the
    language's unlabeled training images (its script given, or pooled by the router), the
    preprocessing it reads with (strokes grown if the stroke step kept them), and its
    `adapt_*` metrics."""
    conf = cfg.get("adapt")
    if conf is None or conf.method == "none":
        return model, manifest["preprocessing"], {}
    if conf.script == "pooled" and model.router is None:
        raise ConfigError("adapt.script", "pooled", "given: this bundle cannot identify scripts")
    digits = unlabeled_scans(cfg, language, conf.max_images)
    adapted = copy.deepcopy(model)
    x = model_input(digits, manifest["preprocessing"])
    code, _ = scans_script(adapted, x, language.code if conf.script == "given" else None)
    result: Adaptation = adapt_model(
        adapted,
        digits,
        code,
        manifest["preprocessing"],
        conf,
        cfg.seed,
        group=group_mates(manifest, code),
    )
    metrics = result.metrics()
    if conf.script == "pooled":
        metrics["adapt_lid_acc"] = float(code == language.code)
    return adapted, adapted_preprocessing(manifest["preprocessing"], result), metrics
