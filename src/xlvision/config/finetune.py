"""`FinetuneConf`: the shape of the `finetune` config group, and the ranges of its values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from xlvision.config.checks import Rule, check_rules, is_count, is_number

STRATEGIES = ("full", "linear_probe", "partial", "bitfit", "l2sp", "lora")
HEAD_INITS = ("source", "random", "zero")
SELECTIONS = ("best", "last")


@dataclass
class FinetuneConf:
    name: str = "full"
    head_init: str = "source"
    # The head copied by head_init=source; None means the checkpoint's first language.
    source_language: str | None = None
    blocks: int = 1
    l2sp_alpha: float = 0.01
    lora_rank: int = 4
    lora_alpha: float = 8.0
    layer_decay: float | None = None
    lr: float | None = None
    # With data=mix: the share of draws given to the base's other languages' glyphs (0: none),
    # trained through their own heads so the backbone keeps what it knew.
    replay: float = 0.0
    # Self-training: up to this many unlabeled real training images of the target (their
    # labels dropped when loaded; 0: off), labelled by the model itself at the start of every
    # epoch; those read with probability >= unlabeled_threshold are drawn, at unlabeled_weight.
    unlabeled: int = 0
    unlabeled_threshold: float = 0.9
    unlabeled_weight: float = 1.0
    # The checkpoint tested: `best` by the target's validation accuracy, or `last` (a fixed
    # number of steps, nothing selected).
    select: str = "best"


RULES: list[Rule] = [
    ("name", lambda v: v in STRATEGIES, f"one of {', '.join(STRATEGIES)}"),
    ("head_init", lambda v: v in HEAD_INITS, f"one of {', '.join(HEAD_INITS)}"),
    (
        "source_language",
        lambda v: v is None or (isinstance(v, str) and v != ""),
        "null (the checkpoint's first language) or a language code",
    ),
    ("blocks", is_count, "an integer >= 1"),
    ("l2sp_alpha", lambda v: is_number(v) and v >= 0, "a number >= 0"),
    ("lora_rank", is_count, "an integer >= 1"),
    ("lora_alpha", lambda v: is_number(v) and v > 0, "a number > 0"),
    (
        "layer_decay",
        lambda v: v is None or (is_number(v) and 0 < v <= 1),
        "null (off) or a number in (0, 1]",
    ),
    (
        "lr",
        lambda v: v is None or (is_number(v) and v > 0),
        "null (the optimizer's lr) or a number > 0",
    ),
    ("replay", lambda v: is_number(v) and v >= 0, "a sampling weight >= 0"),
    ("unlabeled", lambda v: v == 0 or is_count(v), "0 (off) or a number of images >= 1"),
    ("unlabeled_threshold", lambda v: is_number(v) and 0 < v <= 1, "a probability in (0, 1]"),
    ("unlabeled_weight", lambda v: is_number(v) and v > 0, "a sampling weight > 0"),
    ("select", lambda v: v in SELECTIONS, f"one of {', '.join(SELECTIONS)}"),
]


def validate_finetune(conf: Any) -> Any:
    """Refuse a bad `finetune.*` value (a `FinetuneConf` or a DictConfig) before any training."""
    return check_rules(conf, RULES, "finetune")
