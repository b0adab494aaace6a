"""Reporting: collect finished runs → paper tables, figures and a static HTML page."""

from __future__ import annotations

from xlvision.moved import moved_names

# What this package handed on before each name was imported from its own module.
__getattr__ = moved_names(
    __name__,
    {
        "xlvision.report.options": "ReportError ReportOptions",
        "xlvision.report.stage": "report",
    },
)
