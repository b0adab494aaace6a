"""The error of a model file that cannot be used, importable without any model code."""

from __future__ import annotations

from xlvision.errors import XlvisionError


class CheckpointError(XlvisionError, ValueError):
    """A checkpoint or weights file that cannot be used; the one-line message starts with its
    path."""
