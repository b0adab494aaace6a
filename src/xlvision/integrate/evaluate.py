"""Accuracy per language of models read with the language given (λ choice, reference models)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

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
