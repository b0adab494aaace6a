"""`Classifier = backbone + heads`, one head per language."""

from __future__ import annotations

import torch
from torch import nn

DIGIT_HEAD = "_digit"
"""A ten-digit head shared by every script: it reads a digit without being told the script."""
LID_HEAD = "_lid"
"""The head that identifies the language (script); its outputs follow the model's languages."""


def language_codes(heads) -> list[str]:
    """The language heads' codes, without the shared heads (`_digit`, `_lid`)."""
    return [code for code in heads if not code.startswith("_")]


class LanguageHeads(nn.ModuleDict):
    """A linear head per language code; languages may differ in their number of classes."""

    def __init__(self, in_features: int, classes: dict[str, int]) -> None:
        super().__init__({code: nn.Linear(in_features, n) for code, n in classes.items()})


class Classifier(nn.Module):
    """Shared backbone, per-language heads; `forward(x, code)` reads one script."""

    def __init__(self, backbone: nn.Module, classes: dict[str, int]) -> None:
        super().__init__()
        self.backbone = backbone
        self.heads = LanguageHeads(backbone.out_features, classes)

    @property
    def languages(self) -> list[str]:
        return language_codes(self.heads)

    def forward(self, x: torch.Tensor, language: str) -> torch.Tensor:
        return self.heads[language](self.backbone(x))

    def forward_mixed(
        self, x: torch.Tensor, language_index: torch.Tensor, codes: list[str]
    ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Logits per language for a batch mixing languages: {code: (positions, logits)}."""
        features = self.backbone(x)
        out = {}
        for i, code in enumerate(codes):
            where = torch.nonzero(language_index == i).flatten()
            if len(where):
                out[code] = (where, self.heads[code](features[where]))
        return out
