"""The HTML report of a replenish run: forecast quality, service achieved, inventory saved."""

from replenish.report.content import ReportData, SampleSeries, collect_report_data
from replenish.report.html import render_report

__all__ = ["ReportData", "SampleSeries", "collect_report_data", "render_report"]
