"""Backbones: sizes derived from the input, blocks in order, the small-image ResNet stem."""

from __future__ import annotations

import pytest
import torch

from xlvision.models.net import Net
from xlvision.models.registry import build_backbone, build_classifier
from xlvision.models.resnet import ResNet, adapt_stem


@pytest.mark.parametrize("size", [28, 32, 64])
def test_net_flatten_size_follows_the_input(size):
    net = Net(image_size=size)
    side = size // 8
    assert net.fc[1].in_features == 128 * side * side
    assert net(torch.zeros(2, 1, size, size)).shape == (2, 512)
    assert [type(b).__name__ for b in net.blocks] == ["Sequential"] * 4
    assert [b[0].out_channels for b in net.blocks[:3]] == [64, 64, 128]


def test_resnet_small_stem_keeps_resolution():
    model = ResNet("resnet18")
    assert model.stem[0].kernel_size == (3, 3) and model.stem[0].in_channels == 1
    assert isinstance(model.stem[3], torch.nn.Identity)
    x = torch.zeros(2, 1, 28, 28)
    assert model.stem(x).shape[-1] == 28
    assert model(x).shape == (2, 512)
    assert len(model.blocks) == 5


def test_resnet50_features():
    assert build_backbone({"name": "resnet50"}).out_features == 2048


def test_rgb_filters_are_summed_into_one_channel():
    # Double precision and a fixed draw: a float32 sum of 147 values can round past atol.
    rgb = torch.randn(64, 3, 7, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    same = adapt_stem(rgb, 1, 7)
    assert torch.allclose(same, rgb.sum(1, keepdim=True))
    small = adapt_stem(rgb, 1, 3)
    assert small.shape == (64, 1, 3, 3)
    assert torch.allclose(small.sum(dim=(1, 2, 3)), rgb.sum(dim=(1, 2, 3)), atol=1e-4)


def test_imagenet_weights_from_a_local_file(tmp_path):
    from torchvision.models import resnet18

    reference = resnet18(weights=None)
    path = tmp_path / "imagenet.pth"
    torch.save(reference.state_dict(), path)
    model = ResNet("resnet18", small_stem=False, weights=str(path))
    assert torch.equal(model.layer3[0].conv1.weight, reference.layer3[0].conv1.weight)
    assert torch.allclose(model.stem[0].weight, reference.conv1.weight.sum(1, keepdim=True))


def test_missing_weights_offline_says_where_to_put_them():
    with pytest.raises((RuntimeError, ValueError), match="model.weights"):
        ResNet("resnet18", weights="NOT_A_WEIGHT")


def test_classifier_heads_per_language():
    model = build_classifier({"name": "net"}, {"en": 10, "zh": 10})
    x = torch.zeros(3, 1, 28, 28)
    assert model(x, "zh").shape == (3, 10)
    out = model.forward_mixed(x, torch.tensor([0, 1, 0]), ["en", "zh"])
    assert out["en"][0].tolist() == [0, 2] and out["zh"][1].shape == (1, 10)


def test_unknown_model_name():
    with pytest.raises(ValueError, match="model.name='vgg'"):
        build_backbone({"name": "vgg"})
