"""Readers for real digit datasets: each returns `RawDigits` per split the file provides."""

from __future__ import annotations

from pathlib import Path

from xlvision.data.readers.csv_table import read_csv_digits
from xlvision.data.readers.idx import read_idx, read_idx_digits
from xlvision.data.readers.image_folder import read_image_folder
from xlvision.data.readers.numpy_files import read_npy_digits, read_npz_digits
from xlvision.data.readers.raw import RawDigits
from xlvision.data.readers.torchvision_sets import TORCHVISION_SETS, read_torchvision

__all__ = [
    "TORCHVISION_SETS",
    "RawDigits",
    "read_csv_digits",
    "read_idx",
    "read_idx_digits",
    "read_image_folder",
    "read_npy_digits",
    "read_npz_digits",
    "read_torchvision",
    "resolve",
]


def resolve(path: str | Path, data_dir: Path) -> Path:
    """`path` itself when absolute (or `~`-based), else relative to the data directory."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else Path(data_dir) / path
