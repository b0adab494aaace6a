"""Linear heads on frozen features: the language-ID head and multihead's linear probes.

The backbone is frozen, so its features are computed once and the heads train on them,
which costs seconds where running the backbone every epoch would cost minutes.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from xlvision.progress import tracked

PROBE_BATCH = 256


@torch.no_grad()
def extract_features(
    backbone: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(features, labels, language indices) of every batch, the backbone in eval mode."""
    mode = backbone.training
    backbone.eval()
    features, labels, languages = [], [], []
    try:
        for x, y, language in tracked(batches, "extracting features"):
            features.append(backbone(x))
            labels.append(y)
            languages.append(language)
    finally:
        backbone.train(mode)
    return torch.cat(features), torch.cat(labels), torch.cat(languages)


def train_linear_head(
    head: nn.Linear,
    features: torch.Tensor,
    targets: torch.Tensor,
    epochs: int,
    lr: float,
    seed: int,
) -> nn.Linear:
    """Fit `head` on fixed features with Adam and cross-entropy; returns it in eval mode."""
    if not len(targets):
        raise ValueError("a linear head needs training data: no features given")
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(head.parameters(), lr=lr)
    head.train()
    with torch.enable_grad():
        for _ in range(epochs):
            order = torch.randperm(len(targets), generator=generator)
            for batch in order.split(PROBE_BATCH):
                optimizer.zero_grad()
                F.cross_entropy(head(features[batch]), targets[batch]).backward()
                optimizer.step()
    return head.eval().requires_grad_(False)


def language_id_head(
    features: torch.Tensor,
    languages: torch.Tensor,
    num_languages: int,
    epochs: int,
    lr: float,
    seed: int,
) -> nn.Linear:
    """A linear head that names the script of an image (output i = the i-th language)."""
    head = nn.Linear(features.shape[1], num_languages)
    nn.init.zeros_(head.weight)
    nn.init.zeros_(head.bias)
    return train_linear_head(head, features, languages, epochs, lr, seed)
