"""What trains under each fine-tuning strategy, and the optimizer's parameter groups.

`apply_strategy` is the one place that sets `requires_grad`; everything else reads it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from xlvision.config.finetune import FinetuneConf, validate_finetune
from xlvision.finetune.lora import LORA_LAYERS, add_lora
from xlvision.models.classifier import Classifier


def _everything(backbone: nn.Module, conf: FinetuneConf) -> Iterable[nn.Parameter]:
    return backbone.parameters()


def _nothing(backbone: nn.Module, conf: FinetuneConf) -> Iterable[nn.Parameter]:
    return []


def _last_blocks(backbone: nn.Module, conf: FinetuneConf) -> Iterable[nn.Parameter]:
    blocks = list(backbone.blocks)
    if conf.blocks > len(blocks):
        raise ValueError(
            f"finetune.blocks={conf.blocks} is not allowed: "
            f"at most {len(blocks)}, the number of blocks of this backbone"
        )
    return [p for block in blocks[-conf.blocks :] for p in block.parameters()]


def _biases_and_norms(backbone: nn.Module, conf: FinetuneConf) -> Iterable[nn.Parameter]:
    return [
        p
        for module in backbone.modules()
        for name, p in module.named_parameters(recurse=False)
        if name == "bias" or isinstance(module, _BatchNorm)
    ]


def _adapters(backbone: nn.Module, conf: FinetuneConf) -> Iterable[nn.Parameter]:
    add_lora(backbone, conf.lora_rank, conf.lora_alpha)
    return [
        p
        for module in backbone.modules()
        if isinstance(module, LORA_LAYERS)
        for p in (*module.lora_a.parameters(), *module.lora_b.parameters())
    ]


# The backbone parameters each strategy trains; the target head always trains.
BACKBONE_SELECTORS: dict[str, Callable[[nn.Module, FinetuneConf], Iterable[nn.Parameter]]] = {
    "full": _everything,
    "linear_probe": _nothing,
    "partial": _last_blocks,
    "bitfit": _biases_and_norms,
    "l2sp": _everything,  # the penalty toward the base weights is added to the loss
    "lora": _adapters,
}


def apply_strategy(model: Classifier, conf: FinetuneConf, target: str) -> list[dict]:
    """Freeze `model` for `conf.name` fine-tuning on `target`; return its parameter groups.

    `lora` adds adapters to the backbone in place. Other languages' heads never train, so
    fine-tuning one language cannot drift the heads the integrated model relies on.
    """
    validate_finetune(conf)
    if target not in model.heads:
        raise ValueError(
            f"the model has no head for {target!r} (heads: {', '.join(model.languages)}): "
            "add it with init_head first"
        )
    trainable = list(BACKBONE_SELECTORS[conf.name](model.backbone, conf))
    model.requires_grad_(False)
    for p in trainable:
        p.requires_grad_(True)
    model.heads[target].requires_grad_(True)
    return parameter_groups(model, target, conf.layer_decay)


def parameter_groups(model: Classifier, target: str, layer_decay: float | None) -> list[dict]:
    """The trainable parameters as `{"params", "lr_scale"}` groups, input to output.

    With layer-wise decay (timm's recipe) the head gets scale 1, the last backbone block
    `decay`, the one before `decay**2`, …; backbone parameters outside every block get the
    smallest scale. Without it, one group at scale 1.
    """
    trainable = [p for p in model.parameters() if p.requires_grad]
    if layer_decay is None:
        return [{"params": trainable, "lr_scale": 1.0}] if trainable else []
    blocks = list(model.backbone.blocks)
    depth: dict[int, int] = {id(p): 0 for p in model.heads[target].parameters()}
    for d, block in enumerate(reversed(blocks), start=1):
        for p in block.parameters():
            depth.setdefault(id(p), d)
    deepest = len(blocks)
    by_depth: dict[int, list[nn.Parameter]] = {}
    for p in trainable:
        by_depth.setdefault(depth.get(id(p), deepest), []).append(p)
    return [
        {"params": by_depth[d], "lr_scale": float(layer_decay**d)}
        for d in sorted(by_depth, reverse=True)
    ]


def groups_with_lr(groups: list[dict], lr: float) -> list[dict]:
    """Groups with `lr = lr * lr_scale` set, for an optimizer built straight from them."""
    return [{**group, "lr": lr * group["lr_scale"]} for group in groups]


def frozen_batchnorm_modules(model: nn.Module) -> list[_BatchNorm]:
    """BatchNorm layers with affine parameters, none of which train.

    Their running statistics belong to the frozen weights around them, so they must not
    follow the fine-tuning batches (linear_probe, partial, lora). BN layers without affine
    parameters say nothing about their own state and are left to the caller.
    """
    return [
        m
        for m in model.modules()
        if isinstance(m, _BatchNorm)
        and m.affine
        and not any(p.requires_grad for p in m.parameters())
    ]


def keep_frozen_bn_eval(model: nn.Module) -> None:
    """Put frozen BatchNorm layers in eval mode; call after every `model.train()`."""
    for m in frozen_batchnorm_modules(model):
        m.eval()


def trainable_names(model: nn.Module) -> list[str]:
    """Names of the parameters that train, for logs and checks."""
    return [name for name, p in model.named_parameters() if p.requires_grad]
