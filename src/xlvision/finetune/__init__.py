"""Fine-tuning strategies: what to freeze, parameter groups, L2-SP and LoRA adapters."""

from __future__ import annotations

from xlvision.moved import moved_names

# What this package handed on before each name was imported from its own module.
__getattr__ = moved_names(
    __name__,
    {
        "xlvision.config.finetune": "FinetuneConf validate_finetune",
        "xlvision.finetune.heads": "init_head resolve_source_language",
        "xlvision.finetune.l2sp": "l2sp_penalty snapshot_backbone",
        "xlvision.finetune.lora": "LoRAConv2d LoRALinear add_lora merge_lora",
        "xlvision.finetune.strategies": "apply_strategy frozen_batchnorm_modules groups_with_lr keep_frozen_bn_eval parameter_groups trainable_names",
    },
)
