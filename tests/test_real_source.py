"""load_real_splits end to end on files written here, and the checks on a preset's source."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from xlvision.data.errors import DataError
from xlvision.data.real import load_real_splits
from xlvision.data.real_source import parse_real_source

CONF_DATA = Path(__file__).resolve().parents[1] / "conf" / "data"


def strokes(count: int, size: int = 32, seed: int = 0) -> np.ndarray:
    """Random bright bars on dark, a stand-in for handwriting."""
    rng = np.random.default_rng(seed)
    images = np.zeros((count, size, size), dtype=np.uint8)
    for image in images:
        top, left = rng.integers(2, size // 2, size=2)
        image[top : top + size // 3, left : left + 3] = 255
        image[top : top + 3, left : left + size // 4] = 255
    return images


def test_npz_source_with_groups_end_to_end(tmp_path: Path) -> None:
    images, labels = strokes(200), np.arange(200) % 10
    writers = np.repeat(np.arange(20), 10)
    np.savez(tmp_path / "set.npz", x=255 - images, y=labels, w=writers)
    source = {
        "format": "npz",
        "language": "kn",
        "path": "set.npz",
        "arrays": {"images": "x", "labels": "y", "groups": "w"},
    }
    splits = load_real_splits(source, seed=0, data_dir=tmp_path)
    assert [len(splits[k]) for k in ("train", "val", "test")] == [140, 20, 40]
    for part in splits.values():
        assert part.images.dtype == torch.uint8 and part.images.shape[1:] == (28, 28)
        assert int(part.images[:, 0, :].max()) == 0
    groups = [set(part.groups.tolist()) for part in splits.values()]
    assert not (groups[0] & groups[1] or groups[0] & groups[2] or groups[1] & groups[2])


def test_per_split_files_with_absolute_paths(tmp_path: Path) -> None:
    files = {}
    for split, count in (("train", 50), ("test", 20)):
        np.save(tmp_path / f"{split}-x.npy", strokes(count, 28))
        np.save(tmp_path / f"{split}-y.npy", np.arange(count) % 10)
        files[split] = {"images": str(tmp_path / f"{split}-x.npy"), "labels": f"{split}-y.npy"}
    source = OmegaConf.create({"format": "npy", "language": "en", "files": files})
    splits = load_real_splits(source, seed=1, data_dir=tmp_path)
    assert [len(splits[k]) for k in ("train", "val", "test")] == [45, 5, 20]
    assert torch.bincount(splits["test"].labels).tolist() == [2] * 10


def test_every_shipped_real_preset_composes_and_parses(make_config) -> None:
    presets = {p.stem: OmegaConf.load(p) for p in sorted(CONF_DATA.glob("*.yaml"))}
    real = sorted(name for name, node in presets.items() if node.kind == "real")
    assert len(real) == 16
    generic = {"idx", "npy", "npz", "csv", "folder"}
    for name in real:
        data = make_config(f"data={name}").data
        assert data.kind == "real" and data.shots_per_class is None
        if name in generic:
            with pytest.raises(DataError, match="missing value"):
                parse_real_source(data.source)
        else:
            assert parse_real_source(data.source).language == presets[name].source.language


GOOD = {
    "format": "npz",
    "language": "kn",
    "path": "a.npz",
    "arrays": {"images": "x", "labels": "y"},
}


@pytest.mark.parametrize(
    ("change", "fragments"),
    [
        ({"format": "hdf5"}, ["source.format='hdf5'", "allowed: idx, npy, npz, csv, folder"]),
        ({"polarity": "white"}, ["source.polarity='white'", "auto, per_image"]),
        ({"val_fraction": 1.5}, ["source.val_fraction=1.5", "[0, 1)"]),
        ({"test_fraction": 0.95}, ["val_fraction + test_fraction must be < 1"]),
        ({"language": "Kannada"}, ["source.language='Kannada'", "language code"]),
        ({"files": {"images": "x"}}, ["source.files=", "unknown key for format npz", "arrays"]),
        ({"arrays": {"images": "x"}}, ["source.arrays lacks 'labels'"]),
        ({"arrays": {"images": "x", "labels": "y", "writer": "w"}}, ["source.arrays.writer='w'"]),
        ({"arrays": {"train": {"images": "x", "labels": "y"}, "dev": {}}}, ["arrays.dev"]),
        ({"path": None}, ["source.path=None", "non-empty string"]),
    ],
)
def test_bad_source_values_fail_naming_the_key(change: dict, fragments: list[str]) -> None:
    with pytest.raises(DataError) as info:
        parse_real_source({**GOOD, **change})
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_format_specific_checks() -> None:
    csv = {"format": "csv", "language": "en", "path": "a.csv", "files": {"train": "b.csv"}}
    with pytest.raises(DataError, match="exactly one of source.path or source.files"):
        parse_real_source(csv)
    with pytest.raises(DataError, match="source.header='yes'"):
        parse_real_source({"format": "csv", "language": "en", "path": "a.csv", "header": "yes"})
    tv = {"format": "torchvision", "language": "en", "name": "CIFAR10"}
    with pytest.raises(DataError, match="source.name='CIFAR10' is not allowed; allowed: MNIST"):
        parse_real_source(tv)
    parsed = parse_real_source({**tv, "name": "SVHN", "polarity": "per_image"})
    assert (parsed.path, parsed.download) == ("torchvision", False)
