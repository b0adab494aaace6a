"""The target language's head: copied from the source language, fresh, or zero."""

from __future__ import annotations

import torch
from torch import nn

from xlvision.config.errors import ConfigError
from xlvision.config.finetune import HEAD_INITS
from xlvision.models.classifier import Classifier


def resolve_source_language(model: Classifier, source_language: str | None) -> str:
    """`finetune.source_language`, or the checkpoint's first language when it is null."""
    return source_language if source_language is not None else model.languages[0]


def init_head(model: Classifier, target: str, num_classes: int, mode: str, source: str) -> None:
    """Add or replace `model.heads[target]`.

    `source` copies the source language's head: the ten digits mean the same in every script,
    so its class vectors are a better start than noise. `zero` starts from uniform logits.
    """
    if mode not in HEAD_INITS:
        raise ConfigError("finetune.head_init", mode, f"one of {', '.join(HEAD_INITS)}")
    reference = next(model.parameters())
    head = nn.Linear(
        model.backbone.out_features, num_classes, device=reference.device, dtype=reference.dtype
    )
    with torch.no_grad():
        if mode == "source":
            if source not in model.heads:
                raise ConfigError(
                    "finetune.source_language",
                    source,
                    f"one of the checkpoint's languages: {', '.join(model.languages)}",
                )
            copied = model.heads[source]
            if copied.out_features != num_classes:
                raise ValueError(
                    f"cannot copy the {source!r} head ({copied.out_features} classes) to "
                    f"{target!r} ({num_classes} classes): use finetune.head_init=random or zero"
                )
            head.weight.copy_(copied.weight)
            head.bias.copy_(copied.bias)
        elif mode == "zero":
            head.weight.zero_()
            head.bias.zero_()
    model.heads[target] = head
