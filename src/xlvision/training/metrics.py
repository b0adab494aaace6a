"""Per-language metrics: one MetricCollection, cloned per stage and language."""

from __future__ import annotations

import torch
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassRecall,
)

METRICS = ("acc", "recall", "f1")


def classification_metrics(num_classes: int) -> MetricCollection:
    """Accuracy (micro), macro recall and macro F1, the numbers a paper table reports."""
    return MetricCollection(
        {
            "acc": MulticlassAccuracy(num_classes, average="micro"),
            "recall": MulticlassRecall(num_classes, average="macro"),
            "f1": MulticlassF1Score(num_classes, average="macro"),
        }
    )


class StageMetrics(torch.nn.Module):
    """Metrics of one stage (val or test) for every language, plus the cross-language mean."""

    def __init__(self, stage: str, classes: dict[str, int], confusion: bool = False) -> None:
        super().__init__()
        self.stage = stage
        self.per_language = torch.nn.ModuleDict(
            {code: classification_metrics(n) for code, n in classes.items()}
        )
        self.confusion = (
            torch.nn.ModuleDict({c: MulticlassConfusionMatrix(n) for c, n in classes.items()})
            if confusion
            else None
        )

    def update(self, code: str, logits: torch.Tensor, target: torch.Tensor) -> None:
        self.per_language[code].update(logits, target)
        if self.confusion is not None:
            self.confusion[code].update(logits, target)

    def compute(self) -> dict[str, float]:
        """`{stage}/{language}/{metric}` for every language that saw data, and `{stage}/mean/*`."""
        out: dict[str, float] = {}
        seen = [c for c, m in self.per_language.items() if m["acc"].update_count > 0]
        for code in seen:
            for name, value in self.per_language[code].compute().items():
                out[f"{self.stage}/{code}/{name}"] = float(value)
        for name in METRICS:
            values = [out[f"{self.stage}/{code}/{name}"] for code in seen]
            if values:
                out[f"{self.stage}/mean/{name}"] = sum(values) / len(values)
        return out

    def confusion_matrices(self) -> dict[str, list[list[int]]]:
        if self.confusion is None:
            return {}
        return {
            f"{self.stage}/{code}": m.compute().int().tolist()
            for code, m in self.confusion.items()
            if m.update_count > 0
        }

    def reset(self) -> None:
        for m in self.per_language.values():
            m.reset()
        if self.confusion is not None:
            for m in self.confusion.values():
                m.reset()
