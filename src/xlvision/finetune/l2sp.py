"""L2-SP (Li et al., 2018): pull the backbone toward its pretrained weights, not toward zero."""

from __future__ import annotations

import torch

from xlvision.models.classifier import Classifier


def snapshot_backbone(model: Classifier) -> dict[str, torch.Tensor]:
    """Detached copies of the backbone's parameters: the starting point L2-SP pulls toward."""
    return {name: p.detach().clone() for name, p in model.backbone.named_parameters()}


def l2sp_penalty(
    model: Classifier, reference: dict[str, torch.Tensor], alpha: float
) -> torch.Tensor:
    """`alpha/2 · Σ ||w − w0||²` over the backbone; heads are new per language and excluded."""
    terms = []
    for name, p in model.backbone.named_parameters():
        if name not in reference:
            raise KeyError(f"the L2-SP reference has no backbone parameter {name!r}")
        terms.append((p - reference[name].to(p.device)).pow(2).sum())
    return alpha / 2 * torch.stack(terms).sum()
