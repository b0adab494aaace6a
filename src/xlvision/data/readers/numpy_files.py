"""NumPy files: one `.npz` archive of named arrays, or one `.npy` file per array."""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from xlvision.data.errors import DataError
from xlvision.data.readers.raw import RawDigits, raw_digits


def read_npy(path: Path) -> np.ndarray:
    """One array from a `.npy` file; pickled object arrays are refused, never executed."""
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, ValueError, EOFError) as err:
        raise DataError(f"{path}: not a readable .npy file ({err})") from None


def read_npy_digits(images: Path, labels: Path, groups: Path | None = None) -> RawDigits:
    """Images, labels and optional group ids, each from its own `.npy` file."""
    group_array = None if groups is None else read_npy(groups)
    return raw_digits(
        read_npy(images), read_npy(labels), group_array, str(images), str(labels), str(groups)
    )


def read_npz_digits(path: Path, names: Mapping[str, str]) -> RawDigits:
    """The arrays named by `names` (roles images, labels, optional groups) from one `.npz`."""
    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise DataError(f"{path}: not a readable .npz archive ({err})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"{path}: holds a single array, not an .npz archive of named arrays")
    with archive:
        arrays = {}
        for role, name in names.items():
            if name not in archive.files:
                have = ", ".join(archive.files) or "none"
                raise DataError(f"{path}: no array {name!r} (for {role}); the file has: {have}")
            try:
                arrays[role] = archive[name]
            except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as err:
                raise DataError(f"{path}[{name}]: corrupt or truncated array ({err})") from None
    where = {role: f"{path}[{name}]" for role, name in names.items()}
    return raw_digits(
        arrays["images"],
        arrays["labels"],
        arrays.get("groups"),
        where["images"],
        where["labels"],
        where.get("groups"),
    )
