"""Fine-tuning strategies: what to freeze, parameter groups, L2-SP and LoRA adapters."""

from xlvision.finetune.config import FinetuneConf, validate_finetune
from xlvision.finetune.heads import init_head, resolve_source_language
from xlvision.finetune.l2sp import l2sp_penalty, snapshot_backbone
from xlvision.finetune.lora import LoRAConv2d, LoRALinear, add_lora, merge_lora
from xlvision.finetune.strategies import (
    apply_strategy,
    frozen_batchnorm_modules,
    groups_with_lr,
    keep_frozen_bn_eval,
    parameter_groups,
    trainable_names,
)

__all__ = [
    "FinetuneConf",
    "LoRAConv2d",
    "LoRALinear",
    "add_lora",
    "apply_strategy",
    "frozen_batchnorm_modules",
    "groups_with_lr",
    "init_head",
    "keep_frozen_bn_eval",
    "l2sp_penalty",
    "merge_lora",
    "parameter_groups",
    "resolve_source_language",
    "snapshot_backbone",
    "trainable_names",
    "validate_finetune",
]
