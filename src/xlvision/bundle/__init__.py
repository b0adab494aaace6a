"""The unified model bundle: one file that reads digits in every language it holds.

Names load on first use, so `xlv-predict --help` and its config errors do not import torch."""

from __future__ import annotations

from xlvision.lazy import lazy_getattr

_WHERE = {
    "BundleError": "xlvision.bundle.file",
    "load_bundle": "xlvision.bundle.file",
    "payload_sha256": "xlvision.bundle.file",
    "save_bundle": "xlvision.bundle.file",
    "digit_preprocessing": "xlvision.bundle.manifest",
    "language_record": "xlvision.bundle.manifest",
    "model_input": "xlvision.bundle.manifest",
    "LID_HEAD": "xlvision.bundle.model",
    "UnifiedModel": "xlvision.bundle.model",
}

__all__ = sorted(_WHERE)

__getattr__ = lazy_getattr(__name__, _WHERE)
