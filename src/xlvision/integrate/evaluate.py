"""Accuracy per language of models read with the language given (λ choice, reference models)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from xlvision.progress import tracked

Batches = Iterable[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


@torch.no_grad()
def accuracy_per_language(
    forward: Callable[[torch.Tensor, str], torch.Tensor],
    batches: Batches,
    codes: list[str],
    only: list[str] | None = None,
) -> dict[str, float]:
    """`{code: accuracy}` of `forward(images, code)` on each language's samples (`codes` name
    the batches' language indices; `only`, if given, the languages to measure)."""
    correct = dict.fromkeys(codes, 0)
    seen = dict.fromkeys(codes, 0)
    for x, y, language in tracked(batches, "testing each model on its language"):
        for i, code in enumerate(codes):
            where = language == i
            if only is not None and code not in only:
                continue
            if where.any():
                correct[code] += int((forward(x[where], code).argmax(1) == y[where]).sum())
                seen[code] += int(where.sum())
    return {code: correct[code] / seen[code] for code in codes if seen[code]}


def mean(values: dict[str, float]) -> float:
    return sum(values.values()) / len(values)
