"""Copies: a model trained several times on the same data, read as one (integrate.copies,
pipeline.copies)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from xlvision.bundle.export import checked_export
from xlvision.bundle.file import load_bundle
from xlvision.bundle.model import UnifiedModel
from xlvision.config.compose import compose_config
from xlvision.config.errors import ConfigError
from xlvision.models.checkpoint import load_classifier
from xlvision.models.classifier import LID_HEAD, Classifier
from xlvision.models.copies import Copies
from xlvision.models.registry import build_classifier
from xlvision.stages.integrate import integrate
from xlvision.stages.runner import run_stage
from xlvision.stages.train import train

CODES = ["ar", "fa", "kn"]
SMALL = ["debug=fast", "trainer.limit_val_batches=1.0", "trainer.max_epochs=1"]
OBJECTIVE = ["objective.shared_digits=1", "objective.script_id=1"]
# The cheapest bundle: the preset smoke run (test_unified) bundles copies with the defaults.
CHEAP = [
    "integrate.views=none",
    "integrate.familiarity=class_means",
    "integrate.answer=marginal",
]


class Flat(nn.Module):
    out_features = 2

    def forward(self, x):
        return x.flatten(1)


def test_a_head_of_copies_reads_the_log_of_their_mean_probabilities():
    torch.manual_seed(0)
    one, two = (Classifier(Flat(), {"kn": 3}) for _ in range(2))
    both = Copies([one, two])
    x = torch.randn(5, 2)
    mean = (one(x, "kn").softmax(1) + two(x, "kn").softmax(1)) / 2
    assert torch.allclose(both(x, "kn").exp(), mean, atol=1e-6)
    assert both.backbone(x).shape == (5, 4) and both.heads["kn"].out_features == 3
    # As a logit vector, the mean is read back by a softmax at temperature 1.
    assert torch.allclose(both(x, "kn").softmax(1), mean, atol=1e-6)


def test_copies_need_two_with_the_same_heads():
    with pytest.raises(ValueError, match="at least two"):
        Copies([Classifier(Flat(), {"kn": 3})])
    with pytest.raises(ValueError, match="heads differ"):
        Copies([Classifier(Flat(), {"kn": 3}), Classifier(Flat(), {"ar": 3})])


def test_the_registry_builds_copies_from_a_spec_and_refuses_a_bad_count():
    spec = {"name": "net", "channels": [8, 8, 16], "hidden": 16}
    model = build_classifier({**spec, "copies": 3}, {"kn": 10, LID_HEAD: 2})
    assert isinstance(model, Copies) and model.count == 3 and model.languages == ["kn"]
    assert isinstance(build_classifier(spec, {"kn": 10}), Classifier)
    with pytest.raises(ValueError, match="copies=0"):
        build_classifier({**spec, "copies": 0}, {"kn": 10})


@pytest.fixture(scope="module")
def two_trainings(tmp_path_factory):
    """Two tiny unified trainings on the same data and seed, apart only in init_seed."""
    root = tmp_path_factory.mktemp("copies")
    languages = f"language=[{','.join(CODES)}]"
    checkpoints = {}
    for name, extra in (("a", []), ("b", ["init_seed=1000"])):
        cfg = compose_config(
            [f"paths.output_dir={root / name}", f"paths.cache_dir={root / 'cache'}"]
            + [*SMALL, languages, *OBJECTIVE, *extra]
        )
        _, artifacts = run_stage(train, cfg)
        checkpoints[name] = artifacts["checkpoint"]
    return root, checkpoints


def bundle_with(root, base, tmp_path, *overrides):
    cfg = compose_config(
        [f"paths.output_dir={tmp_path}", f"paths.cache_dir={root / 'cache'}", *SMALL]
        + [f"language=[{','.join(CODES)}]", "stage=integrate", "integrate=unified", *CHEAP]
        + [*overrides, f"base={base}"]
    )
    return run_stage(integrate, cfg)


def test_init_seed_trains_another_model_on_the_same_data(two_trainings):
    _, checkpoints = two_trainings
    a, b = (torch.load(checkpoints[k], weights_only=False)["state_dict"] for k in ("a", "b"))
    first = next(k for k in a if k.endswith("weight"))
    assert not torch.equal(a[first], b[first])


def test_a_bundle_of_two_trainings_reads_their_mean_and_exports(two_trainings, tmp_path):
    root, checkpoints = two_trainings
    metrics, both = bundle_with(
        root, checkpoints["a"], tmp_path / "ab", f"integrate.copies=[{checkpoints['b']}]"
    )
    model, manifest = load_bundle(both["bundle"])
    assert manifest["members"]["shared"]["model"]["copies"] == 2
    assert manifest["integration"]["params"]["copies"] == 2
    member = model.members["shared"]
    assert isinstance(member, Copies)
    one, two = (load_classifier(checkpoints[k])[0].eval() for k in ("a", "b"))
    x = torch.randn(6, 1, 28, 28)
    with torch.no_grad():
        # Raw (temperature 1): each head of the bundle reads the two trainings' mean probability.
        for head in ("kn", LID_HEAD):
            mean = (one(x, head).softmax(1) + two(x, head).softmax(1)) / 2
            assert torch.allclose(member(x, head).exp(), mean, atol=1e-5)
    assert math.isfinite(model.temperatures["script"]) and model.prototypes is not None
    _, parity = checked_export(
        model, manifest, both["bundle"], "onnx", tmp_path / "c.onnx", check=90
    )
    assert parity.ok, parity.line()


def test_a_copy_of_another_seed_or_a_missing_one_stops_in_one_line(two_trainings, tmp_path):
    root, checkpoints = two_trainings
    # The second training's run as if it had been made with another seed: other splits.
    other = tmp_path / "other"
    shutil.copytree(Path(checkpoints["b"]).parents[1], other)
    config = OmegaConf.load(other / "config.yaml")
    config.seed = 1
    OmegaConf.save(config, other / "config.yaml")
    with pytest.raises(ConfigError, match=r"integrate.copies\[0\].*seed"):
        bundle_with(root, checkpoints["a"], tmp_path / "x", f"integrate.copies=[{other}]")
    with pytest.raises(ConfigError, match="integrate.copies"):
        bundle_with(
            root, checkpoints["a"], tmp_path / "y", f"integrate.copies=[{tmp_path / 'none'}]"
        )
    with pytest.raises(ConfigError, match="integrate.evidence"):
        bundle_with(
            root,
            checkpoints["a"],
            tmp_path / "z",
            f"integrate.copies=[{checkpoints['b']}]",
            "integrate.evidence=auto",
        )


def test_copies_in_a_unified_model_read_each_image_with_both():
    torch.manual_seed(1)
    heads = {"kn": 3, "ar": 3, LID_HEAD: 2}
    member = Copies([Classifier(Flat(), heads), Classifier(Flat(), heads)])
    model = UnifiedModel({"m": member}, {"kn": "m", "ar": "m"}, ["kn", "ar"], "m", "marginal")
    x = torch.randn(4, 2)
    read = model.predict(x)
    assert read["digit"].shape == (4,) and torch.all(read["language_prob"] <= 1)


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        (["pipeline.copies=0"], "pipeline.copies=0 is not allowed: a whole number ≥ 1"),
        (
            ["pipeline.copies=2", "integrate=routed"],
            "pipeline.copies=2 is not allowed: 1 unless integrate=unified",
        ),
    ],
)
def test_pipeline_copies_out_of_range_stop_before_training(overrides, says, tmp_path):
    from xlvision.stages.pipeline import pipeline

    cfg = compose_config(
        ["experiment=unified", f"paths.output_dir={tmp_path / 'p'}", *overrides],
        config_name="pipeline",
    )
    with pytest.raises(ConfigError) as err:
        pipeline(cfg)
    assert says in str(err.value)
    assert not (tmp_path / "p" / "pretrain").exists()
