"""Calibrating a unified model on validation data when its bundle is made (never test data)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

from xlvision.bundle.calibration import REJECT_RATE, fit_temperature, nll, reject_threshold
from xlvision.bundle.model import UnifiedModel
from xlvision.models.classifier import LID_HEAD

PAD = -1e9
"""Logit of a class a language's head lacks, so heads of every size share one matrix."""


@torch.no_grad()
def validation_logits(model: UnifiedModel, batches: Iterable) -> dict[str, np.ndarray]:
    """Raw logits on every validation image: the router's (`script`, against the language)
    and its own language's head (`digit`, the language given, against the digit)."""
    parts: dict[str, list] = {"script": [], "digit": [], "language": [], "label": []}
    width = max(model.members[model.routes[c]].heads[c].out_features for c in model.languages)
    for x, y, language in batches:
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
            parts["script"].append(router.heads[LID_HEAD](router.backbone(x)).cpu())
    return {k: torch.cat(v).double().numpy() for k, v in parts.items() if v}


@torch.no_grad()
def fit_calibration(model: UnifiedModel, batches: Iterable, rate: float = REJECT_RATE) -> dict:
    """Fit the script and digit temperatures by NLL on `batches` (validation data), set them
    on `model`, then choose reject thresholds: each one the `rate` quantile of the calibrated
    probabilities of the answer without the script on the same images (the script's, and
    the digit's by the bundle's rule). Returns the manifest's `calibration` record."""
    batches = list(batches)
    found = validation_logits(model, batches)
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
    read = {"script": [], "digit": []}
    for x, _, _ in batches:
        answer = model.predict(x)
        read["script"].append(answer["language_prob"].cpu())
        read["digit"].append(answer["digit_prob"].cpu())
    record["reject"] = {
        kind: reject_threshold(torch.cat(read[kind]).numpy(), rate) for kind in read
    }
    record["reject"]["rate"] = rate
    return record
