"""Reporting: collect finished runs → paper tables, figures and a static HTML page.

Names load on first use: checking a report's options does not import matplotlib."""

from __future__ import annotations

from xlvision.lazy import lazy_namespace

__getattr__, __all__ = lazy_namespace(
    __name__,
    {
        "options": "ReportError ReportOptions",
        "stage": "report",
    },
)
