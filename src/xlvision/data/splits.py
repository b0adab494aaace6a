"""Seeded train/val/test splits: a file's own splits first, carved ones group-disjoint."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from xlvision.data.arrays import DigitArrays
from xlvision.data.errors import DataError


def carve(
    labels: np.ndarray, groups: np.ndarray | None, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (kept, carved), carved ≈ `fraction` of the samples, both sorted.

    With group ids, whole groups are carved (a writer's digits never straddle splits): groups
    in seeded order, cut where the count comes closest to the target. Without them, a
    systematic sample over the labels sorted by class keeps every class's share.
    """
    count = len(labels)
    if fraction <= 0 or count == 0:
        return np.arange(count), np.arange(0)
    if groups is None:
        order = np.lexsort((rng.random(count), labels))
        offset = rng.random()
        steps = np.floor((np.arange(count + 1) + offset) * fraction)
        chosen = order[np.diff(steps) > 0]
    else:
        ids, sizes = np.unique(groups, return_counts=True)
        if len(ids) < 2:
            raise DataError(f"cannot carve a group-disjoint split from {len(ids)} group")
        shuffled = rng.permutation(len(ids))
        totals = np.cumsum(sizes[shuffled])[:-1]
        cut = int(np.argmin(np.abs(totals - fraction * count))) + 1
        chosen = np.flatnonzero(np.isin(groups, ids[shuffled[:cut]]))
    mask = np.zeros(count, dtype=bool)
    mask[chosen] = True
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def _numpy(tensor: torch.Tensor | None) -> np.ndarray | None:
    return None if tensor is None else tensor.numpy()


def make_splits(
    parts: Mapping[str, DigitArrays], val_fraction: float, test_fraction: float, seed: int
) -> dict[str, DigitArrays]:
    """`train`, `val`, `test` from a file's own splits, carving the missing ones out of train.

    A missing test set takes `test_fraction` of train's samples; a missing val set takes
    `val_fraction` of them (of the original train count, also when test was carved first).
    The same seed always gives the same split. A file with only a test split (an evaluation
    set) gets empty train and val splits: it can be evaluated, not trained on.
    """
    if "train" not in parts:
        if "test" not in parts:
            raise DataError(
                f"a train split is needed to carve from; the source has {', '.join(parts)}"
            )
        test = parts["test"]
        empty = test.subset(torch.zeros(0, dtype=torch.long))
        return {"train": empty, "val": parts.get("val", empty), "test": test}
    rng = np.random.default_rng(seed)
    train = parts["train"]
    splits = dict(parts)
    total = len(train)
    for name, fraction in (("test", test_fraction), ("val", val_fraction)):
        if name in parts:
            continue
        share = fraction * total / max(len(train), 1)
        if share >= 1:
            raise DataError(f"{name}_fraction={fraction} leaves no training data")
        keep, taken = carve(train.labels.numpy(), _numpy(train.groups), share, rng)
        splits[name] = train.subset(torch.from_numpy(taken))
        train = train.subset(torch.from_numpy(keep))
    splits["train"] = train
    return {name: splits[name] for name in ("train", "val", "test")}
