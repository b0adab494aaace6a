"""Fine-tuning strategies: what to freeze, parameter groups, L2-SP and LoRA adapters."""

from __future__ import annotations

from xlvision.lazy import lazy_namespace

__getattr__, __all__ = lazy_namespace(
    __name__,
    {
        "config": "FinetuneConf validate_finetune",
        "heads": "init_head resolve_source_language",
        "l2sp": "l2sp_penalty snapshot_backbone",
        "lora": "LoRAConv2d LoRALinear add_lora merge_lora",
        "strategies": "apply_strategy frozen_batchnorm_modules groups_with_lr keep_frozen_bn_eval parameter_groups trainable_names",
    },
)
