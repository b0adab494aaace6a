"""The language registry: digits' code points, localized class names and fonts per script."""

from xlvision.languages.registry import (
    ENGLISH_DIGIT_NAMES,
    Language,
    available_languages,
    load_language,
)

__all__ = ["ENGLISH_DIGIT_NAMES", "Language", "available_languages", "load_language"]
