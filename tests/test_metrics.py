"""Metric values against a hand-computed example."""

from __future__ import annotations

import pytest
import torch

from xlvision.evaluation.metrics import StageMetrics


def one_hot_logits(pred: list[int], classes: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(pred), classes).float()


def test_accuracy_macro_recall_macro_f1_by_hand():
    # Three classes. target 0 0 0 1 1 2, predicted 0 0 1 1 2 2.
    # Accuracy 4/6. Recall per class: 2/3, 1/2, 1/1 -> macro 13/18.
    # Precision: 2/2, 1/2, 1/2. F1: 0.8, 0.5, 2/3 -> macro (0.8 + 0.5 + 2/3) / 3.
    metrics = StageMetrics("test", {"kn": 3, "ar": 3}, confusion=True)
    target = torch.tensor([0, 0, 0, 1, 1, 2])
    metrics.update("kn", one_hot_logits([0, 0, 1, 1, 2, 2], 3), target)
    metrics.update("ar", one_hot_logits([0, 0, 0, 1, 1, 2], 3), target)
    values = metrics.compute()
    assert values["test/kn/acc"] == pytest.approx(4 / 6)
    assert values["test/kn/recall"] == pytest.approx(13 / 18)
    assert values["test/kn/f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert values["test/ar/acc"] == pytest.approx(1.0)
    assert values["test/mean/acc"] == pytest.approx((4 / 6 + 1) / 2)
    assert metrics.confusion_matrices()["test/kn"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]


def test_languages_without_data_are_left_out():
    metrics = StageMetrics("val", {"kn": 10, "ar": 10})
    metrics.update("kn", one_hot_logits([1, 2], 10), torch.tensor([1, 2]))
    values = metrics.compute()
    assert "val/ar/acc" not in values
    assert values["val/mean/acc"] == 1.0
