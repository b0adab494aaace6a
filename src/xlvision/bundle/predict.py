"""Reading digit images with a bundle: preprocessing from its manifest, routing, class names."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import track

from xlvision.bundle.images import find_images, read_image
from xlvision.bundle.manifest import model_input
from xlvision.bundle.model import UnifiedModel
from xlvision.config.errors import ConfigError
from xlvision.data.normalize import normalize_digits
from xlvision.languages import ENGLISH_DIGIT_NAMES, available_languages, load_language


@dataclass
class Prediction:
    """One image: its digit, its language, and the digit's name in every display language.

    `confidence` is the probability of the (language, digit) pair: digit × language probability.
    """

    path: str
    digit: int
    language: str
    language_name: str
    confidence: float
    digit_prob: float
    language_prob: float
    names: dict[str, str] = field(default_factory=dict)


def inference_device(accelerator: str) -> torch.device:
    """The torch device for `device.accelerator` (auto: a CUDA GPU when there is one)."""
    if accelerator in {"gpu", "cuda"} or (accelerator == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("mps" if accelerator == "mps" else "cpu")


def display_names(manifest: dict, codes: list[str]) -> dict[str, list[str]]:
    """Class names per display language: the bundle's own records, English, or the registry."""
    records = {record["code"]: record for record in manifest["languages"]}
    out = {}
    for code in codes:
        if code in records:
            out[code] = list(records[code]["class_names"])
        elif code == "en":
            out[code] = list(ENGLISH_DIGIT_NAMES)
        elif code in available_languages():
            out[code] = list(load_language(code).class_names)
        else:
            raise ConfigError(
                "display",
                code,
                f"one of the bundle's languages {', '.join(records)}, en, "
                "or another language of conf/language",
            )
    return out


def predict_images(
    model: UnifiedModel,
    manifest: dict,
    input_spec: str,
    *,
    language: str | None = None,
    display: Sequence[str] = ("en",),
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> list[Prediction]:
    """Read every image `input_spec` names, normalized the way the bundle's training data were."""
    if language is None and model.router is None:
        allowed = f"one of {', '.join(model.languages)}: this bundle cannot identify languages"
        raise ConfigError("language", None, allowed)
    if language is not None and language not in model.languages:
        raise ConfigError("language", language, f"one of the bundle's {', '.join(model.languages)}")
    names = display_names(manifest, list(display))
    records = {record["code"]: record for record in manifest["languages"]}
    preprocessing = manifest["preprocessing"]
    polarity = preprocessing.get("polarity", "per_image")
    ink_threshold = preprocessing.get("ink_threshold", 0.25)
    paths = find_images(input_spec)
    batches = [paths[i : i + batch_size] for i in range(0, len(paths), batch_size)]
    model = model.to(device)
    out = []
    steps = track(
        batches,
        description=f"reading {len(paths)} images",
        console=Console(stderr=True),
        disable=not progress,
    )
    for batch in steps:
        digits = normalize_digits(
            [read_image(p) for p in batch], polarity, ink_threshold=ink_threshold
        )
        with torch.no_grad():
            result = model.predict(model_input(digits, preprocessing).to(device), language)
        result = {k: v.cpu().tolist() for k, v in result.items()}
        for i, path in enumerate(batch):
            code = model.languages[result["language"][i]]
            digit = result["digit"][i]
            out.append(
                Prediction(
                    path=str(path),
                    digit=digit,
                    language=code,
                    language_name=records[code]["name"],
                    confidence=result["digit_prob"][i] * result["language_prob"][i],
                    digit_prob=result["digit_prob"][i],
                    language_prob=result["language_prob"][i],
                    names={c: t[digit] if digit < len(t) else str(digit) for c, t in names.items()},
                )
            )
    return out


def prediction_line(p: Prediction) -> str:
    """`path  digit  code Name  confidence  name name …`, one image per line."""
    names = "  ".join(p.names.values())
    return f"{p.path}  {p.digit}  {p.language} {p.language_name}  {p.confidence:.3f}  {names}"


def write_predictions(predictions: list[Prediction], path: str | Path) -> Path:
    """JSON (a list of records) or CSV (a `name_<code>` column per display language)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [asdict(p) for p in predictions]
    if path.suffix.lower() == ".json":
        path.write_text(json.dumps(rows, indent=2, ensure_ascii=False))
    elif path.suffix.lower() == ".csv":
        for row in rows:
            row.update({f"name_{code}": name for code, name in row.pop("names").items()})
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else [])
            writer.writeheader()
            writer.writerows(rows)
    else:
        raise ValueError(f"output={path}: write .json or .csv")
    return path
