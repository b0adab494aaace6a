"""Calibrating a unified model on validation data when its bundle is made (never test data)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np
import torch

from xlvision.bundle.calibration import (
    REJECT_RATE,
    fit_rising_temperature,
    fit_temperature,
    nll,
    reject_threshold,
)
from xlvision.bundle.model import UnifiedModel, cosine_familiarity
from xlvision.config.integrate import FAMILIARITY, TEMPERATURE
from xlvision.data.augment import augment_digits, scaled_augment
from xlvision.models.classifier import LID_HEAD
from xlvision.progress import tracked

PAD = -1e9
"""Logit of a class a language's head lacks, so heads of every size share one matrix."""

RISE_LEVELS = (0.5, 1.0, 1.5)
"""`temperature=by_familiarity`: the strengths of the glyph augmentation (`scaled_augment`)
applied to the validation images, each a copy beside the images as they are, so the fit sees
images less familiar than the validation data and how sure the model stays on them."""

EVIDENCE_GRID = (0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0)
"""The values of λ (`UnifiedModel.evidence`) that `evidence=auto` tries on validation data."""


def digit_evidence(heads: np.ndarray, digit_t: float) -> np.ndarray:
    """[N, L]: logsumexp over the digits of each language's logits [N, L, K] ÷ `digit_t`, as
    `UnifiedModel.digit_evidence` computes it (a PAD class adds nothing)."""
    scaled = heads / digit_t
    top = scaled.max(axis=2, keepdims=True)
    return (top + np.log(np.exp(scaled - top).sum(axis=2, keepdims=True)))[:, :, 0]


def fit_evidence(
    script: np.ndarray, evidence: np.ndarray, labels: np.ndarray, grid=EVIDENCE_GRID
) -> tuple[float, float, dict[str, float]]:
    """(λ, script temperature, {λ: NLL}) of the λ in `grid` whose script logits `script` +
    λ·`evidence`, each at its own fitted temperature, have the lowest NLL of `labels`; a tie
    goes to the smaller λ."""
    losses, best = {}, None
    for lam in grid:
        combined = script + lam * evidence
        temperature = fit_temperature(combined, labels)
        losses[str(float(lam))] = nll(combined, labels, temperature)
        if best is None or losses[str(float(lam))] < best[2] - 1e-9:
            best = (float(lam), temperature, losses[str(float(lam))])
    return best[0], best[1], losses


@torch.no_grad()
def validation_logits(
    model: UnifiedModel, batches: Iterable, heads: bool = False
) -> dict[str, np.ndarray]:
    """Raw logits on every validation image: the router's (`script`, against the language)
    and its own language's head (`digit`, the language given, against the digit); with a
    router, its backbone's `features` too, and with `heads`, `heads` [N, L, K]: every
    language's digit logits (PAD where a head has fewer classes), for the digit evidence."""
    parts: dict[str, list] = {
        "script": [],
        "digit": [],
        "language": [],
        "label": [],
        "features": [],
        "heads": [],
    }
    width = max(model.members[model.routes[c]].heads[c].out_features for c in model.languages)
    for x, y, language in tracked(batches, "calibrating on validation data"):
        digit = torch.full((len(y), width), PAD)
        for i, code in enumerate(model.languages):
            mine = language == i
            if mine.any():
                logits = model(x[mine], code).cpu()
                digit[mine, : logits.shape[1]] = logits
        parts["digit"].append(digit)
        parts["language"].append(language.cpu())
        parts["label"].append(y.cpu())
        if model.router is not None:
            router = model.members[model.router]
            features = model.features(model.router, x)
            parts["features"].append(features.cpu())
            parts["script"].append(router.heads[LID_HEAD](features).cpu())
            if not heads:
                continue
            every = torch.full((len(y), len(model.languages), width), PAD)
            computed = {model.router: features}
            for i, code in enumerate(model.languages):
                key = model.routes[code]
                if key not in computed:
                    computed[key] = model.features(key, x)
                logits = model.members[key].heads[code](computed[key]).cpu()
                every[:, i, : logits.shape[1]] = logits
            parts["heads"].append(every)
    return {k: torch.cat(v).double().numpy() for k, v in parts.items() if v}


def class_prototypes(features: np.ndarray, language: np.ndarray, label: np.ndarray) -> np.ndarray:
    """[K, D]: for each (language, digit) present, in that sorted order, the mean of its
    images' unit-length features, made unit length again. Unit features weigh every image
    alike however strongly it fires; the familiarity is then a cosine similarity."""
    unit = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    pairs, which = np.unique(np.stack([language, label], axis=1), axis=0, return_inverse=True)
    sums = np.zeros((len(pairs), features.shape[1]))
    np.add.at(sums, which.reshape(-1), unit)
    return sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)


def nearest_prototypes(
    features: np.ndarray, dims: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(neighbours [N, d], center [D], projection [D, d]): every image's features less their
    mean (`center`), projected on their first d = min(`dims`, D, N) principal directions
    (`projection`, orthonormal columns) and made unit length. The cosine to the nearest single
    image sees a script's many shapes, each near some validation image, where their mean can
    be far from all of them; the projection keeps the bank small."""
    center = features.mean(axis=0)
    centered = features - center
    _, _, directions = np.linalg.svd(centered, full_matrices=False)
    projection = directions[: min(dims, *features.shape)].T
    projected = centered @ projection
    unit = projected / np.maximum(np.linalg.norm(projected, axis=1, keepdims=True), 1e-12)
    return unit, center, projection


def leave_one_out_nearest(neighbours: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """[N]: each unit row's largest cosine to any other row of `neighbours`: what a validation
    image would score if it were not itself in the bank (so `reject=auto` is chosen on images
    the bank does not hold). A bank of one row gives −1."""
    out = np.empty(len(neighbours))
    for start in range(0, len(neighbours), chunk):
        cosines = neighbours[start : start + chunk] @ neighbours.T
        rows = np.arange(len(cosines))
        cosines[rows, start + rows] = -np.inf
        out[start : start + chunk] = np.maximum(cosines.max(axis=1), -1.0)
    return out


def glyph_perturbation(
    augment, mean: float, std: float, seed: int
) -> Callable[[torch.Tensor, float], torch.Tensor]:
    """`perturb(x, level)`: a batch of model inputs [B, 1, H, W] (standardized with `mean`,
    `std`) redrawn with the glyph augmentation `augment` at strength `level`, standardized
    again. Seeded: the same calls give the same images."""
    gen = torch.Generator().manual_seed(int(seed))

    def perturb(x: torch.Tensor, level: float) -> torch.Tensor:
        images = (x[:, 0] * std + mean).clamp(0, 1)
        out = augment_digits(images, scaled_augment(augment, level), gen)
        return ((out - mean) / std).unsqueeze(1).to(x.dtype)

    return perturb


def _perturbed(batches: list, perturb: Callable, level: float) -> Iterator:
    for x, y, language in batches:
        yield perturb(x, level), y, language


def mean_familiarity(features: np.ndarray, prototypes: np.ndarray) -> np.ndarray:
    """[N]: the largest cosine of each row of `features` to a unit row of `prototypes`."""
    unit = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    return (unit @ prototypes.T).max(axis=1)


def fit_temperature_rise(
    model: UnifiedModel, batches: list, found: dict, perturb: Callable, levels=RISE_LEVELS
) -> dict:
    """Set on `model` (which has its prototypes, constant temperatures and evidence) a
    `temperature_rise` fitted by NLL on the validation images as they are (`found`: their
    `validation_logits`) and perturbed at each of `levels`; `below` is the median class-mean
    familiarity of the images as they are. Returns the record: the rise, the levels and the
    NLL of both kinds with the constant temperature refitted on the same images and with the
    rise."""
    prototypes = model.prototypes.double().numpy()
    heads = model.evidence != 0
    parts = [found]
    for level in levels:
        parts.append(validation_logits(model, _perturbed(batches, perturb, level), heads=heads))
    script, digit, familiar, language, label = [], [], [], [], []
    for part in parts:
        logits = part["script"]
        if heads:
            logits = logits + model.evidence * digit_evidence(
                part["heads"], model.temperatures["digit"]
            )
        script.append(logits)
        digit.append(part["digit"])
        familiar.append(mean_familiarity(part["features"], prototypes))
        language.append(part["language"].astype(np.int64))
        label.append(part["label"].astype(np.int64))
    below = float(np.median(familiar[0]))
    familiar = np.concatenate(familiar)
    pooled = {
        "script": (np.concatenate(script), np.concatenate(language)),
        "digit": (np.concatenate(digit), np.concatenate(label)),
    }
    rise, losses = {"below": below}, {}
    for kind, (logits, labels) in pooled.items():
        t, slope, loss = fit_rising_temperature(logits, labels, familiar, below)
        rise[kind] = {"t": t, "slope": slope}
        constant = fit_rising_temperature(logits, labels, familiar, below, slopes=(0.0,))[2]
        losses[kind] = {"constant": constant, "rising": loss}
    model.set_temperature_rise(rise)
    return {"levels": [0.0, *levels], "images": len(familiar), "nll": losses}


@torch.no_grad()
def fit_calibration(
    model: UnifiedModel,
    batches: Iterable,
    rate: float = REJECT_RATE,
    evidence: float | str = 0.0,
    familiarity: str = "class_means",
    familiarity_dims: int = 64,
    temperature: str = "constant",
    perturb: Callable[[torch.Tensor, float], torch.Tensor] | None = None,
) -> dict:
    """Fit the script and digit temperatures by NLL on `batches` (validation data), set them
    on `model`, then, with a router, its digit evidence λ (`evidence`: a number, or `auto`:
    the one of `EVIDENCE_GRID` whose script NLL, at its own fitted temperature, is lowest;
    the script temperature is refitted with it), set its prototypes (`class_prototypes` of the
    router's features; with `familiarity` `with_nearest`, its neighbours too:
    `nearest_prototypes` with `familiarity_dims`) and choose reject thresholds: each one the
    `rate` quantile, on the same images, of the calibrated probabilities of the answer without
    the script (the script's, and the digit's by the bundle's rule) and of the familiarity
    (its nearest-image part each image's to the bank without it: `leave_one_out_nearest`).
    With `temperature` `by_familiarity` (and a router), the temperatures used from then on rise
    as the familiarity falls (`fit_temperature_rise`, on the images also redrawn by `perturb`).
    Returns the manifest's `calibration` record."""
    if familiarity not in FAMILIARITY:
        raise ValueError(f"familiarity={familiarity!r}: one of {', '.join(FAMILIARITY)}")
    if temperature not in TEMPERATURE:
        raise ValueError(f"temperature={temperature!r}: one of {', '.join(TEMPERATURE)}")
    rising = temperature == "by_familiarity"
    if rising and (model.router is None or perturb is None):
        raise ValueError("temperature='by_familiarity' needs a router and a perturbation")
    batches = list(batches)
    found = validation_logits(model, batches, heads=evidence != 0)
    labels = {
        "script": found["language"].astype(np.int64),
        "digit": found["label"].astype(np.int64),
    }
    fitted, losses = {}, {}
    for kind in ("script", "digit"):
        if kind not in found:
            continue
        fitted[kind] = fit_temperature(found[kind], labels[kind])
        losses[kind] = {
            "before": nll(found[kind], labels[kind]),
            "after": nll(found[kind], labels[kind], fitted[kind]),
        }
    model.temperatures.update(fitted)
    record = {"fit_on": "validation", "images": len(labels["digit"]), "nll": losses}
    if model.router is None:
        return record
    if evidence != 0:
        found_evidence = digit_evidence(found["heads"], model.temperatures["digit"])
        grid = EVIDENCE_GRID if evidence == "auto" else (float(evidence),)
        evidence, script_t, record["evidence_nll"] = fit_evidence(
            found["script"], found_evidence, labels["script"], grid
        )
        model.evidence = evidence
        model.temperatures["script"] = script_t
        losses["script"]["after"] = record["evidence_nll"][str(evidence)]
    record["evidence"] = model.evidence
    record["familiarity"] = familiarity
    prototypes = class_prototypes(found["features"], labels["script"], labels["digit"])
    record["prototypes"] = len(prototypes)
    held_out = None
    if familiarity == "with_nearest":
        neighbours, center, projection = nearest_prototypes(found["features"], familiarity_dims)
        arrays = (prototypes, neighbours, center, projection)
        model.set_prototypes(*(torch.from_numpy(a) for a in arrays))
        features = torch.from_numpy(found["features"]).float()
        own = cosine_familiarity(features, model.prototypes).double().numpy()
        others = leave_one_out_nearest(model.neighbours.double().numpy())
        held_out = (own + others) / 2
    else:
        model.set_prototypes(torch.from_numpy(prototypes))
    if rising:
        record["temperature_fit"] = fit_temperature_rise(model, batches, found, perturb)
    read = {"script": [], "digit": [], "familiar": []}
    for x, _, _ in tracked(batches, "choosing the reject thresholds"):
        answer = model.predict(x)
        read["script"].append(answer["language_prob"].cpu())
        read["digit"].append(answer["digit_prob"].cpu())
        read["familiar"].append(answer["familiarity"].cpu())
    if held_out is not None:
        read["familiar"] = [torch.from_numpy(held_out)]
    record["reject"] = {
        kind: reject_threshold(torch.cat(read[kind]).numpy(), rate) for kind in read
    }
    record["reject"]["rate"] = rate
    return record
