"""The unified model bundle: one file that reads digits in every language it holds.

Names load on first use, so `xlv-predict --help` and its config errors do not import torch."""

from __future__ import annotations

from xlvision.lazy import lazy_namespace

__getattr__, __all__ = lazy_namespace(
    __name__,
    {
        "file": "BundleError load_bundle payload_sha256 save_bundle",
        "manifest": "digit_preprocessing language_record model_input",
        "model": "LID_HEAD UnifiedModel",
    },
)
