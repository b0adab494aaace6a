"""The speed switches of `device` and `optimizer`: what each does to a run, and its fallback."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from omegaconf import OmegaConf

from xlvision.stages.runner import run_stage
from xlvision.stages.train import train
from xlvision.training import speed
from xlvision.training.builders import build_optimizer, build_trainer


def test_cpu_defaults_switch_the_measured_speedups_on(make_config):
    cfg = make_config()
    assert cfg.device.precision == "auto"
    assert cfg.device.channels_last is True
    assert cfg.device.compile is False  # slower than bf16 + channels-last here (bench/RESULTS.md)
    assert cfg.optimizer.fused is True
    assert build_optimizer(cfg.optimizer).keywords["fused"] is True


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_is_bf16_only_where_the_cpu_computes_it(
    make_config, tmp_path, monkeypatch, native
):
    monkeypatch.setattr(speed, "cpu_supports_bf16", lambda: native)
    cfg = make_config()
    assert speed.resolve_precision(cfg.device) == ("bf16-mixed" if native else "32-true")
    trainer = build_trainer(cfg, tmp_path)
    assert trainer.precision == ("bf16-mixed" if native else "32-true")
    # An explicit choice is kept as given.
    explicit = OmegaConf.merge(cfg.device, {"precision": "32-true"})
    assert speed.resolve_precision(explicit) == "32-true"


def test_a_gpu_without_bf16_gets_fp32_from_auto(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    device = OmegaConf.create({"accelerator": "gpu", "precision": "auto"})
    assert speed.resolve_precision(device) == "32-true"


class LayoutProbe(L.Callback):
    """Records the second conv weight's layout (the first has one input channel, where both
    layouts are one) at every training step."""

    def __init__(self) -> None:
        self.channels_last: list[bool] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        weight = pl_module.model.backbone.convs[1][0].weight
        self.channels_last.append(weight.is_contiguous(memory_format=torch.channels_last))


@pytest.mark.parametrize("channels_last", [True, False])
def test_channels_last_holds_while_training_and_never_reaches_the_files(
    make_config, tmp_path, monkeypatch, channels_last
):
    probe = LayoutProbe()
    real_build = build_trainer

    def with_probe(cfg, output_dir, tags=(), callbacks=(), monitor=None):
        return real_build(cfg, output_dir, tags, [*callbacks, probe], monitor)

    monkeypatch.setattr("xlvision.stages.train.build_trainer", with_probe)
    cfg = make_config(f"device.channels_last={str(channels_last).lower()}")
    metrics, artifacts = run_stage(train, cfg)
    assert probe.channels_last and all(v == channels_last for v in probe.channels_last)
    for name in ("last.ckpt", "best.ckpt"):
        state = torch.load(tmp_path / "run" / "checkpoints" / name, weights_only=True)
        conv = state["state_dict"]["model.backbone.convs.1.0.weight"]
        assert conv.ndim == 4 and conv.is_contiguous()
        assert all(t.is_contiguous() for t in state["state_dict"].values())
    assert metrics["test/en/acc"] > 0.1


def test_threads_sets_the_intra_op_pool(make_config, tmp_path):
    before = torch.get_num_threads()
    try:
        build_trainer(make_config("device.threads=1"), tmp_path)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_compile_falls_back_in_one_line_where_it_cannot_run(make_config, monkeypatch, capfd):
    monkeypatch.setattr(speed, "compile_unavailable", lambda: "torch.compile needs a C++ compiler")
    cfg = make_config("device.compile=true")
    metrics, _ = run_stage(train, cfg)
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if "device.compile" in line]
    assert lines == ["device.compile: torch.compile needs a C++ compiler; training uncompiled"]
    assert "Traceback" not in err and "Warning" not in err
    assert metrics["test/en/acc"] >= 0.0


@pytest.mark.slow
def test_compiled_backbone_trains_and_keeps_the_state_dict_keys(make_config, tmp_path):
    if speed.compile_unavailable():
        pytest.skip(speed.compile_unavailable())
    cfg = make_config("device.compile=true")
    metrics, _ = run_stage(train, cfg)
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert not any("_orig_mod" in key or "compiled" in key for key in state["state_dict"])
    assert metrics["test/en/acc"] > 0.1
