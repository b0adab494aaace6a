"""The bundle's errors, importable without torch."""

from __future__ import annotations


class BundleError(ValueError):
    """A bundle (or exported file) that cannot be used; the one-line message starts with its path."""
