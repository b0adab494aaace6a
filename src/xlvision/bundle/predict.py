"""Reading digit images with a bundle: preprocessing from its manifest, routing, class names.

Torch-free at import: a `.safetensors` bundle is read by `TorchReader` (torch loads then), an
exported `.onnx` file by `OnnxReader` (onnxruntime, no torch at all).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from rich.console import Console
from rich.progress import track

from xlvision.bundle.calibration import UNKNOWN, Thresholds, unknown_reasons
from xlvision.bundle.images import find_images, read_image
from xlvision.bundle.scripts import pooled_script
from xlvision.config.errors import ConfigError
from xlvision.data.normalize import normalize_digits
from xlvision.languages import ENGLISH_DIGIT_NAMES, available_languages, load_language


@dataclass
class Prediction:
    """One image: its digit, its language, and the digit's name in every display language.

    `confidence` is the probability of the (language, digit) pair: digit × language probability.
    `answer` is the digit as text, or `?` when a reject threshold says the bundle does not know,
    `unknown_reason` then says which was too low (`script`: its probability or the familiarity;
    `digit`). `familiarity` (None for a bundle without prototypes) says how much the image
    looks like the scripts the bundle holds; with `one_script`, its group's mean.
    """

    path: str
    digit: int
    language: str
    language_name: str
    confidence: float
    digit_prob: float
    language_prob: float
    familiarity: float | None = None
    names: dict[str, str] = field(default_factory=dict)
    answer: str = ""
    unknown_reason: str | None = None


def inference_device(accelerator: str):
    """The torch device for `device.accelerator` (auto: a CUDA GPU when there is one)."""
    import torch

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


class Reader(Protocol):
    """A bundle or an exported file that reads normalized digits."""

    languages: list[str]
    can_identify: bool

    def read(self, digits: np.ndarray, language: str | None) -> dict[str, np.ndarray]:
        """uint8 [N, 28, 28] → `language` (index), `language_prob`, `digit`, `digit_prob`."""

    def script_probs(self, digits: np.ndarray) -> np.ndarray:
        """uint8 [N, 28, 28] → p(language | image) [N, L], in `languages` order."""


class TorchReader:
    """A loaded bundle (`load_bundle`) on a torch device."""

    def __init__(self, model, manifest: dict, device="cpu") -> None:
        self.model = model.to(device).eval()
        self.manifest = manifest
        self.device = device
        self.languages = list(model.languages)
        self.can_identify = model.router is not None

    def read(self, digits: np.ndarray, language: str | None) -> dict[str, np.ndarray]:
        import torch

        from xlvision.bundle.manifest import model_input

        x = model_input(torch.from_numpy(digits), self.manifest["preprocessing"])
        with torch.no_grad():
            result = self.model.predict(x.to(self.device), language)
        return {k: v.cpu().numpy() for k, v in result.items()}

    def script_probs(self, digits: np.ndarray) -> np.ndarray:
        import torch

        from xlvision.bundle.manifest import model_input

        x = model_input(torch.from_numpy(digits), self.manifest["preprocessing"])
        with torch.no_grad():
            return self.model.script_probs(x.to(self.device)).cpu().numpy()


ONE_SCRIPT = ("all", "folder")
"""`one_script=all`: every image given is of one script; `folder`: each folder's images are."""


def predict_images(
    reader: Reader,
    manifest: dict,
    input_spec: str,
    *,
    language: str | None = None,
    display: Sequence[str] = ("en",),
    batch_size: int = 256,
    progress: bool = True,
    one_script: str | None = None,
    reject: Thresholds | None = None,
) -> list[Prediction]:
    """Read every image `input_spec` names, normalized the way the bundle's training data were.

    With `one_script` (one of `ONE_SCRIPT`), the router's probabilities are pooled over all the
    images (or each folder's) and one script is named for them (`pooled_script`): the digits
    are read with that script's head, and `language_prob` is the script's pooled posterior.
    With `reject`, an image whose script (pooled) or digit probability, or familiarity (pooled
    likewise: the group's mean), is below its threshold is answered `?`; with `language` given
    its script probability is 1 and its familiarity is reported but never rejects: the script
    is the one the user named."""
    if language is None and not reader.can_identify:
        allowed = f"one of {', '.join(reader.languages)}: this bundle cannot identify languages"
        raise ConfigError("language", None, allowed)
    if language is not None and language not in reader.languages:
        allowed = f"one of the bundle's {', '.join(reader.languages)}"
        raise ConfigError("language", language, allowed)
    if one_script is not None and one_script not in ONE_SCRIPT:
        raise ConfigError("one_script", one_script, f"one of {', '.join(ONE_SCRIPT)}, or null")
    if one_script is not None and language is not None:
        raise ConfigError("one_script", one_script, "null when language= names the script")
    names = display_names(manifest, list(display))
    records = {record["code"]: record for record in manifest["languages"]}
    preprocessing = manifest["preprocessing"]
    polarity = preprocessing.get("polarity", "per_image")
    ink_threshold = preprocessing.get("ink_threshold", 0.25)
    paths = find_images(input_spec)
    steps = track(
        range(0, len(paths), batch_size),
        description=f"reading {len(paths)} images",
        console=Console(stderr=True),
        disable=not progress,
    )
    digits, results, probs = [], [], []
    for start in steps:
        batch = paths[start : start + batch_size]
        digits.append(
            normalize_digits([read_image(p) for p in batch], polarity, ink_threshold=ink_threshold)
        )
        if one_script is None:
            read = {k: v.tolist() for k, v in reader.read(digits[-1], language).items()}
            results.append({**read, "paths": batch})
        else:
            probs.append(reader.script_probs(digits[-1]))
    if one_script is not None:
        results = read_one_script(
            reader, paths, np.concatenate(digits), np.concatenate(probs), one_script, batch_size
        )
    out = []
    for result in results:
        familiarity = result.get("familiarity")
        reasons = unknown_reasons(
            result["language_prob"],
            result["digit_prob"],
            reject,
            familiarity if language is None else None,
        )
        for i, path in enumerate(result["paths"]):
            code = reader.languages[result["language"][i]]
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
                    familiarity=None if familiarity is None else familiarity[i],
                    names={c: t[digit] if digit < len(t) else str(digit) for c, t in names.items()},
                    answer=UNKNOWN if reasons[i] else str(digit),
                    unknown_reason=reasons[i] or None,
                )
            )
    return out


def read_one_script(
    reader: Reader,
    paths: list[Path],
    digits: np.ndarray,
    probs: np.ndarray,
    one_script: str,
    batch_size: int,
) -> list[dict]:
    """Per group of images (all, or a folder's): its pooled script, the digits read with it and
    the group's mean familiarity (if the reader gives one), each group with its `paths` in their
    order. Like the script, the familiarity of digits known to share one is the group's."""
    groups: dict[Path | None, list[int]] = {}
    for i, path in enumerate(paths):
        groups.setdefault(Path(path).parent if one_script == "folder" else None, []).append(i)
    out = []
    for members in groups.values():
        index, posterior = pooled_script(probs[members])
        read: dict[str, list] = {"digit": [], "digit_prob": [], "familiarity": []}
        for start in range(0, len(members), batch_size):
            part = digits[members[start : start + batch_size]]
            result = reader.read(part, reader.languages[index])
            for key in read:
                read[key] += result[key].tolist() if key in result else []
        n = len(members)
        read.update(language=[index] * n, language_prob=[posterior] * n)
        if read["familiarity"]:
            read["familiarity"] = [float(np.mean(read["familiarity"]))] * n
        else:
            del read["familiarity"]
        read["paths"] = [paths[i] for i in members]
        out.append(read)
    return out


def prediction_line(p: Prediction) -> str:
    """`path  digit  code Name  confidence  name name …`, one image per line; an unknown one
    reads `path  ?  code Name  confidence  unknown (script|digit)`."""
    if p.unknown_reason:
        return (
            f"{p.path}  {UNKNOWN}  {p.language} {p.language_name}  {p.confidence:.3f}  "
            f"unknown ({p.unknown_reason})"
        )
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
