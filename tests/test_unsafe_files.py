"""A checkpoint or weights file that holds a pickled program is refused in one line, unrun."""

from __future__ import annotations

import os

import pytest
import torch
from conftest import run_in_process
from omegaconf import OmegaConf

from xlvision.models.errors import CheckpointError
from xlvision.models.resnet import imagenet_state_dict
from xlvision.rundir import ResumeError
from xlvision.training.fit import resume_point


class Payload:
    """Unpickling this would run a shell command."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def hostile(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "checkpoints" / "last.ckpt"
    path.parent.mkdir()
    torch.save({"epoch": Payload(marker)}, path)
    return path, marker


def test_resume_refuses_a_pickled_program_in_last_ckpt(hostile, tmp_path):
    path, marker = hostile
    cfg = OmegaConf.create({"resume": str(tmp_path)})
    with pytest.raises(ResumeError) as err:
        resume_point(cfg, tmp_path)
    assert str(err.value) == f"{path}: not a readable checkpoint (UnpicklingError)"
    assert not marker.exists()


def test_model_weights_refuse_a_pickled_program(hostile):
    path, marker = hostile
    with pytest.raises(CheckpointError) as err:
        imagenet_state_dict("resnet18", str(path))
    assert str(err.value) == f"{path}: not a torchvision state dict (UnpicklingError)"
    assert not marker.exists()


def test_the_cli_says_so_in_one_line(hostile, tmp_path):
    path, marker = hostile
    result = run_in_process(
        "xlv-train", "model=resnet18", f"model.weights={path}", "debug=fast", cwd=tmp_path
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        f"xlv-train: {path}: not a torchvision state dict (UnpicklingError)"
    )
    assert "Traceback" not in result.stderr
    assert not marker.exists()
