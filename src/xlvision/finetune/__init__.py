"""Fine-tuning strategies: what to freeze, parameter groups, L2-SP and LoRA adapters."""

from xlvision.finetune.config import FinetuneConf, validate_finetune
from xlvision.finetune.heads import init_head, resolve_source_language

__all__ = ["FinetuneConf", "init_head", "resolve_source_language", "validate_finetune"]
