"""The unified model bundle: one file that reads digits in every language it holds."""

from xlvision.bundle.file import BundleError, load_bundle, payload_sha256, save_bundle
from xlvision.bundle.manifest import digit_preprocessing, language_record, model_input
from xlvision.bundle.model import LID_HEAD, UnifiedModel

__all__ = [
    "LID_HEAD",
    "BundleError",
    "UnifiedModel",
    "digit_preprocessing",
    "language_record",
    "load_bundle",
    "model_input",
    "payload_sha256",
    "save_bundle",
]
