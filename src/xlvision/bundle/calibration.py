"""Knowing when it does not know: temperatures and reject thresholds (their scores, ECE and
AUROC, are in `xlvision.evaluation.calibration`).

A bundle's softmax probabilities are made honest with two temperatures fitted on validation
data when it is made: one for the script router (`_lid`) and one shared by every digit head.
One per head kind, not one per language: a language's head sees few validation images, and
the `marginal` answer mixes every head's probabilities, which one shared scale keeps
comparable. An image whose script or digit probability falls below a threshold is answered
`?` (unknown), with the reason.

A script probability only ranks the scripts a bundle holds: handwriting of another script is
often given to one of them with confidence. The familiarity says whether an image looks like
the bundle's scripts at all: the largest cosine similarity of the router's features to the
per-(language, digit) mean features of the validation images (`UnifiedModel.familiarity`).

NumPy only: an exported `.onnx` file rejects the same way without torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from xlvision.config.checks import REJECT_ALLOWED, is_reject_value
from xlvision.config.errors import ConfigError

REJECT_RATE = 0.02
"""`reject=auto`: each threshold rejects this share of the validation images on its own."""
LOG_T_RANGE = (-3.0, 3.0)
"""Temperatures searched: e^-3 ≈ 0.05 to e^3 ≈ 20."""
UNKNOWN = "?"


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of `labels` under softmax(logits / temperature)."""
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    picked = log_softmax(logits / temperature)[np.arange(len(labels)), labels]
    return float(-picked.mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature T > 0 minimizing the NLL of softmax(logits / T), on a grid over log T
    refined by golden-section search (the NLL is smooth and unimodal in log T in practice).
    1.0 when there is nothing to fit: no samples, or a single class column."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2 or len(logits) == 0 or logits.shape[1] < 2:
        return 1.0
    low, high = LOG_T_RANGE
    grid = np.linspace(low, high, 61)
    losses = [nll(logits, labels, math.exp(t)) for t in grid]
    best = int(np.argmin(losses))
    a, b = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(40):
        c, d = b - ratio * (b - a), a + ratio * (b - a)
        if nll(logits, labels, math.exp(c)) < nll(logits, labels, math.exp(d)):
            b = d
        else:
            a = c
    return float(math.exp((a + b) / 2))


RISE_SLOPES = tuple(float(v) for v in np.arange(0.0, 8.01, 0.25))
"""The slopes `fit_rising_temperature` tries (0: a constant temperature)."""


def rising_scale(familiarity: np.ndarray, below: float, slope: float) -> np.ndarray:
    """[N]: exp(slope · max(0, below − familiarity)), the factor on a base temperature."""
    gap = np.maximum(below - np.asarray(familiarity, dtype=np.float64), 0.0)
    return np.exp(slope * gap)


def fit_rising_temperature(
    logits: np.ndarray,
    labels: np.ndarray,
    familiarity: np.ndarray,
    below: float,
    slopes=RISE_SLOPES,
) -> tuple[float, float, float]:
    """(t, slope, NLL): of the `slopes`, the one whose temperature t · `rising_scale`, with t
    fitted for it by `fit_temperature`, gives `labels` the lowest NLL; a tie goes to the
    smaller slope. Searched coarse to fine: every fourth slope, then those within three of the
    best (the NLL is unimodal in the slope in practice). Fitted on images some of which are
    unlike the validation data (perturbed), it says how much surer than it should be the model
    grows as an image gets less familiar."""
    logits = np.asarray(logits, dtype=np.float64)
    tried: dict[int, tuple[float, float, float]] = {}

    def fit(i: int) -> None:
        if i in tried:
            return
        scaled = logits / rising_scale(familiarity, below, slopes[i])[:, None]
        t = fit_temperature(scaled, labels)
        tried[i] = (t, float(slopes[i]), nll(scaled, labels, t))

    for i in range(0, len(slopes), 4):
        fit(i)
    coarse = min(tried, key=lambda i: (tried[i][2], i))
    for i in range(max(coarse - 3, 0), min(coarse + 4, len(slopes))):
        fit(i)
    best = min(tried, key=lambda i: (tried[i][2], i))
    return tried[best]


def reject_threshold(confidence: np.ndarray, rate: float = REJECT_RATE) -> float:
    """The largest threshold t such that at most `rate` of `confidence` lies strictly below t:
    the `rate` quantile, taken at an observed value."""
    confidence = np.sort(np.asarray(confidence, dtype=np.float64))
    if len(confidence) == 0:
        return 0.0
    return float(confidence[int(math.floor(rate * len(confidence)))])


@dataclass(frozen=True)
class Thresholds:
    """Below `script` the script is unknown; below `digit` the digit is. Below `familiar`
    (None: not checked) the image is in no script the bundle holds, so its script is unknown."""

    script: float
    digit: float
    familiar: float | None = None


def unknown_reasons(
    script_prob: np.ndarray,
    digit_prob: np.ndarray,
    thresholds: Thresholds | None,
    familiarity: np.ndarray | None = None,
) -> np.ndarray:
    """Per image: '' (answered), 'script' or 'digit' (answered `?`); the script, by its
    probability and by the `familiarity` (when given and thresholded), is checked first, since
    a digit read with the wrong script's head means little."""
    script_prob = np.asarray(script_prob, dtype=np.float64)
    out = np.full(script_prob.shape, "", dtype=object)
    if thresholds is None:
        return out
    out[np.asarray(digit_prob, dtype=np.float64) < thresholds.digit] = "digit"
    unknown_script = script_prob < thresholds.script
    if familiarity is not None and thresholds.familiar is not None:
        unknown_script |= np.asarray(familiarity, dtype=np.float64) < thresholds.familiar
    out[unknown_script] = "script"
    return out


def reject_thresholds(value, manifest: dict) -> Thresholds | None:
    """The thresholds `reject=value` means for a bundle: none; one probability for the script
    and the digit (a familiarity is no probability: not checked); or auto, the ones stored in
    its manifest when it was made (none if it has none; familiarity only if stored)."""
    if not is_reject_value(value):
        raise ConfigError("reject", value, REJECT_ALLOWED)
    if value is None or value == "none":
        return None
    if value == "auto":
        stored = (manifest.get("calibration") or {}).get("reject")
        if not stored:
            return None
        familiar = stored.get("familiar")
        return Thresholds(
            float(stored["script"]),
            float(stored["digit"]),
            None if familiar is None else float(familiar),
        )
    return Thresholds(float(value), float(value))


def temperature_rise(manifest: dict) -> dict | None:
    """The manifest's `calibration.temperature_rise` (checked by
    `UnifiedModel.set_temperature_rise`), or None: the temperatures are constant."""
    return (manifest.get("calibration") or {}).get("temperature_rise")


def temperatures(manifest: dict) -> dict[str, float]:
    """{'script': T, 'digit': T} from a manifest; 1.0 (uncalibrated) where it has none."""
    stored = (manifest.get("calibration") or {}).get("temperature") or {}
    return {kind: float(stored.get(kind, 1.0)) for kind in ("script", "digit")}
