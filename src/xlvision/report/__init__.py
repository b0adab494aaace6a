"""Reporting: collect finished runs → paper tables, figures and a static HTML page.

Names load on first use: checking a report's options does not import matplotlib."""

from __future__ import annotations

from xlvision.lazy import lazy_getattr

_WHERE = {
    "ReportError": "xlvision.report.options",
    "ReportOptions": "xlvision.report.options",
    "report": "xlvision.report.stage",
}

__all__ = sorted(_WHERE)


__getattr__ = lazy_getattr(__name__, _WHERE)
