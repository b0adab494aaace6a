"""finetune.unlabeled: self-training on a target's real training images without their labels."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from test_mix import data_dir as data_dir  # the fixture: two small npz files of fake scans
from test_mix import datamodule, mix_config, npz_source

from xlvision.config.errors import ConfigError
from xlvision.data.datamodule import DigitDataModule, Unlabeled
from xlvision.data.errors import DataError
from xlvision.finetune.self_train import PseudoLabels
from xlvision.languages.registry import language_from_mapping
from xlvision.stages.finetune import finetune
from xlvision.stages.runner import run_stage
from xlvision.stages.train import train

SCANS = f"{{kn: [{npz_source('scans_a')}]}}"  # 400 fake scans: 280 train, 40 val, 80 test


def pool_module(make_config, data_dir, size: int, *overrides: str) -> DigitDataModule:
    cfg = mix_config(make_config, data_dir, SCANS, "data.shots_per_class=3", *overrides)
    languages = [language_from_mapping(node) for node in cfg.language.values()]
    data = DigitDataModule(
        cfg.data, languages, cfg.seed, cfg.paths.data_dir, unlabeled=Unlabeled("kn", size, 2.0)
    )
    data.setup()
    return data


def rows(images: torch.Tensor) -> list[bytes]:
    return sorted(image.numpy().tobytes() for image in images)


def test_the_pool_is_the_training_images_beyond_the_shots_with_no_label(make_config, data_dir):
    data = pool_module(make_config, data_dir, 1000)
    train = data.datasets["train"]
    pool = data.unlabeled_slice
    # 280 real training images: 3 shots per class are labelled, the other 250 are the pool.
    assert pool.stop - pool.start == 250
    assert data.counts["kn"] == {"train": 30 + 400, "unlabeled": 250, "val": 100, "test": 80}
    assert bool((train.labels[pool] == -1).all())
    assert float(data.train_weights[pool].abs().sum()) == 0  # not drawn until labelled
    assert bool((train.languages[pool] == 0).all())
    # Shots and pool together are exactly the real training split, each image once.
    # kn's rows are its 400 glyphs, then its real training images (30 shots here, all 280
    # without a k-shot budget), then the pool.
    everything = datamodule(mix_config(make_config, data_dir, SCANS)).datasets["train"]
    assert rows(torch.cat([train.images[400:430], train.images[pool]])) == rows(
        everything.images[400:680]
    )
    assert bool((train.labels[400:430] >= 0).all()) and pool.start == 430
    assert pool_module(make_config, data_dir, 100).counts["kn"]["unlabeled"] == 100


class ScriptedReader(torch.nn.Module):
    """Reads the pool as a table says, in order: the logits PseudoLabels will see."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits, self.seen = logits, 0
        self.norm = torch.nn.BatchNorm1d(1)

    def forward(self, images: torch.Tensor, code: str) -> torch.Tensor:
        assert code == "kn" and not self.training  # read in eval mode
        out = self.logits[self.seen : self.seen + len(images)]
        self.seen += len(images)
        return out


def test_pseudo_labels_keep_confident_reads_and_give_every_digit_an_equal_share(
    make_config, data_dir
):
    data = pool_module(make_config, data_dir, 1000)
    pool = data.unlabeled_slice
    n = pool.stop - pool.start
    digits = torch.arange(n) % 3  # digits 0, 1, 2 only
    confident = torch.arange(n) % 5 != 0
    logits = torch.full((n, 10), -10.0)
    logits[torch.arange(n), digits] = torch.where(confident, 10.0, -9.0)  # else about 0.1 each
    model = ScriptedReader(logits)
    model.train()
    callback = PseudoLabels(data, "kn", threshold=0.9, batch_size=64)
    callback.on_train_epoch_start(None, SimpleNamespace(model=model, device="cpu"))

    assert model.seen == n and model.training and model.norm.training  # modes restored
    labels = data.datasets["train"].labels[pool]
    assert torch.equal(labels, torch.where(confident, digits, -1))
    weights = data.train_weights[pool]
    assert float(weights[~confident].sum()) == 0
    assert float(weights.sum()) == pytest.approx(2.0)  # the pool's weight, Unlabeled(…, 2.0)
    for digit in range(3):  # an equal share per digit read, however many were read as it
        assert float(weights[confident & (digits == digit)].sum()) == pytest.approx(2.0 / 3)
    assert callback.kept == [pytest.approx(float(confident.float().mean()))]
    # Drawn batches now hold labelled pool images and never an unlabeled one.
    drawn = torch.cat([batch[1] for batch in data.train_dataloader()])
    assert bool((drawn >= 0).all())


@pytest.fixture(scope="module")
def glyph_base(tmp_path_factory):
    """A quickly trained Kannada glyph model: the base the tests self-train from."""
    from xlvision.config.compose import compose_config

    root = tmp_path_factory.mktemp("base")
    cfg = compose_config(
        [
            f"paths.output_dir={root}",
            f"paths.cache_dir={root / 'cache'}",
            "debug=fast",
            "data.real_per_class=null",
            "language=kn",
        ]
    )
    _, artifacts = run_stage(train, cfg)
    return artifacts["checkpoint"]


def test_self_training_fine_tunes_and_tests_the_last_epoch(make_config, data_dir, glyph_base):
    cfg = make_config(
        "stage=finetune",
        "finetune=full",
        "language=kn",
        f"base={glyph_base}",
        "data=mix",
        f"paths.data_dir={data_dir}",
        f"data.sources={SCANS}",
        "data.shots_per_class=3",
        "data.augment_real=true",
        "finetune.unlabeled=200",
        "finetune.unlabeled_threshold=0.5",
        "finetune.select=last",
        "trainer.max_epochs=2",
    )
    metrics, artifacts = run_stage(finetune, cfg)
    assert metrics["unlabeled/kn/pool"] == 200
    assert 0 <= metrics["unlabeled/kn/kept_first"] <= 1
    assert 0 <= metrics["unlabeled/kn/kept_last"] <= 1
    assert {"zeroshot/kn/acc", "test/kn/acc", "gain/kn/acc"} <= set(metrics)
    assert artifacts["data_counts"]["kn"]["unlabeled"] == 200
    best = torch.load(
        cfg.paths.output_dir + "/checkpoints/best.ckpt", map_location="cpu", weights_only=True
    )
    assert best["epoch"] == 1  # select=last: the last of two epochs, nothing selected


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        (
            ("data=glyphs",),
            DataError,
            "finetune.unlabeled needs a real training source of kn: list one under "
            "data.sources.kn with a weight > 0 (data=mix)",
        ),
        (
            ("data=mix", "data.sources={SCANS}"),
            DataError,
            "finetune.unlabeled: every kn training image is labelled (set "
            "data.shots_per_class to keep the rest unlabeled)",
        ),
        (
            ("data=mix", "data.sources={SCANS}", "data.shots_per_class=3", "data.num_workers=2"),
            ConfigError,
            "data.num_workers=2 is not allowed: 0 with finetune.unlabeled (the pool is "
            "relabelled in place every epoch)",
        ),
    ],
)
def test_self_training_without_a_pool_fails_in_one_line(
    make_config, data_dir, glyph_base, overrides, error, message
):
    overrides = [o.replace("{SCANS}", SCANS) for o in overrides]
    cfg = make_config(
        "stage=finetune",
        "finetune=full",
        "language=kn",
        f"base={glyph_base}",
        f"paths.data_dir={data_dir}",
        "finetune.unlabeled=100",
        *overrides,
    )
    with pytest.raises(error) as caught:
        run_stage(finetune, cfg)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("finetune.unlabeled=-5", "finetune.unlabeled=-5 is not allowed: 0 (off) or a number"),
        (
            "finetune.unlabeled_threshold=0",
            "finetune.unlabeled_threshold=0.0 is not allowed: a probability in (0, 1]",
        ),
        (
            "finetune.unlabeled_weight=0",
            "finetune.unlabeled_weight=0.0 is not allowed: a sampling weight > 0",
        ),
        ("finetune.select=middle", "finetune.select='middle' is not allowed: one of best, last"),
    ],
)
def test_bad_self_training_values_fail_at_composition(make_config, override, message):
    with pytest.raises(ConfigError) as caught:
        make_config("stage=finetune", "finetune=full", "language=kn", override)
    assert str(caught.value).startswith(message)
