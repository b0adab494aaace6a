"""MNIST's IDX format (LeCun's idx3 images, idx1 labels), gzip-compressed or raw."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xlvision.data.errors import DataError
from xlvision.data.readers.raw import RawDigits, file_bytes, raw_digits

IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: Path) -> np.ndarray:
    """The array in one IDX file; the header's magic, dtype code, dims and length are checked."""
    data = file_bytes(path)
    if len(data) < 4 or data[:2] != b"\x00\x00":
        raise DataError(f"{path}: not an IDX file (magic number {data[:4].hex() or 'missing'})")
    code, dims = data[2], data[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise DataError(f"{path}: unknown IDX dtype code 0x{code:02X} (known: {known})")
    header = 4 + 4 * dims
    if len(data) < header:
        raise DataError(f"{path}: truncated IDX header ({len(data)} bytes, need {header})")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    dtype = IDX_DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    found = len(data) - header
    if found != expected:
        what = "truncated" if found < expected else "longer than its header says"
        raise DataError(
            f"{path}: {what}: header {shape} of {dtype.name} needs {expected} bytes, found {found}"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def read_idx_digits(images: Path, labels: Path, groups: Path | None = None) -> RawDigits:
    """An images file (idx3) with its labels (idx1) and, optionally, per-image group ids (idx1)."""
    group_array = None if groups is None else read_idx(groups)
    return raw_digits(
        read_idx(images), read_idx(labels), group_array, str(images), str(labels), str(groups)
    )
