"""Kaggle-style CSV: one image per row, a label column and side×side pixel columns."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np

from xlvision.data.errors import DataError
from xlvision.data.readers.raw import RawDigits, file_bytes, raw_digits

HEADER_CHOICES = ("auto", True, False)


def _text(path: Path) -> str:
    try:
        return file_bytes(path).decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not a readable text CSV ({err})") from None


def _is_number(field: str) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return True


def _column(key: int | str, names: list[str] | None, count: int, what: str, path: Path) -> int:
    if isinstance(key, int):
        if not -count <= key < count:
            raise DataError(f"{path}: {what} {key} is out of range for {count} columns")
        return key % count
    if names is None:
        raise DataError(f"{path}: {what} {key!r} is a name but the file has no header row")
    if key not in names:
        shown = ", ".join(names[:6]) + (f", … ({len(names)} columns)" if len(names) > 6 else "")
        raise DataError(f"{path}: no column {key!r} ({what}); the columns are: {shown}")
    return names.index(key)


def read_csv_digits(
    path: Path,
    label_column: int | str = 0,
    header: bool | str = "auto",
    group_column: int | str | None = None,
) -> RawDigits:
    """Rows of `label, pixel…`; every column but label and group is a pixel, row-major."""
    text = _text(path)
    first = text.split("\n", 1)[0].strip()
    if not first:
        raise DataError(f"{path}: empty CSV")
    fields = [f.strip() for f in first.split(",")]
    has_header = not all(map(_is_number, fields)) if header == "auto" else bool(header)
    names = fields if has_header else None
    count = len(fields)
    label_index = _column(label_column, names, count, "label_column", path)
    group_index = None
    if group_column is not None:
        group_index = _column(group_column, names, count, "group_column", path)
    pixel_columns = [i for i in range(count) if i not in (label_index, group_index)]
    side = math.isqrt(len(pixel_columns))
    if side * side != len(pixel_columns) or side == 0:
        raise DataError(
            f"{path}: {len(pixel_columns)} pixel columns do not make a square image (side² pixels)"
        )
    skip = 1 if has_header else 0
    if not any(line.strip() for line in text.split("\n")[skip:]):
        raise DataError(f"{path}: holds no images (no data rows)")
    try:
        table = np.loadtxt(
            io.StringIO(text),
            delimiter=",",
            skiprows=skip,
            usecols=[label_index, *pixel_columns],
            dtype=np.float32,
            ndmin=2,
        )
        groups = None
        if group_index is not None:
            groups = np.loadtxt(
                io.StringIO(text), delimiter=",", skiprows=skip, usecols=group_index, dtype=str
            )
    except ValueError as err:
        raise DataError(f"{path}: malformed CSV ({err})") from None
    images = table[:, 1:].reshape(-1, side, side)
    return raw_digits(images, table[:, 0], groups, str(path))
