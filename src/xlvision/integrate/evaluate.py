"""Accuracy of integrated models per language: with the language given, and routed."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

from xlvision.training.metrics import StageMetrics

Batches = Iterable[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


@torch.no_grad()
def accuracy_per_language(
    forward: Callable[[torch.Tensor, str], torch.Tensor], batches: Batches, codes: list[str]
) -> dict[str, float]:
    """`{code: accuracy}` of `forward(images, code)` on each language's samples."""
    correct = dict.fromkeys(codes, 0)
    seen = dict.fromkeys(codes, 0)
    for x, y, language in batches:
        for i, code in enumerate(codes):
            where = language == i
            if where.any():
                correct[code] += int((forward(x[where], code).argmax(1) == y[where]).sum())
                seen[code] += int(where.sum())
    return {code: correct[code] / seen[code] for code in codes if seen[code]}


def mean(values: dict[str, float]) -> float:
    return sum(values.values()) / len(values)


@torch.no_grad()
def unified_metrics(
    model: nn.Module, batches: Batches, classes: dict[str, int]
) -> dict[str, float]:
    """`test/<code>/{acc,recall,f1}` with the language given, `routed/<code>/{…}` with the
    language found by the model's router, and `lid/<code>/acc`, the router's own accuracy.

    `model` is a `UnifiedModel` whose `languages` are the keys of `classes`, in order.
    """
    model.eval()
    codes = list(classes)
    known, routed = StageMetrics("test", classes), StageMetrics("routed", classes)
    lid_correct = dict.fromkeys(codes, 0)
    lid_seen = dict.fromkeys(codes, 0)
    for x, y, language in batches:
        prediction = model.predict(x)
        for i, code in enumerate(codes):
            where = language == i
            if not where.any():
                continue
            known.update(code, model(x[where], code), y[where])
            digits, target = prediction["digit"][where], y[where]
            # Routed to a script with more classes: a digit this script lacks is simply wrong.
            wrong = (target + 1) % classes[code]
            routed.update(code, torch.where(digits < classes[code], digits, wrong), target)
            lid_correct[code] += int((prediction["language"][where] == i).sum())
            lid_seen[code] += int(where.sum())
    metrics = {**known.compute(), **routed.compute()}
    lid = {code: lid_correct[code] / lid_seen[code] for code in codes if lid_seen[code]}
    metrics.update({f"lid/{code}/acc": acc for code, acc in lid.items()})
    metrics["lid/mean/acc"] = mean(lid)
    return metrics
