"""k-shot sampling: exactly k per class, deterministic per seed, different across seeds."""

from __future__ import annotations

import pytest
import torch

from xlvision.data.arrays import DigitArrays
from xlvision.data.errors import DataError
from xlvision.data.real import cap_per_class
from xlvision.data.sampling import sample_shots

LABELS = torch.arange(10).repeat_interleave(50)[
    torch.randperm(500, generator=torch.Generator().manual_seed(0))
]


@pytest.mark.parametrize("k", [1, 5, 10, 50])
def test_exactly_k_per_class(k):
    index = sample_shots(LABELS, k, seed=0, num_classes=10)
    assert torch.bincount(LABELS[index], minlength=10).tolist() == [k] * 10
    assert len(set(index.tolist())) == 10 * k


def test_deterministic_per_seed_and_different_across_seeds():
    a = sample_shots(LABELS, 5, seed=1, num_classes=10)
    b = sample_shots(LABELS, 5, seed=1, num_classes=10)
    c = sample_shots(LABELS, 5, seed=2, num_classes=10)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_too_few_examples_names_the_class():
    with pytest.raises(DataError, match="data.shots_per_class=51 but class 0 has only 50"):
        sample_shots(LABELS, 51, seed=0, num_classes=10, source="en train")


def test_kshot_epoch_repeats_the_k_examples(make_config):
    from xlvision.data.datamodule import DigitDataModule
    from xlvision.languages import load_language

    cfg = make_config("data.shots_per_class=2", "data.min_train_samples=45", "data.batch_size=8")
    data = DigitDataModule(cfg.data, [load_language("en")], 0, cfg.paths.data_dir)
    data.setup()
    labels = torch.cat([batch[1] for batch in data.train_dataloader()])
    assert len(labels) == 45  # 20 examples drawn 2 full times, then 5 more
    assert torch.bincount(labels[:20], minlength=10).tolist() == [2] * 10
    assert torch.bincount(labels[20:40], minlength=10).tolist() == [2] * 10
    assert len(data.datasets["test"]) == cfg.data.test_per_class * 10  # evaluation stays full


def test_kshot_epoch_draws_the_minimum_per_training_language(make_config):
    from xlvision.data.datamodule import DigitDataModule
    from xlvision.languages import load_language

    cfg = make_config("data.shots_per_class=1", "data.min_train_samples=30", "data.batch_size=8")
    languages = [load_language(c) for c in ("en", "kn", "ar")]
    data = DigitDataModule(cfg.data, languages, 0, cfg.paths.data_dir, eval_only=("ar",))
    data.setup()
    drawn = torch.cat([batch[2] for batch in data.train_dataloader()])
    assert len(drawn) == 60  # two training languages × 30; `ar` is only evaluated
    assert torch.bincount(drawn, minlength=2).tolist() == [30, 30]


def test_real_per_class_keeps_at_most_that_many_of_each_digit_in_file_order():
    arrays = DigitArrays(torch.zeros(len(LABELS), 28, 28, dtype=torch.uint8), LABELS)
    capped = cap_per_class(arrays, 7, seed=0)
    assert torch.bincount(capped.labels, minlength=10).tolist() == [7] * 10
    assert torch.equal(cap_per_class(arrays, 7, seed=0).labels, capped.labels)
    few = DigitArrays(arrays.images[:3], LABELS[:3])
    assert torch.equal(cap_per_class(few, 7, seed=0).labels, LABELS[:3])  # fewer: all, in order


def test_glyph_training_split_grows_to_the_shots_asked_for(make_config):
    from xlvision.data.datamodule import glyph_splits
    from xlvision.languages import load_language

    cfg = make_config("data.train_per_class=4", "data.shots_per_class=6")
    train = glyph_splits(cfg.data, load_language("kn"), 0, ("train",))["train"]
    assert torch.bincount(train.labels, minlength=10).tolist() == [6] * 10
