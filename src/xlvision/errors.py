"""The one base class of every error a user's mistake raises, importable without torch.

A bad config value, data file, bundle, checkpoint, image or run dir each has its own class
(`ConfigError`, `DataError`, `BundleError`, …), all derived from `XlvisionError`: the console
scripts catch that one class and print its message, which is one line for people, without a
traceback. Anything else is a fault of xlvision and keeps its traceback.
"""

from __future__ import annotations


class XlvisionError(Exception):
    """A user's mistake; the message is one line that names the key or file."""
