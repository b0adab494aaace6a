"""Scores of calibration and of "not in the bundle": expected calibration error and AUROC.

NumPy only, like the thresholds they score (`xlvision.bundle.calibration`)."""

from __future__ import annotations

import numpy as np

BINS = 15


def expected_calibration_error(
    confidence: np.ndarray, correct: np.ndarray, bins: int = BINS
) -> float:
    """Σ_bins (n_bin / N) · |accuracy_bin − mean confidence_bin| over `bins` equal-width bins
    of [0, 1] (a confidence of exactly 1 falls in the last bin)."""
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    if len(confidence) == 0:
        return 0.0
    which = np.minimum((confidence * bins).astype(np.int64), bins - 1)
    total = 0.0
    for b in np.unique(which):
        mine = which == b
        total += mine.sum() * abs(correct[mine].mean() - confidence[mine].mean())
    return float(total / len(confidence))


def auroc(positives: np.ndarray, negatives: np.ndarray) -> float:
    """P(score of a positive > score of a negative), ties counted half (Mann–Whitney U)."""
    positives = np.asarray(positives, dtype=np.float64)
    negatives = np.asarray(negatives, dtype=np.float64)
    if len(positives) == 0 or len(negatives) == 0:
        raise ValueError("AUROC needs at least one positive and one negative score")
    scores = np.concatenate([positives, negatives])
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    start = 0
    while start < len(scores):  # tied scores share their mean rank
        stop = start
        while stop + 1 < len(scores) and sorted_scores[stop + 1] == sorted_scores[start]:
            stop += 1
        ranks[order[start : stop + 1]] = (start + stop) / 2 + 1
        start = stop + 1
    n_pos, n_neg = len(positives), len(negatives)
    u = ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))
