"""Real handwritten digits from a preset's `source`: read, normalized, split."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from xlvision.data.arrays import DigitArrays
from xlvision.data.normalize import normalize_digits
from xlvision.data.readers import (
    RawDigits,
    read_csv_digits,
    read_idx_digits,
    read_image_folder,
    read_npy_digits,
    read_npz_digits,
    read_torchvision,
    resolve,
)
from xlvision.data.real_source import RealSource, parse_real_source
from xlvision.data.splits import make_splits


def read_source(source: RealSource, data_dir: Path) -> dict[str, RawDigits]:
    """The splits a source's files provide, as stored (not yet normalized)."""
    if source.format == "torchvision":
        return read_torchvision(source.name, resolve(source.path, data_dir), source.download)
    parts = {}
    for split, where in source.parts.items():
        if source.format in ("idx", "npy"):
            files = {role: resolve(path, data_dir) for role, path in where.items()}
            read = read_idx_digits if source.format == "idx" else read_npy_digits
            parts[split] = read(**files)
        elif source.format == "npz":
            parts[split] = read_npz_digits(resolve(source.path, data_dir), where)
        elif source.format == "csv":
            parts[split] = read_csv_digits(
                resolve(where, data_dir), source.label_column, source.header, source.group_column
            )
        else:
            parts[split] = read_image_folder(resolve(where, data_dir))
    return parts


def _digit_arrays(raw: RawDigits, polarity: str) -> DigitArrays:
    groups = None if raw.groups is None else torch.from_numpy(raw.groups)
    digits = torch.from_numpy(normalize_digits(raw.images, polarity))
    return DigitArrays(digits, torch.from_numpy(raw.labels), groups)


def cap_per_class(arrays: DigitArrays, per_class: int, seed: int) -> DigitArrays:
    """At most `per_class` images of each label, a seeded draw kept in file order."""
    gen = torch.Generator().manual_seed(seed)
    keep = []
    for label in arrays.labels.unique():
        where = (arrays.labels == label).nonzero().flatten()
        keep.append(where[torch.randperm(len(where), generator=gen)[:per_class]])
    return arrays.subset(torch.cat(keep).sort().values)


def load_real_splits(
    source: Mapping[str, Any], seed: int, data_dir: Path, per_class: int | None = None
) -> dict[str, DigitArrays]:
    """`train`, `val`, `test` digits in the glyph convention from one preset's `source`.

    The file's own splits are kept; missing ones are carved from train by `seed`
    (group-disjoint where the file has group ids). Paths are relative to `data_dir`.
    `per_class` (`data.real_per_class`, as debug=fast sets it) keeps at most that many
    images of each digit in every split.
    """
    spec = parse_real_source(source)
    parts = read_source(spec, Path(data_dir))
    arrays = {split: _digit_arrays(raw, spec.polarity) for split, raw in parts.items()}
    splits = make_splits(arrays, spec.val_fraction, spec.test_fraction, seed)
    if per_class is None:
        return splits
    return {split: cap_per_class(a, per_class, seed) for split, a in splits.items()}
