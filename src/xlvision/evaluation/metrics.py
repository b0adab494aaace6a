"""Per-language metrics: one MetricCollection, cloned per stage and language; the accuracy
per language of any reading function (the λ choice, reference models)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassRecall,
)

from xlvision.evaluation.means import language_means
from xlvision.progress import tracked

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
        out.update(language_means(out, self.stage, {"mean": seen}, METRICS))
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


class HeadAccuracy:
    """Per-language accuracy of the shared heads: `digit_acc` (the `_digit` head, no script
    given), `lid_acc` (the `_lid` head names the language) and `lid_group_acc` (it names a
    language of the same script group, e.g. Persian for Arabic)."""

    def __init__(self, languages: list[str], groups: list[str] | None = None) -> None:
        self.languages = list(languages)
        groups = list(groups or languages)
        self.same_group = torch.tensor([[a == b for b in groups] for a in groups])
        self.reset()

    def reset(self) -> None:
        n = len(self.languages)
        self.counts = {k: torch.zeros(n) for k in ("seen", "digit", "lid", "lid_group")}
        self.updated: set[str] = set()

    def update(self, logits: dict[str, torch.Tensor], y: torch.Tensor, language: torch.Tensor):
        language = language.cpu()
        self.counts["seen"] += torch.bincount(language, minlength=len(self.languages)).float()
        hits = {}
        if "digit" in logits:
            hits["digit"] = logits["digit"].argmax(1).cpu() == y.cpu()
        if "lid" in logits:
            named = logits["lid"].argmax(1).cpu()
            hits["lid"] = named == language
            hits["lid_group"] = self.same_group[language, named]
        for key, hit in hits.items():
            self.updated.add(key)
            self.counts[key] += torch.bincount(
                language, weights=hit.float(), minlength=len(self.languages)
            )

    def compute(self, stage: str) -> dict[str, float]:
        out: dict[str, float] = {}
        seen = self.counts["seen"]
        measured = [key for key in ("digit", "lid", "lid_group") if key in self.updated]
        for key in measured:
            for i, code in enumerate(self.languages):
                if seen[i] > 0:
                    out[f"{stage}/{code}/{key}_acc"] = float(self.counts[key][i] / seen[i])
        names = [f"{key}_acc" for key in measured]
        out.update(language_means(out, stage, {"mean": self.languages}, names))
        return out


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
