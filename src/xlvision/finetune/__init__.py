"""Fine-tuning strategies: what to freeze, parameter groups, L2-SP and LoRA adapters."""

from xlvision.finetune.config import FinetuneConf, validate_finetune
from xlvision.finetune.heads import init_head, resolve_source_language
from xlvision.finetune.l2sp import l2sp_penalty, snapshot_backbone
from xlvision.finetune.lora import LoRAConv2d, LoRALinear, add_lora, merge_lora

__all__ = [
    "FinetuneConf",
    "LoRAConv2d",
    "LoRALinear",
    "add_lora",
    "init_head",
    "l2sp_penalty",
    "merge_lora",
    "resolve_source_language",
    "snapshot_backbone",
    "validate_finetune",
]
