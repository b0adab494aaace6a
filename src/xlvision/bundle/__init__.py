"""The unified model bundle: one file that reads digits in every language it holds."""

from __future__ import annotations

from xlvision.moved import moved_names

# What this package handed on before each name was imported from its own module.
__getattr__ = moved_names(
    __name__,
    {
        "xlvision.bundle.file": "BundleError load_bundle payload_sha256 save_bundle",
        "xlvision.bundle.manifest": "digit_preprocessing language_record model_input",
        "xlvision.bundle.model": "LID_HEAD UnifiedModel",
    },
)
