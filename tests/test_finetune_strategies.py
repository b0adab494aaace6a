"""Fine-tuning strategies: what trains, what stays bit-identical, L2-SP, LoRA, head init."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from xlvision.config import ConfigError
from xlvision.finetune import (
    FinetuneConf,
    LoRAConv2d,
    LoRALinear,
    add_lora,
    init_head,
    l2sp_penalty,
    resolve_source_language,
    snapshot_backbone,
    validate_finetune,
)
from xlvision.models import Classifier, build_classifier

NET = {"name": "net", "image_size": 28}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These tensors are tiny: a second thread only adds contention on shared cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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


def test_structured_config_refuses_bad_types():
    schema = OmegaConf.structured(FinetuneConf)
    validate_finetune(OmegaConf.merge(schema, {"name": "lora", "layer_decay": 0.8, "lr": None}))
    with pytest.raises(Exception, match="lora_rank"):
        OmegaConf.merge(schema, {"lora_rank": "four"})
