"""Reporting: collect finished runs → paper tables, figures and a static HTML page."""

from xlvision.report.options import ReportError, ReportOptions
from xlvision.report.stage import report

__all__ = ["ReportError", "ReportOptions", "report"]
