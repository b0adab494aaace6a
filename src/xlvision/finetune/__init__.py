"""Fine-tuning strategies: what to freeze, parameter groups, L2-SP and LoRA adapters.

Names load on first use, so importing a light submodule (its config dataclass, say)
does not import torch."""

from __future__ import annotations

from xlvision.lazy import lazy_getattr

_WHERE = {
    "FinetuneConf": "xlvision.finetune.config",
    "validate_finetune": "xlvision.finetune.config",
    "init_head": "xlvision.finetune.heads",
    "resolve_source_language": "xlvision.finetune.heads",
    "l2sp_penalty": "xlvision.finetune.l2sp",
    "snapshot_backbone": "xlvision.finetune.l2sp",
    "LoRAConv2d": "xlvision.finetune.lora",
    "LoRALinear": "xlvision.finetune.lora",
    "add_lora": "xlvision.finetune.lora",
    "merge_lora": "xlvision.finetune.lora",
    "apply_strategy": "xlvision.finetune.strategies",
    "frozen_batchnorm_modules": "xlvision.finetune.strategies",
    "groups_with_lr": "xlvision.finetune.strategies",
    "keep_frozen_bn_eval": "xlvision.finetune.strategies",
    "parameter_groups": "xlvision.finetune.strategies",
    "trainable_names": "xlvision.finetune.strategies",
}

__all__ = sorted(_WHERE)


__getattr__ = lazy_getattr(__name__, _WHERE)
