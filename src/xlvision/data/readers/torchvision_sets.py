"""torchvision's digit sets, read offline first; the files they need are named from torchvision."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from torchvision import datasets

from xlvision.data.errors import DataError
from xlvision.data.readers.raw import RawDigits, raw_digits

TORCHVISION_SETS = ("MNIST", "KMNIST", "EMNIST", "QMNIST", "USPS", "SVHN")
"""Digit sets with their own train/test; EMNIST is its `digits` split."""


def _constructor_args(name: str, split: str) -> dict[str, Any]:
    train = split == "train"
    if name == "EMNIST":
        return {"split": "digits", "train": train}
    if name == "QMNIST":
        return {"what": split}
    if name == "SVHN":
        return {"split": split}
    return {"train": train}


def expected_files(name: str, root: Path) -> tuple[Path, list[str], str]:
    """Folder, file names and download source of a set, read from torchvision's own class."""
    cls = getattr(datasets, name)
    if name in ("USPS", "SVHN"):
        entries = [cls.split_list[split] for split in ("train", "test")]
        return root, [entry[1] for entry in entries], "from " + ", ".join(e[0] for e in entries)
    probe = cls.__new__(cls)
    probe.root = str(root)
    folder = Path(probe.raw_folder)
    files: list[str] = []
    if name in ("EMNIST", "QMNIST"):
        for split in ("train", "test"):
            probe.__dict__.update(_constructor_args(name, split))
            files += [Path(probe.images_file).name, Path(probe.labels_file).name]
        if name == "EMNIST":
            return folder, files, f"gunzipped from the emnist-digits-*.gz files in {cls.url}"
        urls = [url for split in ("train", "test") for url, _ in cls.resources[split]]
        return folder, files, "gunzipped from " + ", ".join(urls)
    files = [Path(filename).stem for filename, _ in cls.resources]
    return folder, files, f"gunzipped from {cls.mirrors[0]}<name>.gz"


def _missing_message(name: str, root: Path) -> str:
    folder, files, source = expected_files(name, root)
    missing = [f for f in files if not (folder / f).is_file()] or files
    return (
        f"torchvision {name} not found in {folder}: put {', '.join(missing)} there "
        f"({source}), or set source.download: true when online"
    )


def _open(name: str, root: Path, split: str, download: bool) -> Any:
    cls = getattr(datasets, name)
    try:
        return cls(str(root), download=False, **_constructor_args(name, split))
    except (RuntimeError, FileNotFoundError):
        if not download:
            raise DataError(_missing_message(name, root)) from None
    except ImportError as err:
        raise DataError(f"torchvision {name} needs an extra package: {err}") from None
    except Exception as err:
        raise DataError(f"{root}: torchvision {name} files are unreadable ({err})") from None
    try:
        return cls(str(root), download=True, **_constructor_args(name, split))
    except Exception as err:
        raise DataError(
            f"downloading torchvision {name} failed ({err}); {_missing_message(name, root)}"
        ) from None


def _arrays(name: str, dataset: Any) -> tuple[np.ndarray, np.ndarray]:
    if name in ("USPS", "SVHN"):
        labels = dataset.targets if name == "USPS" else dataset.labels
        return np.asarray(dataset.data), np.asarray(labels)
    images = dataset.data.numpy()
    labels = dataset.targets.numpy()
    if name == "EMNIST":
        images = images.transpose(0, 2, 1)
    if name == "QMNIST":
        labels = labels[:, 0]
    return images, labels


def read_torchvision(name: str, root: Path, download: bool = False) -> dict[str, RawDigits]:
    """The set's own train and test splits; offline and absent, fails naming the files needed."""
    if name not in TORCHVISION_SETS:
        raise DataError(
            f"unknown torchvision set {name!r}; choose one of {', '.join(TORCHVISION_SETS)}"
        )
    parts = {}
    for split in ("train", "test"):
        images, labels = _arrays(name, _open(name, root, split, download))
        parts[split] = raw_digits(images, labels, None, f"{root} (torchvision {name} {split})")
    return parts
