"""The one exception a user's data mistake raises, so callers can catch it and print one line."""

from __future__ import annotations

from xlvision.errors import XlvisionError


class DataError(XlvisionError, ValueError):
    """A data file or data config is wrong; the message names the file or key and what is wrong."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))
