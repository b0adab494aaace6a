"""Fine-tuning strategies: what trains, what stays bit-identical, L2-SP, LoRA, head init."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch import nn

from xlvision.config.errors import ConfigError
from xlvision.config.finetune import STRATEGIES, FinetuneConf, validate_finetune
from xlvision.finetune.heads import init_head, resolve_source_language
from xlvision.finetune.l2sp import l2sp_penalty, snapshot_backbone
from xlvision.finetune.lora import LoRAConv2d, LoRALinear, add_lora, merge_lora
from xlvision.finetune.strategies import (
    apply_strategy,
    frozen_batchnorm_modules,
    groups_with_lr,
    keep_frozen_bn_eval,
    trainable_names,
)
from xlvision.models.classifier import Classifier
from xlvision.models.registry import build_classifier

NET = {"name": "net", "image_size": 28}
BN_NAMES = {"backbone.convs.0.1", "backbone.convs.1.1", "backbone.convs.2.1"}
# With blocks=2, `partial` trains convs.2 and fc: only the BN of convs.2 follows the batches.
FROZEN_BN = {
    "full": set(),
    "linear_probe": BN_NAMES,
    "partial": {"backbone.convs.0.1", "backbone.convs.1.1"},
    "bitfit": set(),
    "l2sp": set(),
    "lora": BN_NAMES,
}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These tensors are tiny: a second thread only adds contention on shared cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def two_language_net() -> Classifier:
    torch.manual_seed(0)
    return build_classifier(NET, {"en": 10, "kn": 10})


def batch(seed: int, n: int = 8, side: int = 28) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, side, side, generator=g), torch.randint(0, 10, (n,), generator=g)


def train(model, groups, steps=3, lr=0.1, side=28, reference=None, alpha=0.0) -> None:
    """A few Adam steps on `kn`, the way a training epoch starts."""
    optimizer = torch.optim.Adam(groups_with_lr(groups, lr))
    model.train()
    keep_frozen_bn_eval(model)
    for step in range(steps):
        x, y = batch(step, side=side)
        loss = F.cross_entropy(model(x, "kn"), y)
        if reference is not None:
            loss = loss + l2sp_penalty(model, reference, alpha)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def expected_trainable(model: Classifier, name: str) -> set[str]:
    names = [n for n, _ in model.named_parameters()]
    head = {n for n in names if n.startswith("heads.kn.")}
    backbone = {n for n in names if n.startswith("backbone.")}
    if name in ("full", "l2sp"):
        return backbone | head
    if name == "linear_probe":
        return head
    if name == "partial":
        return {n for n in backbone if n.startswith(("backbone.convs.2.", "backbone.fc."))} | head
    if name == "bitfit":
        norms = {f"{bn}.{p}" for bn in BN_NAMES for p in ("weight", "bias")}
        return {n for n in backbone if n.endswith(".bias")} | norms | head
    adapters = {n for n in backbone if ".lora_a." in n or ".lora_b." in n}
    assert len(adapters) == 2 * 4  # three convs and the FC layer, A and B each
    return adapters | head


@pytest.mark.parametrize("name", STRATEGIES)
def test_strategy_trains_exactly_what_it_claims(name):
    model = two_language_net()
    conf = FinetuneConf(name=name, blocks=2)
    groups = apply_strategy(model, conf, "kn")

    trainable = set(trainable_names(model))
    assert trainable == expected_trainable(model, name)
    in_groups = {id(p) for group in groups for p in group["params"]}
    assert in_groups == {id(p) for p in model.parameters() if p.requires_grad}
    frozen_bn = {
        n for n, m in model.named_modules() if any(m is f for f in frozen_batchnorm_modules(model))
    }
    assert frozen_bn == FROZEN_BN[name]

    before = {k: v.clone() for k, v in model.state_dict().items()}
    reference = snapshot_backbone(model) if name == "l2sp" else None
    train(model, groups, reference=reference, alpha=conf.l2sp_alpha)

    for key, value in model.state_dict().items():
        owner = key.rsplit(".", 1)[0]
        moving_bn_buffer = owner in BN_NAMES - frozen_bn and key not in trainable
        should_change = key in trainable or moving_bn_buffer
        assert torch.equal(before[key], value) != should_change, (key, should_change)


def test_frozen_batchnorm_statistics_move_unless_kept_in_eval():
    model = two_language_net()
    apply_strategy(model, FinetuneConf(name="partial", blocks=2), "kn")
    frozen, trained = model.backbone.convs[0][1], model.backbone.convs[2][1]
    before = frozen.running_mean.clone()
    model.train()
    model(batch(0)[0], "kn")
    assert not torch.equal(frozen.running_mean, before)

    keep_frozen_bn_eval(model)
    assert not frozen.training and trained.training and model.backbone.fc.training


def finetuned_weights(name: str, alpha: float) -> dict[str, torch.Tensor]:
    model = two_language_net()
    groups = apply_strategy(model, FinetuneConf(name=name, l2sp_alpha=alpha), "kn")
    reference = snapshot_backbone(model) if name == "l2sp" else None
    torch.manual_seed(7)  # dropout draws the same masks in every run
    train(model, groups, reference=reference, alpha=alpha)
    return model.state_dict()


def test_l2sp_without_penalty_is_full_finetuning():
    full = finetuned_weights("full", 0.0)
    free = finetuned_weights("l2sp", 0.0)
    assert all(torch.equal(full[k], free[k]) for k in full)
    strong = finetuned_weights("l2sp", 1.0)
    assert not torch.equal(full["backbone.fc.1.weight"], strong["backbone.fc.1.weight"])


def test_l2sp_penalty_grows_from_zero_after_a_step():
    model = two_language_net()
    groups = apply_strategy(model, FinetuneConf(name="l2sp"), "kn")
    reference = snapshot_backbone(model)
    assert l2sp_penalty(model, reference, 0.01).item() == 0.0
    train(model, groups, steps=1, reference=reference, alpha=0.01)
    assert l2sp_penalty(model, reference, 0.01).item() > 0.0


def test_l2sp_penalty_by_hand_and_its_gradient_pulls_back():
    model = Classifier(nn.Linear(2, 2), {"en": 2})
    reference = snapshot_backbone(model)
    delta_w = torch.tensor([[1.0, 0.0], [0.0, -2.0]])
    delta_b = torch.tensor([0.5, 0.0])
    with torch.no_grad():
        model.backbone.weight += delta_w
        model.backbone.bias += delta_b
        model.heads["en"].weight += 10.0  # heads are excluded

    penalty = l2sp_penalty(model, reference, alpha=0.1)
    assert penalty.item() == pytest.approx(0.1 / 2 * (1 + 4 + 0.25))
    penalty.backward()
    assert torch.allclose(model.backbone.weight.grad, 0.1 * delta_w)
    assert model.heads["en"].weight.grad is None
    torch.optim.SGD(model.parameters(), lr=1.0).step()
    assert torch.allclose(model.backbone.weight - reference["weight"], 0.9 * delta_w)
    assert torch.allclose(model.backbone.bias - reference["bias"], 0.9 * delta_b)


@pytest.mark.parametrize(("arch", "side", "wrapped"), [("net", 28, 4), ("resnet18", 8, 20)])
def test_lora_starts_at_the_base_and_merges_exactly(arch, side, wrapped):
    torch.manual_seed(0)
    spec = {"name": arch, "image_size": 28}
    model = build_classifier(spec, {"en": 10, "kn": 10}).eval()
    x = batch(9, n=4, side=side)[0]
    base_output = model(x, "kn")
    groups = apply_strategy(model, FinetuneConf(name="lora", lora_rank=2), "kn")
    adapters = [m for m in model.modules() if isinstance(m, LoRAConv2d | LoRALinear)]
    assert len(adapters) == wrapped
    assert torch.equal(model.eval()(x, "kn"), base_output)

    train(model, groups, steps=2, lr=1e-3, side=side)  # lr 0.1 sends the logits to 1e22
    adapted = model.eval()(x, "kn")
    assert not torch.allclose(adapted, base_output, atol=1e-3)
    merge_lora(model)
    assert not any(isinstance(m, LoRAConv2d | LoRALinear) for m in model.modules())
    assert torch.allclose(model(x, "kn"), adapted, atol=1e-5, rtol=0)

    fresh = build_classifier(spec, {"en": 10, "kn": 10})
    fresh.load_state_dict(model.state_dict(), strict=True)
    assert torch.allclose(fresh.eval()(x, "kn"), adapted, atol=1e-5, rtol=0)


def test_lora_conv_merge_keeps_stride_padding_and_dilation():
    torch.manual_seed(0)
    base = nn.Conv2d(3, 5, 3, stride=2, padding=1, dilation=2)
    layer = LoRAConv2d(base, rank=2, alpha=3.0)
    nn.init.normal_(layer.lora_b.weight)
    x = torch.randn(2, 3, 11, 11)
    assert torch.allclose(layer.merged()(x), layer(x), atol=1e-5, rtol=0)
    assert not torch.allclose(base(x), layer(x), atol=1e-3)
    linear = LoRALinear(nn.Linear(6, 4), rank=3, alpha=1.5)
    nn.init.normal_(linear.lora_b.weight)
    v = torch.randn(5, 6)
    assert torch.allclose(linear.merged()(v), linear(v), atol=1e-5, rtol=0)


def test_add_lora_wraps_linear_and_plain_convs_once():
    module = nn.Sequential(
        nn.Conv2d(4, 8, 3),
        nn.Conv2d(8, 8, 3, groups=4),
        nn.Sequential(nn.Flatten(), nn.Linear(8, 2)),
    )
    assert add_lora(module, rank=2, alpha=4.0) == 2
    assert isinstance(module[0], LoRAConv2d) and isinstance(module[2][1], LoRALinear)
    assert type(module[1]) is nn.Conv2d
    assert add_lora(module, rank=2, alpha=4.0) == 0


def test_layer_decay_scales_follow_block_depth():
    model = two_language_net()
    model.backbone.register_parameter("temperature", nn.Parameter(torch.ones(1)))
    groups = apply_strategy(model, FinetuneConf(name="full", layer_decay=0.5), "kn")
    assert [g["lr_scale"] for g in groups] == [0.5**4, 0.5**3, 0.5**2, 0.5, 1.0]
    modules = [*model.backbone.blocks, model.heads["kn"]]
    for group, module in zip(groups, modules, strict=True):
        expected = {id(p) for p in module.parameters()}
        if module is model.backbone.blocks[0]:
            expected.add(id(model.backbone.temperature))  # outside every block: smallest scale
        assert {id(p) for p in group["params"]} == expected

    optimizer = torch.optim.SGD(groups_with_lr(groups, 0.1))
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx(
        [0.1 * 0.5**d for d in (4, 3, 2, 1, 0)]
    )


def test_layer_decay_skips_frozen_blocks_and_is_one_group_when_off():
    model = two_language_net()
    groups = apply_strategy(model, FinetuneConf(name="partial", blocks=2, layer_decay=0.5), "kn")
    assert [g["lr_scale"] for g in groups] == [0.25, 0.5, 1.0]
    groups = apply_strategy(model, FinetuneConf(name="partial", blocks=2), "kn")
    assert len(groups) == 1 and groups[0]["lr_scale"] == 1.0
    assert len(groups[0]["params"]) == len(expected_trainable(model, "partial"))


def test_init_head_copies_zeroes_or_draws():
    model = build_classifier(NET, {"en": 10})
    source = resolve_source_language(model, None)
    assert source == "en"
    init_head(model, "kn", 10, "source", source)
    en, kn = model.heads["en"], model.heads["kn"]
    assert torch.equal(kn.weight, en.weight) and torch.equal(kn.bias, en.bias)
    assert kn.weight.data_ptr() != en.weight.data_ptr()

    init_head(model, "kn", 10, "zero", source)
    assert not model.heads["kn"].weight.any() and not model.heads["kn"].bias.any()
    init_head(model, "ar", 10, "random", source)
    assert model.heads["ar"].weight.shape == (10, 512)
    assert not torch.equal(model.heads["ar"].weight, en.weight)
    assert model.languages == ["en", "kn", "ar"]


def test_init_head_refuses_what_it_cannot_copy():
    model = build_classifier(NET, {"en": 10})
    with pytest.raises(ValueError) as err:
        init_head(model, "zh", 12, "source", "en")
    message = str(err.value)
    assert "\n" not in message and "10 classes" in message and "12 classes" in message
    with pytest.raises(ConfigError, match=r"^finetune\.source_language='fr' is not allowed"):
        init_head(model, "zh", 10, "source", "fr")
    with pytest.raises(ConfigError, match=r"^finetune\.head_init='copy'"):
        init_head(model, "zh", 10, "copy", "en")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("name", "dora"),
        ("head_init", "copy"),
        ("source_language", ""),
        ("blocks", 0),
        ("l2sp_alpha", -1.0),
        ("lora_rank", 0),
        ("lora_alpha", 0.0),
        ("layer_decay", 0.0),
        ("layer_decay", 1.5),
        ("lr", -0.1),
    ],
)
def test_bad_finetune_values_fail_on_one_line(key, value):
    with pytest.raises(ValueError, match=rf"^finetune\.{key}=.+ is not allowed: ") as err:
        validate_finetune(FinetuneConf(**{key: value}))
    assert "\n" not in str(err.value)


def test_structured_config_and_the_strategy_refuse_bad_values():
    schema = OmegaConf.structured(FinetuneConf)
    validate_finetune(OmegaConf.merge(schema, {"name": "lora", "layer_decay": 0.8, "lr": None}))
    with pytest.raises(Exception, match="lora_rank"):
        OmegaConf.merge(schema, {"lora_rank": "four"})
    model = two_language_net()
    with pytest.raises(ConfigError, match=r"^finetune\.name='dora'"):
        apply_strategy(model, FinetuneConf(name="dora"), "kn")
    with pytest.raises(ValueError, match=r"^finetune\.blocks=5 is not allowed: at most 4"):
        apply_strategy(model, FinetuneConf(name="partial", blocks=5), "kn")
    with pytest.raises(ValueError, match="no head for 'ar'"):
        apply_strategy(model, FinetuneConf(), "ar")
