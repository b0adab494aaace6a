"""Reporting: collect finished runs → paper tables, figures and a static HTML page.

Names load on first use: checking a report's options does not import matplotlib."""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "ReportError": "xlvision.report.options",
    "ReportOptions": "xlvision.report.options",
    "report": "xlvision.report.stage",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
