"""Splits: group-disjoint, stratified, seeded; a file's own splits are kept."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xlvision.data.arrays import DigitArrays
from xlvision.data.errors import DataError
from xlvision.data.splits import carve, make_splits


def digits(count: int, groups: np.ndarray | None = None, offset: int = 0) -> DigitArrays:
    labels = torch.arange(count) % 10
    images = (torch.arange(count) + offset).remainder(256).to(torch.uint8)[:, None, None]
    images = images.expand(count, 28, 28).contiguous()
    return DigitArrays(images, labels, None if groups is None else torch.from_numpy(groups))


def ids(part: DigitArrays) -> list[int]:
    return part.images[:, 0, 0].tolist()


def test_carved_splits_are_group_disjoint_and_near_their_fractions() -> None:
    sizes = np.random.default_rng(1).integers(20, 60, size=30)
    groups = np.repeat(np.arange(30) + 100, sizes)
    splits = make_splits({"train": digits(len(groups), groups)}, 0.1, 0.2, seed=3)
    seen = [set(part.groups.tolist()) for part in splits.values()]
    assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])
    assert set.union(*seen) == set(range(100, 130))
    total = len(groups)
    assert sum(len(part) for part in splits.values()) == total
    assert abs(len(splits["test"]) - 0.2 * total) <= 30
    assert abs(len(splits["val"]) - 0.1 * total) <= 30


def test_ungrouped_splits_are_stratified_with_exact_fractions() -> None:
    splits = make_splits({"train": digits(1000)}, 0.1, 0.2, seed=0)
    assert {name: len(part) for name, part in splits.items()} == {
        "train": 700,
        "val": 100,
        "test": 200,
    }
    for name, share in (("train", 70), ("val", 10), ("test", 20)):
        counts = torch.bincount(splits[name].labels, minlength=10)
        assert (counts - share).abs().max() <= 1, (name, counts)
    every = sorted(ids(splits["train"]) + ids(splits["val"]) + ids(splits["test"]))
    assert every == sorted(ids(digits(1000)))


def test_same_seed_same_split_other_seed_other_split() -> None:
    groups = np.repeat(np.arange(40), 25)
    for g in (None, groups):
        first = make_splits({"train": digits(1000, g)}, 0.1, 0.2, seed=7)
        again = make_splits({"train": digits(1000, g)}, 0.1, 0.2, seed=7)
        other = make_splits({"train": digits(1000, g)}, 0.1, 0.2, seed=8)
        for name in ("train", "val", "test"):
            assert ids(first[name]) == ids(again[name])
        assert ids(first["test"]) != ids(other["test"])


def test_file_splits_are_kept_and_val_carved_from_train() -> None:
    test = digits(300, offset=50)
    splits = make_splits({"train": digits(500), "test": test}, 0.1, 0.2, seed=0)
    assert splits["test"] is test
    assert (len(splits["train"]), len(splits["val"])) == (450, 50)
    own = make_splits({"train": digits(500), "val": digits(7), "test": test}, 0.1, 0.2, seed=0)
    assert [len(own[name]) for name in ("train", "val", "test")] == [500, 7, 300]


def test_zero_fraction_gives_an_empty_split() -> None:
    splits = make_splits({"train": digits(50)}, 0.0, 0.2, seed=0)
    assert (len(splits["train"]), len(splits["val"]), len(splits["test"])) == (40, 0, 10)
    assert splits["val"].images.shape == (0, 28, 28)


def test_impossible_carves_fail_in_one_line() -> None:
    labels = np.zeros(10, dtype=np.int64)
    with pytest.raises(DataError, match="group-disjoint split from 1 group"):
        carve(labels, np.ones(10, dtype=np.int64), 0.2, np.random.default_rng(0))
    with pytest.raises(DataError, match="train split is needed"):
        make_splits({"val": digits(10)}, 0.1, 0.2, seed=0)


def test_a_file_with_only_a_test_split_is_for_evaluation() -> None:
    test = digits(10)
    splits = make_splits({"test": test}, 0.1, 0.2, seed=0)
    assert splits["test"] is test
    assert len(splits["train"]) == len(splits["val"]) == 0
