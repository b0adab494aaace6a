"""On-disk cache of generated datasets, keyed by everything that determines their bytes."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file

from xlvision.data.arrays import DigitArrays

CACHE_FORMAT = 1


def cache_key(spec: dict[str, Any]) -> str:
    """A stable hash of a JSON-serializable description of the dataset."""
    text = json.dumps({"format": CACHE_FORMAT, **spec}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def cached_arrays(
    cache_dir: str | Path | None, spec: dict[str, Any], make: Callable[[], DigitArrays]
) -> DigitArrays:
    """Load the arrays for `spec` from the cache, or make and store them (atomically)."""
    if cache_dir is None:
        return make()
    path = Path(cache_dir).expanduser() / f"{cache_key(spec)}.safetensors"
    if path.is_file():
        try:
            tensors = load_file(path)
            return DigitArrays(tensors["images"], tensors["labels"])
        except Exception:  # a torn or foreign file: regenerate rather than fail
            path.unlink(missing_ok=True)
    arrays = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    save_file({"images": arrays.images, "labels": arrays.labels}, tmp)
    os.replace(tmp, path)
    return arrays
