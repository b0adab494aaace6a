"""The `source` mapping of a real-data preset, checked key by key before any file is opened."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from omegaconf import OmegaConf
from omegaconf.errors import MissingMandatoryValue

from xlvision.data.errors import DataError
from xlvision.data.normalize import POLARITIES
from xlvision.data.readers.raw import SPLITS
from xlvision.data.readers.torchvision_sets import TORCHVISION_SETS

COMMON_KEYS = ("format", "language", "polarity", "val_fraction", "test_fraction")
FORMAT_KEYS = {
    "idx": ("files",),
    "npy": ("files",),
    "npz": ("path", "arrays"),
    "csv": ("path", "files", "label_column", "header", "group_column"),
    "folder": ("path", "files"),
    "torchvision": ("name", "path", "download"),
}
FORMATS = tuple(FORMAT_KEYS)
ROLES = ("images", "labels", "groups")
HEADER_CHOICES = ("auto", True, False)
LANGUAGE_CODE = re.compile(r"[a-z]{2,3}")


@dataclass(frozen=True)
class RealSource:
    """Where one real dataset lives and how to read it.

    `parts` maps each split the file provides (`train`, `val`, `test`) to its locator: a
    role → path mapping (idx, npy), a role → array-name mapping (npz) or one path (csv, folder).
    """

    format: str
    language: str
    polarity: str = "auto"
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    parts: dict[str, Any] = field(default_factory=dict)
    path: str | None = None
    label_column: int | str = 0
    header: bool | str = "auto"
    group_column: int | str | None = None
    name: str | None = None
    download: bool = False


def _fail(key: str, value: Any, allowed: str) -> DataError:
    return DataError(f"source.{key}={value!r} is not allowed; {allowed}")


def _string(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise _fail(key, value, "expected a non-empty string")
    return value


def _fraction(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise _fail(key, value, "expected a number in [0, 1)")
    return float(value)


def _column(key: str, value: Any) -> int | str:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or value == "":
        raise _fail(key, value, "expected a column name or a 0-based column index")
    return value


def _roles(key: str, value: Any) -> dict[str, str]:
    """`{images: …, labels: …[, groups: …]}`, each a file path or an array name."""
    if not isinstance(value, Mapping):
        raise _fail(key, value, "expected a mapping with keys images, labels and optionally groups")
    unknown = [k for k in value if k not in ROLES]
    if unknown:
        raise _fail(f"{key}.{unknown[0]}", value[unknown[0]], f"allowed keys: {', '.join(ROLES)}")
    for role in ("images", "labels"):
        if role not in value:
            raise DataError(f"source.{key} lacks {role!r}; it needs images and labels")
    return {role: _string(f"{key}.{role}", value[role]) for role in ROLES if role in value}


def _by_split(key: str, value: Any, per_split) -> dict[str, Any]:
    """A locator for the whole file (as `train`) or a mapping of split name → locator."""
    if isinstance(value, Mapping) and value and all(k in SPLITS for k in value):
        return {split: per_split(f"{key}.{split}", value[split]) for split in value}
    if isinstance(value, Mapping) and any(k in SPLITS for k in value):
        strangers = [k for k in value if k not in SPLITS]
        raise _fail(f"{key}.{strangers[0]}", value[strangers[0]], f"splits: {', '.join(SPLITS)}")
    return {"train": per_split(key, value)}


def _unset_key(node: Any, key: str) -> str | None:
    """The first key still holding OmegaConf's `???` placeholder, nested keys included."""
    if node == "???":
        return key
    if isinstance(node, Mapping):
        for name, value in node.items():
            found = _unset_key(value, f"{key}.{name}")
            if found:
                return found
    return None


def _plain(source: Any) -> dict[str, Any]:
    if OmegaConf.is_config(source):
        try:
            return OmegaConf.to_container(source, resolve=True, throw_on_missing=True)
        except MissingMandatoryValue as err:
            key = err.full_key or f"source.{err.key}"
            raise DataError(f"{key}: missing value (???), set it") from None
    if not isinstance(source, Mapping):
        raise DataError(f"source must be a mapping, got {type(source).__name__}")
    unset = _unset_key(source, "source")
    if unset:
        raise DataError(f"{unset}: missing value (???), set it")
    return dict(source)


def _role_files(fmt: str, data: dict[str, Any]) -> dict[str, Any]:
    if "files" not in data:
        raise DataError(
            f"source.files is required for format {fmt} (e.g. {{images: …, labels: …}})"
        )
    return {"parts": _by_split("files", data["files"], _roles)}


def _npz_arrays(fmt: str, data: dict[str, Any]) -> dict[str, Any]:
    if "arrays" not in data:
        raise DataError("source.arrays is required for format npz (e.g. {images: x, labels: y})")
    return {
        "path": _string("path", data.get("path")),
        "parts": _by_split("arrays", data["arrays"], _roles),
    }


def _one_path_per_split(fmt: str, data: dict[str, Any]) -> dict[str, Any]:
    if ("path" in data) == ("files" in data):
        raise DataError(f"format {fmt} needs exactly one of source.path or source.files")
    if "path" in data:
        return {"parts": {"train": _string("path", data["path"])}}
    return {"parts": _by_split("files", data["files"], _string)}


def _csv_table(fmt: str, data: dict[str, Any]) -> dict[str, Any]:
    header = data.get("header", "auto")
    if header not in HEADER_CHOICES:
        raise _fail("header", header, "allowed: auto, true, false")
    group_column = data.get("group_column")
    return {
        **_one_path_per_split(fmt, data),
        "label_column": _column("label_column", data.get("label_column", 0)),
        "header": header,
        "group_column": None if group_column is None else _column("group_column", group_column),
    }


def _torchvision_set(fmt: str, data: dict[str, Any]) -> dict[str, Any]:
    name = data.get("name")
    if name not in TORCHVISION_SETS:
        raise _fail("name", name, f"allowed: {', '.join(TORCHVISION_SETS)}")
    download = data.get("download", False)
    if not isinstance(download, bool):
        raise _fail("download", download, "expected true or false")
    return {
        "name": name,
        "download": download,
        "path": _string("path", data.get("path", "torchvision")),
    }


FORMAT_OPTIONS = {
    "idx": _role_files,
    "npy": _role_files,
    "npz": _npz_arrays,
    "csv": _csv_table,
    "folder": _one_path_per_split,
    "torchvision": _torchvision_set,
}


def parse_real_source(source: Mapping[str, Any]) -> RealSource:
    """A `RealSource` from a preset's `source` mapping; a wrong key or value fails in one line."""
    data = _plain(source)
    fmt = data.get("format")
    if fmt not in FORMAT_KEYS:
        raise _fail("format", fmt, f"allowed: {', '.join(FORMATS)}")
    allowed = COMMON_KEYS + FORMAT_KEYS[fmt]
    for key in data:
        if key not in allowed:
            raise _fail(
                key, data[key], f"unknown key for format {fmt}; allowed: {', '.join(allowed)}"
            )
    language = _string("language", data.get("language"))
    if not LANGUAGE_CODE.fullmatch(language):
        raise _fail("language", language, "expected a language code such as kn, fa, bo")
    polarity = data.get("polarity", "auto")
    if polarity not in POLARITIES:
        raise _fail("polarity", polarity, f"allowed: {', '.join(POLARITIES)}")
    fractions = {
        k: _fraction(k, data.get(k, d)) for k, d in (("val_fraction", 0.1), ("test_fraction", 0.2))
    }
    if sum(fractions.values()) >= 1:
        raise _fail(
            "val_fraction", fractions["val_fraction"], "val_fraction + test_fraction must be < 1"
        )
    options = FORMAT_OPTIONS[fmt](fmt, data)
    return RealSource(format=fmt, language=language, polarity=polarity, **fractions, **options)
