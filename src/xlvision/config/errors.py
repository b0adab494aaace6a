"""The error every config check raises."""

from __future__ import annotations

from typing import Any

from xlvision.errors import XlvisionError


class ConfigError(XlvisionError, ValueError):
    """A bad config value: the message names the key, the value and what is allowed."""

    exit_status = 2
    prefix = "config error: "

    def __init__(self, key: str, value: Any, allowed: str) -> None:
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"{key}={value!r} is not allowed: {allowed}")
