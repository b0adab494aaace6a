"""The errors of bundles, their exports and the images read with them, importable without torch."""

from __future__ import annotations

from xlvision.errors import XlvisionError


class BundleError(XlvisionError, ValueError):
    """A bundle (or exported file) that cannot be used; the one-line message starts with its path."""


class ExportError(XlvisionError, ValueError):
    """An export that cannot be made or did not match PyTorch; one line naming the file."""


class InputError(XlvisionError, ValueError):
    """An input that names no image or an image that cannot be read; one line, with the path."""
