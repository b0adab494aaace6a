"""`UnifiedModel`: one module that reads every language of a bundle."""

from __future__ import annotations

import torch
from torch import nn

from xlvision.models.classifier import Classifier

LID_HEAD = "_lid"
"""The head that identifies the language; its outputs follow `UnifiedModel.languages`."""


class UnifiedModel(nn.Module):
    """Members (classifiers) with a route per language and an optional language-ID router.

    `routes[code]` names the member whose head `code` reads that language; `router` names the
    member whose head `_lid` scores `languages` in order (None: the language must be given).
    A shared-backbone model has one member holding every head; a routed one a member each.
    """

    def __init__(
        self,
        members: dict[str, Classifier],
        routes: dict[str, str],
        languages: list[str],
        router: str | None = None,
    ) -> None:
        super().__init__()
        self.members = nn.ModuleDict(members)
        self.routes = dict(routes)
        self.languages = list(languages)
        self.router = router
        for code in self.languages:
            key = self.routes.get(code)
            if key not in self.members or code not in self.members[key].heads:
                raise ValueError(f"language {code!r} has no route to a member with its head")
        if router is not None:
            heads = self.members[router].heads if router in self.members else {}
            if LID_HEAD not in heads or heads[LID_HEAD].out_features != len(self.languages):
                raise ValueError(
                    f"router {router!r} needs a head {LID_HEAD!r} with {len(self.languages)} "
                    "outputs, one per language"
                )

    def forward(self, x: torch.Tensor, language: str) -> torch.Tensor:
        """Digit logits of a batch known to be in `language`."""
        return self.members[self.routes[language]](x, language)

    def _language_probs(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        probs = self.members[self.router].heads[LID_HEAD](features).softmax(dim=1)
        prob, index = probs.max(dim=1)
        return index, prob

    def identify(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(language index [B], its probability [B]) by the router."""
        if self.router is None:
            raise ValueError("this model has no language-identification router")
        return self._language_probs(self.members[self.router].backbone(x))

    def predict(self, x: torch.Tensor, language: str | None = None) -> dict[str, torch.Tensor]:
        """Language and digit per sample: each sample is read by its own language's member.

        With `language` given, routing is skipped and its probability is 1.
        """
        n = x.shape[0]
        features: dict[str, torch.Tensor] = {}
        if language is None:
            if self.router is None:
                raise ValueError("this model has no language-identification router")
            features[self.router] = self.members[self.router].backbone(x)
            index, language_prob = self._language_probs(features[self.router])
        else:
            if language not in self.routes:
                raise ValueError(f"unknown language {language!r}: one of {self.languages}")
            index = torch.full((n,), self.languages.index(language), dtype=torch.long)
            language_prob = torch.ones(n, device=x.device)
        index = index.to(x.device)
        digit = torch.zeros(n, dtype=torch.long, device=x.device)
        digit_prob = torch.zeros(n, device=x.device)
        for key, member in self.members.items():
            codes = [(i, c) for i, c in enumerate(self.languages) if self.routes[c] == key]
            mine = torch.zeros(n, dtype=torch.bool, device=x.device)
            for i, _ in codes:
                mine |= index == i
            if not mine.any():
                continue
            where = torch.nonzero(mine).flatten()
            feats = features[key][where] if key in features else member.backbone(x[where])
            for i, code in codes:
                sub = index[where] == i
                if sub.any():
                    prob, label = member.heads[code](feats[sub]).softmax(dim=1).max(dim=1)
                    digit[where[sub]], digit_prob[where[sub]] = label, prob
        return {
            "language": index,
            "language_prob": language_prob,
            "digit": digit,
            "digit_prob": digit_prob,
        }
