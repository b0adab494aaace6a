"""`Copies`: several classifiers of one architecture, trained apart, read as one.

Each image is read by every copy; a head's output is the log of the copies' mean softmax, so
what a bundle does with logits (temperatures, softmax, argmax) reads the copies' averaged
probabilities. The features are the copies' side by side: a familiarity measured on them is
the copies' cosines together."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from xlvision.models.classifier import Classifier, language_codes


class SideBySide(nn.Module):
    """The backbones' features of an image, concatenated in order."""

    def __init__(self, backbones: list[nn.Module]) -> None:
        super().__init__()
        self.parts = nn.ModuleList(backbones)
        self.widths = [b.out_features for b in backbones]
        self.out_features = sum(self.widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([backbone(x) for backbone in self.parts], dim=1)


class MixtureHead(nn.Module):
    """Each copy's head on its own part of the features; out: log of their mean softmax."""

    def __init__(self, heads: list[nn.Linear], widths: list[int]) -> None:
        super().__init__()
        sizes = {h.out_features for h in heads}
        if len(sizes) != 1 or [h.in_features for h in heads] != widths:
            raise ValueError("the copies' heads differ in size")
        self.parts = nn.ModuleList(heads)
        self.widths = list(widths)

    @property
    def in_features(self) -> int:
        return sum(self.widths)

    @property
    def out_features(self) -> int:
        return self.parts[0].out_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        chunks = features.split(self.widths, dim=1)
        log_probs = [F.log_softmax(h(c), dim=1) for h, c in zip(self.parts, chunks, strict=True)]
        return torch.logsumexp(torch.stack(log_probs), dim=0) - math.log(len(self.parts))


class Copies(nn.Module):
    """Classifier-shaped (`backbone`, `heads`, `forward(x, code)`) over ≥ 2 copies with the same
    heads; `heads[code]` reads the copies' mean probabilities as log-probabilities."""

    def __init__(self, copies: list[Classifier]) -> None:
        super().__init__()
        if len(copies) < 2:
            raise ValueError("Copies needs at least two classifiers")
        names = [list(c.heads) for c in copies]
        if any(n != names[0] for n in names):
            raise ValueError("the copies' heads differ: " + " vs ".join(",".join(n) for n in names))
        self.backbone = SideBySide([c.backbone for c in copies])
        widths = self.backbone.widths
        self.heads = nn.ModuleDict(
            {code: MixtureHead([c.heads[code] for c in copies], widths) for code in names[0]}
        )

    @property
    def count(self) -> int:
        return len(self.backbone.parts)

    @property
    def languages(self) -> list[str]:
        return language_codes(self.heads)

    def forward(self, x: torch.Tensor, language: str) -> torch.Tensor:
        return self.heads[language](self.backbone(x))
